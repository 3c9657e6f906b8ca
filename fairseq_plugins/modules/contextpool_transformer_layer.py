"""Transformer layers with ContextPool, one pair per ``--contextpool-placement``.

* ``attention`` (:class:`ContextPoolEncoderLayer`, :class:`ContextPoolDecoderLayer`): only
  :meth:`build_self_attention` changes, self-attention reads pooled features;
* ``stream`` (:class:`ContextPoolStreamEncoderLayer`, :class:`ContextPoolStreamDecoderLayer`):
  the layer input is replaced by its pooled features, then fairseq's forward runs on them.

Either way the layers' forward passes, norms, residuals and feed-forward blocks are fairseq's own.
"""

from typing import Dict, List, Optional

from torch import Tensor

from fairseq.modules.transformer_layer import (
    TransformerDecoderLayerBase,
    TransformerEncoderLayerBase,
)

from .context_pool import ContextPool
from .contextpool_attention import ContextPoolSelfAttention, _parent_method

PLACEMENT_CHOICES = ("attention", "stream")


def build_context_pool(embed_dim: int, cfg, causal: bool) -> ContextPool:
    """The ContextPool of one layer, configured by ``cfg.contextpool_*``."""
    return ContextPool(
        embed_dim,
        max_size=cfg.contextpool_max_size,
        normalize=cfg.contextpool_normalize,
        causal=causal,
        heads=cfg.contextpool_heads,
        predictor_kernel=cfg.contextpool_predictor_kernel,
    )


def refuse_cross_self_attention(cfg):
    if cfg.cross_self_attention:
        raise ValueError(
            "ContextPool pools the decoder's own prefix and cannot be combined with "
            "--cross-self-attention; set --contextpool-decoder-layers none or drop that flag"
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
        refuse_cross_self_attention(cfg)
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


class ContextPoolStreamEncoderLayer(TransformerEncoderLayerBase):
    """fairseq's encoder layer run on ``ContextPool(x)`` instead of ``x`` (placement "stream").

    The pooled features replace the layer input before anything else (the pre-norm, if any),
    so attention, the residual path and the FFN all see them; self-attention is fairseq's own.
    """

    def __init__(self, cfg, return_fc=False):
        super().__init__(cfg, return_fc=return_fc)
        self.pool = build_context_pool(self.embed_dim, cfg, causal=False)

    def forward(
        self,
        x,
        encoder_padding_mask: Optional[Tensor],
        attn_mask: Optional[Tensor] = None,
    ):
        """As :meth:`TransformerEncoderLayerBase.forward`; x is T x B x C."""
        x = self.pool(x, encoder_padding_mask)
        return self.layer_forward(x, encoder_padding_mask, attn_mask)


class ContextPoolStreamDecoderLayer(TransformerDecoderLayerBase):
    """fairseq's decoder layer run on causal ``ContextPool(x)`` (placement "stream").

    During incremental decoding the pool caches its last inputs, and fairseq's self-attention
    the keys and values of the pooled features: pooled position j depends on tokens <= j only,
    so both stay valid.
    """

    def __init__(self, cfg, no_encoder_attn=False, add_bias_kv=False, add_zero_attn=False):
        refuse_cross_self_attention(cfg)
        super().__init__(cfg, no_encoder_attn, add_bias_kv, add_zero_attn)
        self.pool = build_context_pool(self.embed_dim, cfg, causal=True)

    def forward(
        self,
        x,
        encoder_out: Optional[Tensor] = None,
        encoder_padding_mask: Optional[Tensor] = None,
        incremental_state: Optional[Dict[str, Dict[str, Optional[Tensor]]]] = None,
        prev_self_attn_state: Optional[List[Tensor]] = None,
        prev_attn_state: Optional[List[Tensor]] = None,
        self_attn_mask: Optional[Tensor] = None,
        self_attn_padding_mask: Optional[Tensor] = None,
        need_attn: bool = False,
        need_head_weights: bool = False,
    ):
        """As :meth:`TransformerDecoderLayerBase.forward`; x is T x B x C."""
        x = self.pool(x, self_attn_padding_mask, incremental_state)
        return self.layer_forward(
            x,
            encoder_out,
            encoder_padding_mask,
            incremental_state,
            prev_self_attn_state,
            prev_attn_state,
            self_attn_mask,
            self_attn_padding_mask,
            need_attn,
            need_head_weights,
        )


# fairseq's forward, which the stream layers call on the pooled input (TorchScript has no super())
_parent_method(ContextPoolStreamEncoderLayer, TransformerEncoderLayerBase, "forward", "layer_forward")
_parent_method(ContextPoolStreamDecoderLayer, TransformerDecoderLayerBase, "forward", "layer_forward")
