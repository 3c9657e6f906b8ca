"""Careless ContextPool options: layer selections that name no layer, and a pooling support far
beyond any sentence (issue 25, item 11)."""

import argparse
import os
import subprocess

import pytest
import torch
from fairseq.models import ARCH_CONFIG_REGISTRY

from fairseq_plugins.models.contextpool_transformer import ContextPoolOptionError
from fairseq_plugins.modules import context_pool
from fairseq_plugins.modules.context_pool import ContextPool
from helpers import BIN, build_model, cli_env
from reference import reference_context_pool

USER_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                        "fairseq_plugins")


def parse(tmp_path, *options):
    """fairseq-train's argument parsing (and the architecture it runs after it)."""
    from fairseq import options as fairseq_options

    (tmp_path / "dict.en.txt").write_text("a 1\n")
    (tmp_path / "dict.de.txt").write_text("a 1\n")
    parser = fairseq_options.get_training_parser()
    return fairseq_options.parse_args_and_arch(
        parser, [str(tmp_path), "--arch", "contextpool_transformer_tiny", *options])


@pytest.mark.parametrize("option", ["--contextpool-encoder-layers", "--contextpool-decoder-layers"])
@pytest.mark.parametrize("value", ["0,x", "-1", "1,,0", "first"])
def test_bad_layer_syntax_is_an_argparse_error(tmp_path, capsys, option, value):
    with pytest.raises(SystemExit):
        parse(tmp_path, option, value)
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].endswith(
        f"error: argument {option}: expected 'all', 'none' or comma-separated 0-based layer "
        f"indices such as '0,1', got '{value}'"), err


@pytest.mark.parametrize("side", ["encoder", "decoder"])
@pytest.mark.parametrize("count", [["--{side}-layers", "3"], []], ids=["given", "arch-default"])
def test_layer_out_of_range_is_an_argparse_error(tmp_path, capsys, side, count):
    """The layer count is --encoder-layers' or the architecture's default (tiny: 2), known only
    after parsing: the architecture refuses the selection right after it, before any data or
    model is loaded, as the parser's usage error."""
    layers = 3 if count else 2
    with pytest.raises(SystemExit) as exit_:
        # the selection before the count: the check does not depend on the order
        parse(tmp_path, f"--contextpool-{side}-layers", "1,5", *[c.format(side=side) for c in count])
    assert exit_.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].endswith(
        f"error: argument --contextpool-{side}-layers: '1,5' names layer 5, but the model has "
        f"{layers} {side} layers: give all, none or indices in 0..{layers - 1}"), err


def test_layer_out_of_range_in_fairseq_train_is_one_line(tmp_path):
    """The command a user types: fairseq-train's usage and one error line, exit code 2, no
    traceback (before: a ValueError traceback)."""
    for lang in ("en", "de"):
        (tmp_path / f"dict.{lang}.txt").write_text("a 1\n")
    proc = subprocess.run(
        [os.path.join(BIN, "fairseq-train"), str(tmp_path), "--user-dir", USER_DIR,
         "--arch", "contextpool_transformer_tiny", "--encoder-layers", "3",
         "--contextpool-encoder-layers", "5", "--cpu"],
        capture_output=True, text=True, env=cli_env(), timeout=300)
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert "Traceback" not in proc.stderr
    errors = [line for line in proc.stderr.splitlines() if "error" in line.lower()]
    assert errors == [
        "fairseq-train: error: argument --contextpool-encoder-layers: '5' names layer 5, but the "
        "model has 3 encoder layers: give all, none or indices in 0..2"], proc.stderr[-2000:]


CONTRADICTIONS = [
    (["--contextpool-placement", "stream", "--contextpool-inputs", "kv"],
     "argument --contextpool-placement: stream pools the layer input itself, so attention reads "
     "pooled queries, keys and values: it needs --contextpool-inputs qkv, got 'kv'"),
    (["--contextpool-placement", "stream", "--contextpool-heads", "2"],
     "argument --contextpool-placement: stream pools the layer input, before the attention heads "
     "exist: it needs --contextpool-heads 1, got 2"),
    (["--contextpool-heads", "3"],
     "argument --contextpool-heads: 3 must divide --encoder-attention-heads 2: each pool serves "
     "a group of attention heads"),
]


@pytest.mark.parametrize("options, message", CONTRADICTIONS)
def test_contradicting_options_in_fairseq_train_are_one_line(tmp_path, options, message):
    """Options that contradict each other or the model: fairseq-train's usage and one error
    line, exit code 2, no traceback, before anything is loaded (before: a ValueError traceback
    from build_model)."""
    for lang in ("en", "de"):
        (tmp_path / f"dict.{lang}.txt").write_text("a 1\n")
    proc = subprocess.run(
        [os.path.join(BIN, "fairseq-train"), str(tmp_path), "--user-dir", USER_DIR,
         "--arch", "contextpool_transformer_tiny", *options, "--cpu"],
        capture_output=True, text=True, env=cli_env(), timeout=300)
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert "Traceback" not in proc.stderr
    errors = [line for line in proc.stderr.splitlines() if "error" in line.lower()]
    assert errors == [f"fairseq-train: error: {message}"], proc.stderr[-2000:]


def test_contradiction_is_reported_by_the_parser_that_read_the_options(tmp_path, capsys):
    """The recording does not depend on which ContextPool option was typed: here only
    --contextpool-heads, which the model's head count contradicts."""
    with pytest.raises(SystemExit) as exit_:
        parse(tmp_path, "--encoder-attention-heads", "4", "--contextpool-heads", "3")
    assert exit_.value.code == 2
    assert capsys.readouterr().err.strip().splitlines()[-1].endswith(
        "error: argument --contextpool-heads: 3 must divide --encoder-attention-heads 4: each "
        "pool serves a group of attention heads")


def test_contradiction_outside_a_command_line_is_a_value_error():
    """Python callers (and hydra configs) of the architecture get ContextPoolOptionError."""
    args = argparse.Namespace(contextpool_placement="stream", contextpool_inputs="kv")
    with pytest.raises(ContextPoolOptionError, match=r"^contextpool_placement "
                       r"\(--contextpool-placement\) stream .* needs --contextpool-inputs qkv"):
        ARCH_CONFIG_REGISTRY["contextpool_transformer_tiny"](args)


@pytest.mark.parametrize("side", ["encoder", "decoder"])
def test_layer_out_of_range_outside_a_command_line_is_a_value_error(side):
    """Python callers (and hydra configs) of the architecture get a ValueError naming the
    option, the value and the range, as before."""
    args = argparse.Namespace(**{f"{side}_layers": 3, f"contextpool_{side}_layers": "1,5"})
    with pytest.raises(ContextPoolOptionError) as err:
        ARCH_CONFIG_REGISTRY["contextpool_transformer_tiny"](args)
    assert isinstance(err.value, ValueError)
    assert str(err.value) == (
        f"contextpool_{side}_layers (--contextpool-{side}-layers) '1,5' names layer 5, but the "
        f"model has 3 {side} layers: give all, none or indices in 0..2")


def test_valid_layer_selections_parse(tmp_path):
    args = parse(tmp_path, "--encoder-layers", "3", "--contextpool-encoder-layers", "0,2",
                 "--contextpool-decoder-layers", "none")
    assert (args.contextpool_encoder_layers, args.contextpool_decoder_layers) == ("0,2", "none")


def test_layer_selection_from_a_config_names_the_option():
    """hydra configs skip argparse: the architecture checks them the same way."""
    with pytest.raises(ValueError, match=r"contextpool_decoder_layers \(--contextpool-decoder-layers\): "
                                         r"expected 'all', 'none' .* got '0,x'"):
        build_model(contextpool_decoder_layers="0,x")
    with pytest.raises(ValueError, match=r"'7' names layer 7, but the model has 2 decoder layers"):
        build_model(contextpool_decoder_layers="7")


@pytest.mark.parametrize("causal", [False, True])
@pytest.mark.parametrize("normalize", ["mean", "sum"])
def test_support_beyond_the_sequence_is_cut_to_it(monkeypatch, causal, normalize):
    """--contextpool-max-size 100000 pools what the sequence holds, exactly, at the cost of the
    sequence length (before, the op ran over 2 * 100000 + 1 offsets per position)."""
    widths = []
    band = context_pool._band
    monkeypatch.setattr(context_pool, "_band", lambda a, v: widths.append(a.size(-1)) or band(a, v))
    torch.manual_seed(0)
    T, B, C = 7, 3, 8
    pool = ContextPool(C, max_size=100000, normalize=normalize, causal=causal).double()
    x = torch.randn(T, B, C, dtype=torch.float64, requires_grad=True)
    mask = torch.zeros(B, T, dtype=torch.bool)
    mask[1, :2] = True
    out = pool(x, mask)
    assert widths and max(widths) <= 2 * T - 1
    real = ~mask.t()  # the reference predicts padding's own sizes from zeros: real rows only
    torch.testing.assert_close(out[real], reference_context_pool(pool, x.detach(), mask)[real])
    out.sum().backward()  # the backward's bands are cut too
    assert torch.isfinite(x.grad).all()
    assert torch.autograd.gradcheck(lambda t: pool(t, mask), (x.detach().requires_grad_(),))


def test_huge_max_size_trains():
    """A training step of a model with --contextpool-max-size 100000 (before: its backward
    asked for (T + 200000) x B x 200001 coefficients)."""
    model = build_model(contextpool_max_size=100000)
    src = torch.randint(4, 20, (4, 12))
    model(src, torch.full((4,), 12), src)[0].sum().backward()
    grads = [p.grad for p in model.parameters() if p.grad is not None]
    assert grads and all(torch.isfinite(g).all() for g in grads)
