from .context_pool import ContextPool
from .contextpool_attention import ContextPoolSelfAttention
from .contextpool_transformer_layer import ContextPoolDecoderLayer, ContextPoolEncoderLayer

__all__ = [
    "ContextPool",
    "ContextPoolSelfAttention",
    "ContextPoolEncoderLayer",
    "ContextPoolDecoderLayer",
]
