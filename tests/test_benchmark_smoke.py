"""benchmarks/benchmark.py at toy sizes: it runs, its report is complete, the op's memory is linear.

No timing is asserted (the machine is shared); only that every ratio is computed and finite,
and deterministic memory measures.
"""

import argparse
import json
import math
from types import SimpleNamespace

import pytest
import torch
from fairseq.criterions.label_smoothed_cross_entropy import LabelSmoothedCrossEntropyCriterion

from benchmarks import benchmark
from fairseq_plugins.modules import ContextPool

TOY_SIZE = ("transformer_tiny", "contextpool_transformer_tiny", 40, {})
TINY = dict(
    benchmark.QUICK,
    op_lengths=[8, 16],
    op_tokens=64,
    op_repeats=1,
    sizes=["toy"],
    train_tokens=32,
    train_length=8,
    train_repeats=1,
    gen_sentences=2,
    gen_src_length=5,
    gen_length=3,
    gen_repeats=1,
)


@pytest.fixture(scope="module")
def result():
    with pytest.MonkeyPatch.context() as patch:
        patch.setitem(benchmark.SIZES, "toy", TOY_SIZE)
        return benchmark.run(TINY, "cpu")


@pytest.fixture(scope="module")
def two_precisions():
    with pytest.MonkeyPatch.context() as patch:
        patch.setitem(benchmark.SIZES, "toy", TOY_SIZE)
        return benchmark.run(TINY, "cpu", parts=("train", "generate"), precisions=("fp32", "bf16"))


def finite_positive(value):
    return isinstance(value, (int, float)) and math.isfinite(value) and value > 0


def test_report_has_every_ratio_and_is_json(result):
    assert [row["length"] for row in result["op"]["rows"]] == TINY["op_lengths"]
    for row in result["op"]["rows"]:
        for key in ("time_ratio", "memory_ratio", "attention_ms", "contextpool_ms",
                    "attention_peak_bytes", "contextpool_peak_bytes", "contextpool_saved_bytes"):
            assert finite_positive(row[key]), (key, row[key])
    (train,) = result["train"]
    for key in ("wps_ratio", "memory_ratio", "baseline_wps", "contextpool_wps",
                "baseline_peak_bytes", "contextpool_peak_bytes"):
        assert finite_positive(train[key]), (key, train[key])
    assert train["contextpool_params"] > train["baseline_params"]
    (gen,) = result["generate"]
    assert finite_positive(gen["speed_ratio"]) and gen["output_tokens"] == TINY["gen_length"]
    assert set(result["targets"]) and all(isinstance(v, bool) for v in result["targets"].values())
    json.loads(json.dumps(result))  # serialisable as is


def test_precisions_run_side_by_side_with_speedups(two_precisions):
    for part in ("train", "generate"):
        assert [row["precision"] for row in two_precisions[part]] == ["fp32", "bf16"]
    ratios = {(r["part"], r["model"], r["precision"]): r["speedup"]
              for r in two_precisions["precision_speedup"]}
    assert set(ratios) == {(part, model, "bf16") for part in ("train", "generate")
                           for model in ("baseline", "contextpool")}
    assert all(finite_positive(v) for v in ratios.values()), ratios
    section = benchmark.markdown_section(dict(
        two_precisions, name="p", command="c", date="d", machine=benchmark.machine_info("cpu")))
    assert "speed-up over fp32" in section and "| train | toy | contextpool | bf16 |" in section


def test_bf16_speedup_target_reads_the_rows():
    result = {"precision_speedup": [
        dict(part="train", size="3+3x256", model="baseline", precision="bf16", speedup=1.6),
        dict(part="train", size="3+3x256", model="contextpool", precision="bf16", speedup=1.2),
    ]}
    checks = benchmark.check_targets(result)
    assert sorted(checks.values()) == [False, True]
    assert any("contextpool" in name and not ok for name, ok in checks.items())


def test_results_markdown_keeps_other_sections(tmp_path, result):
    path = tmp_path / "results.md"
    path.write_text("# Results\n\nhand-written notes\n\n<!-- benchmark:other start -->\nkeep me\n"
                    "<!-- benchmark:other end -->\n")
    report = dict(result, name="smoke", note="a note", command="python benchmarks/benchmark.py",
                  date="today", machine=benchmark.machine_info("cpu"))
    benchmark.update_results_markdown(str(path), "smoke", benchmark.markdown_section(report))
    benchmark.update_results_markdown(str(path), "smoke", benchmark.markdown_section(report))
    text = path.read_text()
    assert "hand-written notes" in text and "keep me" in text
    assert text.count("<!-- benchmark:smoke start -->") == 1 and "a note" in text


@pytest.mark.parametrize("causal", [False, True])
def test_contextpool_graph_memory_is_linear_in_length(causal):
    """The banded pool keeps O(T) bytes for backward, never a T x T (or B x T x T) tensor."""
    pool = ContextPool(16, max_size=8, causal=causal)

    def saved(length):
        x = torch.randn(length, 1, 16, requires_grad=True)
        return benchmark.saved_tensor_bytes(lambda: pool(x))

    def peak(length):  # forward and backward, temporaries included
        x = torch.randn(length, 1, 16, requires_grad=True)
        return benchmark.peak_memory_bytes(lambda: pool(x).sum().backward(), "cpu")

    for measure in (saved, peak):
        small, large = measure(1024), measure(2048)
        assert 0 < large <= 2.2 * small, (measure.__name__, small, large)
        # and far from quadratic: one 1024 x 1024 float mask alone would be 4 MiB
        assert small < 1024 * 1024 * 4 / 2, (measure.__name__, small)


def test_contextpool_keeps_only_its_input_for_backward():
    """Apart from T x B weights and widths, the graph holds x itself and no pooled copy."""
    pool = ContextPool(64, max_size=8)
    x = torch.randn(128, 4, 64, requires_grad=True)
    saved = benchmark.saved_tensor_bytes(lambda: pool(x))
    x_bytes = x.numel() * x.element_size()
    params = sum(p.numel() * p.element_size() for p in pool.parameters())
    assert saved <= x_bytes + 8 * 128 * 4 * 4 + 2 * params


# --------------------------------------------------------------------------- any architecture

# the study's configurations, shrunk: the same architectures and depths at 16 dims
SHRINK = ["--encoder-embed-dim", "16", "--decoder-embed-dim", "16", "--encoder-ffn-embed-dim", "32",
          "--decoder-ffn-embed-dim", "32", "--encoder-attention-heads", "2", "--decoder-attention-heads", "2"]
MODELS = ["baseline", "contextpool_1x1", "lightconv_2x2", "dynamicconv_1x1"]


@pytest.fixture(scope="module")
def models_result():
    specs = benchmark.study_specs(MODELS)
    for spec in specs:
        spec.options = spec.options + SHRINK
    config = dict(TINY, models_vocab=40)
    return specs, benchmark.run(config, "cpu", parts=("models",), precisions=("fp32", "bf16"), models=specs)


def test_models_are_built_with_the_study_options():
    """A study name gives run_study.sh's options (common, then its own); fairseq's parser
    applies them as fairseq-train would (the last occurrence wins)."""
    (spec,) = benchmark.study_specs(["lightconv_2x2"])
    assert spec.arch == "lightconv_iwslt_de_en"
    assert spec.options[:2] == ["--encoder-layers", "3"] and "[3,7]" in spec.options
    model = benchmark.build_from_options(spec, benchmark.make_dictionary(40), seed=0)
    assert [layer.conv.kernel_size for layer in model.encoder.layers] == [3, 7]
    assert [layer.conv.kernel_size for layer in model.decoder.layers] == [3, 7]
    assert model.encoder.embed_tokens.embedding_dim == 256


def test_every_model_is_measured_against_the_reference(models_result):
    specs, result = models_result
    models = result["models"]
    assert models["reference"] == "baseline" and list(models["specs"]) == MODELS
    for part in ("train", "generate"):
        assert [(r["model"], r["precision"]) for r in models[part]] == [
            (m, p) for p in ("fp32", "bf16") for m in MODELS]
    for row in models["train"]:
        for key in ("wps", "wps_ratio", "peak_bytes", "memory_ratio", "params", "ops", "ops_ratio"):
            assert finite_positive(row[key]), (row["model"], key, row[key])
        if row["model"] == "baseline":
            assert row["wps_ratio"] == row["memory_ratio"] == row["ops_ratio"] == 1.0
    for row in models["generate"]:
        assert finite_positive(row["sentences_per_s"]) and finite_positive(row["speed_ratio"])
    params = {r["model"]: r["params"] for r in models["train"]}
    assert params["dynamicconv_1x1"] < params["lightconv_2x2"] < params["baseline"]
    assert {(r["part"], r["model"]) for r in models["precision_speedup"]} == {
        (part, m) for part in ("train", "generate") for m in MODELS}
    json.loads(json.dumps(result))
    section = benchmark.markdown_section(dict(
        result, name="m", command="c", date="d", machine=benchmark.machine_info("cpu")))
    assert "| lightconv_2x2 | bf16 |" in section and "ratios are model / `baseline`" in section
    assert "| operators | operators ratio |" in section
    # a JSON written before operators were counted renders as it did
    for row in result["models"]["train"]:
        del row["ops"], row["ops_ratio"]
    old = benchmark.markdown_section(dict(
        result, name="m", command="c", date="d", machine=benchmark.machine_info("cpu")))
    assert "operators" not in old and "| generation ratio |\n|---" in old


def test_operators_of_a_training_step_are_counted_without_views():
    """ContextPool's layers dispatch more operators than the same Transformer's (what a GPU pays
    in kernel launches); the count is the same every time and leaves views out."""
    dictionary = benchmark.make_dictionary(40)
    task = SimpleNamespace(source_dictionary=dictionary, target_dictionary=dictionary)
    criterion = LabelSmoothedCrossEntropyCriterion(task, sentence_avg=False, label_smoothing=0.1)
    sample = benchmark.make_sample(dictionary, 2, 6, 5, "cpu")
    counts = {}
    for spec in benchmark.study_specs(["baseline_1x1", "contextpool_1x1"]):
        spec.options = spec.options + SHRINK
        model = benchmark.build_from_options(spec, dictionary, seed=0).train()
        counts[spec.name] = [benchmark.operator_count(model, criterion, sample, "fp32", "cpu")
                             for _ in range(2)]
    assert counts["baseline_1x1"][0] == counts["baseline_1x1"][1] > 0
    assert counts["contextpool_1x1"][0] == counts["contextpool_1x1"][1] > counts["baseline_1x1"][0]
    with benchmark._OperatorCounter() as counter:
        torch.ones(4).view(2, 2).t().detach()
    assert counter.count == 1  # the ones; not the view, the transpose or the detach


def test_model_options_of_the_command_line():
    assert benchmark.model_specs(argparse.Namespace(
        frontier=False, models=None, model=[], reference="baseline")) == []
    frontier = benchmark.model_specs(argparse.Namespace(
        frontier=True, models=None, model=[], reference="baseline"))
    assert [s.name for s in frontier] == benchmark.FRONTIER  # the reference first
    specs = benchmark.model_specs(argparse.Namespace(
        frontier=False, models="lightconv", reference="baseline",
        model=["k4=contextpool_transformer_tiny --contextpool-max-size 4"]))
    assert [s.name for s in specs] == ["baseline", "lightconv", "k4"]  # the reference added
    assert specs[2].arch == "contextpool_transformer_tiny"
    assert specs[2].options[-2:] == ["--contextpool-max-size", "4"]
    assert specs[2].options[:2] == ["--encoder-layers", "3"]  # the study's common options first
    with pytest.raises(benchmark.StudyError, match="unknown configuration 'transformer'; known: baseline"):
        benchmark.model_specs(argparse.Namespace(frontier=False, models="transformer", model=[],
                                                 reference="baseline"))
    with pytest.raises(benchmark.StudyError, match="NAME=ARCH"):
        benchmark.model_specs(argparse.Namespace(frontier=False, models=None, model=["k4"],
                                                 reference="baseline"))
