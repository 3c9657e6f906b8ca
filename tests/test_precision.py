"""bf16 mixed precision (``--task translation_bf16``, ``scripts/train.sh --precision bf16``) and
the precision combinations train.sh refuses.

The task's contract: the forward pass and the loss run under bf16 autocast, backward and the
optimizer step outside it, and parameters, gradients and optimizer state stay float32. Through
train.sh it trains, resumes (bitwise like fp32) and averages like an fp32 run.
"""

import fcntl
import os
import subprocess
import types

import pytest
import torch
from fairseq import options
from fairseq.criterions.label_smoothed_cross_entropy import LabelSmoothedCrossEntropyCriterion

import fairseq_plugins  # noqa: F401  (registers translation_bf16)
from fairseq_plugins.checkpoint_loading import load_checkpoint
from fairseq_plugins.tasks.translation_bf16 import TranslationBF16Task
from helpers import (BIN, binarize, build_model, cli_env, make_dictionary, random_batch,
                     write_reversal_corpus)

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TRAIN_SH = os.path.join(REPO, "scripts", "train.sh")
AVERAGE = os.path.join(BIN, "cpmt-average")
TINY = ["--arch", "contextpool_transformer_tiny", "--seed", "1", "--max-tokens", "100",
        "--lr", "0.002", "--warmup", "4"]


def run_train_sh(*args, env=None, cwd=None):
    return subprocess.run(["bash", TRAIN_SH, *args], cwd=cwd, env=env or cli_env(),
                          capture_output=True, text=True, timeout=600)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    root = tmp_path_factory.mktemp("bf16")
    write_reversal_corpus(root, {"train": 60, "valid": 8})
    binarize(root)
    return root


# --------------------------------------------------------------------------- the task


class RecordingOptimizer:
    """What fairseq's optimizer wrapper does in train_step: backward(loss)."""

    def backward(self, loss):
        loss.backward()


@pytest.mark.parametrize("options", [
    {},
    # issue 24's options: per-head pools with a predictor kernel, the stream placement
    dict(contextpool_heads=2, contextpool_predictor_kernel=3),
    dict(contextpool_placement="stream", contextpool_predictor_kernel=2),
], ids=["defaults", "heads2_kernel3", "stream_kernel2"])
def test_train_step_autocasts_forward_only_and_keeps_fp32_state(options):
    dictionary = make_dictionary()
    model = build_model("contextpool_transformer_tiny", dictionary, **options).train()
    task = TranslationBF16Task(types.SimpleNamespace(), dictionary, dictionary)
    criterion = LabelSmoothedCrossEntropyCriterion(task, sentence_avg=False, label_smoothing=0.1)
    src, src_lengths, prev = random_batch(dictionary)
    target = torch.cat([prev[:, 1:], torch.full((prev.size(0), 1), dictionary.eos())], 1)
    sample = {"net_input": {"src_tokens": src, "src_lengths": src_lengths,
                            "prev_output_tokens": prev},
              "target": target, "ntokens": int(target.ne(dictionary.pad()).sum()),
              "nsentences": src.size(0)}
    seen = {}
    fc = model.decoder.layers[0].fc1

    def forward_hook(module, inputs, output):
        seen.setdefault("forward", output.dtype)

    def backward_hook(module, grad_input, grad_output):
        seen.setdefault("backward_autocast", torch.is_autocast_enabled("cpu"))

    fc.register_forward_hook(forward_hook)
    fc.register_full_backward_hook(backward_hook)

    loss, sample_size, _ = task.train_step(sample, model, criterion, RecordingOptimizer(), 0)

    assert seen["forward"] == torch.bfloat16  # matmuls ran in bf16
    assert seen["backward_autocast"] is False  # backward ran outside autocast
    assert loss.dtype == torch.float32 and torch.isfinite(loss)
    for name, param in model.named_parameters():
        assert param.dtype == torch.float32, name
        assert param.grad is not None and param.grad.dtype == torch.float32, name
    assert not torch.is_autocast_enabled("cpu")  # nothing leaks out of the step


def test_fairseq_parses_the_gpu_route_without_tpu(corpus):
    """train.sh's bf16 flags, parsed as on a GPU machine (no --cpu): fairseq's own --bf16 would
    set tpu=True and crash without torch_xla; the task route leaves both off."""
    parser = options.get_training_parser()
    args = options.parse_args_and_arch(parser, [
        str(corpus / "data-bin"), "--user-dir", os.path.join(REPO, "fairseq_plugins"),
        "--arch", "transformer_tiny", "--task", "translation_bf16"])
    assert args.task == "translation_bf16" and not args.bf16 and not args.tpu
    bf16 = options.parse_args_and_arch(options.get_training_parser(), [
        str(corpus / "data-bin"), "--arch", "transformer_tiny", "--bf16"])
    assert bf16.tpu  # the trap that train.sh routes around (docs/training.md)


# --------------------------------------------------------------------------- train.sh flags


@pytest.mark.parametrize("args, message", [
    (["--cpu", "--precision", "fp16"], "--precision fp16 needs a CUDA GPU"),
    (["--cpu", "--", "--bf16"], "not '--bf16' after '--'"),
    (["--cpu", "--", "--fp16"], "not '--fp16' after '--'"),
    (["--precision", "fp8"], "--precision must be fp32, fp16 or bf16"),
])
def test_train_sh_refuses_precisions_that_cannot_work(corpus, tmp_path, args, message):
    result = run_train_sh("--data", str(corpus / "data-bin"), "--arch", "transformer_tiny",
                          "--run-dir", str(tmp_path / "run"), *args)
    assert result.returncode == 2, result.stdout + result.stderr
    assert message in result.stderr and result.stderr.count("\n") == 1, result.stderr
    assert not (tmp_path / "run" / "train.log").exists()


@pytest.mark.parametrize("cpu", [True, False])
def test_train_sh_bf16_uses_the_task_on_cpu_and_gpu(corpus, tmp_path, cpu):
    env = dict(cli_env(), FAIRSEQ_TRAIN="echo")  # prints the fairseq-train command
    result = run_train_sh("--data", str(corpus / "data-bin"), "--arch", "transformer_tiny",
                          "--run-dir", str(tmp_path / "run"), "--precision", "bf16",
                          *(["--cpu"] if cpu else []), env=env)
    assert result.returncode == 0, result.stderr
    command = result.stdout.splitlines()[-1].split()
    assert command[command.index("--task") + 1] == "translation_bf16"
    assert "--bf16" not in command and "--fp16" not in command
    assert ("--cpu" in command) == cpu


def test_train_sh_refuses_a_run_folder_another_training_holds(corpus, tmp_path):
    """Two trainings in one run folder would write one set of checkpoints: the second is
    refused (and the first's provenance record kept) while the first holds the folder's lock."""
    run = tmp_path / "run"
    env = dict(cli_env(), FAIRSEQ_TRAIN="echo")
    args = ("--data", str(corpus / "data-bin"), "--arch", "transformer_tiny", "--run-dir", str(run), "--cpu")
    assert run_train_sh(*args, env=env).returncode == 0  # free: trains (here: prints the command)
    with open(run / "train.lock") as held:
        fcntl.flock(held, fcntl.LOCK_EX | fcntl.LOCK_NB)
        record = (run / "checkpoints" / "provenance.json").read_text(encoding="utf-8")
        result = run_train_sh(*args, env=env)
        assert result.returncode == 2, result.stdout + result.stderr
        assert f"{run} is being trained by another process" in result.stderr
        assert (run / "checkpoints" / "provenance.json").read_text(encoding="utf-8") == record
    assert run_train_sh(*args, env=env).returncode == 0  # released: trains again


# --------------------------------------------------------------------------- end to end


@pytest.mark.slow
def test_bf16_trains_resumes_bitwise_and_averages(corpus, tmp_path):
    def train(run, epochs):
        result = run_train_sh("--data", "data-bin", "--run-dir", str(tmp_path / run), "--cpu",
                              "--precision", "bf16", *TINY, "--max-epoch", str(epochs), "--",
                              "--num-workers", "0", "--log-format", "simple", cwd=corpus)
        assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
        return result.stdout

    train("straight", 2)
    train("resumed", 1)
    out = train("resumed", 2)
    assert "train.sh: resuming from" in out and "task: TranslationBF16Task" in out
    got = load_checkpoint(str(tmp_path / "resumed" / "checkpoints" / "checkpoint2.pt"))
    want = load_checkpoint(str(tmp_path / "straight" / "checkpoints" / "checkpoint2.pt"))
    assert got["cfg"]["task"]["_name"] == "translation_bf16"
    for key, value in want["model"].items():
        assert value.dtype in (torch.float32, torch.int64) or not value.is_floating_point(), key
        assert torch.equal(got["model"][key], value), f"{key} differs after resuming"

    ckpts = tmp_path / "resumed" / "checkpoints"
    averaged = subprocess.run(
        [AVERAGE, "--inputs", str(ckpts),
         "--num-epoch-checkpoints", "2", "--output", str(ckpts / "average.pt")],
        env=cli_env(), capture_output=True, text=True, timeout=300)
    assert averaged.returncode == 0, averaged.stderr[-3000:]
    first = load_checkpoint(str(ckpts / "checkpoint1.pt"))["model"]
    mean = load_checkpoint(str(ckpts / "average.pt"))["model"]
    key = "decoder.layers.0.fc1.weight"
    assert torch.allclose(mean[key], (first[key] + got["model"][key]) / 2, atol=1e-6)
