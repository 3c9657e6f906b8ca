"""scripts/train.sh --tensorboard: fairseq's TensorBoard logging works out of the box (tensorboardX
is installed and pinned), and fairseq no longer asks for it."""

import os
import subprocess

import pytest

from helpers import binarize, cli_env, write_reversal_corpus

pytestmark = pytest.mark.slow

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_train_sh_writes_tensorboard_events(tmp_path):
    write_reversal_corpus(tmp_path, {"train": 40, "valid": 16}, words="abcdef", lengths=(2, 6))
    binarize(tmp_path)
    run = tmp_path / "run"
    result = subprocess.run(
        ["bash", os.path.join(REPO, "scripts", "train.sh"), "--data", "data-bin", "--arch",
         "transformer_tiny", "--run-dir", str(run), "--cpu", "--max-tokens", "200",
         "--max-update", "4", "--tensorboard", "--", "--log-interval", "1", "--no-save",
         "--num-workers", "0"],
        cwd=tmp_path, env=cli_env(), capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    events = {p.parent.name for p in (run / "tensorboard").rglob("events.out.tfevents.*")}
    assert {"train", "train_inner", "valid"} <= events
    assert "Please install tensorboardX" not in result.stdout + result.stderr
