from .translation_provenance import TranslationProvenanceTask  # noqa: F401  (registers the task)
from .translation_bf16 import TranslationBF16Task  # noqa: F401  (registers the task)
