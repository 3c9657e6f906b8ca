"""run_comparison.sh with any registered fairseq architecture: fairseq's LightConv and
DynamicConv (pure PyTorch on CPU) beside the Transformer and ContextPool, through the same
training, averaging, scoring and report."""

import json
import os
import subprocess
import sys

import pytest

from helpers import BIN, cli_env

pytestmark = pytest.mark.slow

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CONV = ("lightconv_iwslt_de_en --encoder-layers 1 --decoder-layers 1 --encoder-embed-dim 64 "
        "--decoder-embed-dim 64 --encoder-ffn-embed-dim 128 --decoder-ffn-embed-dim 128 "
        "--encoder-kernel-size-list [3] --decoder-kernel-size-list [3] "
        "--encoder-attention-heads 2 --decoder-attention-heads 2")


def test_lightconv_and_dynamicconv_run_through_the_comparison(tmp_path):
    env = cli_env()
    run = lambda cmd: subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True,  # noqa: E731
                                     text=True, timeout=900)
    out = run([os.path.join(BIN, "cpmt-make-demo-corpus"),
               "--out", "in", "--train", "300", "--valid", "20", "--test", "20"])
    assert out.returncode == 0, out.stderr
    out = run([os.path.join(BIN, "cpmt-prepare-corpus"), "--input", "in",
               "--src", "en", "--tgt", "de", "--out", "data", "--vocab-size", "200", "--workers", "1"])
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-2000:]
    out = run(["bash", os.path.join(REPO, "scripts", "run_comparison.sh"), "--data", "data",
               "--out", "runs", "--epochs", "1", "--avg", "1",
               "--run", "baseline=transformer_tiny",
               "--run", "contextpool=contextpool_transformer_tiny",
               "--run", f"lightconv={CONV} --encoder-conv-type lightweight --decoder-conv-type lightweight",
               "--run", f"dynamicconv={CONV} --encoder-conv-type dynamic --decoder-conv-type dynamic",
               "--", "--cpu", "--max-tokens", "2000", "--warmup", "10"])
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    report = json.loads((tmp_path / "runs" / "report" / "report.json").read_text())
    runs = report["runs"]
    assert list(runs) == ["baseline", "contextpool", "lightconv", "dynamicconv"]
    arch = {name: r["training"]["arch"] for name, r in runs.items()}
    assert arch["lightconv"] == arch["dynamicconv"] == "lightconv_iwslt_de_en"
    params = {name: r["training"]["params"] for name, r in runs.items()}
    assert params["dynamicconv"] > params["lightconv"]  # dynamic predicts its kernels
    log = (tmp_path / "runs" / "lightconv" / "train.log").read_text()
    assert "LightweightConv" in log and "DynamicConv" in (tmp_path / "runs" / "dynamicconv" / "train.log").read_text()
    for name in runs:
        assert name in report["significance"]["comparisons"] or name == "baseline"
    assert "| lightconv |" in (tmp_path / "runs" / "report" / "report.md").read_text()
