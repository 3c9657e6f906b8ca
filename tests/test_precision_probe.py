"""benchmarks/precision_probe.py: its parameter groups, its gradient comparison, and that its
fp32 pass is plain autograd while its bf16 pass differs from it only a little."""

import math

import pytest
import torch

from benchmarks import precision_probe as probe
from helpers import build_model, make_dictionary, random_batch


@pytest.mark.parametrize("name, group", [
    ("encoder.layers.0.self_attn.pool.weight_proj.weight", "pool weight_proj (encoder)"),
    ("decoder.layers.2.self_attn.pool.size_proj.bias", "pool size_proj (decoder)"),
    ("encoder.layers.1.self_attn.k_proj.weight", "attention"),
    ("decoder.layers.0.encoder_attn.out_proj.bias", "attention"),
    ("decoder.layers.0.fc2.weight", "ffn"),
    ("encoder.embed_tokens.weight", "embeddings"),
    ("decoder.layers.1.final_layer_norm.weight", "layer norms"),
    ("decoder.output_projection.weight", "other"),
])
def test_parameters_fall_in_their_group(name, group):
    assert probe.group_of(name) == group


def test_compare_gives_cosine_and_relative_error_per_group():
    a = {"encoder.layers.0.fc1.weight": torch.tensor([3.0, 4.0]),
         "decoder.layers.0.fc2.weight": torch.tensor([1.0, 0.0]),
         "encoder.layers.0.self_attn.q_proj.weight": torch.tensor([1.0, 2.0, 2.0])}
    b = {"encoder.layers.0.fc1.weight": torch.tensor([3.0, 4.0]),
         "decoder.layers.0.fc2.weight": torch.tensor([0.0, 1.0]),
         "encoder.layers.0.self_attn.q_proj.weight": torch.tensor([2.0, 4.0, 4.0])}
    got = probe.compare(a, b)
    # ffn: (3, 4, 1, 0) against (3, 4, 0, 1): a.b = 25, |a| = |b| = sqrt(26), |a - b| = sqrt(2)
    assert got["ffn"]["cosine"] == pytest.approx(25 / 26)
    assert got["ffn"]["relative_error"] == pytest.approx(math.sqrt(2 / 26))
    assert got["ffn"]["parameters"] == 4
    assert got["attention"]["cosine"] == pytest.approx(1.0)  # b = 2 a: same direction, error |a|
    assert got["attention"]["relative_error"] == pytest.approx(1.0)


@pytest.fixture(scope="module")
def model_and_batches():
    dictionary = make_dictionary()
    model = build_model(dictionary=dictionary).eval()
    batches = []
    for seed in (0, 1):
        src, src_lengths, prev = random_batch(dictionary, seed=seed)
        target = torch.cat([prev[:, 1:], torch.full_like(prev[:, :1], dictionary.eos())], 1)
        target = target.masked_fill(prev.eq(dictionary.pad()), dictionary.pad())
        batches.append({"net_input": {"src_tokens": src, "src_lengths": src_lengths,
                                      "prev_output_tokens": prev}, "target": target})
    return model, batches, dictionary.pad()


def test_fp32_pass_is_the_nll_and_its_autograd(model_and_batches):
    model, batches, pad = model_and_batches
    expected_total, tokens = 0.0, 0
    model.zero_grad()
    for sample in batches:
        lprobs = model.get_normalized_probs(model(**sample["net_input"]), log_probs=True)
        keep = sample["target"].ne(pad)
        loss = torch.nn.functional.nll_loss(lprobs[keep], sample["target"][keep], reduction="sum")
        loss.backward()
        expected_total += loss.item()
        tokens += keep.sum().item()
    expected = {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}
    assert probe.test_nll(model, batches, pad, bf16=False) == pytest.approx(expected_total / tokens)
    got = probe.gradients(model, batches, pad, bf16=False)
    assert got.keys() == expected.keys()
    assert any("size_proj" in name for name in got)  # the pool predictors get gradients
    for name, grad in got.items():
        torch.testing.assert_close(grad, expected[name])


def test_bf16_pass_is_close_to_fp32_but_not_equal(model_and_batches):
    model, batches, pad = model_and_batches
    fp32 = probe.gradients(model, batches, pad, bf16=False)
    bf16 = probe.gradients(model, batches, pad, bf16=True)
    groups = probe.compare(fp32, bf16)
    assert {"pool weight_proj (encoder)", "pool size_proj (decoder)", "ffn"} <= groups.keys()
    for group in groups.values():
        assert group["cosine"] > 0.95
        assert 0.0 < group["relative_error"] < 0.3  # bf16 rounding moved every group
    nll32 = probe.test_nll(model, batches, pad, bf16=False)
    nll16 = probe.test_nll(model, batches, pad, bf16=True)
    assert nll16 != nll32 and nll16 == pytest.approx(nll32, rel=0.02)
