"""Adaptive Context Pooling (Huang et al., ICML 2022): the whole math lives here.

For every position i the layer input ``x`` (T x B x C) is pooled into one
context feature

    y_i = sum_j x_j * w_j * g^i_j                      (normalize="sum")
    y_i = sum_j x_j * w_j * g^i_j / sum_j w_j * g^i_j  (normalize="mean")

where

* ``w_j = sigmoid(W_w x_j + b_w)`` is a pooling weight predicted per token
  (zero at padding, so padding never contributes);
* ``g^i_j = exp(-(j - i)^2 / (2 sigma_i^2))`` is a Gaussian mask centred on i,
  whose width comes from a pooling size predicted per token:
  ``s_i = max_size * sigmoid(W_s x_i + b_s)`` with ``sigma_i = s_i / 2``,
  so ``s_i`` is the radius (in tokens) at which the mask falls to exp(-2);
* the mask is truncated to ``|j - i| <= max_size`` (a banded computation, no
  T x T matrix), and in causal mode (decoder) to ``i - max_size <= j <= i``.

Both predictors are per-token linear maps, so they only ever look at the token
they predict for: causality of the whole module follows from the causal mask.
During incremental decoding the module caches the last ``max_size`` inputs
and weights, so step t costs O(max_size * C) and needs no recomputation of the
prefix.

Implementation: the sum runs over the D = 2 max_size + 1 offsets (max_size + 1
when causal) as ``y_i = sum_n a[i, n] x_{i + d_n}`` with coefficients
``a = w g`` (``/ sum_n w g`` for "mean"), all in [0, 1]; they are T x B x D,
D / C of the input's size. The product with x is one batched matrix product
over overlapping windows of x (a strided view, nothing copied), and a custom
autograd function keeps only x, w and sigma for backward, where it rebuilds
the coefficients.
"""

import math
from typing import Dict, Optional, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch import Tensor
from torch.autograd.function import once_differentiable

from fairseq.incremental_decoding_utils import with_incremental_state

NORMALIZE_CHOICES = ("sum", "mean")

# Smallest Gaussian width: keeps (d / sigma)^2 finite in every dtype while
# still making the mask an exact one-hot at the smallest predicted size.
_MIN_SIGMA = 1e-3
# Smallest normaliser of "mean": all-pad columns have zero mass; their output is 0, not NaN.
_MIN_MASS = 1e-6
# Floor of log g: mask values below e^-50 (~2e-22) are raised to it. Far below the float32
# resolution of any coefficient that matters, and it keeps exp() and the products after it
# out of the subnormal range, where CPUs compute about 10x slower.
_MIN_LOG_MASK = -50.0
# (Code that TorchScript compiles takes these as default arguments: it cannot read a
# module-level float.)


@with_incremental_state
class ContextPool(nn.Module):
    """Pools each token's neighbourhood into one context feature.

    Args:
        embed_dim: C, the feature size of the input.
        max_size: largest pooling radius in tokens (the mask's support).
        normalize: ``"sum"`` (the poster's plain weighted sum) or ``"mean"``
            (divide by ``sum_j w_j g^i_j``, a weighted average).
        causal: only pool positions ``j <= i`` (decoder self-attention).
        heads: H, the number of pools: each has its own weights and sizes and pools
            its own features (``values`` of :meth:`forward`, e.g. a group of attention
            heads' projections); all are predicted from the whole input x.
        predictor_kernel: K, the tokens each prediction reads: 1 is a per-token linear
            map; K > 1 a 1-D convolution over positions i - left .. i - left + K - 1,
            left = K // 2 (centred; one more on the left for an even K) or, causal,
            left = K - 1 (the token and the K - 1 before it). Padding reads as zeros.

    Parameters: ``weight_proj`` and ``size_proj``, Linear(K C, H); the K C input columns are
    the K taps, oldest first, C each (with K = H = 1 the per-token maps of the first version).

    The size predictor starts (through its bias) at a radius of one token, or
    ``max_size / 2`` if smaller: each token starts mostly as itself, with its
    neighbours at weight exp(-2), so the layer starts close to a plain
    Transformer layer while the size gradient is far from vanishing.
    """

    def __init__(
        self,
        embed_dim: int,
        max_size: int,
        normalize: str = "mean",
        causal: bool = False,
        heads: int = 1,
        predictor_kernel: int = 1,
    ):
        super().__init__()
        for name, value in (("max_size", max_size), ("heads", heads),
                            ("predictor_kernel", predictor_kernel)):
            if value < 1:
                raise ValueError(f"ContextPool {name} must be >= 1, got {value}")
        if normalize not in NORMALIZE_CHOICES:
            raise ValueError(
                f"ContextPool normalize must be one of {NORMALIZE_CHOICES}, got {normalize!r}"
            )
        self.embed_dim = embed_dim
        self.max_size = max_size
        self.normalize = normalize
        self.causal = causal
        self.heads = heads
        self.predictor_kernel = predictor_kernel
        # first predicted position's window: taps read positions i - left .. i - left + K - 1
        self.predictor_left = predictor_kernel - 1 if causal else predictor_kernel // 2
        self.weight_proj = nn.Linear(embed_dim * predictor_kernel, heads)
        self.size_proj = nn.Linear(embed_dim * predictor_kernel, heads)
        nn.init.zeros_(self.weight_proj.bias)
        init_size = min(1.0, max_size / 2)
        nn.init.constant_(self.size_proj.bias, math.log(init_size / (max_size - init_size)))

    def extra_repr(self) -> str:
        return (
            f"max_size={self.max_size}, normalize={self.normalize}, causal={self.causal}, "
            f"heads={self.heads}, predictor_kernel={self.predictor_kernel}"
        )

    def predict(
        self, x: Tensor, padding_mask: Optional[Tensor], min_sigma: float = _MIN_SIGMA
    ) -> Tuple[Tensor, Tensor]:
        """Pooling weights and Gaussian widths of whole sequences, both T x B x H, in float32
        or wider.

        Args:
            x: T x B x C input.
            padding_mask: B x T, True (or 1) at padding; those weights are 0 (and, with a
                predictor kernel K > 1, those inputs read as zeros).
        """
        K, left = self.predictor_kernel, self.predictor_left
        taps = _pad_time(self._taps(x, padding_mask), left, K - 1 - left)
        return self._activate(self._convolve(taps), padding_mask, min_sigma)

    def _taps(self, x: Tensor, padding_mask: Optional[Tensor]) -> Tensor:
        """Each token's contributions to the predictor logits.

        K = 1: the logits themselves, T x B x 2H (weights of the H pools, then sizes).
        K > 1: T x B x 2HK, logit p's K taps at columns p K .. p K + K - 1, without the
        bias; zero at padding (the convolution reads padding as zeros).
        """
        weight = torch.cat([self.weight_proj.weight, self.size_proj.weight])  # 2H x KC
        if self.predictor_kernel == 1:
            # both predictors in one pass over x: [W_w; W_s] x + [b_w; b_s]
            return F.linear(x, weight, torch.cat([self.weight_proj.bias, self.size_proj.bias]))
        taps = F.linear(x, weight.view(-1, x.size(-1)))
        if padding_mask is not None:
            taps = taps.masked_fill(padding_mask.t().to(torch.bool).unsqueeze(-1), 0.0)
        return taps

    def _convolve(self, taps: Tensor) -> Tensor:
        """Logits T x B x 2H, in float32 or wider, from the taps of (K - 1 + T) positions
        (:meth:`_taps`, padded around the T predicted ones by the window's reach)."""
        dtype = torch.promote_types(taps.dtype, torch.float32)  # fp16/bf16 -> fp32
        K = self.predictor_kernel
        if K == 1:
            return taps.to(dtype)
        T = taps.size(0) - K + 1
        taps = taps.to(dtype).view(taps.size(0), taps.size(1), -1, K)
        logits = torch.cat([self.weight_proj.bias, self.size_proj.bias]).to(dtype)
        for k in range(K):  # tap k of position i sits at row i + k of the padded taps
            logits = logits + taps[k : k + T, :, :, k]
        return logits

    def _activate(
        self, logits: Tensor, padding_mask: Optional[Tensor], min_sigma: float = _MIN_SIGMA
    ) -> Tuple[Tensor, Tensor]:
        """Weights (zero at padding) and widths sigma = s / 2, T x B x H each."""
        probs = torch.sigmoid(logits)
        weight = probs[..., : self.heads]
        if padding_mask is not None:
            weight = weight.masked_fill(padding_mask.t().to(torch.bool).unsqueeze(-1), 0.0)
        sigma = (probs[..., self.heads :] * (0.5 * self.max_size)).clamp_min(min_sigma)
        return weight, sigma

    def offsets(self) -> range:
        """Relative positions d = j - i inside the mask's support."""
        k = self.max_size
        return range(-k, 1) if self.causal else range(-k, k + 1)

    def forward(
        self,
        x: Tensor,
        padding_mask: Optional[Tensor] = None,
        incremental_state: Optional[Dict[str, Dict[str, Optional[Tensor]]]] = None,
        values: Optional[Tensor] = None,
    ) -> Tensor:
        """
        Args:
            x: T x B x C layer input, which the predictors read.
            padding_mask: B x T, True at padding positions.
            incremental_state: fairseq's decoding cache; only in causal mode.
                ``x`` then holds the newest T positions (usually T = 1).
            values: T x B x H x F, the features pool h pools (h = 0 .. H - 1); by
                default x itself (one pool).

        Returns:
            the pooled values, T x B x H x F (T x B x C without ``values``), in their dtype.
        """
        pooled = x.unsqueeze(2) if values is None else values
        taps = self._taps(x, padding_mask)
        K, left = self.predictor_kernel, self.predictor_left
        if incremental_state is None:
            weight, sigma = self._activate(
                self._convolve(_pad_time(taps, left, K - 1 - left)), padding_mask
            )
        else:
            assert self.causal, "incremental decoding needs a causal ContextPool"
            pooled, weight, sigma = self._step(pooled, taps, padding_mask, incremental_state)
        out = self._pool(pooled, weight, sigma, incremental_state is not None)
        return out.squeeze(2) if values is None else out

    def _pool(self, values: Tensor, weight: Tensor, sigma: Tensor, incremental: bool) -> Tensor:
        """Every pool h pools its own values: the pools are folded into the batch dimension.

        Args:
            values: L x B x H x F, L - T >= 0 positions of history first (incremental).
            weight: L x B x H; sigma: T x B x H.
        Returns:
            T x B x H x F.
        """
        L, B, H, C = values.shape
        T = sigma.size(0)
        x, weight, sigma = values.reshape(L, B * H, C), weight.reshape(L, B * H), sigma.reshape(T, B * H)
        mean = self.normalize == "mean"
        if incremental and T == 1:  # one new position: the usual decoding step
            return _pool_last(x, weight, sigma, mean).view(T, B, H, C)
        right = 0 if self.causal else self.max_size  # offsets() run from -max_size to right
        if torch.jit.is_scripting():  # TorchScript has no autograd.Function: inference only
            return _banded_pool(x, weight, sigma, self.max_size, right, mean).view(T, B, H, C)
        return _BandedPool.apply(x, weight, sigma, self.max_size, right, mean).view(T, B, H, C)

    def _step(
        self,
        values: Tensor,
        taps: Tensor,
        padding_mask: Optional[Tensor],
        incremental_state: Dict[str, Dict[str, Optional[Tensor]]],
    ) -> Tuple[Tensor, Tensor, Tensor]:
        """Predictions of the newest T positions, with the cached history, and the cache update.

        The cache holds, batch first, the last ``max_size`` values (B x max_size x H x F) and
        weights (B x max_size x H) and, with a predictor kernel K > 1, the taps of the last
        K - 1 positions (B x (K - 1) x 2HK; zeros before the first token).
        Returns the values and weights with their history prepended (time first), and the
        T x B x H widths.
        """
        K = self.predictor_kernel
        cache = self.get_incremental_state(incremental_state, "pool_state")
        cached_input: Optional[Tensor] = None
        cached_weight: Optional[Tensor] = None
        cached_taps: Optional[Tensor] = None
        if cache is not None:
            cached_input, cached_weight = cache.get("input"), cache.get("weight")
            cached_taps = cache.get("taps")
        if K > 1:
            if cached_taps is None:
                taps = _pad_time(taps, K - 1, 0)
            else:
                taps = torch.cat([cached_taps.transpose(0, 1), taps], dim=0)
        weight, sigma = self._activate(self._convolve(taps), padding_mask)
        if cached_input is not None and cached_weight is not None:
            values = torch.cat([cached_input.transpose(0, 1), values], dim=0)
            weight = torch.cat([cached_weight.transpose(0, 1), weight], dim=0)
        keep = self.max_size
        new_cache: Dict[str, Optional[Tensor]] = {
            "input": values[-keep:].transpose(0, 1),
            "weight": weight[-keep:].transpose(0, 1),
        }
        if K > 1:
            new_cache["taps"] = taps[-(K - 1) :].transpose(0, 1)
        self.set_incremental_state(incremental_state, "pool_state", new_cache)
        return values, weight, sigma

    @torch.jit.export
    def reorder_incremental_state(
        self,
        incremental_state: Optional[Dict[str, Dict[str, Optional[Tensor]]]],
        new_order: Tensor,
    ):
        """Follows beam search's reordering of hypotheses (batch dimension)."""
        cache = self.get_incremental_state(incremental_state, "pool_state")
        if cache is not None:
            for key in cache.keys():
                value = cache[key]
                if value is not None:
                    cache[key] = value.index_select(0, new_order)
            incremental_state = self.set_incremental_state(incremental_state, "pool_state", cache)
        return incremental_state


def _gaussian(offsets: Tensor, sigma: Tensor, min_log: float = _MIN_LOG_MASK) -> Tensor:
    """g = exp(-d^2 / (2 sigma^2)) (floored at e^_MIN_LOG_MASK): sigma (...) x offsets (D)."""
    log_gauss = (offsets * offsets * -0.5) * sigma.pow(-2).unsqueeze(-1)
    return log_gauss.clamp_min_(min_log).exp_()


def _pool_last(
    x: Tensor, weight: Tensor, sigma: Tensor, mean: bool, min_mass: float = _MIN_MASS
) -> Tensor:
    """The causal pool of the last position only: one decoding step.

    Args:
        x: L x B x C, the cached history and the new position (last).
        weight: L x B, their weights.
        sigma: 1 x B, the new position's width.
    Returns:
        1 x B x C.
    """
    offsets = torch.arange(1 - x.size(0), 1, device=sigma.device, dtype=sigma.dtype)
    coeffs = _gaussian(offsets, sigma[0]) * weight.t()  # B x L
    if mean:
        coeffs = coeffs / coeffs.sum(-1, keepdim=True).clamp_min(min_mass)
    pooled = torch.bmm(coeffs.to(x.dtype).unsqueeze(1), x.transpose(0, 1))  # B x 1 x C
    return pooled.transpose(0, 1)


def _pad_time(t: Tensor, before: int, after: int) -> Tensor:
    """``t`` (T x B or T x B x C) with zero rows before and after on the time axis."""
    if before == 0 and after == 0:
        return t
    size = list(t.shape)
    size[0] += before + after
    out = t.new_empty(size)
    out[:before].zero_()
    out[before + t.size(0) :].zero_()
    out[before : before + t.size(0)] = t
    return out


def _band(a: Tensor, v: Tensor) -> Tensor:
    """out[i] = sum_n a[i, :, n] * v[i + n]: T x B x D coefficients, (T + D - 1) x B x C values.

    A batched (1 x D) @ (D x C) product over a strided view of ``v``: the D-row windows
    overlap in memory and are never copied.
    """
    windows = v.unfold(0, a.size(-1), 1).transpose(-1, -2)  # T x B x D x C view
    return (a.unsqueeze(-2) @ windows).squeeze(-2)


def _skew(a: Tensor) -> Tensor:
    """s[p, :, m] = a[p + m - D + 1, :, D - 1 - m] (zero outside a): (T + D - 1) x B x D.

    Row p holds the coefficients with which position p of the values enters the outputs,
    so ``_band(_skew(a), u)`` is the adjoint of ``_band(a, .)``. A strided view of ``a``
    padded with D - 1 zero rows on both sides, made contiguous (it is small).
    """
    D = a.size(-1)
    a = _pad_time(a, D - 1, D - 1)  # contiguous: strides (B * D, D, 1)
    rows, B = a.size(0) - D + 1, a.size(1)
    return a.as_strided((rows, B, D), (B * D, D, B * D - 1), D - 1).contiguous()


def _coefficients(
    sigma: Tensor, weight: Tensor, left: int, right: int, mean: bool, min_mass: float = _MIN_MASS
) -> Tuple[Tensor, Tensor, Tensor, Optional[Tensor], Tensor]:
    """a[i, :, n] = c[i, :, n] (/ sum_n c[i, :, n] for "mean"), c = g^i_j w_j at j = i + n - left.

    Args:
        sigma: T x B widths.
        weight: (T + D - 1) x B weights, padded with zeros (D = left + right + 1).
    Returns:
        a, g, c (all T x B x D), the mass sum_n c (T x B x 1; None for "sum") and
        the offsets j - i (D).
    """
    offsets = torch.arange(-left, right + 1, device=sigma.device, dtype=sigma.dtype)
    gauss = _gaussian(offsets, sigma)
    unnormalized = gauss * weight.unfold(0, offsets.numel(), 1)
    if not mean:
        return unnormalized, gauss, unnormalized, None, offsets
    mass = unnormalized.sum(-1, keepdim=True)
    return unnormalized / mass.clamp_min(min_mass), gauss, unnormalized, mass, offsets


def _support(x: Tensor, sigma: Tensor, left: int, right: int) -> Tuple[int, int]:
    """(left, right) cut to the offsets that reach a position of ``x`` (shapes as in _BandedPool).

    Beyond them lies only zero padding, of weight 0, which adds nothing to any pooled feature
    but would cost time and memory linear in the support: a max_size far above the sequence
    length costs what the sequence length does, and the result is the same.
    """
    return min(left, max(x.size(0) - 1, 0)), min(right, max(sigma.size(0) - 1, 0))


def _banded_pool(x: Tensor, weight: Tensor, sigma: Tensor, left: int, right: int, mean: bool):
    """y_i = sum_n a[i, n] x[i + d_n]: the forward of :class:`_BandedPool`, plain tensor code.

    Also what a TorchScript-compiled model runs (TorchScript cannot call an autograd.Function);
    differentiating it with autograd would keep the T x B x D x C windows, so training goes
    through :class:`_BandedPool`. Shapes as there.
    """
    left, right = _support(x, sigma, left, right)
    before = left - (x.size(0) - sigma.size(0))  # zero rows before x (and its history)
    coeffs = _coefficients(sigma, _pad_time(weight, before, right), left, right, mean)[0]
    # .to: under autocast the product may run in a lower precision than x
    return _band(coeffs.to(x.dtype), _pad_time(x, before, right)).to(x.dtype)


class _BandedPool(torch.autograd.Function):
    """y_i = sum_n a[i, n] x[i + d_n], the T x B x C part of ContextPool, with a lean graph.

    ``x`` (T' x B x C) and ``weight`` (T' x B) may start with T' - T <= left positions of
    history (incremental decoding); ``sigma`` (T x B) and the output are the last T.
    Backward needs only x, weight and sigma: x is kept anyway by the predictors, so the
    pooling adds no T x B x C tensor to the autograd graph.
    """

    @staticmethod
    def forward(ctx, x, weight, sigma, left: int, right: int, mean: bool):
        left, right = _support(x, sigma, left, right)
        ctx.left, ctx.right, ctx.mean = left, right, mean
        ctx.save_for_backward(x, weight, sigma)
        return _banded_pool(x, weight, sigma, left, right, mean)

    @staticmethod
    @once_differentiable
    def backward(ctx, grad):
        x, weight, sigma = ctx.saved_tensors
        left, right = ctx.left, ctx.right
        before = left - (x.size(0) - sigma.size(0))
        coeffs, gauss, unnormalized, mass, offsets = _coefficients(
            sigma, _pad_time(weight, before, right), left, right, ctx.mean
        )
        # y_i = sum_n a[i, n] x[i + n]: to the coefficients and (transposed band) to x
        x_windows = _pad_time(x, before, right).unfold(0, offsets.numel(), 1)  # T x B x C x D
        grad_coeffs = (grad.unsqueeze(-2) @ x_windows).squeeze(-2).to(gauss.dtype)
        rows, history = slice(before, before + x.size(0)), x.size(0) - sigma.size(0)
        grad_x = _band(_skew(coeffs.to(x.dtype))[rows], _pad_time(grad, right + history, left))
        if ctx.mean:  # a = c / max(sum_n c, _MIN_MASS) with c = g w
            grad_mass = -(grad_coeffs * coeffs).sum(-1, keepdim=True) * (mass >= _MIN_MASS)
            grad_coeffs = (grad_coeffs + grad_mass) / mass.clamp_min(_MIN_MASS)
        # c = g w: to the widths through dg/dsigma = g d^2 / sigma^3, and to the weights
        grad_sigma = (grad_coeffs * unnormalized * offsets**2).sum(-1) / sigma**3
        grad_weight = _skew(grad_coeffs * gauss)[rows].sum(-1)
        return grad_x, grad_weight, grad_sigma, None, None, None
