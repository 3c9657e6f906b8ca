"""benchmarks/benchmark.py at toy sizes: it runs, its report is complete, the op's memory is linear.

No timing is asserted (the machine is shared); only that every ratio is computed and finite,
and deterministic memory measures.
"""

import json
import math

import pytest
import torch

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
