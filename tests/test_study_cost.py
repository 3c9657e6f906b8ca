"""cpmt-study cost: decoding is counted on outputs forced to one length, so equal architectures
count equal FLOPs whatever their weights; a run's command.txt is enough to count it."""

import json
import os
import shutil
import subprocess
import sys

import pytest
import torch

from contextpool_mt import study
from helpers import binarize, write_reversal_corpus

SMALL = ("--encoder-layers 1 --decoder-layers 1 --encoder-embed-dim 16 --decoder-embed-dim 16 "
         "--encoder-ffn-embed-dim 32 --decoder-ffn-embed-dim 32 --encoder-attention-heads 2 "
         "--decoder-attention-heads 2")
COMMANDS = {
    "contextpool": "contextpool_transformer_tiny",
    "lightconv": "lightconv_iwslt_de_en --encoder-kernel-size-list [3] --decoder-kernel-size-list [3] "
                 "--encoder-conv-type lightweight --decoder-conv-type lightweight",
}


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    """DATA/bin with train, valid and test splits, and each model's command.txt as a study run
    exports it (a fairseq-train line of another machine: other data and plugin paths)."""
    root = tmp_path_factory.mktemp("cost")
    write_reversal_corpus(root, {"train": 40, "valid": 5, "test": 12})
    binarize(root, splits=("train", "valid", "test"))
    (root / "data").mkdir()
    shutil.move(str(root / "data-bin"), str(root / "data" / "bin"))
    for name, arch in COMMANDS.items():
        (root / f"{name}.txt").write_text(
            "fairseq-train /elsewhere/bin --user-dir /elsewhere/code/fairseq_plugins --arch "
            f"{arch} --share-all-embeddings --seed 1 --save-dir /elsewhere/{name}/checkpoints "
            f"--task translation_bf16 --cpu {SMALL} --dropout 0.1\n")
    return root


def count(corpus, name, seed, **kwargs):
    torch.manual_seed(seed)
    model, task = study.model_from_command(corpus / f"{name}.txt", corpus / "data" / "bin")
    return model, study.count_cost(model, task, **kwargs)


@pytest.mark.parametrize("name", list(COMMANDS))
def test_equal_architectures_count_equal_flops_whatever_their_weights(corpus, name):
    model_a, a = count(corpus, name, seed=1)
    model_b, b = count(corpus, name, seed=2)
    assert not torch.equal(next(model_a.parameters()), next(model_b.parameters()))
    for key in ("train_flops_per_target_token", "decode_flops_per_output_token", "params"):
        assert a[key] == b[key] > 0, key
    # forced to the mean reference length of the counted sentences (12 here), EOS included
    length = round(a["train_target_tokens"] / a["sentences"]) - 1
    assert a["sentences"] == 12 and a["decode_forced_length"] == length
    assert a["decode_output_tokens"] == 12 * (length + 1)
    assert "forced to" in a["decode_method"]


def test_the_count_per_token_depends_on_the_output_length(corpus):
    """The encoder's FLOPs are shared by more tokens and attention runs over a longer prefix:
    decoding FLOPs per output token change with the length, which is why every model is counted
    at the same one (and why counting each model's own hypotheses made equal models differ)."""
    _, short = count(corpus, "contextpool", seed=1, decode_length=3)
    _, long = count(corpus, "contextpool", seed=1, decode_length=12)
    assert long["decode_flops_per_output_token"] != short["decode_flops_per_output_token"]
    assert (short["decode_output_tokens"], long["decode_output_tokens"]) == (12 * 4, 12 * 13)
    assert short["train_flops_per_target_token"] == long["train_flops_per_target_token"]


def test_cli_counts_a_command_and_keeps_an_existing_json(corpus, tmp_path):
    tool = os.path.join(os.path.dirname(sys.executable), "cpmt-study")
    cmd = [tool, "cost", "--command", str(corpus / "lightconv.txt"), "--data", str(corpus / "data"),
           "--decode-length", "5", "--out", str(tmp_path / "lightconv.json")]
    out = subprocess.run(cmd, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr[-2000:]
    result = json.loads((tmp_path / "lightconv.json").read_text())
    assert result["command"].endswith("lightconv.txt") and result["decode_forced_length"] == 5
    _, again = count(corpus, "lightconv", seed=3, decode_length=5)
    assert result["train_flops_per_target_token"] == again["train_flops_per_target_token"]
    out = subprocess.run(cmd, capture_output=True, text=True)
    assert out.returncode == 2 and "lightconv.json: exists (--force to replace it)" in out.stderr
    bad = tmp_path / "bad.txt"
    bad.write_text("python train.py\n")
    out = subprocess.run([tool, "cost", "--command", str(bad), "--data", str(corpus / "data"),
                          "--out", str(tmp_path / "bad.json")], capture_output=True, text=True)
    assert out.returncode == 2 and "bad.txt: its last line is not a fairseq-train command" in out.stderr
