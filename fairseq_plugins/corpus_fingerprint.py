"""The fingerprint of a prepared corpus: which data a model was trained on, by content.

A fingerprint is a small dict: the language pair, the sha256 and size of both fairseq
dictionaries (``dict.SRC.txt``, ``dict.TGT.txt``: pieces with their training counts, so they pin
the corpus) and a digest of the SentencePiece model that made them (``DATA/spm/spm.model`` beside
``DATA/bin``, when there is one), plus the corpus path, which is information only and never compared.

Two versions exist; a record says which in ``fingerprint_version`` (absent: 1). Compare a record
only with a fingerprint of its own version (``fingerprint(..., version=version_of(record))``):

1. ``spm_model_sha256``: sha256 of spm.model's bytes. SentencePiece stores its training options in
   the model, the output path (``model_prefix``) and the input files among them, so the same corpus
   prepared into two folders had two fingerprints.
2. ``spm_model_content_sha256``: sha256 of the model's ``ModelProto`` without what describes the
   training run rather than the model: the paths (``trainer_spec.input``, ``model_prefix``, the
   normalisation rule files) and ``num_threads``; and without the piece scores and the order
   of the pieces, which follows the scores: for one corpus the scores differ in their last float
   digits with the number of training threads, and pieces of near-equal score swap places. What
   is hashed is what maps text to pieces and back (the set of pieces with their types, the
   normaliser, the trainer options); fairseq's dictionaries, with their counts, pin the corpus
   and the ids the model uses.

The translation tasks of this plugin keep the fingerprint of their data in their state, which
fairseq saves in every checkpoint (``task_state``); ``contextpool_mt.provenance`` records it beside
a run and checks it wherever a checkpoint meets data.
"""

import hashlib
from pathlib import Path

FINGERPRINT_VERSION = 2
STATE_KEY = "data_provenance"  # in a task's state and in an averaged checkpoint's extra_state
# fairseq's Dictionary: <s>, <pad>, </s>, <unk> before the entries of dict.*.txt
SPECIAL_SYMBOLS = 4
# ModelProto fields that describe how a SentencePiece model was trained, not what it does
_TRAINING_RUN_FIELDS = {
    "trainer_spec": ("input", "model_prefix", "num_threads"),
    "normalizer_spec": ("normalization_rule_tsv",),
    "denormalizer_spec": ("normalization_rule_tsv",),
}


class FingerprintError(ValueError):
    """A corpus that cannot be fingerprinted (the message names the file)."""


def _sha256_of(path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def spm_model_of(bin_dir):
    """The SentencePiece model of a prepared corpus (DATA/spm/spm.model beside DATA/bin), or None."""
    candidate = Path(bin_dir).resolve().parent / "spm" / "spm.model"
    return candidate if candidate.is_file() else None


def spm_content_sha256(path) -> str:
    """sha256 of a SentencePiece model's content: its ModelProto without training paths and thread
    count, its pieces without scores and sorted, serialised deterministically (version 2)."""
    from sentencepiece import sentencepiece_model_pb2

    model = sentencepiece_model_pb2.ModelProto()
    try:
        model.ParseFromString(Path(path).read_bytes())
    except Exception as err:  # protobuf's DecodeError
        raise FingerprintError(f"{path}: not a SentencePiece model ({err})") from err
    for spec, fields in _TRAINING_RUN_FIELDS.items():
        for field in fields:
            getattr(model, spec).ClearField(field)
    pieces = sorted((piece.piece, piece.type) for piece in model.pieces)
    del model.pieces[:]  # and re-added without scores, in a fixed order (scores order the ids)
    for text, kind in pieces:
        model.pieces.add(piece=text, type=kind)
    return hashlib.sha256(model.SerializeToString(deterministic=True)).hexdigest()


def version_of(record: dict) -> int:
    """The fingerprint version of a record (1 for records written before versions were)."""
    return int(record.get("fingerprint_version", 1))


def fingerprint(bin_dir, src, tgt, spm_model=None, version=FINGERPRINT_VERSION) -> dict:
    """Languages, dictionaries and SentencePiece model of the corpus BIN_DIR read as SRC->TGT."""
    bin_dir = Path(bin_dir)
    result = {"data": str(bin_dir.resolve()), "source_lang": src, "target_lang": tgt}
    for side, lang in (("source", src), ("target", tgt)):
        path = bin_dir / f"dict.{lang}.txt"
        if not path.is_file():
            raise FingerprintError(f"{path}: missing (is {bin_dir} fairseq-preprocess output for {src}-{tgt}?)")
        result[f"{side}_dict_sha256"] = _sha256_of(path)
        with open(path, "rb") as handle:
            result[f"{side}_dict_size"] = SPECIAL_SYMBOLS + sum(1 for _ in handle)
    if version == 1:
        result["spm_model_sha256"] = _sha256_of(spm_model) if spm_model else None
    elif version == 2:
        result["fingerprint_version"] = 2
        result["spm_model_content_sha256"] = spm_content_sha256(spm_model) if spm_model else None
    else:
        raise FingerprintError(f"fingerprint version {version} is unknown to this code (1 or 2); "
                              "update contextpool-mt")
    return result
