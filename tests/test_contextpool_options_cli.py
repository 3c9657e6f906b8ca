"""Issue 24's options (--contextpool-heads, --contextpool-predictor-kernel,
--contextpool-placement) end to end: fairseq-train, fairseq-hydra-train, fairseq-generate, the
hub interface and cpmt-inspect-pools, as a user runs them."""

import json
import os

import pytest
import torch

import fairseq_plugins  # noqa: F401  (registers the model, allowlists checkpoint contents)
from fairseq_plugins.models import ContextPoolTransformerModel
from fairseq_plugins.modules import ContextPool
from helpers import BIN, cli_env, self_attention_inputs, write_reversal_corpus
from reference import reference_predictions

pytestmark = pytest.mark.slow

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
USER_DIR = os.path.join(REPO, "fairseq_plugins")
WORDS = [f"w{i}" for i in range(20)]
TRAIN = ["--share-all-embeddings", "--optimizer", "adam", "--lr", "0.003", "--max-tokens", "500",
         "--max-epoch", "2", "--cpu", "--num-workers", "0", "--seed", "1", "--no-progress-bar"]
HEADS_KERNEL = ["--contextpool-heads", "2", "--contextpool-predictor-kernel", "3",
                "--contextpool-max-size", "4"]


def run(cmd, cwd, check=True):
    import subprocess

    proc = subprocess.run(cmd, cwd=cwd, env=cli_env(), capture_output=True, text=True, timeout=600)
    if check:
        assert proc.returncode == 0, f"{cmd[0]} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    return proc


def tool(name):
    return os.path.join(BIN, name)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """DATA/bin (train, valid, test) and a ContextPool with 2 pools per layer and a predictor
    kernel of 3, trained by fairseq-train for 2 epochs."""
    root = tmp_path_factory.mktemp("options")
    write_reversal_corpus(root, {"train": 200, "valid": 10, "test": 6}, words=WORDS, lengths=(2, 9))
    run([tool("fairseq-preprocess"), "--source-lang", "en", "--target-lang", "de",
         "--trainpref", "train", "--validpref", "valid", "--testpref", "test",
         "--destdir", "data/bin", "--joined-dictionary", "--workers", "1"], root)
    run([tool("fairseq-train"), "data/bin", "--user-dir", USER_DIR, "--arch",
         "contextpool_transformer_tiny", *HEADS_KERNEL, *TRAIN, "--save-dir", "ck"], root)
    return root


def test_fairseq_train_records_the_options_and_their_parameters(trained):
    state = torch.load(trained / "ck" / "checkpoint_last.pt", weights_only=True)
    model_cfg = state["cfg"]["model"]
    assert (model_cfg.contextpool_heads, model_cfg.contextpool_predictor_kernel) == (2, 3)
    assert model_cfg.contextpool_placement == "attention"
    dim = model_cfg.encoder_embed_dim
    sizes = [v for k, v in state["model"].items() if k.endswith(".pool.size_proj.weight")]
    assert len(sizes) == 4 and all(v.shape == (2, 3 * dim) for v in sizes)


def test_hub_interface_translates_as_fairseq_generate(trained):
    """ContextPoolTransformerModel.from_pretrained (fairseq's hub interface) builds the
    model with the checkpoint's options and translates, with beam search and the pools'
    incremental cache, exactly as fairseq-generate does."""
    run([tool("fairseq-generate"), "data/bin", "--user-dir", USER_DIR, "--path",
         "ck/checkpoint_last.pt", "--beam", "4", "--cpu", "--batch-size", "1",
         # fairseq 0.12 drops a last batch smaller than this multiple (issue #5036)
         "--required-batch-size-multiple", "1", "--results-path", "gen"], trained)
    hyps = {}
    for line in (trained / "gen" / "generate-test.txt").read_text().splitlines():
        if line.startswith("H-"):
            key, _, text = line.split("\t")
            hyps[int(key[2:])] = text
    assert len(hyps) == 6
    hub = ContextPoolTransformerModel.from_pretrained(
        str(trained / "ck"), checkpoint_file="checkpoint_last.pt",
        data_name_or_path=str(trained / "data" / "bin"))
    pools = [m for m in hub.models[0].modules() if isinstance(m, ContextPool)]
    assert len(pools) == 4 and all((p.heads, p.predictor_kernel) == (2, 3) for p in pools)
    sources = (trained / "test.en").read_text().splitlines()
    # fairseq-generate numbers the test set in its binarised order, which is the file's
    assert [hub.translate(sources[i], beam=4) for i in sorted(hyps)] == [hyps[i] for i in sorted(hyps)]


def test_inspect_pools_reports_sizes_per_head(trained):
    out = run([tool("cpmt-inspect-pools"), "--data", "data", "--checkpoint",
               "ck/checkpoint_last.pt", "--out", "report", "--sentence", "1"], trained)
    assert "per head" in out.stdout
    result = json.loads((trained / "report" / "checkpoint_last" / "pools.json").read_text())
    expected = _sizes_per_head(trained)
    assert {(l["side"], l["layer"]) for l in result["layers"]} == set(expected)
    for layer in result["layers"]:
        want = expected[(layer["side"], layer["layer"])]  # tokens x 2
        assert layer["heads"] == 2 and len(layer["size_by_head"]) == 2
        for head, stats in enumerate(layer["size_by_head"]):
            assert stats["count"] == want.size(0)
            assert stats["mean"] == pytest.approx(float(want[:, head].mean()), abs=1e-5)
        assert layer["size"]["mean"] == pytest.approx(float(want.mean()), abs=1e-5)
    shown = result["sentence"]["layers"]
    assert sorted((l["side"], l["layer"], l["head"]) for l in shown) == sorted(
        (side, index, head) for side, index in expected for head in (0, 1))


def _sizes_per_head(root):
    """s = 2 sigma of every token and head, from the self-attention inputs of each test
    sentence (alone, no padding) and the float64 loop reference of the predictors."""
    from fairseq import checkpoint_utils

    models, _, task = checkpoint_utils.load_model_ensemble_and_task(
        [str(root / "ck" / "checkpoint_last.pt")], arg_overrides={"data": str(root / "data" / "bin")})
    model = models[0].eval()
    task.load_dataset("test")
    dataset = task.dataset("test")
    sizes = {}
    for i in range(len(dataset)):
        captured = self_attention_inputs(model, dataset.collater([dataset[i]])["net_input"])
        for (side, index), x in captured.items():
            pool = getattr(model, side).layers[index].self_attn.pool
            with torch.no_grad():
                _, sigma = reference_predictions(pool, x)  # [batch][head][position]
            per_token = torch.tensor([[float(2 * sigma[0][h][j]) for h in range(pool.heads)]
                                      for j in range(x.size(0))])
            sizes.setdefault((side, index), []).append(per_token)
    return {key: torch.cat(value) for key, value in sizes.items()}


def test_hydra_train_with_stream_placement(trained):
    """The options reach the model under fairseq-hydra-train like the existing ones; a stream
    model pools in its layers (no pooled self-attention) and generates."""
    save = trained / "ck_stream"
    run([tool("fairseq-hydra-train"), "--config-dir", os.path.join(REPO, "configs"),
         "--config-name", "contextpool_wmt_en_de", f"task.data={trained / 'data' / 'bin'}",
         f"checkpoint.save_dir={save}", f"hydra.run.dir={trained / 'hydra'}",
         "model._name=contextpool_transformer_tiny", "model.contextpool_max_size=3",
         "model.contextpool_placement=stream", "model.contextpool_predictor_kernel=2",
         "common.cpu=true", "optimization.max_update=4", "dataset.max_tokens=500",
         "lr_scheduler.warmup_updates=2", "dataset.num_workers=0"], REPO)
    state = torch.load(save / "checkpoint_last.pt", weights_only=True)
    assert state["cfg"]["model"]["contextpool_placement"] == "stream"
    pools = sorted(k for k in state["model"] if k.endswith(".pool.size_proj.weight"))
    assert pools == [f"{side}.layers.{i}.pool.size_proj.weight"
                     for side in ("decoder", "encoder") for i in (0, 1)]
    assert state["model"][pools[0]].shape == (1, 2 * 64)
    out = run([tool("fairseq-generate"), "data/bin", "--user-dir", USER_DIR, "--path",
               str(save / "checkpoint_last.pt"), "--beam", "2", "--cpu", "--max-tokens", "500",
               "--required-batch-size-multiple", "1"], trained)
    assert sum(line.startswith("H-") for line in out.stdout.splitlines()) == 6


@pytest.mark.parametrize("options, message", [
    (["--contextpool-placement", "stream", "--contextpool-inputs", "kv"],
     "argument --contextpool-placement: stream pools the layer input itself"),
    (["--contextpool-heads", "3"],
     "argument --contextpool-heads: 3 must divide --encoder-attention-heads 2"),
])
def test_fairseq_train_refuses_contradicting_options(trained, tmp_path, options, message):
    """A usage error (one line, exit code 2, no traceback), before any data is read."""
    proc = run([tool("fairseq-train"), "data/bin", "--user-dir", USER_DIR, "--arch",
                "contextpool_transformer_tiny", *options, *TRAIN, "--save-dir", str(tmp_path)],
               trained, check=False)
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert "Traceback" not in proc.stderr
    assert proc.stderr.strip().splitlines()[-1].startswith(f"fairseq-train: error: {message}")
    assert not (tmp_path / "checkpoint_last.pt").exists()
