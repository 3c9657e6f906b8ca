from .contextpool_transformer import (
    ContextPoolConfig,
    ContextPoolTransformerDecoder,
    ContextPoolTransformerEncoder,
    ContextPoolTransformerModel,
)

__all__ = [
    "ContextPoolConfig",
    "ContextPoolTransformerModel",
    "ContextPoolTransformerEncoder",
    "ContextPoolTransformerDecoder",
]
