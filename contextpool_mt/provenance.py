"""What a model was trained on, recorded at training and checked wherever a checkpoint meets data.

A model's numbers mean nothing against a corpus it was not trained on: a dictionary of the same
size but other entries, a SentencePiece model that did not build the dictionary, or a swapped
language direction all decode to fluent-looking garbage (BLEU 0.3, exit 0). So ``train.sh``
records the *fingerprint* of its data -- languages and the sha256 of each dictionary and of the
SentencePiece model -- in ``RUN_DIR/checkpoints/provenance.json`` (``record``), the averager copies
it into the averaged checkpoint (``extra_state["data_provenance"]``), and evaluation, the
comparison report, the pool inspection and the averager compare it with the data they are given
(``check``) before using either.

A checkpoint with nothing recorded (trained before this, or copied away from its run folder)
still loads: ``check`` then returns a note saying its provenance cannot be checked, and only the
one thing the checkpoint itself shows -- its embedding rows against the dictionary size -- is
checked.

    python -m contextpool_mt.provenance record --data DATA_BIN --out RUN_DIR/checkpoints
"""

import argparse
import hashlib
import json
import sys
from pathlib import Path

FILE = "provenance.json"
EXTRA_STATE_KEY = "data_provenance"
# fairseq's Dictionary: <s>, <pad>, </s>, <unk> before the entries of dict.*.txt
SPECIAL_SYMBOLS = 4


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
    candidate = Path(bin_dir).resolve().parent / "spm" / "spm.model"
    return candidate if candidate.is_file() else None


def fingerprint(bin_dir, src, tgt, spm_model=None) -> dict:
    """Languages, dictionaries and SentencePiece model of a corpus, as sha256 fingerprints."""
    bin_dir = Path(bin_dir)
    result = {"data": str(bin_dir.resolve()), "source_lang": src, "target_lang": tgt}
    for side, lang in (("source", src), ("target", tgt)):
        path = bin_dir / f"dict.{lang}.txt"
        if not path.is_file():
            raise ProvenanceError(f"{path}: missing (is {bin_dir} fairseq-preprocess output for {src}-{tgt}?)")
        result[f"{side}_dict_sha256"] = sha256_of(path)
        with open(path, "rb") as handle:
            result[f"{side}_dict_size"] = SPECIAL_SYMBOLS + sum(1 for _ in handle)
    result["spm_model_sha256"] = sha256_of(spm_model) if spm_model else None
    return result


def record(bin_dir, out_dir) -> dict:
    """Write OUT_DIR/provenance.json for training on BIN_DIR; refuse if it records other data."""
    src, tgt = language_pair(bin_dir)
    current = fingerprint(bin_dir, src, tgt, spm_model_of(bin_dir))
    path = Path(out_dir) / FILE
    if path.is_file():
        previous = json.loads(path.read_text(encoding="utf-8"))
        differences = differing(previous, current)
        if differences:
            raise ProvenanceError(
                f"{path.parent} holds checkpoints trained on {previous.get('data')}, not on "
                f"{current['data']} ({differences}): resuming would mix two corpora; give "
                f"another --run-dir, or --data {previous.get('data')}"
            )
        return previous
    Path(out_dir).mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(current, indent=2) + "\n", encoding="utf-8")
    tmp.replace(path)
    return current


def differing(recorded: dict, actual: dict) -> str:
    """The fields in which two fingerprints differ, as one readable phrase ('' when none)."""
    names = {
        "source_lang": "source language", "target_lang": "target language",
        "source_dict_sha256": "source dictionary", "target_dict_sha256": "target dictionary",
        "spm_model_sha256": "SentencePiece model",
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


def recorded_for(checkpoint, state=None):
    """The fingerprint recorded for CHECKPOINT: its own extra_state, else its folder's file; or None."""
    extra = (state or {}).get("extra_state") or {}
    if isinstance(extra.get(EXTRA_STATE_KEY), dict):
        return extra[EXTRA_STATE_KEY]
    sidecar = Path(checkpoint).parent / FILE
    if sidecar.is_file():
        return json.loads(sidecar.read_text(encoding="utf-8"))
    return None


def check(checkpoint, state, bin_dir, src, tgt, spm_model=None) -> dict:
    """Check CHECKPOINT (its loaded STATE) against the corpus BIN_DIR read as SRC->TGT.

    Returns ``{"checked": bool, "note": str, "data": fingerprint}``; raises ProvenanceError
    naming both sides and what to do when they do not belong together.
    """
    actual = fingerprint(bin_dir, src, tgt, spm_model)
    recorded = recorded_for(checkpoint, state)
    rows = _embedding_rows(state)
    if rows is not None and rows != actual["source_dict_size"]:
        raise ProvenanceError(
            f"{checkpoint} has {rows} embedding rows but {bin_dir}/dict.{src}.txt makes a "
            f"dictionary of {actual['source_dict_size']}: the checkpoint was not trained on this "
            f"corpus" + (f" (it was trained on {recorded.get('data')})" if recorded else "")
            + "; give the --data it was trained on"
        )
    if recorded is None:
        return {"checked": False, "data": actual,
                "note": f"{checkpoint}: no data provenance recorded (trained before it was "
                        f"recorded, or copied without its folder's {FILE}): cannot check that it "
                        f"was trained on {bin_dir} ({src}->{tgt}); only its dictionary size was checked"}
    differences = differing(recorded, actual)
    if differences:
        raise ProvenanceError(
            f"{checkpoint} was trained on {recorded.get('data')} "
            f"({recorded.get('source_lang')}->{recorded.get('target_lang')}), which is not "
            f"{bin_dir} ({src}->{tgt}): {differences}. Give the corpus (and --src/--tgt) it "
            f"was trained on, or train a model on this one"
        )
    return {"checked": True, "data": actual, "note": f"provenance checked: trained on {recorded.get('data')}"}


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
