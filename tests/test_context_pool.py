"""ContextPool against the loop reference, plus causality, padding and numerics."""

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from fairseq_plugins.modules import ContextPool
from reference import make_padding_mask, reference_context_pool


def make_pool(dim=8, max_size=3, normalize="mean", causal=False, seed=0):
    torch.manual_seed(seed)
    pool = ContextPool(dim, max_size=max_size, normalize=normalize, causal=causal).double()
    # spread the predicted sizes so the Gaussian really mixes neighbours
    with torch.no_grad():
        pool.size_proj.weight.normal_(0, 1.0)
        pool.size_proj.bias.fill_(0.0)
    return pool


@pytest.mark.parametrize("causal", [False, True])
@pytest.mark.parametrize("normalize", ["sum", "mean"])
@pytest.mark.parametrize("max_size", [1, 3, 20])
@pytest.mark.parametrize("T,B", [(1, 1), (5, 2), (12, 4)])
def test_matches_loop_reference(causal, normalize, max_size, T, B):
    pool = make_pool(max_size=max_size, normalize=normalize, causal=causal)
    x = torch.randn(T, B, 8, dtype=torch.float64)
    lengths = [max(1, T - 3 * b) for b in range(B)]
    mask = make_padding_mask(lengths, T, left_pad=not causal)
    expected = reference_context_pool(pool, x, mask)
    actual = pool(x, mask)
    real = ~mask.t()  # T x B
    torch.testing.assert_close(actual[real], expected[real], rtol=1e-10, atol=1e-10)


def test_matches_reference_without_padding_mask():
    pool = make_pool(max_size=4)
    x = torch.randn(9, 3, 8, dtype=torch.float64)
    torch.testing.assert_close(pool(x), reference_context_pool(pool, x), rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("causal", [False, True])
@pytest.mark.parametrize("normalize", ["sum", "mean"])
def test_gradcheck(causal, normalize):
    pool = make_pool(dim=3, max_size=2, normalize=normalize, causal=causal)
    x = torch.randn(5, 2, 3, dtype=torch.float64, requires_grad=True)
    mask = make_padding_mask([5, 3], 5, left_pad=not causal)
    params = [pool.weight_proj.weight, pool.size_proj.weight, pool.size_proj.bias]
    assert torch.autograd.gradcheck(lambda x, *p: pool(x, mask), (x, *params))


@pytest.mark.parametrize("normalize", ["sum", "mean"])
def test_causal_output_ignores_future_tokens(normalize):
    pool = make_pool(normalize=normalize, causal=True, max_size=4)
    with torch.no_grad():  # wide masks everywhere
        pool.size_proj.weight.mul_(0.1)
        pool.size_proj.bias.fill_(2.0)
    x = torch.randn(10, 2, 8, dtype=torch.float64)
    y = pool(x)
    for i in range(10):
        changed = x.clone()
        changed[i + 1 :] = torch.randn_like(changed[i + 1 :]) * 5
        torch.testing.assert_close(pool(changed)[: i + 1], y[: i + 1], rtol=0, atol=0)
        if i + 1 < 10:  # and the change is visible downstream, so the test can fail
            assert not torch.allclose(pool(changed)[i + 1], y[i + 1])


def test_bidirectional_pool_does_see_the_future():
    pool = make_pool(causal=False, max_size=4)
    with torch.no_grad():  # wide masks everywhere
        pool.size_proj.weight.zero_()
        pool.size_proj.bias.fill_(2.0)
    x = torch.randn(6, 1, 8, dtype=torch.float64)
    changed = x.clone()
    changed[5] += 3.0
    assert not torch.allclose(pool(changed)[4], pool(x)[4])


@pytest.mark.parametrize("normalize", ["sum", "mean"])
@pytest.mark.parametrize("causal,left_pad", [(False, True), (False, False), (True, False)])
def test_padding_never_contributes(normalize, causal, left_pad):
    pool = make_pool(normalize=normalize, causal=causal, max_size=5)
    n, extra = 6, 4
    x = torch.randn(n, 1, 8, dtype=torch.float64)
    y = pool(x)
    garbage = torch.randn(extra, 1, 8, dtype=torch.float64) * 100
    padded = torch.cat([garbage, x]) if left_pad else torch.cat([x, garbage])
    mask = make_padding_mask([n], n + extra, left_pad=left_pad)
    y_padded = pool(padded, mask)
    real = y_padded[extra:] if left_pad else y_padded[:n]
    torch.testing.assert_close(real, y, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("bias", [-60.0, 60.0])
@pytest.mark.parametrize("normalize", ["sum", "mean"])
def test_extreme_predicted_sizes_stay_finite(bias, normalize):
    pool = make_pool(normalize=normalize, max_size=6).float()
    with torch.no_grad():
        pool.size_proj.weight.zero_()
        pool.size_proj.bias.fill_(bias)
    x = torch.randn(7, 2, 8, requires_grad=True)
    y = pool(x)
    y.sum().backward()
    assert torch.isfinite(y).all() and torch.isfinite(x.grad).all()
    if bias < 0 and normalize == "mean":
        # the smallest size pools nothing but the token itself
        torch.testing.assert_close(y, x, rtol=1e-5, atol=1e-5)


def test_all_pad_rows_and_single_tokens_are_finite():
    pool = make_pool(max_size=3).float()
    x = torch.randn(4, 2, 8, requires_grad=True)
    mask = torch.tensor([[True] * 4, [False] + [True] * 3])
    y = pool(x, mask)
    y.sum().backward()
    assert torch.isfinite(y).all() and torch.isfinite(x.grad).all()
    assert torch.equal(y[:, 0], torch.zeros_like(y[:, 0]))
    single = pool(torch.randn(1, 3, 8))
    assert single.shape == (1, 3, 8) and torch.isfinite(single).all()


@pytest.mark.parametrize("causal", [False, True])
def test_bf16_autocast_matches_float32(causal):
    pool = make_pool(max_size=4, causal=causal).float()
    x = torch.randn(16, 3, 8)
    expected = pool(x)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        y = pool(x.bfloat16())
    assert y.dtype == torch.bfloat16 and torch.isfinite(y).all()
    torch.testing.assert_close(y.float(), expected, rtol=5e-2, atol=5e-2)


def test_rejects_bad_options():
    with pytest.raises(ValueError, match="max_size"):
        ContextPool(8, max_size=0)
    with pytest.raises(ValueError, match="normalize"):
        ContextPool(8, max_size=3, normalize="max")


@settings(max_examples=40, deadline=None)
@given(
    T=st.integers(1, 10),
    B=st.integers(1, 3),
    max_size=st.integers(1, 6),
    causal=st.booleans(),
    normalize=st.sampled_from(["sum", "mean"]),
    pad_fraction=st.floats(0.0, 1.0),
    seed=st.integers(0, 2**16),
)
def test_fuzz_against_reference(T, B, max_size, causal, normalize, pad_fraction, seed):
    pool = make_pool(dim=4, max_size=max_size, normalize=normalize, causal=causal, seed=seed)
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(T, B, 4, dtype=torch.float64, generator=g)
    lengths = [max(1, T - int(pad_fraction * T * (b + 1) / B)) for b in range(B)]
    mask = make_padding_mask(lengths, T, left_pad=not causal)
    real = ~mask.t()
    torch.testing.assert_close(
        pool(x, mask)[real], reference_context_pool(pool, x, mask)[real], rtol=1e-10, atol=1e-10
    )
