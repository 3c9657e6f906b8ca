"""contextpool-mt's fairseq user dir: ``--user-dir fairseq_plugins``.

Importing it registers the ``contextpool_transformer`` model and its
architectures and the ``translation_provenance`` and ``translation_bf16`` tasks (translation
that records its corpus in every checkpoint; the same in bf16 mixed precision),
lets torch's weights-only loader read fairseq checkpoints (see :mod:`fairseq_plugins.checkpoint_loading`),
and silences the hydra deprecation warnings of fairseq's own calls (:mod:`fairseq_plugins.hydra_warnings`).
"""

from . import checkpoint_loading  # noqa: F401  (registers safe globals)
from .hydra_warnings import filter_hydra_deprecations
from . import models  # noqa: F401  (registers the model)
from . import tasks  # noqa: F401  (registers translation_provenance, translation_bf16)
from .modules import ContextPool  # noqa: F401

filter_hydra_deprecations()  # fairseq's hydra 1.0 calls, on every run
