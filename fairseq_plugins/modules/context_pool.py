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
During incremental decoding the module caches the last ``max_size`` weighted
inputs, so step t costs O(max_size * C) and needs no recomputation of the
prefix.
"""

import math
from typing import Dict, Optional, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch import Tensor

from fairseq.incremental_decoding_utils import with_incremental_state

NORMALIZE_CHOICES = ("sum", "mean")

# Smallest Gaussian width: keeps (d / sigma)^2 finite in every dtype while
# still making the mask an exact one-hot at the smallest predicted size.
_MIN_SIGMA = 1e-3


@with_incremental_state
class ContextPool(nn.Module):
    """Pools each token's neighbourhood into one context feature.

    Args:
        embed_dim: C, the feature size of the input.
        max_size: largest pooling radius in tokens (the mask's support).
        normalize: ``"sum"`` (the poster's plain weighted sum) or ``"mean"``
            (divide by ``sum_j w_j g^i_j``, a weighted average).
        causal: only pool positions ``j <= i`` (decoder self-attention).

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
    ):
        super().__init__()
        if max_size < 1:
            raise ValueError(f"ContextPool max_size must be >= 1, got {max_size}")
        if normalize not in NORMALIZE_CHOICES:
            raise ValueError(
                f"ContextPool normalize must be one of {NORMALIZE_CHOICES}, got {normalize!r}"
            )
        self.embed_dim = embed_dim
        self.max_size = max_size
        self.normalize = normalize
        self.causal = causal
        self.weight_proj = nn.Linear(embed_dim, 1)
        self.size_proj = nn.Linear(embed_dim, 1)
        nn.init.zeros_(self.weight_proj.bias)
        init_size = min(1.0, max_size / 2)
        nn.init.constant_(self.size_proj.bias, math.log(init_size / (max_size - init_size)))

    def extra_repr(self) -> str:
        return f"max_size={self.max_size}, normalize={self.normalize}, causal={self.causal}"

    def predict(self, x: Tensor, padding_mask: Optional[Tensor]) -> Tuple[Tensor, Tensor]:
        """Pooling weights and Gaussian widths, both T x B, in float32 or wider.

        Args:
            x: T x B x C input.
            padding_mask: B x T, True (or 1) at padding; those weights are 0.
        """
        dtype = torch.promote_types(x.dtype, torch.float32)  # fp16/bf16 -> fp32
        weight = torch.sigmoid(self.weight_proj(x).squeeze(-1).to(dtype))
        if padding_mask is not None:
            weight = weight.masked_fill(padding_mask.t().bool(), 0.0)
        size = self.max_size * torch.sigmoid(self.size_proj(x).squeeze(-1).to(dtype))
        sigma = (0.5 * size).clamp_min(_MIN_SIGMA)
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
    ) -> Tensor:
        """
        Args:
            x: T x B x C layer input.
            padding_mask: B x T, True at padding positions.
            incremental_state: fairseq's decoding cache; only in causal mode.
                ``x`` then holds the newest T positions (usually T = 1).

        Returns:
            T x B x C pooled features, in the dtype of ``x``.
        """
        weight, sigma = self.predict(x, padding_mask)
        weighted = x * weight.unsqueeze(-1).to(x.dtype)
        k = self.max_size
        if incremental_state is not None:
            assert self.causal, "incremental decoding needs a causal ContextPool"
            weighted, weight = self._prepend_history(weighted, weight, incremental_state)
        # Pad the time axis so that every offset is a plain slice of length T.
        num_new = x.size(0)
        left = k - (weighted.size(0) - num_new)
        right = 0 if self.causal else k
        weighted = F.pad(weighted, (0, 0, 0, 0, left, right))
        weight = F.pad(weight, (0, 0, left, right))

        # g[d] is the mask at offset d for every query position: D x T x B.
        offsets = torch.tensor(list(self.offsets()), device=x.device, dtype=sigma.dtype)
        gauss = torch.exp(-0.5 * (offsets.view(-1, 1, 1) / sigma.unsqueeze(0)) ** 2)
        gauss_x = gauss.to(x.dtype).unsqueeze(-1)

        pooled = None
        norm = None
        for n, d in enumerate(self.offsets()):
            start = k + d
            term = weighted[start : start + num_new] * gauss_x[n]
            pooled = term if pooled is None else pooled + term
            if self.normalize == "mean":
                mass = weight[start : start + num_new] * gauss[n]
                norm = mass if norm is None else norm + mass
        if self.normalize == "mean":
            # All-pad columns have zero mass; their output is 0, not NaN.
            pooled = pooled / norm.clamp_min(1e-6).unsqueeze(-1).to(x.dtype)
        return pooled

    def _prepend_history(
        self,
        weighted: Tensor,
        weight: Tensor,
        incremental_state: Dict[str, Dict[str, Optional[Tensor]]],
    ) -> Tuple[Tensor, Tensor]:
        """Prepends the cached last ``max_size`` positions and updates the cache."""
        cache = self.get_incremental_state(incremental_state, "pool_state")
        if cache is not None and cache.get("weighted") is not None:
            # the cache is B x H x C / B x H; time goes first here
            weighted = torch.cat([cache["weighted"].transpose(0, 1), weighted], dim=0)
            weight = torch.cat([cache["weight"].transpose(0, 1), weight], dim=0)
        keep = self.max_size
        self.set_incremental_state(
            incremental_state,
            "pool_state",
            {
                "weighted": weighted[-keep:].transpose(0, 1),
                "weight": weight[-keep:].transpose(0, 1),
            },
        )
        return weighted, weight

    @torch.jit.unused
    def reorder_incremental_state(
        self,
        incremental_state: Dict[str, Dict[str, Optional[Tensor]]],
        new_order: Tensor,
    ):
        """Follows beam search's reordering of hypotheses (batch dimension)."""
        cache = self.get_incremental_state(incremental_state, "pool_state")
        if cache is not None:
            for key, value in cache.items():
                if value is not None:
                    cache[key] = value.index_select(0, new_order)
            self.set_incremental_state(incremental_state, "pool_state", cache)
        return incremental_state
