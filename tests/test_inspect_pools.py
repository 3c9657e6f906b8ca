"""cpmt-inspect-pools on a tiny trained ContextPool: the sizes and weights it reports are
the model's (recomputed here from the checkpoint's parameters, term by term), its heatmaps hold
the real coefficients, and bad inputs stop with a message."""

import json
import os
import subprocess

import pytest
import torch
from fairseq import checkpoint_utils

import fairseq_plugins  # noqa: F401  (registers the model)
from helpers import BIN, cli_env, self_attention_inputs, write_reversal_corpus

pytestmark = pytest.mark.slow

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TOOL = os.path.join(BIN, "cpmt-inspect-pools")
WORDS = ["\u2581the", "\u2581cat", "s", "\u2581dog", "ing", ".", ",", "\u2581a", "er", "\u2581sat"]


def run(cmd, cwd):
    return subprocess.run(cmd, cwd=cwd, env=cli_env(), capture_output=True, text=True, timeout=600)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """DATA/bin with train/valid/test and checkpoint1.pt, checkpoint2.pt of a tiny ContextPool."""
    root = tmp_path_factory.mktemp("pools")
    write_reversal_corpus(root, {"train": 200, "valid": 10, "test": 9}, words=WORDS, lengths=(2, 11))
    out = run([os.path.join(BIN, "fairseq-preprocess"), "--source-lang", "en", "--target-lang",
               "de", "--trainpref", "train", "--validpref", "valid", "--testpref", "test",
               "--destdir", "data/bin", "--joined-dictionary", "--workers", "1"], root)
    assert out.returncode == 0, out.stderr[-2000:]
    out = run([os.path.join(BIN, "fairseq-train"), "data/bin", "--user-dir",
               os.path.join(REPO, "fairseq_plugins"), "--arch", "contextpool_transformer_tiny",
               "--contextpool-max-size", "4", "--share-all-embeddings", "--optimizer", "adam",
               "--lr", "0.003", "--max-tokens", "500", "--max-epoch", "2", "--cpu",
               "--num-workers", "0", "--seed", "1", "--save-dir", "ck", "--no-progress-bar"], root)
    assert out.returncode == 0, out.stderr[-3000:]
    return root


def recompute(root, checkpoint):
    """Per (side, layer): s = K sigmoid(W_s x + b_s) and w of every non-pad token, from the
    self-attention input x captured by a pre-hook and the pool's parameters, plus pieces."""
    models, _, task = checkpoint_utils.load_model_ensemble_and_task(
        [str(checkpoint)], arg_overrides={"data": str(root / "data" / "bin")})
    model = models[0].eval()
    task.load_dataset("test")
    dataset = task.dataset("test")
    pad = task.source_dictionary.pad()
    got = {}
    for i in range(len(dataset)):
        sample = dataset.collater([dataset[i]])
        captured = self_attention_inputs(model, sample["net_input"])
        tokens = {"encoder": sample["net_input"]["src_tokens"][0],
                  "decoder": sample["net_input"]["prev_output_tokens"][0]}
        for (side, index), x in captured.items():
            pool = getattr(model, side).layers[index].self_attn.pool
            keep = tokens[side].ne(pad)
            x = x[:, 0][keep].double()
            size = pool.max_size * torch.sigmoid(
                x @ pool.size_proj.weight[0].double() + pool.size_proj.bias[0].double())
            weight = torch.sigmoid(x @ pool.weight_proj.weight[0].double()
                                   + pool.weight_proj.bias[0].double())
            pieces = [task.source_dictionary[t] for t in tokens[side][keep].tolist()]
            entry = got.setdefault((side, index), {"size": [], "weight": [], "pieces": []})
            entry["size"] += size.tolist()
            entry["weight"] += weight.tolist()
            entry["pieces"] += pieces
    return got


def test_reports_the_models_sizes_weights_and_coefficients(trained):
    out = run([TOOL, "--data", "data", "--checkpoint",
               "ck/checkpoint1.pt", "--checkpoint", "ck/checkpoint2.pt", "--out", "report",
               "--sentence", "3"], trained)
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-3000:]
    report = trained / "report"
    for name in ("checkpoint1", "checkpoint2"):
        for png in ("sizes.png", "weights.png", "sentence.png"):
            assert (report / name / png).stat().st_size > 1000, (name, png)
    assert (report / "sizes_over_training.png").is_file()
    summary = json.loads((report / "pools.json").read_text())
    assert [c["num_updates"] for c in summary["checkpoints"]] == sorted(
        c["num_updates"] for c in summary["checkpoints"])

    result = json.loads((report / "checkpoint2" / "pools.json").read_text())
    expected = recompute(trained, trained / "ck" / "checkpoint2.pt")
    assert {(l["side"], l["layer"]) for l in result["layers"]} == set(expected)
    for layer in result["layers"]:
        want = expected[(layer["side"], layer["layer"])]
        sizes, weights = torch.tensor(want["size"]), torch.tensor(want["weight"])
        assert layer["size"]["count"] == len(sizes) == layer["weight"]["count"]
        assert layer["size"]["mean"] == pytest.approx(float(sizes.mean()), abs=1e-5)
        assert layer["size"]["quantiles"]["50"] == pytest.approx(float(sizes.median()), abs=1e-4)
        assert layer["weight"]["mean"] == pytest.approx(float(weights.mean()), abs=1e-5)
        punct = [s for s, p in zip(want["size"], want["pieces"]) if p in (".", ",")]
        initial = [s for s, p in zip(want["size"], want["pieces"]) if p.startswith("\u2581")]
        by = layer["mean_size_by_piece"]
        assert by["punctuation"] == pytest.approx(sum(punct) / len(punct), abs=1e-5)
        assert by["word_initial"] == pytest.approx(sum(initial) / len(initial), abs=1e-5)
        assert 0 < layer["size"]["quantiles"]["95"] <= layer["max_size"] == 4

    source = (trained / "test.en").read_text().splitlines()[3].split()
    shown = {(l["side"], l["layer"]): l for l in result["sentence"]["layers"]}
    enc = shown[("encoder", 0)]
    assert enc["pieces"] == source + ["</s>"]
    for (side, _), layer in shown.items():
        a = torch.tensor(layer["coefficients"])
        assert a.shape == (len(layer["pieces"]),) * 2
        assert torch.allclose(a.sum(1), torch.ones(len(a)), atol=1e-6)  # mean: rows sum to 1
        if side == "decoder":
            assert torch.equal(a, a.tril())  # causal
        assert torch.equal(a, a.triu(-4).tril(4))  # max size 4: nothing outside the band


def test_bad_inputs_are_named(trained):
    out = run([TOOL, "--data", "data", "--checkpoint",
               "ck/checkpoint2.pt", "--out", "bad", "--sentence", "99"], trained)
    assert out.returncode == 2 and "--sentence 99: the 'test' split has 9 sentences" in out.stderr
    out = run([TOOL, "--data", "data", "--checkpoint",
               "ck/nothing.pt", "--out", "bad"], trained)
    assert out.returncode == 2 and "ck/nothing.pt: no such checkpoint file" in out.stderr


def test_cost_counts_the_real_models_flops(trained):
    """cpmt-study cost: FLOPs per token from FlopCounterMode on the checkpoint's model."""
    out = run([os.path.join(BIN, "cpmt-study"), "cost",
               "--checkpoint", "ck/checkpoint2.pt", "--data", "data", "--out", "cost.json"], trained)
    assert out.returncode == 0, out.stderr[-3000:]
    cost = json.loads((trained / "cost.json").read_text())
    state = torch.load(trained / "ck" / "checkpoint2.pt", weights_only=True)
    # shared embeddings: the decoder's output projection is the embedding, counted once
    assert cost["params"] == sum(v.numel() for k, v in state["model"].items()
                                 if k not in ("decoder.output_projection.weight",
                                              "decoder.embed_tokens.weight")
                                 and not k.endswith(("_float_tensor", ".version")))
    # a training step is forward + backward: at least the 2 FLOPs per weight per token of the
    # forward matrix products, and more than the forward pass alone
    assert cost["train_flops_per_target_token"] > 2 * 2 * 64 * 64
    assert cost["decode_flops_per_output_token"] > 0 and cost["decode_output_tokens"] > 0
