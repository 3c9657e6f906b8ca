"""cpmt-study frontier on a synthetic study: points, comparisons, neighbours in speed, length
buckets and the smallest detectable difference, every number recomputed here; missing points and
seeds are marked."""

import json
import os
import random
import shutil
import statistics
import subprocess
import sys

import numpy as np
import pytest
from sacrebleu.metrics import BLEU
from scipy import stats

from contextpool_mt import frontier, study
from contextpool_mt.text import write_lines
from test_study import WORDS, make_run

# configuration: (seeds, fraction of words dropped from the reference); contextpool_1x1 lacks seed
# 1, so pairing by position in the seed lists instead of by seed number would pair it wrongly
RUNS = {"baseline": ((1, 2, 3), 0.25), "contextpool": ((1, 2, 3), 0.2),
        "baseline_1x1": ((1, 2, 3), 0.4), "contextpool_1x1": ((2, 3), 0.3),
        "lightconv": ((1,), 0.1)}
# measured training words/s and generation sentences/s, fp32 and bf16 (the runs are fp32)
SPEED = {"baseline": 1000, "contextpool": 900, "baseline_1x1": 2000, "contextpool_1x1": 1500,
         "lightconv": 1200}
TRAIN_GFLOPS = {"baseline": 0.10, "contextpool": 0.1003, "baseline_1x1": 0.05,
                "contextpool_1x1": 0.0502, "lightconv": 0.09}


def benchmark_json(path):
    rows = [dict(model=m, precision=p, params=1, wps=w * (2 if p == "bf16" else 1),
                 wps_ratio=w / SPEED["baseline"], peak_bytes=1, memory_ratio=1.0)
            for p in ("fp32", "bf16") for m, w in SPEED.items()]
    gen = [dict(model=m, precision=p, sentences_per_s=w / 100, speed_ratio=w / SPEED["baseline"])
           for p in ("fp32", "bf16") for m, w in SPEED.items()]
    path.write_text(json.dumps({"models": {"reference": "baseline", "train": rows, "generate": gen},
                                "machine": {"cpu": "test CPU"}, "date": "today"}))
    return path


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory):
    root = tmp_path_factory.mktemp("frontier")
    rng = random.Random(1)
    refs = [" ".join(rng.choice(WORDS) for _ in range(rng.randint(3, 25))) for _ in range(80)]
    # a long reference has a short source: bucketing by reference length would give other buckets
    sources = [" ".join(["w"] * (28 - len(r.split()))) for r in refs]
    (root / "data" / "raw").mkdir(parents=True)
    ref_path, src_path = root / "data" / "raw" / "test.de", root / "data" / "raw" / "test.en"
    write_lines(ref_path, refs)
    write_lines(src_path, sources)
    hyps = {}
    for config, (seeds, drop) in RUNS.items():
        for seed in seeds:
            name = f"{config}_s{seed}"
            run, hyps[name] = make_run(root, name, refs, ref_path, drop, [20, 25, 26], rng)
            out = study.export_run(run, root / "artefacts" / name)
            (out / "cost.json").write_text(json.dumps({
                "train_flops_per_target_token": TRAIN_GFLOPS[config] * 1e9 * (1 + seed / 1000),
                "decode_flops_per_output_token": TRAIN_GFLOPS[config] * 5e8}))
    # what ran wins over the table: one run's command line says 1+1 (its table line says so too)
    (root / "artefacts" / "baseline_1x1_s1" / "command.txt").write_text(
        "fairseq-train d --arch transformer_tiny --encoder-layers 3 --decoder-layers 3 "
        "--encoder-layers 1 --decoder-layers 1\n")
    bench = benchmark_json(root / "bench.json")
    report = frontier.build_frontier(root / "artefacts", ref_path, src_path, bench, n_samples=200)
    return root, refs, sources, hyps, report


def bleu(hyps, refs):
    return BLEU().corpus_score(hyps, [refs]).score


def test_points_carry_the_recomputed_means_and_mark_what_is_missing(synthetic):
    root, refs, _, hyps, report = synthetic
    points = {p["config"]: p for p in report["points"]}
    for config, (seeds, _) in RUNS.items():
        scores = [bleu(hyps[f"{config}_s{s}"], refs) for s in seeds]
        mean, sd = points[config]["bleu_mean_sd"]
        assert mean == pytest.approx(statistics.mean(scores))
        assert sd == (pytest.approx(statistics.stdev(scores)) if len(seeds) > 1 else None)
    assert points["baseline_1x1"]["layers"] == (1, 1) and points["contextpool"]["depth"] == "3+3"
    assert points["contextpool_1x1"]["layers"] == (1, 1)  # from the table (no layers in its command)
    assert points["baseline_2x2"]["seeds"] == [] and points["dynamicconv_1x1"]["seeds"] == []
    assert points["contextpool"]["cost"]["train_gflops"] == pytest.approx(0.1003 * 1.002)  # mean of 3 seeds
    assert points["lightconv"]["speed"]["wps"] == 1200  # fp32 rows: the runs' precision
    assert report["precisions"] == ["fp32"]
    text = frontier.render(report)
    assert "| Transformer `baseline_2x2` | not run |" in text
    assert "| ContextPool `contextpool_1x1` | 2,3 (1 missing) |" in text
    assert "| LightConv `lightconv` | 1 (2 missing) |" in text


def test_comparisons_against_the_transformer_points(synthetic):
    _, refs, _, hyps, report = synthetic
    points = {p["config"]: p for p in report["points"]}
    comp = points["contextpool_1x1"]["comparisons"]
    deltas = [bleu(hyps[f"contextpool_1x1_s{s}"], refs) - bleu(hyps[f"baseline_1x1_s{s}"], refs)
              for s in (2, 3)]
    same = comp["same_depth"]
    assert same["against"] == "baseline_1x1" and same["seeds"] == [2, 3]
    assert same["seed_ttest"]["p_value"] == pytest.approx(stats.ttest_1samp(deltas, 0).pvalue)
    assert same["pooled_bootstrap"]["delta"] == pytest.approx(statistics.mean(deltas))
    # 1500 words/s lies between the Transformer 3+3 (1000, slower) and 1+1 (2000, faster)
    assert comp["slower_transformer"]["against"] == "baseline"
    assert comp["faster_transformer"]["against"] == "baseline_1x1"
    assert comp["own_3x3"]["against"] == "contextpool" and comp["own_3x3"]["seeds"] == [2, 3]
    # the Transformer's own points are the reference line: only their loss against 3+3
    assert set(points["baseline_1x1"]["comparisons"]) == {"own_3x3"}
    assert points["baseline"]["comparisons"] == {}
    light = points["lightconv"]["comparisons"]
    assert light["same_depth"]["seeds"] == [1] and light["same_depth"]["seed_ttest"]["p_value"] is None
    assert light["faster_transformer"]["against"] == "baseline_1x1"


def test_neighbours_by_training_flops_without_a_benchmark(synthetic):
    root, _, _, _, _ = synthetic
    report = frontier.build_frontier(root / "artefacts", root / "data" / "raw" / "test.de",
                                     n_samples=50)
    comp = {p["config"]: p for p in report["points"]}["lightconv"]["comparisons"]
    # 0.09 GFLOPs: dearer than the 1+1 Transformer (0.05), cheaper than the 3+3 one (0.10)
    assert comp["slower_transformer"]["against"] == "baseline"
    assert comp["faster_transformer"]["against"] == "baseline_1x1"
    assert report["length_buckets"] is None and "training GFLOPs" in report["neighbour_axis"]


def test_length_buckets_rescore_the_sentences_of_each_bucket(synthetic):
    _, refs, sources, hyps, report = synthetic
    entries = {e["config"]: e for e in report["length_buckets"]}
    # default: every 1+1 and 3+3 point that ran
    assert set(entries) == {"baseline", "contextpool", "lightconv", "baseline_1x1", "contextpool_1x1"}
    rows = entries["contextpool_1x1"]["rows"]
    assert [r["bucket"] for r in rows] == ["1-10", "11-15", "16-20", "> 20"]
    assert sum(r["sentences"] for r in rows) == len(refs)
    idx = [i for i, s in enumerate(sources) if 11 <= len(s.split()) <= 15]
    assert rows[1]["sentences"] == len(idx)
    scores = [bleu([hyps[f"contextpool_1x1_s{s}"][i] for i in idx], [refs[i] for i in idx]) for s in (2, 3)]
    assert rows[1]["bleu_mean_sd"][0] == pytest.approx(statistics.mean(scores))
    base = [bleu([hyps[f"baseline_1x1_s{s}"][i] for i in idx], [refs[i] for i in idx]) for s in (2, 3)]
    assert rows[1]["pooled_bootstrap"]["delta"] == pytest.approx(statistics.mean(scores) - statistics.mean(base))
    assert "| `contextpool_1x1` (1+1; seeds 2,3 (1 missing)) | 11-15 |" in frontier.render(report)


def test_a_point_whose_seeds_trained_in_two_precisions_is_flagged(synthetic, tmp_path):
    """Every seed's command.txt counts, not only the first: one bf16 seed among fp32 ones marks
    the point and the report MIXED."""
    root, _, _, _, _ = synthetic
    artefacts = tmp_path / "artefacts"
    shutil.copytree(root / "artefacts", artefacts)
    command = artefacts / "contextpool_s2" / "command.txt"
    command.write_text(command.read_text() + " --task translation_bf16 --bf16\n")
    report = frontier.build_frontier(artefacts, root / "data" / "raw" / "test.de", n_samples=20)
    points = {p["config"]: p for p in report["points"]}
    assert points["contextpool"]["precision"] == "bf16+fp32"
    assert points["baseline"]["precision"] == "fp32"
    assert report["precisions"] == ["bf16", "fp32"]
    assert "(MIXED: do not draw one figure from them; bf16+fp32: contextpool; fp32: " in frontier.render(report)


def test_min_detectable_difference_has_the_stated_power():
    """Simulated seed t-tests at the computed difference reject 80 % of the time."""
    sd, n = 0.54, 3
    delta = frontier.min_detectable_difference(sd, n)
    rng = np.random.default_rng(0)
    draws = rng.normal(delta, sd, size=(40000, n))
    p = stats.ttest_1samp(draws, 0.0, axis=1).pvalue
    assert np.mean(p < 0.05) == pytest.approx(0.8, abs=0.01)
    # many seeds: the normal approximation (z_0.975 + z_0.8) sd / sqrt(n)
    assert frontier.min_detectable_difference(1.0, 400) == pytest.approx(
        (stats.norm.ppf(0.975) + stats.norm.ppf(0.8)) / 20, rel=0.01)
    with pytest.raises(ValueError):
        frontier.min_detectable_difference(0.5, 1)


def test_report_states_the_detectable_difference(synthetic):
    _, refs, _, hyps, report = synthetic
    deltas = [bleu(hyps[f"contextpool_s{s}"], refs) - bleu(hyps[f"baseline_s{s}"], refs) for s in (1, 2, 3)]
    mde = report["min_detectable_difference"]
    assert mde["sd"] == pytest.approx(statistics.stdev(deltas))
    assert mde["bleu"] == pytest.approx(frontier.min_detectable_difference(statistics.stdev(deltas), 3))
    assert "Smallest difference three seeds can detect" in frontier.render(report)


def test_cli_writes_the_report_and_keeps_an_existing_one(synthetic, tmp_path):
    root, _, _, _, _ = synthetic
    costs = tmp_path / "costs"
    costs.mkdir()
    (costs / "baseline.json").write_text(json.dumps({
        "train_flops_per_target_token": 1.5e8, "decode_flops_per_output_token": 6e7,
        "decode_method": "beam 4, every output forced to 14 tokens + EOS (min_len = max_len)"}))
    cmd = [os.path.join(os.path.dirname(sys.executable), "cpmt-study"), "frontier",
           "--artefacts", str(root / "artefacts"), "--data", str(root / "data"),
           "--benchmark", str(root / "bench.json"), "--benchmark-precision", "bf16",
           "--costs", str(costs), "--bucket-points", "contextpool_1x1,dynamicconv",
           "--bootstrap-samples", "50", "--out", str(tmp_path / "out")]
    out = subprocess.run(cmd, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    result = json.loads((tmp_path / "out" / "frontier.json").read_text())
    points = {p["config"]: p for p in result["points"]}
    assert points["baseline"]["cost"]["train_gflops"] == pytest.approx(0.15)  # --costs wins
    assert points["baseline"]["speed"]["wps"] == 2000  # the bf16 rows
    assert [e["config"] for e in result["length_buckets"]] == ["contextpool_1x1", "dynamicconv"]
    text = (tmp_path / "out" / "frontier.md").read_text()
    assert "| `dynamicconv` | not run |" in text and "measured in bf16, the runs trained in fp32" in text
    for png in ("frontier_train.png", "frontier_decode.png"):
        assert (tmp_path / "out" / png).stat().st_size > 1000
    again = subprocess.run(cmd, capture_output=True, text=True)
    assert again.returncode == 2 and "frontier.md: exists (--force" in again.stderr


def test_a_bad_layer_count_in_a_command_file_names_the_file(tmp_path):
    """--encoder-layers that is not a number: a StudyError naming the command.txt (before: an
    uncaught ValueError)."""
    command = tmp_path / "command.txt"
    command.write_text("fairseq-train data/bin --encoder-layers three --decoder-layers 2\n")
    with pytest.raises(study.StudyError, match=rf"^{command}: --encoder-layers 'three' is not"):
        frontier.layers_of(command, ["--encoder-layers", "2", "--decoder-layers", "2"])
    command.write_text("fairseq-train data/bin --encoder-layers 3\n")  # the table gives the rest
    assert frontier.layers_of(command, ["--encoder-layers", "2", "--decoder-layers", "1"]) == (3, 1)
