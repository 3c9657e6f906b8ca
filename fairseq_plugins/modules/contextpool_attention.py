"""Self-attention that runs between ContextPool features instead of tokens."""

from typing import Dict, Optional, Tuple

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
        **kwargs,
    ) -> Tuple[Tensor, Optional[Tensor]]:
        """Same signature as :meth:`MultiheadAttention.forward` (T x B x C).

        ``key`` and ``value`` must be the query itself (self-attention).
        """
        assert key is query and value is query, "ContextPool attention is self-attention only"
        pooled = self.pool(query, key_padding_mask, incremental_state)
        query = pooled if self.pool_inputs == "qkv" else query
        return super().forward(
            query,
            pooled,
            pooled,
            key_padding_mask=key_padding_mask,
            incremental_state=incremental_state,
            **kwargs,
        )
