"""contextpool-mt's fairseq user dir: ``--user-dir fairseq_plugins``.

Importing it registers the ``contextpool_transformer`` model and its
architectures and the ``translation_bf16`` task (bf16 mixed precision), and
lets torch's weights-only loader read fairseq checkpoints (see :mod:`fairseq_plugins.checkpoint_loading`).
"""

from . import checkpoint_loading  # noqa: F401  (registers safe globals)
from . import models  # noqa: F401  (registers the model)
from . import tasks  # noqa: F401  (registers translation_bf16)
from .modules import ContextPool  # noqa: F401
