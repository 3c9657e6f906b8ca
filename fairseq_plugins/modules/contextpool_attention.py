"""Self-attention that runs between ContextPool features instead of tokens."""

import types
from typing import Dict, Optional, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor

from fairseq.modules import MultiheadAttention

from .context_pool import ContextPool

POOL_INPUT_CHOICES = ("qkv", "kv")


class ContextPoolSelfAttention(MultiheadAttention):
    """fairseq's :class:`MultiheadAttention` fed with pooled features.

    The pooled features ``ContextPool(x)`` replace the keys and values, and the
    queries too when ``pool_inputs="qkv"``. Parameter names are those of
    MultiheadAttention plus ``pool.*``, so the projections line up one to one
    with a plain Transformer's.

    With one pool (``pool.heads == 1``) the layer input is pooled and fairseq's own
    attention runs on it. With ``pool.heads = G > 1`` each of G groups of attention heads
    pools its own projected queries, keys and values with its own weights and sizes: the
    pooling sits between the projections and the attention, so this class runs the steps
    itself (:meth:`attend_per_group`).

    Args:
        embed_dim, num_heads, **kwargs: as for :class:`MultiheadAttention`.
        pool: the :class:`ContextPool` applied to the layer input; its ``heads`` must
            divide ``num_heads``.
        pool_inputs: ``"qkv"`` (attention between contexts, as in the paper's
            poster) or ``"kv"`` (token queries attend to pooled keys/values).
    """

    def __init__(self, embed_dim, num_heads, pool: ContextPool, pool_inputs: str = "qkv", **kwargs):
        if pool_inputs not in POOL_INPUT_CHOICES:
            raise ValueError(
                f"pool_inputs must be one of {POOL_INPUT_CHOICES}, got {pool_inputs!r}"
            )
        # fairseq's self_attention mode projects keys and values from the
        # *query* argument; with "kv" the query differs from the keys, so that
        # mode reads query, key and value separately (same projections).
        super().__init__(embed_dim, num_heads, self_attention=pool_inputs == "qkv", **kwargs)
        if num_heads % pool.heads:
            raise ValueError(
                f"the ContextPool's {pool.heads} pools must divide the {num_heads} attention "
                "heads (each pool serves a group of heads)"
            )
        if pool.heads > 1 and (self.bias_k is not None or self.add_zero_attn):
            raise ValueError("several ContextPool pools support neither add_bias_kv nor add_zero_attn")
        self.pool = pool
        self.pool_inputs = pool_inputs

    def forward(
        self,
        query: Tensor,
        key: Optional[Tensor],
        value: Optional[Tensor],
        key_padding_mask: Optional[Tensor] = None,
        incremental_state: Optional[Dict[str, Dict[str, Optional[Tensor]]]] = None,
        need_weights: bool = True,
        static_kv: bool = False,
        attn_mask: Optional[Tensor] = None,
        before_softmax: bool = False,
        need_head_weights: bool = False,
    ) -> Tuple[Tensor, Optional[Tensor]]:
        """The signature of :meth:`MultiheadAttention.forward` (T x B x C), spelt out for
        TorchScript.

        ``key`` and ``value`` must be the query itself (self-attention).
        """
        if not torch.jit.is_scripting():
            assert key is query and value is query, "ContextPool attention is self-attention only"
        if self.pool.heads > 1:
            if static_kv or before_softmax:
                raise ValueError("several ContextPool pools support neither static_kv nor before_softmax")
            return self.attend_per_group(
                query, key_padding_mask, incremental_state, need_weights, attn_mask,
                need_head_weights,
            )
        pooled = self.pool(query, key_padding_mask, incremental_state)
        query = pooled if self.pool_inputs == "qkv" else query
        return self.attend(
            query,
            pooled,
            pooled,
            key_padding_mask=key_padding_mask,
            incremental_state=incremental_state,
            need_weights=need_weights,
            static_kv=static_kv,
            attn_mask=attn_mask,
            before_softmax=before_softmax,
            need_head_weights=need_head_weights,
        )

    def attend_per_group(
        self,
        x: Tensor,
        key_padding_mask: Optional[Tensor],
        incremental_state: Optional[Dict[str, Dict[str, Optional[Tensor]]]],
        need_weights: bool,
        attn_mask: Optional[Tensor],
        need_head_weights: bool,
    ) -> Tuple[Tensor, Optional[Tensor]]:
        """Self-attention whose G head groups each pool their own projections (T x B x C).

        Projections, pooling per group, scaled dot-product attention, output projection.
        During incremental decoding keys and values are cached in MultiheadAttention's
        layout (``prev_key``, ``prev_value``: B x heads x S x d), so its beam reordering
        applies; the pooled keys of earlier steps stay valid because pooled position j
        depends on tokens <= j only. Returns the output and, if ``need_weights``, the
        attention weights as :meth:`MultiheadAttention.forward` returns them.
        """
        T, B, C = x.shape
        heads, d, groups = self.num_heads, self.head_dim, self.pool.heads
        q, k, v = self.q_proj(x), self.k_proj(x), self.v_proj(x)
        width = C // groups  # group g: channels (heads) g * width .. (g + 1) * width - 1
        if self.pool_inputs == "qkv":
            grouped = [q.view(T, B, groups, width), k.view(T, B, groups, width), v.view(T, B, groups, width)]
        else:  # token queries
            grouped = [k.view(T, B, groups, width), v.view(T, B, groups, width)]
        pooled = self.pool(x, key_padding_mask, incremental_state, torch.cat(grouped, dim=-1))
        parts = pooled.split(width, dim=-1)
        if self.pool_inputs == "qkv":
            q = parts[0]
        k, v = parts[-2], parts[-1]
        q, k, v = _heads_first(q, heads), _heads_first(k, heads), _heads_first(v, heads)
        if incremental_state is not None:
            k, v, key_padding_mask = self._cache_keys(k, v, key_padding_mask, incremental_state)
        mask = _additive_mask(attn_mask, key_padding_mask, q.dtype)
        dropout = self.dropout_module.p
        if not (self.training or self.dropout_module.apply_during_inference):
            dropout = 0.0
        weights: Optional[Tensor] = None
        if need_weights or need_head_weights:
            scores = torch.matmul(q * self.scaling, k.transpose(-1, -2))
            if mask is not None:
                scores = scores + mask
            wide = torch.promote_types(scores.dtype, torch.float32)  # softmax in fp32 or wider
            probs = torch.softmax(scores.to(wide), dim=-1).type_as(scores)  # B x heads x T x S
            out = torch.matmul(self.dropout_module(probs), v)
            weights = probs.transpose(0, 1)  # heads x B x T x S, as fairseq returns them
            if not need_head_weights:
                weights = weights.mean(dim=0)
        else:
            out = F.scaled_dot_product_attention(
                q, k, v, attn_mask=mask, dropout_p=dropout, scale=self.scaling
            )
        return self.out_proj(out.permute(2, 0, 1, 3).reshape(T, B, C)), weights

    def _cache_keys(
        self,
        k: Tensor,
        v: Tensor,
        key_padding_mask: Optional[Tensor],
        incremental_state: Dict[str, Dict[str, Optional[Tensor]]],
    ) -> Tuple[Tensor, Tensor, Optional[Tensor]]:
        """Prepends the cached keys, values (B x heads x S x d) and padding mask (B x S)."""
        saved = self._get_input_buffer(incremental_state)
        prev_key, prev_value = saved.get("prev_key"), saved.get("prev_value")
        prev_padding = saved.get("prev_key_padding_mask")
        previous = 0
        if prev_key is not None and prev_value is not None:
            previous = prev_key.size(2)
            k = torch.cat([prev_key, k], dim=2)
            v = torch.cat([prev_value, v], dim=2)
        if prev_padding is not None or key_padding_mask is not None:
            B, new = k.size(0), k.size(2) - previous
            if prev_padding is None:
                prev_padding = torch.zeros(B, previous, dtype=torch.bool, device=k.device)
            if key_padding_mask is None:
                key_padding_mask = torch.zeros(B, new, dtype=torch.bool, device=k.device)
            key_padding_mask = torch.cat(
                [prev_padding.to(torch.bool), key_padding_mask.to(torch.bool)], dim=1
            )
        saved["prev_key"] = k
        saved["prev_value"] = v
        saved["prev_key_padding_mask"] = key_padding_mask
        self._set_input_buffer(incremental_state, saved)
        return k, v, key_padding_mask


def _heads_first(t: Tensor, heads: int) -> Tensor:
    """T x B x (G, C / G) -> B x heads x T x d."""
    T, B = t.size(0), t.size(1)
    return t.reshape(T, B, heads, -1).permute(1, 2, 0, 3)


def _additive_mask(
    attn_mask: Optional[Tensor], key_padding_mask: Optional[Tensor], dtype: torch.dtype
) -> Optional[Tensor]:
    """fairseq's attention mask (T x S, added) and key padding mask (B x S, True at padding)
    as one additive mask that broadcasts over B x heads x T x S."""
    mask: Optional[Tensor] = None
    if attn_mask is not None:
        mask = attn_mask.to(dtype)
    if key_padding_mask is not None:
        B, S = key_padding_mask.shape
        padding = torch.zeros(B, 1, 1, S, dtype=dtype, device=key_padding_mask.device)
        padding = padding.masked_fill(key_padding_mask.view(B, 1, 1, S).to(torch.bool), float("-inf"))
        mask = padding if mask is None else mask + padding
    return mask


def _parent_method(cls, parent, name: str, alias: str):
    """``parent.name`` as the method ``cls.alias``: the same code, callable from TorchScript.

    TorchScript has no ``super()``, and compiles a method it meets through ``self`` under its
    function's ``__name__`` (so ``alias = parent.forward`` would clash with ``cls.forward``).
    The body of :meth:`MultiheadAttention.forward` calls a static method through the name
    ``MultiheadAttention``, which TorchScript resolves only for the class being compiled; the
    alias therefore sees that name as ``cls`` (which inherits the static method).
    """
    fn = getattr(parent, name)
    method = types.FunctionType(
        fn.__code__, {**fn.__globals__, parent.__name__: cls}, alias, fn.__defaults__,
        fn.__closure__,
    )
    method.__annotations__ = dict(fn.__annotations__)
    method.__kwdefaults__ = fn.__kwdefaults__
    method.__doc__ = f"{parent.__name__}.{name} (see _parent_method)."
    method.__module__ = cls.__module__
    method.__qualname__ = f"{cls.__qualname__}.{alias}"
    setattr(cls, alias, method)


# MultiheadAttention.forward, which ContextPoolSelfAttention.forward calls after pooling
_parent_method(ContextPoolSelfAttention, MultiheadAttention, "forward", "attend")
