"""Checkpoints end to end: weights-only loading, resuming, averaging, generating.

A module fixture trains ``contextpool_transformer_tiny`` for 3 epochs on a tiny
random corpus with the real fairseq command-line tools and starts the slow
command-line checks (resume, generate, the averaging CLI) in the background; the
in-process tests run meanwhile and the command-line results are collected last.
"""

import argparse
import os
import random
import shutil
import subprocess
import sys
import types

import pytest
import torch

from contextpool_mt import average as average_checkpoints
import fairseq_plugins  # noqa: F401  (allowlists argparse.Namespace for torch.load)
from fairseq_plugins.checkpoint_loading import CheckpointError, load_checkpoint

pytestmark = pytest.mark.slow

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
USER_DIR = os.path.join(REPO_ROOT, "fairseq_plugins")
BIN = os.path.dirname(sys.executable)
SCRIPT = os.path.join(BIN, "cpmt-average")
NUM_TEST = 10
TRAIN_ARGS = [
    "--user-dir", USER_DIR, "--cpu", "--max-tokens", "500", "--share-all-embeddings",
    "--optimizer", "adam", "--lr", "1e-3", "--seed", "1", "--num-workers", "0",
    "--no-progress-bar", "--log-format", "simple",
]


def tool(name):
    return os.path.join(BIN, name)


def env():
    """The default torch.load (weights-only since torch 2.6) for every subprocess."""
    e = dict(os.environ)
    e.pop("TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD", None)
    e.pop("TORCH_FORCE_WEIGHTS_ONLY_LOAD", None)
    e["OMP_NUM_THREADS"] = "1"
    e["PATH"] = BIN + os.pathsep + e.get("PATH", "")
    return e


def start(cmd, cwd):
    return subprocess.Popen(cmd, cwd=cwd, env=env(), stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)


def finish(proc, timeout=300):
    out, _ = proc.communicate(timeout=timeout)
    assert proc.returncode == 0, f"{' '.join(proc.args)} failed:\n{out[-4000:]}"
    return out


def run(cmd, cwd, timeout=300):
    return finish(start(cmd, cwd), timeout)


def write_corpus(directory, seed=0):
    rng = random.Random(seed)
    vocab = [f"w{i}" for i in range(40)]
    for split, n in (("train", 200), ("valid", 20), ("test", NUM_TEST)):
        with open(os.path.join(directory, f"{split}.en"), "w") as src, \
                open(os.path.join(directory, f"{split}.de"), "w") as tgt:
            for _ in range(n):
                words = [rng.choice(vocab) for _ in range(rng.randint(3, 10))]
                src.write(" ".join(words) + "\n")
                tgt.write(" ".join(reversed(words)) + "\n")


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    """Trains the model, then starts the slow command-line checks in the background
    (fairseq-train resume, fairseq-generate, the averaging CLI on a truncated file) so
    that they run while the in-process tests do; the tests at the end collect them."""
    root = tmp_path_factory.mktemp("checkpoints")
    write_corpus(root)
    run([tool("fairseq-preprocess"), "--source-lang", "en", "--target-lang", "de",
         "--trainpref", "train", "--validpref", "valid", "--testpref", "test",
         "--destdir", "data-bin", "--joined-dictionary", "--workers", "1"], cwd=root)
    # 4 updates an epoch: update checkpoints at 3, 6, 9 (none at an epoch's end)
    run([tool("fairseq-train"), "data-bin", *TRAIN_ARGS, "--arch", "contextpool_transformer_tiny",
         "--max-epoch", "3", "--save-interval-updates", "3", "--save-dir", "cp"], cwd=root)

    cp = root / "cp"
    shutil.copytree(cp, root / "resume")
    assert average_checkpoints.main(["--inputs", str(cp / "checkpoint2.pt"),
                                     str(cp / "checkpoint3.pt"),
                                     "--output", str(root / "avg_gen.pt")]) == 0
    (root / "truncated").mkdir()
    data = (cp / "checkpoint3.pt").read_bytes()
    (root / "truncated" / "checkpoint_broken.pt").write_bytes(data[: len(data) // 2])

    jobs = {
        "resume": start([tool("fairseq-train"), "data-bin", *TRAIN_ARGS,
                         "--arch", "contextpool_transformer_tiny", "--max-epoch", "4",
                         "--save-dir", "resume"], cwd=root),
        # --required-batch-size-multiple 1: with fairseq's default of 8, batch_by_size drops
        # a last batch smaller than 8 (fairseq issue #5036), i.e. test sentences.
        "generate": start([tool("fairseq-generate"), "data-bin", "--user-dir", USER_DIR,
                           "--path", str(root / "avg_gen.pt"), "--cpu", "--beam", "2",
                           "--batch-size", "16", "--num-workers", "0",
                           "--required-batch-size-multiple", "1", "--max-len-b", "20"], cwd=root),
        "truncated": subprocess.Popen(
            [SCRIPT, "--inputs", str(cp / "checkpoint3.pt"),
             str(root / "truncated" / "checkpoint_broken.pt"),
             "--output", str(root / "truncated" / "avg.pt")],
            cwd=root, env=env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True),
    }
    yield types.SimpleNamespace(root=root, jobs=jobs)
    for proc in jobs.values():
        if proc.poll() is None:
            proc.kill()
            proc.communicate()


def model_of(path):
    return load_checkpoint(str(path))["model"]


def quiet(*_args):
    pass


def test_plain_weights_only_load_needs_the_allowlist(run_dir):
    """Without fairseq_plugins torch's default (weights-only) load refuses a fairseq
    checkpoint; with it the same call succeeds."""
    path = str(run_dir.root / "cp" / "checkpoint3.pt")
    probe = (
        "import sys, torch\n"
        "assert 'fairseq_plugins' not in sys.modules and 'fairseq' not in sys.modules\n"
        "for kwargs in ({}, {'weights_only': True}):\n"
        "    try:\n"
        "        torch.load(sys.argv[1], map_location='cpu', **kwargs)\n"
        "    except Exception as err:\n"
        "        print('REFUSED', type(err).__name__, err)\n"
        "    else:\n"
        "        print('LOADED')\n"
    )
    result = subprocess.run([sys.executable, "-c", probe, path], env=env(),
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    lines = [line for line in result.stdout.splitlines() if line.startswith(("REFUSED", "LOADED"))]
    assert len(lines) == 2 and all(line.startswith("REFUSED") for line in lines), result.stdout
    assert "argparse.Namespace" in result.stdout

    state = torch.load(path, map_location="cpu", weights_only=True)  # allowlisted here
    assert state["cfg"]["model"].arch == "contextpool_transformer_tiny"


def test_average_last_two_epoch_checkpoints_is_the_mean(run_dir, capsys):
    root, cp = run_dir.root, run_dir.root / "cp"
    out = root / "avg2.pt"
    rc = average_checkpoints.main(["--inputs", str(cp), "--num-epoch-checkpoints", "2",
                                   "--output", str(out)])
    printed = capsys.readouterr().out
    assert rc == 0
    assert "checkpoint3.pt" in printed and "checkpoint2.pt" in printed
    assert "checkpoint1.pt" not in printed

    avg = torch.load(str(out), map_location="cpu", weights_only=True)
    a, b = model_of(cp / "checkpoint2.pt"), model_of(cp / "checkpoint3.pt")
    assert avg["model"].keys() == a.keys() == b.keys()
    for key, value in avg["model"].items():
        assert value.dtype == a[key].dtype, key
        expected = ((a[key].double() + b[key].double()) / 2).to(value.dtype)
        torch.testing.assert_close(value, expected, rtol=0, atol=0, msg=key)
    for other in (a, b):
        assert any(not torch.equal(avg["model"][k], other[k]) for k in other)

    # the first (newest) checkpoint's config is kept; the optimizer state is not
    assert avg["cfg"]["model"].arch == "contextpool_transformer_tiny"
    assert "last_optimizer_state" not in avg
    assert avg["extra_state"]["averaged_dropped"] == ["last_optimizer_state"]
    # every input is recorded with its own progress, read from the input itself
    members = avg["extra_state"]["averaged_checkpoints"]
    assert [os.path.basename(m["path"]) for m in members] == ["checkpoint3.pt", "checkpoint2.pt"]
    for member in members:
        state = load_checkpoint(member["path"])
        assert member["num_updates"] == state["optimizer_history"][-1]["num_updates"] > 0
        assert member["epoch"] == state["extra_state"]["train_iterator"]["epoch"] - 1
        assert member["mid_epoch"] is False
    assert members[0]["num_updates"] > members[1]["num_updates"]
    assert os.path.getsize(out) < os.path.getsize(cp / "checkpoint3.pt")
    # tied embeddings stay one tensor
    m = avg["model"]
    assert m["encoder.embed_tokens.weight"].data_ptr() == m["decoder.embed_tokens.weight"].data_ptr()
    assert not [f for f in os.listdir(root) if f.endswith(".tmp")]


def test_averaged_checkpoint_loads_as_a_model(run_dir):
    from fairseq import checkpoint_utils

    path = run_dir.root / "avg_gen.pt"
    models, _cfg, _task = checkpoint_utils.load_model_ensemble_and_task(
        [str(path)], arg_overrides={"data": str(run_dir.root / "data-bin")})
    expected = model_of(path)
    assert type(models[0]).__name__ == "ContextPoolTransformerModel"
    for key, value in models[0].state_dict().items():
        assert torch.equal(value, expected[key]), key


def transformer_tiny_checkpoint(contextpool_path, out_path):
    """A transformer_tiny checkpoint as fairseq-train would save it for the same data."""
    from fairseq.data import Dictionary
    from fairseq.models import ARCH_MODEL_REGISTRY

    state = load_checkpoint(str(contextpool_path))
    args = argparse.Namespace(**{k: v for k, v in vars(state["cfg"]["model"]).items()
                                 if not k.startswith("contextpool_")})
    args.arch = "transformer_tiny"
    dictionary = Dictionary.load(str(contextpool_path.parent.parent / "data-bin" / "dict.en.txt"))
    task = types.SimpleNamespace(source_dictionary=dictionary, target_dictionary=dictionary)
    model = ARCH_MODEL_REGISTRY["transformer_tiny"].build_model(args, task)
    state["model"] = model.state_dict()
    state["cfg"] = dict(state["cfg"], model=args)
    torch.save(state, out_path)


def test_different_architectures_are_refused(run_dir, tmp_path, capsys):
    other = tmp_path / "transformer_tiny.pt"
    transformer_tiny_checkpoint(run_dir.root / "cp" / "checkpoint3.pt", other)
    out = tmp_path / "avg.pt"
    rc = average_checkpoints.main(["--inputs", str(run_dir.root / "cp" / "checkpoint3.pt"),
                                   str(other), "--output", str(out)])
    err = capsys.readouterr().err
    assert rc != 0
    assert str(other) in err
    assert "architecture: 'transformer_tiny' here, 'contextpool_transformer_tiny' in the first" in err
    assert "parameters missing here" in err and ".pool." in err
    assert not out.exists()


def test_different_hyperparameters_are_refused_but_training_options_ignored(run_dir, tmp_path):
    cp = run_dir.root / "cp"
    first = load_checkpoint(str(cp / "checkpoint3.pt"))
    second = load_checkpoint(str(cp / "checkpoint2.pt"))
    # training settings may differ between the averaged checkpoints
    for key, value in (("lr", [0.5]), ("seed", 7), ("save_dir", "/elsewhere")):
        setattr(second["cfg"]["model"], key, value)
    relaxed = tmp_path / "relaxed.pt"
    torch.save(second, relaxed)
    paths = [str(cp / "checkpoint3.pt"), str(relaxed)]
    avg = average_checkpoints.average_checkpoints(paths, log=quiet)
    assert avg["cfg"]["model"].lr == first["cfg"]["model"].lr

    # a model hyperparameter may not (same parameter shapes, different model)
    second["cfg"]["model"].contextpool_max_size = 4
    changed = tmp_path / "changed.pt"
    torch.save(second, changed)
    with pytest.raises(average_checkpoints.AverageError) as info:
        average_checkpoints.average_checkpoints([paths[0], str(changed)], log=quiet)
    assert str(changed) in str(info.value)
    assert "contextpool_max_size: 4 here, 8 in the first" in str(info.value)

    # and neither may a parameter's shape
    second = load_checkpoint(str(cp / "checkpoint2.pt"))
    key = "encoder.layers.0.fc1.bias"
    second["model"][key] = torch.zeros(3)
    reshaped = tmp_path / "reshaped.pt"
    torch.save(second, reshaped)
    with pytest.raises(average_checkpoints.AverageError, match=rf"{key} \(3,\) here, \(64,\)"):
        average_checkpoints.average_checkpoints([paths[0], str(reshaped)], log=quiet)


def test_too_few_checkpoints_are_refused(run_dir, tmp_path, capsys):
    out = tmp_path / "avg.pt"
    cp = str(run_dir.root / "cp")
    rc = average_checkpoints.main(["--inputs", cp, "--num-epoch-checkpoints", "4",
                                   "--output", str(out)])
    err = capsys.readouterr().err
    assert rc != 0
    assert "found only 3" in err
    assert "checkpoint1.pt, checkpoint2.pt, checkpoint3.pt" in err
    rc = average_checkpoints.main(["--inputs", cp, "--num-epoch-checkpoints", "2",
                                   "--checkpoint-upper-bound", "1", "--output", str(out)])
    err = capsys.readouterr().err
    assert rc != 0 and "found only 1: checkpoint1.pt" in err and "at or below 1" in err
    assert not out.exists()


def test_update_checkpoints_and_upper_bound(run_dir):
    cp = str(run_dir.root / "cp")

    def names(paths):
        return [os.path.basename(p) for p in paths]

    assert names(average_checkpoints.select_inputs([cp], num_update=2)) == [
        "checkpoint_3_9.pt", "checkpoint_2_6.pt"]
    assert names(average_checkpoints.select_inputs([cp], num_update=2, upper_bound=8)) == [
        "checkpoint_2_6.pt", "checkpoint_1_3.pt"]
    assert names(average_checkpoints.select_inputs([cp], num_epoch=3)) == [
        "checkpoint3.pt", "checkpoint2.pt", "checkpoint1.pt"]
    with pytest.raises(average_checkpoints.AverageError, match="is a directory"):
        average_checkpoints.select_inputs([cp])
    with pytest.raises(average_checkpoints.AverageError, match="listed twice"):
        average_checkpoints.select_inputs([cp + "/checkpoint1.pt", cp + "/./checkpoint1.pt"])


def test_half_precision_is_averaged_in_float64_and_kept_half(run_dir, tmp_path):
    paths = []
    for epoch in (2, 3):
        state = load_checkpoint(str(run_dir.root / "cp" / f"checkpoint{epoch}.pt"))
        state["model"] = {k: v.half() for k, v in state["model"].items()}
        paths.append(str(tmp_path / f"half{epoch}.pt"))
        torch.save(state, paths[-1])
    avg = average_checkpoints.average_checkpoints(paths, log=quiet)
    a, b = model_of(paths[0]), model_of(paths[1])
    for key, value in avg["model"].items():
        assert value.dtype == torch.float16
        expected = ((a[key].double() + b[key].double()) / 2).half()
        assert torch.equal(value, expected), key


def test_interrupted_write_leaves_no_output(run_dir, tmp_path, monkeypatch):
    out = tmp_path / "avg.pt"
    out.write_bytes(b"previous result")

    def crash(obj, f, *args, **kwargs):
        f.write(b"half a checkpoint")
        raise KeyboardInterrupt

    monkeypatch.setattr(average_checkpoints.torch, "save", crash)
    cp = run_dir.root / "cp"
    with pytest.raises(KeyboardInterrupt):
        average_checkpoints.main(["--inputs", str(cp / "checkpoint2.pt"),
                                  str(cp / "checkpoint3.pt"), "--output", str(out)])
    assert out.read_bytes() == b"previous result"
    assert os.listdir(tmp_path) == ["avg.pt"]


# The command-line runs started by the fixture: collected last, so they overlap the above.


def test_truncated_checkpoint_is_rejected_by_name(run_dir):
    broken = run_dir.root / "truncated" / "checkpoint_broken.pt"
    with pytest.raises(CheckpointError, match="checkpoint_broken.pt"):
        load_checkpoint(str(broken))

    proc = run_dir.jobs["truncated"]
    _out, err = proc.communicate(timeout=300)
    assert proc.returncode != 0
    assert f"error: {broken}: cannot be read" in err, err
    assert "truncated" in err
    assert "Traceback" not in err
    assert sorted(os.listdir(broken.parent)) == ["checkpoint_broken.pt"]  # no avg.pt, no temp


def test_generate_with_the_averaged_checkpoint(run_dir):
    out = finish(run_dir.jobs["generate"])
    hypotheses = [line for line in out.splitlines() if line.startswith("H-")]
    assert len(hypotheses) == NUM_TEST, out[-3000:]


def test_train_resumes_from_checkpoint_last(run_dir):
    """fairseq-train reads checkpoint_last.pt with torch's default, weights-only load."""
    out = finish(run_dir.jobs["resume"])
    resume = run_dir.root / "resume"
    assert "Loaded checkpoint resume/checkpoint_last.pt (epoch 4 @ 12 updates)" in out, out[-3000:]
    assert (resume / "checkpoint4.pt").exists()
    state = load_checkpoint(str(resume / "checkpoint_last.pt"))
    assert state["optimizer_history"][-1]["num_updates"] == 16


class _NotAllowed:
    """A class the weights-only loader must refuse."""


def test_eval_bleu_checkpoints_load_weights_only(tmp_path):
    """fairseq stores the best --eval-bleu score as a numpy float64 (with its dtype): such
    checkpoints must load weights-only, or resume, averaging and scoring would all fail."""
    import numpy

    from fairseq_plugins.checkpoint_loading import load_checkpoint

    path = tmp_path / "checkpoint1.pt"
    torch.save({"model": {"w": torch.ones(2)}, "extra_state": {
        "best": numpy.float64(34.98), "counts": numpy.arange(3)}}, path)
    state = load_checkpoint(str(path))
    assert float(state["extra_state"]["best"]) == 34.98
    assert state["extra_state"]["counts"].tolist() == [0, 1, 2]


def test_a_refused_checkpoint_is_not_called_damaged(tmp_path):
    from fairseq_plugins.checkpoint_loading import (
        CheckpointRefusedError, newest_intact_checkpoint, load_checkpoint)

    torch.save({"model": {}, "extra": _NotAllowed()}, tmp_path / "checkpoint_last.pt")
    with pytest.raises(CheckpointRefusedError, match="is not damaged"):
        load_checkpoint(str(tmp_path / "checkpoint_last.pt"))
    with pytest.raises(CheckpointRefusedError):
        newest_intact_checkpoint(str(tmp_path))
    assert (tmp_path / "checkpoint_last.pt").is_file()  # never renamed
