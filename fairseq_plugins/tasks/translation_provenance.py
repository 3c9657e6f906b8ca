"""``--task translation_provenance``: fairseq's translation task, recording its corpus in checkpoints.

fairseq saves a task's state in every checkpoint it writes (``task_state``, from
:meth:`FairseqTask.state_dict`) and hands it back to the task when a checkpoint is loaded for
inference (:meth:`FairseqTask.load_state_dict`). This task puts the fingerprint of its corpus
there (:mod:`fairseq_plugins.corpus_fingerprint`: languages, dictionaries, SentencePiece model),
so every checkpoint of a run says what it was trained on, wherever it is copied: checkpoint_best.pt
and checkpoint_last.pt as much as the epoch checkpoints. Training itself is fairseq's
``translation`` task unchanged, and the checkpoints load in plain ``--task translation``.

``scripts/train.sh`` trains with it (``translation_bf16`` is a subclass, for ``--precision bf16``);
``contextpool_mt.provenance`` checks the record against the corpus a checkpoint is scored on.
"""

from fairseq import utils
from fairseq.tasks import register_task
from fairseq.tasks.translation import TranslationConfig, TranslationTask

from ..corpus_fingerprint import STATE_KEY, fingerprint, spm_model_of


@register_task("translation_provenance", dataclass=TranslationConfig)
class TranslationProvenanceTask(TranslationTask):
    """:class:`TranslationTask` whose state holds the fingerprint of its data (``cfg.data``, the
    first shard: the one with the dictionaries).

    A task set up to decode a checkpoint takes the checkpoint's record instead (fairseq merges
    ``task_state`` into the state after set-up), so the state always names the training corpus.
    """

    @classmethod
    def setup_task(cls, cfg: TranslationConfig, **kwargs):
        task = super().setup_task(cfg, **kwargs)
        data = utils.split_paths(cfg.data)[0]
        task.state.merge_state_dict(
            {STATE_KEY: fingerprint(data, cfg.source_lang, cfg.target_lang, spm_model_of(data))}
        )
        return task
