"""The main command, end to end: scripts/run_demo.sh on a tiny synthetic corpus.

corpus -> cpmt-prepare-corpus -> run_comparison.sh (train.sh x 3 -> cpmt-average ->
cpmt-evaluate -> cpmt-compare). Every artefact is checked, and the report's numbers are
recomputed from the files it names. A second run must redo nothing.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import sacrebleu
import torch

from fairseq_plugins.checkpoint_loading import load_checkpoint

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]
RUNS = ("baseline", "contextpool", "contextpool_fewer")
TEST_PAIRS = 23  # not a multiple of 8: a dropped last batch would show as missing lines
TINY = ["--train-pairs", "400", "--test-pairs", str(TEST_PAIRS), "--vocab-size", "300",
        "--epochs", "2", "--avg", "2", "--dim", "32", "--layers", "2", "--fewer-layers", "1"]


def run_demo(out):
    env = dict(os.environ, PYTHON=sys.executable, OMP_NUM_THREADS="1")
    env["PATH"] = os.path.dirname(sys.executable) + os.pathsep + env["PATH"]
    proc = subprocess.run(["bash", str(ROOT / "scripts" / "run_demo.sh"), "--out", str(out), *TINY],
                          capture_output=True, text=True, env=env, timeout=900)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc.stdout


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    out = tmp_path_factory.mktemp("demo")
    return out, run_demo(out)


def lines(path):
    return Path(path).read_text(encoding="utf-8").splitlines()


def test_binarized_data_and_sentencepiece_model(demo):
    out, _ = demo
    bin_dir = out / "data" / "bin"
    for split in ("train", "valid", "test"):
        for lang in ("en", "de"):
            assert (bin_dir / f"{split}.en-de.{lang}.bin").stat().st_size > 0
            assert (bin_dir / f"{split}.en-de.{lang}.idx").is_file()
    assert (bin_dir / "dict.en.txt").read_bytes() == (bin_dir / "dict.de.txt").read_bytes()
    assert (out / "data" / "spm" / "spm.model").is_file()
    assert len(lines(out / "data" / "raw" / "test.de")) == TEST_PAIRS


def test_each_run_has_its_epoch_checkpoints(demo):
    out, stdout = demo
    for name in RUNS:
        ckpts = out / name / "checkpoints"
        for epoch in (1, 2):
            state = load_checkpoint(str(ckpts / f"checkpoint{epoch}.pt"))
            # saved at the end of the epoch: the iterator points at the start of the next one
            assert state["extra_state"]["train_iterator"]["epoch"] == epoch + 1
            assert state["extra_state"]["train_iterator"]["iterations_in_epoch"] == 0
        assert f"{name}: epoch 2 loss" in stdout  # progress shown per epoch


def test_fewer_layers_run_has_fewer_encoder_layers(demo):
    out, _ = demo
    def encoder_layers(name):
        model = load_checkpoint(str(out / name / "checkpoints" / "checkpoint2.pt"))["model"]
        return {k.split(".")[2] for k in model if k.startswith("encoder.layers.")}
    assert len(encoder_layers("contextpool")) == 2
    assert len(encoder_layers("contextpool_fewer")) == 1
    model = load_checkpoint(str(out / "contextpool" / "checkpoints" / "checkpoint2.pt"))["model"]
    assert any(".pool." in k for k in model), "the ContextPool run has no pooling parameters"


def test_averaged_checkpoint_is_the_mean_of_its_inputs(demo):
    out, _ = demo
    for name in RUNS:
        ckpts = out / name / "checkpoints"
        avg = load_checkpoint(str(ckpts / "average.pt"))["model"]
        inputs = [load_checkpoint(str(ckpts / f"checkpoint{e}.pt"))["model"] for e in (1, 2)]
        assert set(avg) == set(inputs[0])
        differs = [False, False]
        for key, value in avg.items():
            if not value.is_floating_point():
                continue
            mean = (inputs[0][key].double() + inputs[1][key].double()) / 2
            torch.testing.assert_close(value.double(), mean, rtol=1e-5, atol=1e-6)
            for i in (0, 1):
                differs[i] |= not torch.equal(value, inputs[i][key])
        assert all(differs), f"{name}: the average equals one of its inputs"


def test_hypotheses_and_scores_match_a_recomputation(demo):
    out, _ = demo
    refs = lines(out / "data" / "raw" / "test.de")
    for name in RUNS:
        for eval_name in ("avg", "last"):
            eval_dir = out / name / "eval" / eval_name
            hyps = lines(eval_dir / "hyp.txt")
            assert len(hyps) == len(refs)
            scores = json.loads((eval_dir / "scores.json").read_text(encoding="utf-8"))
            bleu = sacrebleu.corpus_bleu(hyps, [refs])
            assert scores["bleu_detok"]["score"] == pytest.approx(bleu.score, abs=1e-9)
            chrf = sacrebleu.corpus_chrf(hyps, [refs])
            assert scores["chrf"]["score"] == pytest.approx(chrf.score, abs=1e-9)


def test_report_numbers_match_the_scores_and_the_report_is_announced(demo):
    out, stdout = demo
    report_dir = out / "report"
    report = json.loads((report_dir / "report.json").read_text(encoding="utf-8"))
    assert list(report["runs"]) == list(RUNS) and report["baseline"] == "baseline"
    refs = lines(out / "data" / "raw" / "test.de")
    for name in RUNS:
        main = report["runs"][name]["main_eval"]
        assert report["runs"][name]["main_eval_name"] == "avg"
        hyps = lines(out / name / "eval" / "avg" / "hyp.txt")
        assert main["bleu_detok"] == pytest.approx(sacrebleu.corpus_bleu(hyps, [refs]).score, abs=1e-9)
        assert report["runs"][name]["training"]["num_epochs"] == 2
    markdown = (report_dir / "report.md").read_text(encoding="utf-8")
    for name in RUNS:
        assert name in markdown
    assert list(report_dir.glob("*.png")), "the report has no plots"
    assert f"Report: {out}/report/report.md" in stdout


def test_second_run_redoes_nothing(demo):
    out, _ = demo
    before = {p: p.stat().st_mtime_ns for p in out.rglob("*.pt")}
    stdout = run_demo(out)
    for name in RUNS:
        assert f"{name}: trained" in stdout
        assert f"{name}/avg: scored" in stdout and f"{name}/last: scored" in stdout
    assert {p: p.stat().st_mtime_ns for p in out.rglob("*.pt")} == before
