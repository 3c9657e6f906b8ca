"""Two CPU runs of scripts/train.sh with the same seed give the same checkpoint, bit for bit,
and fairseq-generate the same translations and BLEU line.

Dropout is on (0.1): fairseq re-seeds torch's RNG at every update with seed + num_updates,
and batches are formed and shuffled under numpy seeds from --seed and the epoch. Both runs
and both decodings use one OpenMP thread each (OMP_NUM_THREADS=1); the two pairs run at the
same time.
"""

import os
import re
import subprocess

import pytest
import torch

import fairseq_plugins  # noqa: F401  (allowlists what fairseq checkpoints hold)
from fairseq_plugins.checkpoint_loading import load_checkpoint
from helpers import BIN, binarize, cli_env, write_reversal_corpus

pytestmark = pytest.mark.slow

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
NUM_TEST = 12


def run_together(commands, cwd, timeout=300):
    procs = [subprocess.Popen(cmd, cwd=cwd, env=cli_env(), stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True) for cmd in commands]
    outs = []
    try:
        for proc in procs:
            out, _ = proc.communicate(timeout=timeout)
            assert proc.returncode == 0, f"{' '.join(proc.args)} failed:\n{out[-4000:]}"
            outs.append(out)
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    return outs


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Trains twice with the same command, then decodes the test set with each checkpoint."""
    root = tmp_path_factory.mktemp("determinism")
    write_reversal_corpus(root, {"train": 200, "valid": 16, "test": NUM_TEST},
                          words=[f"w{i}" for i in range(24)], lengths=(2, 7))
    binarize(root, splits=("train", "valid", "test"))

    run_dirs = [root / "run_a", root / "run_b"]
    run_together([["bash", os.path.join(REPO, "scripts", "train.sh"), "--data", "data-bin",
                   "--arch", "contextpool_transformer_tiny", "--run-dir", str(d), "--cpu",
                   "--seed", "1", "--max-tokens", "150", "--lr", "0.003", "--warmup", "4",
                   "--max-update", "20", "--", "--num-workers", "0", "--dropout", "0.1"]
                  for d in run_dirs], cwd=root)
    run_together([[os.path.join(BIN, "fairseq-generate"), "data-bin",
                   "--user-dir", os.path.join(REPO, "fairseq_plugins"),
                   "--path", str(d / "checkpoints" / "checkpoint_last.pt"), "--cpu",
                   "--beam", "4", "--batch-size", "8", "--required-batch-size-multiple", "1",
                   "--num-workers", "0", "--results-path", str(d / "gen")]
                  for d in run_dirs], cwd=root)
    return run_dirs


def test_same_seed_same_checkpoint(runs):
    a, b = (load_checkpoint(str(d / "checkpoints" / "checkpoint_last.pt")) for d in runs)
    assert a["optimizer_history"][-1]["num_updates"] == 20
    assert a["cfg"]["model"].dropout == 0.1
    assert a["model"].keys() == b["model"].keys()
    assert any(".pool." in k for k in a["model"])
    for key, value in a["model"].items():
        assert torch.equal(value, b["model"][key]), key
    for idx, state in a["last_optimizer_state"]["state"].items():
        for name, value in state.items():
            assert torch.equal(torch.as_tensor(value),
                               torch.as_tensor(b["last_optimizer_state"]["state"][idx][name]))


def test_same_seed_same_translations_and_bleu(runs):
    results = []
    for d in runs:
        lines = (d / "gen" / "generate-test.txt").read_text().splitlines()
        # every line but the timing summary ("Translated 12 sentences ... in 0.3s ...")
        results.append([l for l in lines if not l.startswith("Translated")])
        assert sum(l.startswith("H-") for l in lines) == NUM_TEST
        assert sum(l.startswith("P-") for l in lines) == NUM_TEST
        assert re.search(r"^Generate test with beam=4: BLEU4 = [0-9.]+", "\n".join(lines), re.M)
    assert results[0] == results[1]
