"""--data is DATA/bin for scripts/train.sh (as for fairseq-train) and DATA, the prepared corpus
(bin/, spm/, raw/), for the cpmt-* commands: each side, given the other's folder, says which one
to give in one line, before it reads or writes anything."""

import os
import subprocess
import sys

import pytest

from helpers import cli_env

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = os.path.dirname(sys.executable)


# only stops a hang: a command refusing its --data imports torch and fairseq first, which took
# over 120 s nice'd beside two trainings on a 2-core machine; nothing here is timed
HANG_S = 300


@pytest.fixture
def corpus(tmp_path):
    """The layout cpmt-prepare-corpus writes: DATA/bin/dict.*.txt, DATA/spm, DATA/raw."""
    data = tmp_path / "data"
    for sub in ("bin", "spm", "raw"):
        (data / sub).mkdir(parents=True)
    for lang in ("en", "de"):
        (data / "bin" / f"dict.{lang}.txt").write_text("w1 1\n", encoding="utf-8")
    return data


def test_train_sh_given_the_prepared_corpus_names_its_bin_folder(corpus, tmp_path):
    run_dir = tmp_path / "run"
    proc = subprocess.run(
        ["bash", os.path.join(REPO, "scripts", "train.sh"), "--data", str(corpus),
         "--arch", "transformer_tiny", "--run-dir", str(run_dir), "--cpu"],
        capture_output=True, text=True, env=cli_env(), timeout=HANG_S)
    assert proc.returncode == 2
    assert proc.stderr.count("\n") == 1, proc.stderr  # one line
    assert f"--data {corpus} is a prepared corpus" in proc.stderr
    assert f"give --data {corpus}/bin" in proc.stderr
    assert not run_dir.exists()


@pytest.mark.parametrize("command", [
    ["{bin}/cpmt-evaluate", "--checkpoint", "{tmp}/checkpoint_best.pt", "--out", "{tmp}/eval"],
    ["{bin}/cpmt-compare", "--run", "base={tmp}/run", "--out", "{tmp}/report"],
    ["{bin}/cpmt-inspect-pools", "--checkpoint", "{tmp}/checkpoint_best.pt", "--out", "{tmp}/pools"],
    ["{bin}/cpmt-study", "cost", "--command", "{tmp}/command.txt", "--out", "{tmp}/cost.json"],
    ["{bin}/cpmt-study", "report", "--artefacts", "{tmp}/artefacts", "--out", "{tmp}/report"],
    ["{bin}/cpmt-study", "frontier", "--artefacts", "{tmp}/artefacts", "--out", "{tmp}/frontier"],
    ["bash", "{repo}/scripts/run_comparison.sh", "--out", "{tmp}/comparison", "--epochs", "1",
     "--run", "base=transformer_tiny"],
], ids=lambda command: " ".join(os.path.basename(arg) for arg in command[:2]))
def test_cpmt_commands_given_the_bin_folder_name_the_corpus_folder(corpus, tmp_path, command):
    argv = [arg.format(bin=BIN, repo=REPO, tmp=tmp_path) for arg in command]
    (tmp_path / "artefacts").mkdir()  # study artefacts that exist: --data is what is wrong
    proc = subprocess.run(argv + ["--data", str(corpus / "bin")], capture_output=True, text=True,
                          env=cli_env(), timeout=HANG_S)
    assert proc.returncode != 0
    error = proc.stderr.strip()
    assert "\n" not in error and "Traceback" not in error, error
    assert f"--data {corpus / 'bin'} is the binarised folder" in error
    assert f"give --data {corpus} (the prepared corpus: the folder with bin/, spm/, raw/)" in error
    written = ("eval", "report", "pools", "cost.json", "frontier", "comparison")
    assert not any(path.name in written for path in tmp_path.iterdir())
