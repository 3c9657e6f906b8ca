"""Self-attention that runs between ContextPool features instead of tokens."""

import types
from typing import Dict, Optional, Tuple

import torch
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

    Args:
        embed_dim, num_heads, **kwargs: as for :class:`MultiheadAttention`.
        pool: the :class:`ContextPool` applied to the layer input.
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
