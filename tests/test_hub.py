"""README's "Use from Python" snippet (fairseq's hub interface) on checkpoints written by
scripts/train.sh, run as written in a fresh interpreter; and its note that fairseq-generate needs
``--user-dir fairseq_plugins`` even for a plain Transformer trained by train.sh (issue 25, item 10)."""

import os
import random
import re
import subprocess
import sys
from pathlib import Path

import pytest

from helpers import BIN, cli_env

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[1]
WORDS = ["dog", "cat", "runs", "sits", "on", "the", "beach", "mat", "a", "red", "big", "."]


def readme_snippet() -> str:
    """The indented code block of README's "Use from Python" section."""
    section = (REPO / "README.md").read_text(encoding="utf-8").split("## Use from Python", 1)[1]
    section = section.split("\n## ", 1)[0]
    block = re.search(r"\n\n((?: {4}.*\n|\n)+)", section).group(1)
    return "\n".join(line[4:] for line in block.splitlines()).strip() + "\n"


def run(cmd, cwd, check=True):
    proc = subprocess.run(cmd, cwd=cwd, env=cli_env(), capture_output=True, text=True,
                          timeout=600)
    if check:
        assert proc.returncode == 0, f"{cmd[:2]} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    return proc


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    """The README's layout: data/mine (cpmt-prepare-corpus), runs/cp and runs/base
    (scripts/train.sh, a few updates each), fairseq_plugins beside them."""
    from contextpool_mt import corpus

    root = tmp_path_factory.mktemp("hub")
    rng = random.Random(3)
    source = root / "input"
    source.mkdir()
    for split, n in (("train", 120), ("valid", 8), ("test", 4)):
        lines = [" ".join(rng.choice(WORDS) for _ in range(rng.randint(2, 7))) for _ in range(n)]
        (source / f"{split}.en").write_text("".join(l + "\n" for l in lines), encoding="utf-8")
        (source / f"{split}.de").write_text("".join(" ".join(reversed(l.split())) + "\n"
                                                    for l in lines), encoding="utf-8")
    assert corpus.main(["--input", str(source), "--src", "en", "--tgt", "de", "--out",
                        str(root / "data" / "mine"), "--vocab-size", "40", "--max-len", "0",
                        "--ratio", "0", "--workers", "1"]) == 0
    for run_name, arch in (("cp", "contextpool_transformer_tiny"), ("base", "transformer_tiny")):
        run(["bash", str(REPO / "scripts" / "train.sh"), "--data", "data/mine/bin", "--arch", arch,
             "--run-dir", f"runs/{run_name}", "--cpu", "--max-tokens", "200", "--max-update", "3",
             "--warmup", "2", "--", "--num-workers", "0"], root)
    (root / "fairseq_plugins").symlink_to(REPO / "fairseq_plugins")
    return root


def test_readme_hub_snippet_translates_a_train_sh_checkpoint(root):
    snippet = readme_snippet()
    assert "user_dir=" in snippet and "runs/cp/checkpoints" in snippet
    check = ("\nfrom fairseq_plugins.modules import ContextPool\n"
             "print('pools:', sum(isinstance(m, ContextPool) for m in model.models[0].modules()))\n")
    # a fresh interpreter that has not imported the plugin: user_dir must do it
    proc = run([sys.executable, "-c", snippet + check], root)
    lines = proc.stdout.strip().splitlines()
    assert lines[-1] == "pools: 4", proc.stdout  # the ContextPool model, 2 + 2 layers
    assert lines[-2].strip(), "empty translation"


def test_fairseq_generate_needs_the_user_dir_even_for_a_plain_transformer(root):
    generate = [os.path.join(BIN, "fairseq-generate"), "data/mine/bin", "--path",
                "runs/base/checkpoints/checkpoint_last.pt", "--beam", "2", "--cpu",
                "--max-tokens", "500", "--required-batch-size-multiple", "1"]
    without = run(generate, root, check=False)
    assert without.returncode != 0
    assert "Unsupported global: GLOBAL argparse.Namespace" in without.stderr  # the reason given
    with_user_dir = run(generate + ["--user-dir", "fairseq_plugins"], root)
    assert sum(l.startswith("H-") for l in with_user_dir.stdout.splitlines()) == 4
