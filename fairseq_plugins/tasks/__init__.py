from .translation_bf16 import TranslationBF16Task  # noqa: F401  (registers the task)
