"""TorchScript export, as fairseq exports its Transformer (torch.jit.script, save, load) and
decodes with its scripted SequenceGenerator: the ContextPool model gives the eager outputs."""

import functools

import pytest
import torch
from fairseq.sequence_generator import SequenceGenerator

from helpers import build_model, make_dictionary, random_batch

ATOL = 1e-5  # scripted attention takes fairseq's explicit path, eager torch's fused one


OPTIONS = {
    "qkv": dict(contextpool_inputs="qkv"),
    "kv": dict(contextpool_inputs="kv"),
    "heads2-kernel3": dict(contextpool_heads=2, contextpool_predictor_kernel=3),
    "stream": dict(contextpool_placement="stream"),
}


# the decoder caches of the stream placement are the ContextPool's own, covered by the others:
# its generation test would only add half a minute of compiling
GENERATION = ["qkv", "kv", "heads2-kernel3"]


@functools.lru_cache(maxsize=None)
def build(name):
    torch.manual_seed(0)
    model = build_model("contextpool_transformer_tiny", make_dictionary(), **OPTIONS[name])
    assert len(model.encoder.layers) == len(model.decoder.layers) == 2  # all pooled
    return model.eval()


def net_input(model):
    src, src_lengths, prev = random_batch(model.encoder.dictionary, batch_size=3, src_len=9)
    return src, src_lengths, prev


@pytest.mark.parametrize("options", sorted(OPTIONS))
def test_scripted_forward_equals_eager_and_survives_save_load(options, tmp_path):
    model = build(options)
    src, src_lengths, prev = net_input(model)
    with torch.no_grad():
        eager = model(src, src_lengths, prev)[0]
        scripted = torch.jit.script(model)
        torch.testing.assert_close(scripted(src, src_lengths, prev)[0], eager, rtol=0, atol=ATOL)
        torch.jit.save(scripted, str(tmp_path / "model.pt"))
        loaded = torch.jit.load(str(tmp_path / "model.pt"))
        torch.testing.assert_close(loaded(src, src_lengths, prev)[0], eager, rtol=0, atol=ATOL)
    # the eager model is untouched: training still goes through the custom autograd function
    out = model.train()(src, src_lengths, prev)[0]
    assert _graph_has_banded_pool(out.grad_fn)
    model.eval()


def _graph_has_banded_pool(fn, seen=None):
    """Whether the autograd graph below ``fn`` holds ContextPool's custom function."""
    seen = set() if seen is None else seen
    if fn is None or fn in seen:
        return False
    seen.add(fn)
    if "BandedPool" in type(fn).__name__:
        return True
    return any(_graph_has_banded_pool(next_fn, seen) for next_fn, _ in fn.next_functions)


@pytest.mark.parametrize("options", GENERATION)
def test_scripted_sequence_generator_equals_eager(options, tmp_path):
    """Beam search with incremental decoding: the pool's cache and its beam reordering."""
    model = build(options)
    dictionary = model.decoder.dictionary
    src, src_lengths, _ = net_input(model)
    sample = {"net_input": {"src_tokens": src, "src_lengths": src_lengths}}

    def generator():
        return SequenceGenerator([model], dictionary, beam_size=3, max_len_b=8, min_len=4)

    with torch.no_grad():
        eager = generator().forward(sample)
        scripted = torch.jit.script(generator())
        torch.jit.save(scripted, str(tmp_path / "generator.pt"))
        for script in (scripted, torch.jit.load(str(tmp_path / "generator.pt"))):
            hypos = script.forward(sample)
            assert len(hypos) == len(eager)
            for ours, theirs in zip(hypos, eager):
                assert [h["tokens"].tolist() for h in ours] == [h["tokens"].tolist() for h in theirs]
                for h_ours, h_theirs in zip(ours, theirs):
                    torch.testing.assert_close(
                        h_ours["positional_scores"], h_theirs["positional_scores"],
                        rtol=0, atol=ATOL,
                    )
