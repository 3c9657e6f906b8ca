"""Bring-your-own parallel corpus -> cleaned text -> SentencePiece -> fairseq binaries.

Run it as ``cpmt-prepare-corpus --help``.  Input is three pairs of plain-text files,
``PREFIX.SRC`` / ``PREFIX.TGT`` (one sentence per line, UTF-8) for train, valid and test.
Output, under ``--out DATA_DIR``::

    raw/{train,valid,test}.{SRC,TGT}         validated + normalised text (train also cleaned)
    raw/stats.json                            line counts kept / dropped, and why; lines
                                              changed per kind of normalisation
    spm/spm.model, spm/spm.vocab              joint SentencePiece model (train SRC+TGT)
    spm_encoded/{train,valid,test}.{SRC,TGT}  SentencePiece pieces, space separated
    bin/                                      fairseq-preprocess --joined-dictionary output

Every step ("raw", "spm", "spm_encoded", "bin") writes into a hidden temporary folder,
renames it into place and only then writes its completion marker ``<step>/.complete``.
A step whose marker is missing, or whose marker records other inputs or options, is redone
from scratch together with every step after it; a step whose marker matches is skipped.
An interrupted run therefore never leaves output that a later run takes as complete.
A *complete* corpus (bin/ has its marker) built from other inputs or options is not rebuilt
in place: the run stops, naming the folder and what differs, unless ``--force`` is given
(trained models depend on that corpus's SentencePiece model and dictionary).

Normalisation (conservative, the same for every split): strict UTF-8 decoding (a bad line
is an error naming file:line), a leading byte-order mark dropped, control characters
(Unicode category Cc, tabs and carriage returns included) turned into spaces, Unicode NFC,
and every run of Unicode whitespace (no-break and other wide spaces included: the NFKC
reading of whitespace) collapsed to one ASCII space, with none at either end.  Lines are
split on "\\n" only (a "\\r\\n" ending counts as "\\n"), as ``wc -l`` and fairseq count them.

Cleaning (train only), after Moses ``clean-corpus-n.perl``: a pair is dropped when either
side is empty, has more than ``--max-len`` whitespace tokens, or when the token-count
ratio of the two sides exceeds ``--ratio``; ``--dedup`` also drops exact duplicate pairs.
Valid and test keep every line (test is the BLEU reference, so ``raw/test.TGT`` stays
line-aligned with the input test file); an empty line there is an error.

SentencePiece: a joint *unigram* model by default (``--spm-model-type bpe`` for BPE),
``--vocab-size`` pieces, character coverage ``--character-coverage``.  When the corpus is
too small for the requested vocabulary, the model is retrained with SentencePiece's
``hard_vocab_limit=false`` (fewer pieces than asked), and this is reported.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import time
import unicodedata
from dataclasses import dataclass, field, fields
from typing import Dict, Iterator, List, Optional, Sequence, Tuple

SPLITS = ("train", "valid", "test")
STEPS = ("raw", "spm", "spm_encoded", "bin")
MARKER = ".complete"
# Bumped whenever the normalisation or cleaning rules change, so old outputs are redone.
NORMALISER_VERSION = 1

PROG = "prepare_corpus"


class CorpusError(Exception):
    """A problem with the user's input or options; the message says what to do."""


def log(message: str) -> None:
    print(f"[{PROG}] {message}", flush=True)


def binarised_folder_error(data: str) -> Optional[str]:
    """One line for a ``--data`` that is a prepared corpus's binarised folder (``DATA/bin``: what
    train.sh and fairseq-train read) given to a command that reads the prepared corpus itself
    (``DATA``: bin/, spm/, raw/, as the cpmt-* commands do); None when ``data`` is not one."""
    if os.path.isdir(os.path.join(data, "bin")) or not any(
        name.startswith("dict.") and name.endswith(".txt")
        for name in (os.listdir(data) if os.path.isdir(data) else ())
    ):
        return None
    parent = os.path.dirname(os.path.normpath(data)) or "."
    return (f"--data {data} is the binarised folder (fairseq-preprocess output, what train.sh "
            f"reads); give --data {parent} (the prepared corpus: the folder with bin/, spm/, raw/)")


# --------------------------------------------------------------------------- text


def _control_table() -> Dict[int, Optional[str]]:
    table: Dict[int, Optional[str]] = {}
    for cp in list(range(0x00, 0x20)) + list(range(0x7F, 0xA0)):
        table[cp] = " "
    table[0xFEFF] = None  # byte-order mark / zero-width no-break space
    return table


_CONTROL_TABLE = _control_table()


# What normalise_line counts (lines changed by each kind), in stats.json and the log.
NORMALISATIONS = (
    "control characters (tab, U+0085, ...) -> space",
    "U+FEFF (byte-order mark) removed",
    "other Unicode whitespace (no-break space, U+2028, ...) -> space",
    "NFC recomposition",
    "spaces collapsed or trimmed",
)


def normalise_line(text: str, counts: Optional[Dict[str, int]] = None) -> str:
    """Conservative normalisation of one line (see the module docstring).

    With ``counts``, adds 1 to ``counts[kind]`` for every kind of NORMALISATIONS that changed it.
    """
    if text.isascii() and text.isprintable():
        out = " ".join(text.split())
        if counts is not None and out != text:
            counts[NORMALISATIONS[4]] = counts.get(NORMALISATIONS[4], 0) + 1
        return out
    translated = text.translate(_CONTROL_TABLE)
    composed = unicodedata.normalize("NFC", translated)
    out = " ".join(composed.split())  # str.split() splits on every Unicode whitespace
    if counts is not None:
        kinds = []
        if any(_CONTROL_TABLE.get(ord(ch)) == " " for ch in text):
            kinds.append(NORMALISATIONS[0])
        if "\ufeff" in text:
            kinds.append(NORMALISATIONS[1])
        if any(ch.isspace() and ch != " " and ord(ch) not in _CONTROL_TABLE for ch in composed):
            kinds.append(NORMALISATIONS[2])
        if composed != translated:
            kinds.append(NORMALISATIONS[3])
        if "  " in composed or composed != composed.strip(" "):
            kinds.append(NORMALISATIONS[4])
        for kind in kinds:
            counts[kind] = counts.get(kind, 0) + 1
    return out


def count_lines(path: str) -> int:
    """Number of lines as ``wc -l`` counts them, plus a last line without a newline."""
    n = 0
    last = b"\n"
    with open(path, "rb") as f:
        while True:
            chunk = f.read(1 << 20)
            if not chunk:
                break
            n += chunk.count(b"\n")
            last = chunk[-1:]
    if last != b"\n":
        n += 1
    return n


def iter_lines(path: str) -> Iterator[Tuple[int, bytes]]:
    """(line number, raw bytes without the line ending); splits on b"\\n" only."""
    with open(path, "rb") as f:
        for lineno, raw in enumerate(f, 1):
            if raw.endswith(b"\n"):
                raw = raw[:-1]
                if raw.endswith(b"\r"):
                    raw = raw[:-1]
            yield lineno, raw


class BadUtf8(Exception):
    pass


def decode_line(path: str, lineno: int, raw: bytes) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise BadUtf8(
            f"{path}:{lineno}: not valid UTF-8 (byte 0x{raw[e.start]:02x} at byte {e.start + 1} "
            f"of the line)"
        ) from None


# --------------------------------------------------------------------------- options


DEFAULT_WORKERS = max(1, min(8, os.cpu_count() or 1))


@dataclass
class Options:
    """One corpus preparation; the defaults here are the command line's (add_processing_options)."""

    src: str
    tgt: str
    out: str
    prefixes: Dict[str, str]
    vocab_size: int = 32000
    max_len: int = 250
    ratio: float = 1.5
    dedup: bool = False
    bad_utf8: str = "error"
    workers: int = DEFAULT_WORKERS
    spm_model_type: str = "unigram"
    character_coverage: float = 0.9999
    spm_max_sentences: int = 2_000_000
    # SentencePiece's unigram trainer gives another vocabulary for another thread count (measured on
    # Multi30k: 1 and 2 threads differ in 39 pieces), so it is part of the recipe, not --workers
    spm_threads: int = 1
    seed: int = 1
    force: bool = False
    stop_after: Optional[str] = None

    @property
    def splits(self) -> Tuple[str, ...]:
        """train, valid, test, then the named extra test sets in the order given."""
        return SPLITS + tuple(name for name in self.prefixes if name not in SPLITS)

    @property
    def test_sets(self) -> Tuple[str, ...]:
        return tuple(name for name in self.splits if name not in ("train", "valid"))

    def input_path(self, split: str, lang: str) -> str:
        return f"{self.prefixes[split]}.{lang}"


def _fingerprint(obj) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True).encode("utf-8")).hexdigest()


def _file_identity(path: str) -> Dict[str, object]:
    st = os.stat(path)
    return {"path": os.path.abspath(path), "size": st.st_size, "mtime_ns": st.st_mtime_ns}


# --------------------------------------------------------------------------- steps


def step_dir(opts: Options, step: str) -> str:
    return os.path.join(opts.out, step)


def tmp_dir(opts: Options, step: str) -> str:
    return os.path.join(opts.out, f".{step}.tmp")


def read_marker(directory: str) -> Optional[dict]:
    path = os.path.join(directory, MARKER)
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def write_marker(directory: str, info: dict) -> None:
    path = os.path.join(directory, MARKER)
    tmp = path + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(info, f, indent=2, sort_keys=True)
        f.write("\n")
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def is_complete(opts: Options, step: str, fingerprint: str) -> bool:
    marker = read_marker(step_dir(opts, step))
    return marker is not None and marker.get("fingerprint") == fingerprint


def invalidate_from(opts: Options, step: str) -> None:
    """Removes the markers of ``step`` and of every later step (their inputs will change)."""
    for later in STEPS[STEPS.index(step):]:
        with contextlib.suppress(FileNotFoundError):
            os.remove(os.path.join(step_dir(opts, later), MARKER))


def begin_step(opts: Options, step: str) -> str:
    """Prepares a fresh temporary folder for ``step`` and returns it."""
    invalidate_from(opts, step)
    final = step_dir(opts, step)
    if os.path.isdir(final):
        log(f"  {step}: removing incomplete or outdated output in {final}")
        shutil.rmtree(final)
    tmp = tmp_dir(opts, step)
    shutil.rmtree(tmp, ignore_errors=True)
    os.makedirs(tmp)
    return tmp


def finish_step(opts: Options, step: str, recipe: dict, info: dict) -> None:
    """Moves the step's temporary folder into place, then writes the marker (last)."""
    tmp = tmp_dir(opts, step)
    final = step_dir(opts, step)
    shutil.rmtree(final, ignore_errors=True)
    os.replace(tmp, final)
    write_marker(final, dict(info, fingerprint=_fingerprint(recipe), recipe=recipe, step=step,
                             finished=time.time()))


# --------------------------------------------------------------------------- step 1: raw


@dataclass
class SplitStats:
    lines: int = 0
    kept: int = 0
    dropped: Dict[str, int] = field(default_factory=dict)
    normalised: Dict[str, int] = field(default_factory=dict)  # lines (either side) per kind

    def drop(self, reason: str) -> None:
        self.dropped[reason] = self.dropped.get(reason, 0) + 1


def check_inputs(opts: Options) -> Dict[str, int]:
    """Missing files and line-count mismatches, before anything is written."""
    counts: Dict[str, int] = {}
    for split in opts.splits:
        paths = [opts.input_path(split, lang) for lang in (opts.src, opts.tgt)]
        for path in paths:
            if not os.path.isfile(path):
                option = f"--{split}-prefix" if split in SPLITS else f"--test-prefix {split}=PREFIX"
                raise CorpusError(
                    f"missing input file {path} (the {split} split is read from "
                    f"PREFIX.{opts.src} and PREFIX.{opts.tgt}; give its prefix with {option})"
                )
        n_src, n_tgt = (count_lines(p) for p in paths)
        if n_src != n_tgt:
            raise CorpusError(
                f"line counts differ for the {split} split: {paths[0]} has {n_src} lines, "
                f"{paths[1]} has {n_tgt}; the two sides must be line-aligned translations"
            )
        if n_src == 0:
            raise CorpusError(f"{paths[0]} and {paths[1]} are empty: the {split} split needs lines")
        counts[split] = n_src
    return counts


def _clean_reason(src_tokens: int, tgt_tokens: int, opts: Options) -> Optional[str]:
    if src_tokens == 0 or tgt_tokens == 0:
        return "empty"
    if opts.max_len > 0 and (src_tokens > opts.max_len or tgt_tokens > opts.max_len):
        return f"longer than {opts.max_len} tokens"
    if opts.ratio > 0 and (
        src_tokens / tgt_tokens > opts.ratio or tgt_tokens / src_tokens > opts.ratio
    ):
        return f"length ratio above {opts.ratio:g}"
    return None


def normalise_split(opts: Options, split: str, out_dir: str) -> SplitStats:
    src_path = opts.input_path(split, opts.src)
    tgt_path = opts.input_path(split, opts.tgt)
    out_src = os.path.join(out_dir, f"{split}.{opts.src}")
    out_tgt = os.path.join(out_dir, f"{split}.{opts.tgt}")
    stats = SplitStats()
    seen = set() if (split == "train" and opts.dedup) else None
    is_train = split == "train"
    with open(out_src, "w", encoding="utf-8", newline="\n") as fs, open(
        out_tgt, "w", encoding="utf-8", newline="\n"
    ) as ft:
        for (lineno, raw_s), (_, raw_t) in zip(iter_lines(src_path), iter_lines(tgt_path)):
            stats.lines += 1
            try:
                s = decode_line(src_path, lineno, raw_s)
                t = decode_line(tgt_path, lineno, raw_t)
            except BadUtf8 as e:
                if is_train and opts.bad_utf8 == "drop":
                    stats.drop("not valid UTF-8")
                    continue
                hint = (
                    "convert the file to UTF-8 (e.g. iconv -f LATIN1 -t UTF-8)"
                    + (" or pass --bad-utf8 drop to drop such training pairs" if is_train else "")
                )
                raise CorpusError(f"{e}; {hint}") from None
            s, t = normalise_line(s, stats.normalised), normalise_line(t, stats.normalised)
            if not is_train:
                for text, path in ((s, src_path), (t, tgt_path)):
                    if not text:
                        raise CorpusError(
                            f"{path}:{lineno}: empty line in the {split} split; {split} lines "
                            f"are kept one for one (test lines are the BLEU references), so "
                            f"remove this pair from both {src_path} and {tgt_path} or fill it in"
                        )
            else:
                reason = _clean_reason(s.count(" ") + 1 if s else 0, t.count(" ") + 1 if t else 0, opts)
                if reason is None and seen is not None:
                    key = hashlib.blake2b(f"{s}\t{t}".encode("utf-8"), digest_size=16).digest()
                    if key in seen:
                        reason = "duplicate pair"
                    else:
                        seen.add(key)
                if reason is not None:
                    stats.drop(reason)
                    continue
            fs.write(s + "\n")
            ft.write(t + "\n")
            stats.kept += 1
    return stats


def run_raw(opts: Options, recipe: dict) -> None:
    log("step 1/4 raw: validating and normalising the input text")
    tmp = begin_step(opts, "raw")
    all_stats: Dict[str, dict] = {}
    for split in opts.splits:
        log(f"  {split}: {opts.input_path(split, opts.src)} + {opts.input_path(split, opts.tgt)}")
        stats = normalise_split(opts, split, tmp)
        dropped = ", ".join(f"{n} {why}" for why, n in sorted(stats.dropped.items()))
        log(f"  {split}: {stats.lines} pairs in, {stats.kept} kept" + (f" (dropped: {dropped})" if dropped else ""))
        if stats.normalised:
            changed = "; ".join(f"{kind}: {n}" for kind, n in sorted(stats.normalised.items()))
            log(f"  {split}: lines normalised (either side, before cleaning): {changed}")
        all_stats[split] = {"lines": stats.lines, "kept": stats.kept, "dropped": stats.dropped,
                            "normalised_lines": stats.normalised}
    if all_stats["train"]["kept"] == 0:
        shutil.rmtree(tmp, ignore_errors=True)
        raise CorpusError(
            f"no training pair survived cleaning ({all_stats['train']['dropped']}); "
            f"check {opts.input_path('train', opts.src)} or relax --max-len / --ratio"
        )
    with open(os.path.join(tmp, "stats.json"), "w", encoding="utf-8") as f:
        json.dump(all_stats, f, indent=2, sort_keys=True)
        f.write("\n")
    finish_step(opts, "raw", recipe, {"stats": all_stats})


# --------------------------------------------------------------------------- step 2: spm


def _spm_train(opts: Options, inputs: List[str], prefix: str, hard_limit: bool) -> None:
    import sentencepiece as spm

    kwargs = dict(
        input=",".join(inputs),
        model_prefix=prefix,
        vocab_size=opts.vocab_size,
        model_type=opts.spm_model_type,
        character_coverage=opts.character_coverage,
        num_threads=opts.spm_threads,
        hard_vocab_limit=hard_limit,
        minloglevel=1,
    )
    if opts.spm_max_sentences > 0:
        kwargs.update(input_sentence_size=opts.spm_max_sentences, shuffle_input_sentence=True)
    spm.SentencePieceTrainer.train(**kwargs)


def run_spm(opts: Options, recipe: dict) -> None:
    import sentencepiece as spm

    log(
        f"step 2/4 spm: training a joint SentencePiece {opts.spm_model_type} model, "
        f"vocabulary {opts.vocab_size}, on train.{opts.src} + train.{opts.tgt}"
    )
    raw = step_dir(opts, "raw")
    inputs = [os.path.join(raw, f"train.{lang}") for lang in (opts.src, opts.tgt)]
    tmp = begin_step(opts, "spm")
    prefix = os.path.join(tmp, "spm")
    if hasattr(spm, "set_random_generator_seed"):
        spm.set_random_generator_seed(opts.seed)
    hard_limit = True
    try:
        _spm_train(opts, inputs, prefix, hard_limit=True)
    except RuntimeError as e:
        text = str(e)
        if "Vocabulary size too high" in text:
            hard_limit = False
            log(
                f"  the training data is too small for --vocab-size {opts.vocab_size} "
                f"(SentencePiece: {text.split('] ', 1)[-1]}); retraining with "
                f"hard_vocab_limit=false, which makes as many pieces as the data allows"
            )
            _spm_train(opts, inputs, prefix, hard_limit=False)
        elif "smaller than required_chars" in text:
            raise CorpusError(
                f"--vocab-size {opts.vocab_size} is too small: the training data has more "
                f"distinct characters than that (SentencePiece: {text.split('] ', 1)[-1]}); "
                f"raise --vocab-size or lower --character-coverage"
            ) from None
        else:
            raise CorpusError(f"SentencePiece training failed: {text}") from None
    size = spm.SentencePieceProcessor(model_file=prefix + ".model").get_piece_size()
    note = "" if size == opts.vocab_size else f" (fewer than the {opts.vocab_size} asked for)"
    log(f"  SentencePiece model has {size} pieces{note}")
    finish_step(
        opts,
        "spm",
        recipe,
        {"pieces": size, "requested": opts.vocab_size, "hard_vocab_limit": hard_limit,
         "model_type": opts.spm_model_type},
    )


# --------------------------------------------------------------------------- step 3: encode


def _batches(f, size: int) -> Iterator[List[str]]:
    batch: List[str] = []
    for line in f:
        batch.append(line.rstrip("\n"))
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


def run_encode(opts: Options, recipe: dict) -> None:
    import sentencepiece as spm

    log("step 3/4 spm_encoded: encoding every split with the SentencePiece model")
    sp = spm.SentencePieceProcessor(model_file=os.path.join(step_dir(opts, "spm"), "spm.model"))
    tmp = begin_step(opts, "spm_encoded")
    counts = {}
    for split in opts.splits:
        for lang in (opts.src, opts.tgt):
            name = f"{split}.{lang}"
            n = 0
            with open(os.path.join(step_dir(opts, "raw"), name), encoding="utf-8", newline="\n") as fin, open(
                os.path.join(tmp, name), "w", encoding="utf-8", newline="\n"
            ) as fout:
                for batch in _batches(fin, 20000):
                    pieces = sp.encode(batch, out_type=str, num_threads=max(1, opts.workers))
                    fout.writelines(" ".join(p) + "\n" for p in pieces)
                    n += len(batch)
            counts[name] = n
            log(f"  {name}: {n} lines")
    finish_step(opts, "spm_encoded", recipe, {"lines": counts})


# --------------------------------------------------------------------------- step 4: bin


def preprocess_command(opts: Options, enc: str, dest: str) -> List[str]:
    return [
        sys.executable, "-m", "fairseq_cli.preprocess",
        "--source-lang", opts.src,
        "--target-lang", opts.tgt,
        "--trainpref", os.path.join(enc, "train"),
        "--validpref", os.path.join(enc, "valid"),
        # fairseq names the binarised test sets test, test1, test2, ...: run_bin renames them
        "--testpref", ",".join(os.path.join(enc, name) for name in opts.test_sets),
        "--destdir", dest,
        "--joined-dictionary",
        "--workers", str(max(1, opts.workers)),
    ]


def run_bin(opts: Options, recipe: dict) -> None:
    log("step 4/4 bin: fairseq-preprocess --joined-dictionary")
    tmp = begin_step(opts, "bin")
    cmd = preprocess_command(opts, step_dir(opts, "spm_encoded"), tmp)
    log("  " + " ".join(cmd))
    # its INFO lines go to a file outside the step's temporary folder (which a failure removes),
    # so the terminal shows progress and the error, not thousands of lines
    output = os.path.join(opts.out, "preprocess.out")
    log(f"  fairseq-preprocess output: {output}")
    with open(output, "w", encoding="utf-8") as handle:
        proc = subprocess.run(cmd, stdout=handle, stderr=subprocess.STDOUT)
    if proc.returncode != 0:
        with open(output, encoding="utf-8", errors="replace") as handle:
            tail = "".join(handle.readlines()[-15:])
        raise CorpusError(
            f"fairseq-preprocess failed with exit status {proc.returncode}; its output is in "
            f"{output}, ending:\n{tail}"
        )
    for k, name in enumerate(opts.test_sets[1:], start=1):
        for lang in (opts.src, opts.tgt):
            for ext in ("bin", "idx"):
                os.replace(os.path.join(tmp, f"test{k}.{opts.src}-{opts.tgt}.{lang}.{ext}"),
                           os.path.join(tmp, f"{name}.{opts.src}-{opts.tgt}.{lang}.{ext}"))
    if len(opts.test_sets) > 1:
        log(f"  test sets: {', '.join(opts.test_sets)}")
    dicts = [os.path.join(tmp, f"dict.{lang}.txt") for lang in (opts.src, opts.tgt)]
    with open(dicts[0], "rb") as a, open(dicts[1], "rb") as b:
        if a.read() != b.read():
            raise CorpusError(f"fairseq-preprocess wrote different dictionaries {dicts[0]} and {dicts[1]}")
    with open(dicts[0], encoding="utf-8") as f:
        dict_size = sum(1 for _ in f)
    log(f"  joined dictionary: dict.{opts.src}.txt = dict.{opts.tgt}.txt, {dict_size} entries")
    finish_step(opts, "bin", recipe, {"dictionary_entries": dict_size,
                                           "test_sets": list(opts.test_sets)})


# --------------------------------------------------------------------------- driver


def recipes(opts: Options, spm_threads_recorded: bool = True) -> Dict[str, dict]:
    """What each step's output is made from: its options, and the fingerprint of the step
    before (so a change anywhere reaches every later step). The inputs are known by path, size
    and modification time. Kept in each step's marker, so a refusal can say what differs.
    ``spm_threads_recorded=False`` gives the recipes of corpora prepared before SentencePiece's
    thread count was part of them (:func:`adopt_unrecorded_spm_threads`)."""
    inputs = {
        f"{split}.{lang}": _file_identity(opts.input_path(split, lang))
        for split in opts.splits
        for lang in (opts.src, opts.tgt)
    }
    raw = {
        "inputs": inputs, "src": opts.src, "tgt": opts.tgt, "max_len": opts.max_len,
        "ratio": opts.ratio, "dedup": opts.dedup, "bad_utf8": opts.bad_utf8,
        "normaliser": NORMALISER_VERSION,
    }
    spm = {
        "raw": _fingerprint(raw), "vocab_size": opts.vocab_size, "model_type": opts.spm_model_type,
        "character_coverage": opts.character_coverage, "max_sentences": opts.spm_max_sentences,
        "seed": opts.seed,
    }
    if spm_threads_recorded:
        spm["threads"] = opts.spm_threads
    encoded = {"spm": _fingerprint(spm)}
    binarised = {"encoded": _fingerprint(encoded), "preprocess": "joined-dictionary",
                 "test_sets": list(opts.test_sets)}
    return {"raw": raw, "spm": spm, "spm_encoded": encoded, "bin": binarised}


# How recipes' fields are given on the command line, for saying what differs.
RECIPE_OPTIONS = {
    "src": "--src", "tgt": "--tgt", "max_len": "--max-len", "ratio": "--ratio",
    "dedup": "--dedup", "bad_utf8": "--bad-utf8", "normaliser": "normalisation rules (version)",
    "vocab_size": "--vocab-size", "model_type": "--spm-model-type",
    "character_coverage": "--character-coverage", "max_sentences": "--spm-max-sentences",
    "seed": "--seed", "threads": "--spm-threads", "test_sets": "test sets (--test-prefix)",
}


def recipe_differences(built: dict, requested: dict) -> List[str]:
    """What differs between the recipe a step was built with and the one asked for now."""
    found = []
    for key, value in requested.items():
        old = built.get(key)
        if key == "inputs":
            for name, identity in value.items():
                before = (old or {}).get(name)
                if before is None:
                    found.append(f"input {name} {identity['path']} is new")
                elif before["path"] != identity["path"]:
                    found.append(f"input {name} was {before['path']}, now {identity['path']}")
                elif before != identity:
                    found.append(f"input {identity['path']} changed since (size {before['size']} "
                                 f"-> {identity['size']} bytes, or modified)")
        elif key in RECIPE_OPTIONS and old != value:
            found.append(f"{RECIPE_OPTIONS[key]} {old} -> {value}")
    return found


def adopt_unrecorded_spm_threads(opts: Options, wanted: Dict[str, dict]) -> Dict[str, dict]:
    """A corpus whose SentencePiece step was built before its thread count was recorded (it
    trained with --workers threads) and otherwise from the options asked for now is kept as it
    is, not refused or rebuilt: its vocabulary is what runs trained on it depend on, and no
    --spm-threads can say which count built it. --force rebuilds it with --spm-threads."""
    recipe = (read_marker(step_dir(opts, "spm")) or {}).get("recipe")
    if opts.force or not recipe or "threads" in recipe:
        return wanted
    legacy = recipes(opts, spm_threads_recorded=False)
    if recipe != legacy["spm"]:
        return wanted
    log(f"spm: {step_dir(opts, 'spm')} was trained before the SentencePiece thread count was "
        f"recorded (with --workers threads); kept as it is (--force rebuilds it with --spm-threads "
        f"{opts.spm_threads})")
    return legacy


def refuse_to_replace(opts: Options, wanted: Dict[str, dict]) -> None:
    """A *complete* corpus (every step done, bin/ included) built from other inputs or options is
    what trained runs depend on: it is never rebuilt in place without --force. Output of an
    interrupted preparation (no bin/ marker) is not protected: redoing it loses nothing."""
    if opts.force or read_marker(step_dir(opts, "bin")) is None:
        return
    for step in STEPS:
        marker = read_marker(step_dir(opts, step))
        if marker is not None and marker.get("fingerprint") == _fingerprint(wanted[step]):
            continue
        if marker is None:
            what = f"its {step}/ step has no completion marker"
        elif "recipe" in marker:  # markers written before the recipe was kept have none
            what = "; ".join(recipe_differences(marker["recipe"], wanted[step]))
        else:
            what = ""
        raise CorpusError(
            f"{opts.out} holds a complete prepared corpus built from other inputs or options "
            f"({what or f'the {step} step differs'}); runs trained on it depend on it, so it is "
            f"not rebuilt: use another --out, or pass --force to rebuild it"
        )


RUNNERS = {"raw": run_raw, "spm": run_spm, "spm_encoded": run_encode, "bin": run_bin}


@contextlib.contextmanager
def locked(out: str):
    import fcntl

    os.makedirs(out, exist_ok=True)
    path = os.path.join(out, ".lock")
    with open(path, "w") as f:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            raise CorpusError(f"another run is preparing {out} (lock {path} is held); wait for it to finish") from None
        yield


def prepare(opts: Options) -> None:
    # Missing files and line-count mismatches are reported before anything is touched.
    check_inputs(opts)
    with locked(opts.out):
        wanted = adopt_unrecorded_spm_threads(opts, recipes(opts))
        fps = {step: _fingerprint(recipe) for step, recipe in wanted.items()}
        refuse_to_replace(opts, wanted)
        if opts.force:
            invalidate_from(opts, "raw")
        redo = False
        for step in STEPS:
            if not redo and is_complete(opts, step, fps[step]):
                log(f"{step}: already complete in {step_dir(opts, step)}, skipping")
            else:
                redo = True  # every later step is redone too
                try:
                    RUNNERS[step](opts, wanted[step])
                except BaseException:
                    # Nothing half-written is left behind; the step has no marker either.
                    shutil.rmtree(tmp_dir(opts, step), ignore_errors=True)
                    raise
            if opts.stop_after == step:
                log(f"stopping after {step} (--stop-after)")
                return
    log(f"done: fairseq data in {step_dir(opts, 'bin')}, SentencePiece model "
        f"{os.path.join(step_dir(opts, 'spm'), 'spm.model')}")


# --------------------------------------------------------------------------- CLI


def _at_least_one(text: str) -> int:
    """argparse type: an integer >= 1."""
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be 1 or more, got {value}")
    return value


def add_processing_options(p: argparse.ArgumentParser) -> None:
    """The cleaning, SentencePiece and binarisation options, with Options' defaults (also used
    by cpmt-prepare-wmt14, which hands them on)."""
    d = {f.name: f.default for f in fields(Options)}
    p.add_argument("--vocab-size", type=int, default=d["vocab_size"], help="SentencePiece vocabulary size (default %(default)s)")
    p.add_argument("--max-len", type=int, default=d["max_len"], help="train: drop pairs with a side longer than this many whitespace tokens; 0 = no limit (default %(default)s)")
    p.add_argument("--ratio", type=float, default=d["ratio"], help="train: drop pairs whose token-count ratio exceeds this; 0 = no limit (default %(default)s)")
    p.add_argument("--dedup", action="store_true", help="train: also drop exact duplicate pairs")
    p.add_argument("--bad-utf8", choices=("error", "drop"), default=d["bad_utf8"], help="train lines that are not valid UTF-8: stop with an error (default) or drop the pair; valid/test always stop")
    p.add_argument("--workers", type=int, default=d["workers"], help="threads / processes for SentencePiece's encoding and fairseq-preprocess; they do not change the result (default %(default)s: this machine's cores, at most 8)")
    p.add_argument("--spm-model-type", choices=("unigram", "bpe"), default=d["spm_model_type"], help="SentencePiece model type (default %(default)s)")
    p.add_argument("--character-coverage", type=float, default=d["character_coverage"], help="SentencePiece character coverage (default %(default)s)")
    p.add_argument("--spm-max-sentences", type=int, default=d["spm_max_sentences"], help="train SentencePiece on at most this many sampled sentences; 0 = all (default %(default)s)")
    p.add_argument("--spm-threads", type=_at_least_one, default=d["spm_threads"], help="threads SentencePiece trains with: its vocabulary depends on them, so they are part of the corpus's recipe (default %(default)s, the same on every machine)")
    p.add_argument("--seed", type=int, default=d["seed"], help="random seed for SentencePiece's sampling (default %(default)s)")


def processing_options(args: argparse.Namespace) -> dict:
    """The Options fields that add_processing_options parsed into ``args``."""
    return dict(
        vocab_size=args.vocab_size, max_len=args.max_len, ratio=args.ratio, dedup=args.dedup,
        bad_utf8=args.bad_utf8, workers=max(1, args.workers), spm_model_type=args.spm_model_type,
        character_coverage=args.character_coverage, spm_max_sentences=args.spm_max_sentences,
        spm_threads=args.spm_threads, seed=args.seed,
    )


def build_parser(prog: str = "cpmt-prepare-corpus") -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog=prog,
        description=(
            "Bring your own parallel corpus: validate + normalise + clean it, train a joint "
            "SentencePiece model, encode, and binarize with fairseq-preprocess "
            "--joined-dictionary. Each step is skipped when already complete."
        ),
        epilog=(
            "Output layout: DATA_DIR/raw/{train,valid,test}.{SRC,TGT} (+ stats.json), "
            "DATA_DIR/spm/spm.{model,vocab}, DATA_DIR/spm_encoded/{split}.{SRC,TGT}, "
            "DATA_DIR/bin (fairseq data-bin). Example (Multi30k): --input DIR --src en --tgt de "
            "--valid-prefix DIR/val --test-prefix DIR/test_2016_flickr --out data/multi30k"
        ),
    )
    p.add_argument("--input", metavar="DIR", help="folder with train/valid/test.{SRC,TGT} (default prefixes DIR/train, DIR/valid, DIR/test)")
    p.add_argument("--src", required=True, help="source language code, the input files' suffix (e.g. en)")
    p.add_argument("--tgt", required=True, help="target language code (e.g. de)")
    p.add_argument("--out", required=True, metavar="DATA_DIR", help="output folder")
    for split in ("train", "valid"):
        p.add_argument(f"--{split}-prefix", metavar="P", help=f"{split} files are P.SRC and P.TGT (default DIR/{split})")
    p.add_argument("--test-prefix", metavar="[NAME=]P", action="append", default=[],
                   help="test files are P.SRC and P.TGT (default DIR/test). Repeat with NAME=P for "
                        "more test sets, e.g. --test-prefix newstest2015=DIR/newstest2015: each is "
                        "encoded with the same SentencePiece model and dictionary into raw/NAME.*, "
                        "bin/NAME.* and scored on its own by cpmt-evaluate")
    add_processing_options(p)
    p.add_argument("--force", action="store_true", help="redo every step even if complete, and "
                   "rebuild a complete corpus in --out that was made from other inputs or options "
                   "(without it that is refused)")
    p.add_argument("--stop-after", choices=STEPS, help="stop after this step")
    return p


def named_test_prefixes(values) -> Dict[str, str]:
    """{NAME: P} of the ``--test-prefix NAME=P`` values (the others are the main test set's);
    raises ValueError with the message for a bad or repeated name."""
    named = {}
    for value in values:
        if "=" not in value:
            continue
        name, prefix = value.split("=", 1)
        if not re.fullmatch(r"[A-Za-z0-9_]+", name) or name in SPLITS or re.fullmatch(r"test\d+", name):
            raise ValueError(f"--test-prefix {value}: NAME must be letters, digits or _ and not "
                             "train, valid, test or testN")
        if name in named:
            raise ValueError(f"--test-prefix {name}= given twice")
        named[name] = prefix
    return named


def options_from_args(args: argparse.Namespace, parser: argparse.ArgumentParser) -> Options:
    prefixes = {}
    main_tests = [value for value in args.test_prefix if "=" not in value]
    if len(main_tests) > 1:
        parser.error(f"--test-prefix without NAME= given {len(main_tests)} times: name the extra "
                     "test sets (--test-prefix NAME=P)")
    try:
        extra_tests = named_test_prefixes(args.test_prefix)
    except ValueError as err:
        parser.error(str(err))
    args.test_prefix = main_tests[0] if main_tests else None
    for split in SPLITS:
        given = getattr(args, f"{split}_prefix")
        if given:
            prefixes[split] = given
        elif args.input:
            prefixes[split] = os.path.join(args.input, split)
        else:
            parser.error(f"give --input DIR or --{split}-prefix")
    prefixes.update(extra_tests)
    if args.input and not os.path.isdir(args.input):
        raise CorpusError(f"--input {args.input} is not a folder")
    if args.vocab_size < 1:
        parser.error("--vocab-size must be positive")
    if args.src == args.tgt:
        parser.error("--src and --tgt must differ")
    return Options(src=args.src, tgt=args.tgt, out=args.out, prefixes=prefixes,
                   force=args.force, stop_after=args.stop_after, **processing_options(args))


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        prepare(options_from_args(args, parser))
    except CorpusError as e:
        print(f"[{PROG}] error: {e}", file=sys.stderr, flush=True)
        return 1
    except KeyboardInterrupt:
        print(f"[{PROG}] interrupted; the unfinished step will be redone on the next run", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
