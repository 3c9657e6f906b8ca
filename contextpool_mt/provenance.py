"""What a model was trained on, recorded at training and checked wherever a checkpoint meets data.

A model's numbers mean nothing against a corpus it was not trained on: a dictionary of the same
size but other entries, a SentencePiece model that did not build the dictionary, or a swapped
language direction all decode to fluent-looking garbage (BLEU 0.3, exit 0). So what a model was
trained on is recorded as the *fingerprint* of its corpus (:mod:`fairseq_plugins.corpus_fingerprint`:
languages, dictionaries and SentencePiece model, by content), in three places, which
:func:`recorded_for` looks at in this order:

1. the checkpoint's own task state (``task_state["data_provenance"]``): train.sh trains with the
   plugin's ``translation_provenance`` task (``translation_bf16`` for bf16), and fairseq saves a
   task's state in every checkpoint it writes, so checkpoint_best.pt copied anywhere still says
   what it was trained on;
2. an average's ``extra_state["data_provenance"]``: the averager copies its inputs' record;
3. ``RUN_DIR/checkpoints/provenance.json`` beside the checkpoint: train.sh writes it before
   training (:func:`record`) and refuses to resume a run on other data with it. Checkpoints of
   runs trained before the task recorded anything have only this.

Evaluation, the comparison report, the pool inspection and the averager compare the record with
the data they are given (:func:`check`) before using either. A record is compared with a
fingerprint of its own version (fingerprints of the old kind, version 1, hashed spm.model's bytes,
which hold the folder the corpus was prepared in; version 2 hashes content only).

A checkpoint with nothing recorded (trained by plain fairseq-train, or copied out of a run trained
before the task existed) still loads: ``check`` then returns a note saying its provenance cannot
be checked, and only the one thing the checkpoint itself shows -- its embedding rows against the
dictionary size -- is checked.

    python -m contextpool_mt.provenance record --data DATA_BIN --out RUN_DIR/checkpoints
"""

import argparse
import hashlib
import json
import sys
from pathlib import Path

FILE = "provenance.json"
# the key of the record in an average's extra_state and in a checkpoint's task_state
# (fairseq_plugins.corpus_fingerprint.STATE_KEY)
EXTRA_STATE_KEY = TASK_STATE_KEY = "data_provenance"


class ProvenanceError(Exception):
    """A checkpoint and the data it is paired with do not belong together."""


def sha256_of(path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def language_pair(bin_dir: Path) -> tuple:
    """(src, tgt) of fairseq-preprocess output, as fairseq infers it: from train.SRC-TGT.SRC.idx."""
    pairs = sorted({p.name.split(".")[1] for p in Path(bin_dir).glob("train.*-*.*.idx")})
    if len(pairs) != 1:
        raise ProvenanceError(
            f"{bin_dir}: expected one train.SRC-TGT.*.idx language pair, found {pairs or 'none'}"
        )
    src, tgt = pairs[0].split("-")
    return src, tgt


def spm_model_of(bin_dir: Path):
    """The SentencePiece model of a prepared corpus (DATA/spm/spm.model beside DATA/bin), or None."""
    # the same as fairseq_plugins.corpus_fingerprint.spm_model_of, on purpose: no fairseq import
    candidate = Path(bin_dir).resolve().parent / "spm" / "spm.model"
    return candidate if candidate.is_file() else None


def fingerprint(bin_dir, src, tgt, spm_model=None, version=None) -> dict:
    """The fingerprint of the corpus BIN_DIR read as SRC->TGT (the current version unless given).

    Imported from the plugin when needed: importing it imports fairseq, which the commands that
    only read scores never need.
    """
    from fairseq_plugins.corpus_fingerprint import FINGERPRINT_VERSION, FingerprintError
    from fairseq_plugins.corpus_fingerprint import fingerprint as of_corpus

    try:
        return of_corpus(bin_dir, src, tgt, spm_model, version or FINGERPRINT_VERSION)
    except FingerprintError as err:
        raise ProvenanceError(str(err)) from err


def version_of(recorded: dict) -> int:
    """A record's fingerprint version (1: records written before versions were)."""
    # the same as fairseq_plugins.corpus_fingerprint.version_of, on purpose: no fairseq import
    return int(recorded.get("fingerprint_version", 1))


def fingerprint_like(recorded: dict, bin_dir, src, tgt, spm_model=None) -> dict:
    """The fingerprint of BIN_DIR in the version of RECORDED, to compare like with like."""
    return fingerprint(bin_dir, src, tgt, spm_model, version_of(recorded))


def _same_folder(recorded: dict, actual: dict) -> bool:
    return bool(recorded.get("data")) and Path(recorded["data"]) == Path(actual["data"])


def _old_kind_note(recorded: dict, actual: dict) -> str:
    """Why a record of the old kind refuses a copy of its corpus prepared into another folder."""
    others = {key: value for key, value in recorded.items() if key != "spm_model_sha256"}
    if version_of(recorded) == 1 and not differing(others, actual):
        return (" (the record is of the old kind, fingerprint version 1, which hashed spm.model's "
                "bytes and with them the folder the corpus was prepared in: it cannot tell a copy "
                "of its corpus prepared into another folder from another corpus)")
    return ""


def record(bin_dir, out_dir) -> dict:
    """Write OUT_DIR/provenance.json for training on BIN_DIR; refuse if it records other data
    and OUT_DIR holds checkpoints (a record with no checkpoint beside it, left by a run stopped
    before its first save, protects nothing: it is replaced, with a line on stderr)."""
    src, tgt = language_pair(bin_dir)
    spm_model = spm_model_of(bin_dir)
    path = Path(out_dir) / FILE
    if path.is_file():
        previous = json.loads(path.read_text(encoding="utf-8"))
        current = fingerprint_like(previous, bin_dir, src, tgt, spm_model)
        differences = differing(previous, current)
        if not differences:
            return previous
        if any(Path(out_dir).glob("*.pt")):
            if _same_folder(previous, current):
                raise ProvenanceError(
                    f"{path.parent} holds checkpoints trained on {previous['data']} as it was "
                    f"then; it has changed since ({differences}){_old_kind_note(previous, current)}: "
                    "resuming would mix two corpora; give another --run-dir, or restore the corpus"
                )
            raise ProvenanceError(
                f"{path.parent} holds checkpoints trained on {previous.get('data')}, not on "
                f"{current['data']} ({differences}){_old_kind_note(previous, current)}: "
                f"resuming would mix two corpora; give another --run-dir, or --data {previous.get('data')}"
            )
        print(f"train.sh: {path} recorded another corpus ({differences}), but no checkpoint was "
              f"saved on it: the run starts afresh on {Path(bin_dir).resolve()}", file=sys.stderr)
    current = fingerprint(bin_dir, src, tgt, spm_model)
    Path(out_dir).mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(current, indent=2) + "\n", encoding="utf-8")
    tmp.replace(path)
    return current


def differing(recorded: dict, actual: dict) -> str:
    """The fields in which two fingerprints differ, as one readable phrase ('' when none).

    Only fields both have are compared: give fingerprints of one version (:func:`fingerprint_like`).
    """
    names = {
        "source_lang": "source language", "target_lang": "target language",
        "source_dict_sha256": "source dictionary", "target_dict_sha256": "target dictionary",
        "spm_model_sha256": "SentencePiece model", "spm_model_content_sha256": "SentencePiece model",
    }
    found = []
    for key, name in names.items():
        old, new = recorded.get(key), actual.get(key)
        if old is None or new is None or old == new:
            continue
        if key.endswith("_lang"):
            found.append(f"{name} {old} vs {new}")
        else:
            found.append(f"{name} sha256 {old[:12]} vs {new[:12]}")
    return ", ".join(found)


def find_record(checkpoint, state=None):
    """(fingerprint recorded for CHECKPOINT, where it was found) or (None, None): its task state,
    else its extra_state (an average), else its folder's provenance.json."""
    state = state or {}
    task_state = state.get("task_state") or {}
    if isinstance(task_state.get(TASK_STATE_KEY), dict):
        return task_state[TASK_STATE_KEY], "task_state"
    extra = state.get("extra_state") or {}
    if isinstance(extra.get(EXTRA_STATE_KEY), dict):
        return extra[EXTRA_STATE_KEY], "extra_state"
    sidecar = Path(checkpoint).parent / FILE
    if sidecar.is_file():
        return json.loads(sidecar.read_text(encoding="utf-8")), str(sidecar)
    return None, None


def recorded_for(checkpoint, state=None):
    """The fingerprint recorded for CHECKPOINT (see :func:`find_record`), or None."""
    return find_record(checkpoint, state)[0]


def check(checkpoint, state, bin_dir, src, tgt, spm_model=None) -> dict:
    """Check CHECKPOINT (its loaded STATE) against the corpus BIN_DIR read as SRC->TGT.

    Returns ``{"checked": bool, "note": str, "data": fingerprint, "recorded_in": where}``; raises
    ProvenanceError naming both sides and what to do when they do not belong together.
    """
    recorded, where = find_record(checkpoint, state)
    actual = (fingerprint_like(recorded, bin_dir, src, tgt, spm_model) if recorded
              else fingerprint(bin_dir, src, tgt, spm_model))
    rows = _embedding_rows(state)
    if rows is not None and rows != actual["source_dict_size"]:
        raise ProvenanceError(
            f"{checkpoint} has {rows} embedding rows but {bin_dir}/dict.{src}.txt makes a "
            f"dictionary of {actual['source_dict_size']}: the checkpoint was not trained on this "
            f"corpus" + (f" (it was trained on {recorded.get('data')})" if recorded else "")
            + "; give the --data it was trained on"
        )
    if recorded is None:
        return {"checked": False, "data": actual, "recorded_in": None,
                "note": f"{checkpoint}: no data provenance recorded (trained without the plugin's "
                        f"translation_provenance task and copied without its folder's {FILE}): "
                        f"cannot check that it was trained on {bin_dir} ({src}->{tgt}); only its "
                        f"dictionary size was checked"}
    differences = differing(recorded, actual)
    if differences:
        trained = f"{recorded.get('data')} ({recorded.get('source_lang')}->{recorded.get('target_lang')})"
        if _same_folder(recorded, actual) and recorded.get("source_lang") == src \
                and recorded.get("target_lang") == tgt:
            raise ProvenanceError(
                f"{checkpoint} was trained on {trained} as it was then; it has changed since: "
                f"{differences}{_old_kind_note(recorded, actual)}. Restore the corpus it was "
                f"trained on, or train a model on this one"
            )
        raise ProvenanceError(
            f"{checkpoint} was trained on {trained}, which is not {bin_dir} ({src}->{tgt}): "
            f"{differences}{_old_kind_note(recorded, actual)}. Give the corpus (and "
            f"--src/--tgt) it was trained on, or train a model on this one"
        )
    return {"checked": True, "data": actual, "recorded_in": where,
            "note": f"provenance checked: trained on {recorded.get('data')}"}


def _embedding_rows(state):
    model = (state or {}).get("model") or {}
    weight = model.get("encoder.embed_tokens.weight")
    return int(weight.shape[0]) if weight is not None else None


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description="Record the data a training run uses (" + FILE + ").")
    sub = parser.add_subparsers(dest="command", required=True)
    rec = sub.add_parser("record", help="write OUT/" + FILE + " for DATA, or check it matches")
    rec.add_argument("--data", required=True, type=Path, help="fairseq-preprocess output (DATA/bin)")
    rec.add_argument("--out", required=True, type=Path, help="the run's checkpoint folder")
    args = parser.parse_args(argv)
    try:
        record(args.data, args.out)
    except ProvenanceError as err:
        print(f"train.sh: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
