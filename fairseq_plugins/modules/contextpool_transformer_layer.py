"""Transformer layers whose self-attention is preceded by ContextPool.

Only :meth:`build_self_attention` changes; the layers' forward passes, norms,
residuals and feed-forward blocks are fairseq's own.
"""

from fairseq.modules.transformer_layer import (
    TransformerDecoderLayerBase,
    TransformerEncoderLayerBase,
)

from .context_pool import ContextPool
from .contextpool_attention import ContextPoolSelfAttention


def build_context_pool(embed_dim: int, cfg, causal: bool) -> ContextPool:
    """The ContextPool of one layer, configured by ``cfg.contextpool_*``."""
    return ContextPool(
        embed_dim,
        max_size=cfg.contextpool_max_size,
        normalize=cfg.contextpool_normalize,
        causal=causal,
    )


class ContextPoolEncoderLayer(TransformerEncoderLayerBase):
    """:class:`TransformerEncoderLayerBase` with bidirectional ContextPool."""

    def build_self_attention(self, embed_dim, cfg):
        return ContextPoolSelfAttention(
            embed_dim,
            cfg.encoder.attention_heads,
            pool=build_context_pool(embed_dim, cfg, causal=False),
            pool_inputs=cfg.contextpool_inputs,
            dropout=cfg.attention_dropout,
            q_noise=self.quant_noise,
            qn_block_size=self.quant_noise_block_size,
            xformers_att_config=cfg.encoder.xformers_att_config,
        )


class ContextPoolDecoderLayer(TransformerDecoderLayerBase):
    """:class:`TransformerDecoderLayerBase` with causal ContextPool."""

    def build_self_attention(self, embed_dim, cfg, add_bias_kv=False, add_zero_attn=False):
        if cfg.cross_self_attention:
            raise ValueError(
                "ContextPool pools the decoder's own prefix and cannot be combined with "
                "--cross-self-attention; set --contextpool-decoder-layers none or drop that flag"
            )
        return ContextPoolSelfAttention(
            embed_dim,
            cfg.decoder.attention_heads,
            pool=build_context_pool(embed_dim, cfg, causal=True),
            pool_inputs=cfg.contextpool_inputs,
            dropout=cfg.attention_dropout,
            add_bias_kv=add_bias_kv,
            add_zero_attn=add_zero_attn,
            q_noise=self.quant_noise,
            qn_block_size=self.quant_noise_block_size,
            xformers_att_config=cfg.decoder.xformers_att_config,
        )
