"""ContextPool against the loop reference, plus causality, padding and numerics."""

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from fairseq_plugins.modules import ContextPool
from reference import make_padding_mask, reference_context_pool


def make_pool(dim=8, max_size=3, normalize="mean", causal=False, seed=0, heads=1, kernel=1):
    torch.manual_seed(seed)
    pool = ContextPool(dim, max_size=max_size, normalize=normalize, causal=causal, heads=heads,
                       predictor_kernel=kernel).double()
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


@pytest.mark.parametrize("heads,kernel", [(1, 1), (1, 3), (2, 4)])
@pytest.mark.parametrize("normalize", ["sum", "mean"])
@pytest.mark.parametrize("causal,left_pad", [(False, True), (False, False), (True, False), (True, True)])
def test_padding_never_contributes(normalize, causal, left_pad, heads, kernel):
    """A sentence alone and in a padded batch pool alike: padding weighs 0, and the predictors'
    window reads padding as the zeros beyond a sentence's ends."""
    pool = make_pool(normalize=normalize, causal=causal, max_size=5, heads=heads, kernel=kernel)
    n, extra = 6, 4
    x = torch.randn(n, 1, 8, dtype=torch.float64)
    values = torch.randn(n, 1, heads, 3, dtype=torch.float64) if heads > 1 else None
    y = pool(x, None, None, values)

    def pad(t):
        garbage = torch.randn(extra, *t.shape[1:], dtype=torch.float64) * 100
        return torch.cat([garbage, t]) if left_pad else torch.cat([t, garbage])

    mask = make_padding_mask([n], n + extra, left_pad=left_pad)
    y_padded = pool(pad(x), mask, None, None if values is None else pad(values))
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


@pytest.mark.parametrize("heads,kernel", [(1, 1), (2, 3)])
@pytest.mark.parametrize("causal", [False, True])
def test_bf16_autocast_matches_float32(causal, heads, kernel):
    pool = make_pool(max_size=4, causal=causal, heads=heads, kernel=kernel).float()
    x = torch.randn(16, 3, 8)
    values = torch.randn(16, 3, heads, 4) if heads > 1 else None
    expected = pool(x, None, None, values)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        y = pool(x.bfloat16(), None, None, None if values is None else values.bfloat16())
    assert y.dtype == torch.bfloat16 and torch.isfinite(y).all()
    torch.testing.assert_close(y.float(), expected, rtol=5e-2, atol=5e-2)


def test_rejects_bad_options():
    with pytest.raises(ValueError, match="max_size"):
        ContextPool(8, max_size=0)
    with pytest.raises(ValueError, match="heads must be >= 1"):
        ContextPool(8, max_size=3, heads=0)
    with pytest.raises(ValueError, match="predictor_kernel must be >= 1"):
        ContextPool(8, max_size=3, predictor_kernel=0)
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
    heads=st.integers(1, 3),
    kernel=st.integers(1, 4),
)
def test_fuzz_against_reference(T, B, max_size, causal, normalize, pad_fraction, seed, heads,
                                kernel):
    pool = make_pool(dim=4, max_size=max_size, normalize=normalize, causal=causal, seed=seed,
                     heads=heads, kernel=kernel)
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(T, B, 4, dtype=torch.float64, generator=g)
    values = None if heads == 1 else torch.randn(T, B, heads, 2, dtype=torch.float64, generator=g)
    lengths = [max(1, T - int(pad_fraction * T * (b + 1) / B)) for b in range(B)]
    mask = make_padding_mask(lengths, T, left_pad=not causal)
    real = ~mask.t()
    torch.testing.assert_close(
        pool(x, mask, None, values)[real], reference_context_pool(pool, x, mask, values)[real],
        rtol=1e-10, atol=1e-10,
    )


# --------------------------------------------------------------------------- heads and kernel


@pytest.mark.parametrize("causal", [False, True])
@pytest.mark.parametrize("normalize", ["sum", "mean"])
@pytest.mark.parametrize("heads,kernel,features", [(1, 2, None), (1, 3, 5), (3, 1, 5), (2, 4, 3)])
def test_heads_and_kernel_match_loop_reference(causal, normalize, heads, kernel, features):
    """Each of the H pools pools its own values with its own weights and sizes, predicted by
    a window of K tokens (features None: the input itself, one pool)."""
    pool = make_pool(max_size=2, normalize=normalize, causal=causal, heads=heads, kernel=kernel)
    T, B = 7, 3
    x = torch.randn(T, B, 8, dtype=torch.float64)
    values = None if features is None else torch.randn(T, B, heads, features, dtype=torch.float64)
    mask = make_padding_mask([7, 5, 2], T, left_pad=not causal)
    expected = reference_context_pool(pool, x, mask, values)
    actual = pool(x, mask, None, values)
    assert actual.shape == expected.shape
    real = ~mask.t()
    torch.testing.assert_close(actual[real], expected[real], rtol=1e-10, atol=1e-10)


def test_pools_differ_per_head():
    """The test above can fail: the heads' predictions really differ."""
    pool = make_pool(heads=3, kernel=2)
    weight, sigma = pool.predict(torch.randn(6, 2, 8, dtype=torch.float64), None)
    assert weight.shape == sigma.shape == (6, 2, 3)
    assert not torch.allclose(sigma[..., 0], sigma[..., 1])


def test_parameter_layout():
    """K = H = 1 keeps the first version's shapes (old checkpoints load); otherwise H x K C."""
    assert make_pool().weight_proj.weight.shape == (1, 8)
    pool = make_pool(heads=3, kernel=2)
    assert pool.weight_proj.weight.shape == pool.size_proj.weight.shape == (3, 16)
    assert pool.weight_proj.bias.shape == pool.size_proj.bias.shape == (3,)


@pytest.mark.parametrize("causal", [False, True])
@pytest.mark.parametrize("normalize", ["sum", "mean"])
@pytest.mark.parametrize("heads,kernel", [(1, 3), (2, 2)])
def test_gradcheck_heads_and_kernel(causal, normalize, heads, kernel):
    pool = make_pool(dim=3, max_size=2, normalize=normalize, causal=causal, heads=heads,
                     kernel=kernel)
    x = torch.randn(5, 2, 3, dtype=torch.float64, requires_grad=True)
    values = torch.randn(5, 2, heads, 2, dtype=torch.float64, requires_grad=True)
    mask = make_padding_mask([5, 3], 5, left_pad=not causal)
    params = [pool.weight_proj.weight, pool.weight_proj.bias, pool.size_proj.weight,
              pool.size_proj.bias]
    assert torch.autograd.gradcheck(lambda x, v, *p: pool(x, mask, None, v), (x, values, *params))


@pytest.mark.parametrize("heads,kernel", [(1, 1), (1, 3), (2, 2)])
def test_causal_kernel_ignores_future_tokens(heads, kernel):
    pool = make_pool(causal=True, max_size=4, heads=heads, kernel=kernel)
    x = torch.randn(10, 2, 8, dtype=torch.float64)
    values = torch.randn(10, 2, heads, 3, dtype=torch.float64)
    y = pool(x, None, None, values)
    for i in range(9):
        x2, v2 = x.clone(), values.clone()
        x2[i + 1 :] += torch.randn_like(x2[i + 1 :]) * 5
        v2[i + 1 :] += torch.randn_like(v2[i + 1 :]) * 5
        y2 = pool(x2, None, None, v2)
        torch.testing.assert_close(y2[: i + 1], y[: i + 1], rtol=0, atol=0)
        assert not torch.allclose(y2[i + 1], y[i + 1])


def test_centred_kernel_reads_both_neighbours():
    """Encoder, K = 3: the size predicted for token i reads tokens i - 1 and i + 1."""
    pool = make_pool(kernel=3)
    x = torch.randn(6, 1, 8, dtype=torch.float64)
    _, sigma = pool.predict(x, None)
    for neighbour in (2, 4):
        changed = x.clone()
        changed[neighbour] += 1.0
        _, sigma2 = pool.predict(changed, None)
        assert not torch.allclose(sigma2[3], sigma[3])
    changed = x.clone()
    changed[[1, 5]] += 1.0  # outside the window of token 3
    torch.testing.assert_close(pool.predict(changed, None)[1][3], sigma[3], rtol=0, atol=0)


def _steps(pool, x, values, state, chunks):
    outs, start = [], 0
    for size in chunks:
        stop = start + size
        outs.append(pool(x[start:stop], None, state, values[start:stop]))
        start = stop
    return torch.cat(outs)


@pytest.mark.parametrize("normalize", ["sum", "mean"])
@pytest.mark.parametrize("heads,kernel", [(1, 1), (1, 3), (2, 2), (3, 5)])
@pytest.mark.parametrize("chunks", [[1] * 9, [2, 1, 3, 1, 2]])
def test_incremental_steps_equal_full_forward(normalize, heads, kernel, chunks):
    """Decoding token by token (or a few at a time) with the cache gives the full forward: the
    cache holds the last max_size values and weights and the predictor's last K - 1 taps."""
    pool = make_pool(causal=True, max_size=3, normalize=normalize, heads=heads, kernel=kernel)
    x = torch.randn(9, 2, 8, dtype=torch.float64)
    values = torch.randn(9, 2, heads, 4, dtype=torch.float64)
    full = pool(x, None, None, values)
    torch.testing.assert_close(_steps(pool, x, values, {}, chunks), full, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("heads,kernel", [(1, 3), (2, 2)])
def test_incremental_cache_follows_beam_reordering(heads, kernel):
    pool = make_pool(causal=True, max_size=2, heads=heads, kernel=kernel)
    x = torch.randn(8, 3, 8, dtype=torch.float64)
    values = torch.randn(8, 3, heads, 4, dtype=torch.float64)
    order = torch.tensor([2, 0, 0])
    state = {}
    _steps(pool, x[:4], values[:4], state, [1] * 4)
    pool.reorder_incremental_state(state, order)
    x_r, v_r = x.index_select(1, order), values.index_select(1, order)
    later = _steps(pool, x_r[4:], v_r[4:], state, [1] * 4)
    torch.testing.assert_close(later, pool(x_r, None, None, v_r)[4:], rtol=1e-12, atol=1e-12)


def test_memory_grows_linearly_with_length():
    """Forward and backward never hold a tensor that grows like T x T: the largest one a
    4x longer input makes is at most ~4x larger."""
    from torch.utils._python_dispatch import TorchDispatchMode

    class Largest(TorchDispatchMode):
        def __init__(self):
            super().__init__()
            self.numel = 0

        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            out = func(*args, **(kwargs or {}))
            for t in out if isinstance(out, (tuple, list)) else [out]:
                if isinstance(t, torch.Tensor):
                    self.numel = max(self.numel, t.numel())
            return out

    def largest(T):
        pool = make_pool(dim=4, max_size=3, heads=2, kernel=3).float()
        x = torch.randn(T, 2, 4, requires_grad=True)
        values = torch.randn(T, 2, 2, 4, requires_grad=True)
        with Largest() as mode:
            pool(x, None, None, values).sum().backward()
        return mode.numel

    short, long = largest(64), largest(256)
    assert long <= 4.5 * short, (short, long)
    assert long < 256 * 256
