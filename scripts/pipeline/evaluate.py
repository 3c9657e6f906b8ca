"""Translate a test set with fairseq-generate and score the translations.

Command line (``scripts/evaluate.sh`` runs this module)::

    scripts/evaluate.sh --data DATA_DIR --checkpoint CKPT --out EVAL_DIR \\
        [--subset test] [--src en --tgt de] [--beam 4] [--lenpen 0.6] \\
        [--max-tokens 4096] [--batch-size N] [--cpu] [-- EXTRA fairseq-generate ARGS]

What it does, in order:

1. Checks its inputs and names any missing file: the checkpoint, DATA_DIR/bin
   (dictionaries and the binarised split), DATA_DIR/spm/spm.model and the raw
   reference DATA_DIR/raw/SUBSET.TGT.
2. Runs fairseq-generate (``DATA_DIR/bin --path CKPT --user-dir fairseq_plugins
   --beam B --lenpen L --nbest 1 --required-batch-size-multiple 1``, *without*
   ``--remove-bpe``) through :mod:`pipeline.fairseq_generate`, which first reads
   the checkpoint's epoch and num_updates with
   ``fairseq_plugins.checkpoint_loading.load_checkpoint`` in the same process;
   stdout and stderr go, line by line, to EVAL_DIR/generate.log. ``--required-batch-size-multiple 1`` is not a tuning
   choice: the installed fairseq drops the last batch of a split when its size
   is not a multiple of that number (default 8), which would silently leave up
   to 7 test sentences untranslated.
3. Takes every ``H-<id>`` line (SentencePiece pieces), puts them back in corpus
   order by id, and detokenises each with DATA_DIR/spm/spm.model
   (``SentencePieceProcessor.decode_pieces``). That is the exact inverse of the
   encoding used to prepare the data, including pieces that fairseq's
   ``--remove-bpe sentencepiece`` string replacement would leave as they are
   (byte-fallback pieces such as ``<0xC3>``). Writes EVAL_DIR/hyp.txt, one line
   per reference line; a missing or extra sentence is an error.
4. Scores hyp.txt against the raw reference (EVAL_DIR/scores.json):

   * ``bleu_detok``: sacreBLEU corpus BLEU with its default 13a tokenisation.
   * ``chrf``: sacreBLEU chrF2 (character 6-grams, beta 2).
   * ``bleu_tok_compound_split``: the number WMT14 EN-DE papers report
     (tensor2tensor's get_ende_bleu.sh, fairseq's compound_split_bleu.sh):
     hyp and ref are each put through Moses' replace-unicode-punctuation and
     tokenizer.perl -l TGT (sacremoses, default XML escaping, no aggressive
     hyphen splitting), then hyphenated words are split as
     ``s{(\\S)-(\\S)}{$1 ##AT##-##AT## $2}g``, then BLEU is computed on the
     tokens with no further tokenisation and no smoothing (sacreBLEU
     ``tokenize='none', smooth_method='none'``, which matches multi-bleu.perl).
     The tokenised texts are kept as EVAL_DIR/hyp.tok and EVAL_DIR/ref.tok.
   * ``speed``: parsed from fairseq-generate's ``Translated N sentences (T
     tokens) in Xs (S sentences/s, W tokens/s)`` line (time inside the search
     only; model loading excluded) plus the whole command's wall time.
   * ``checkpoint``: path, epoch and num_updates read with
     fairseq_plugins.checkpoint_loading.load_checkpoint.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import re
import subprocess
import sys
import threading
import time
from importlib import metadata
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PLUGINS = ROOT / "fairseq_plugins"
SCHEMA = "contextpool-mt/scores/v1"

if str(ROOT) not in sys.path:  # so that fairseq_plugins imports when run from anywhere
    sys.path.insert(0, str(ROOT))

from pipeline.fairseq_logs import LogParseError, parse_generate_log  # noqa: E402
from pipeline.provenance import ProvenanceError, sha256_of  # noqa: E402
from pipeline.provenance import check as check_provenance_of  # noqa: E402

__all__ = [
    "EvaluationError",
    "compound_split",
    "CompoundSplitTokenizer",
    "score_bleu_detok",
    "score_chrf",
    "score_bleu_tok_compound_split",
    "score_all",
    "checkpoint_info",
    "read_lines",
    "main",
]


class EvaluationError(RuntimeError):
    """An evaluation that cannot go on; the message names the file at fault."""


# --------------------------------------------------------------------------- text files


def read_lines(path) -> list:
    """The lines of a UTF-8 text file, without their line ends ('\\n' or '\\r\\n').

    Only '\\n' ends a line (unlike str.splitlines, which also splits on
    U+2028 and friends), so the count agrees with ``wc -l`` and with the line
    numbering fairseq-preprocess used.
    """
    with open(path, encoding="utf-8", newline="") as handle:
        text = handle.read()
    if text == "":
        return []
    if text.endswith("\n"):
        text = text[:-1]
    return [line[:-1] if line.endswith("\r") else line for line in text.split("\n")]


def write_lines(path, lines) -> None:
    with open(path, "w", encoding="utf-8", newline="\n") as handle:
        for line in lines:
            handle.write(line.replace("\r", " ").replace("\n", " ") + "\n")


# --------------------------------------------------------------------------- metrics

_COMPOUND = re.compile(r"(\S)-(\S)")


def compound_split(line: str) -> str:
    """Splits hyphenated compounds the way WMT14 EN-DE BLEU scripts do.

    The same substitution as ``perl -ple 's{(\\S)-(\\S)}{$1 ##AT##-##AT## $2}g'``:
    non-overlapping, left to right, so in "a-b-c" only the first hyphen is split
    (the "b" is consumed by the first match), exactly as Perl does.
    """
    return _COMPOUND.sub(r"\1 ##AT##-##AT## \2", line)


class CompoundSplitTokenizer:
    """Moses replace-unicode-punctuation + tokenizer.perl -l LANG, then compound splitting."""

    def __init__(self, lang: str):
        try:
            from sacremoses import MosesPunctNormalizer, MosesTokenizer
        except ImportError as err:  # pragma: no cover - sacremoses is pinned in requirements
            raise EvaluationError(
                "sacremoses is needed for the tokenised compound-split BLEU: "
                "pip install -c requirements/constraints.txt sacremoses"
            ) from err
        self.lang = lang
        self._normalizer = MosesPunctNormalizer(lang=lang)
        self._tokenizer = MosesTokenizer(lang=lang)

    def tokenize(self, line: str) -> str:
        text = self._normalizer.replace_unicode_punct(line)
        return self._tokenizer.tokenize(text, aggressive_dash_splits=False, return_str=True, escape=True)

    def __call__(self, line: str) -> str:
        return compound_split(self.tokenize(line))


def _bleu_dict(metric, score, computed_as: str) -> dict:
    return {
        "score": score.score,
        "signature": str(metric.get_signature()),
        "computed_as": computed_as,
        "precisions": list(score.precisions),
        "bp": score.bp,
        "ratio": score.ratio,
        "sys_len": score.sys_len,
        "ref_len": score.ref_len,
        "string": str(score),
    }


def score_bleu_detok(hyps, refs) -> dict:
    from sacrebleu.metrics import BLEU

    metric = BLEU()
    score = metric.corpus_score(list(hyps), [list(refs)])
    return _bleu_dict(
        metric,
        score,
        "sacreBLEU corpus BLEU of the detokenised hypotheses (hyp.txt) against the raw "
        "reference, sacreBLEU's default 13a tokenisation, exp smoothing, case-sensitive",
    )


def score_chrf(hyps, refs) -> dict:
    from sacrebleu.metrics import CHRF

    metric = CHRF()
    score = metric.corpus_score(list(hyps), [list(refs)])
    return {
        "score": score.score,
        "signature": str(metric.get_signature()),
        "computed_as": "sacreBLEU chrF2 (character 6-grams, beta=2, no word n-grams) of "
        "hyp.txt against the raw reference",
        "name": score.name,
        "string": str(score),
    }


def tok_bleu_metric():
    from sacrebleu.metrics import BLEU

    return BLEU(tokenize="none", smooth_method="none", force=True)


def score_bleu_tok_compound_split(hyps_tok, refs_tok) -> dict:
    """BLEU on already tokenised, compound-split text (see CompoundSplitTokenizer)."""
    metric = tok_bleu_metric()
    score = metric.corpus_score(list(hyps_tok), [list(refs_tok)])
    out = _bleu_dict(
        metric,
        score,
        "tokenised compound-split BLEU as in WMT14 EN-DE papers (tensor2tensor "
        "get_ende_bleu.sh / fairseq compound_split_bleu.sh): hyp and ref each through "
        "sacremoses MosesPunctNormalizer.replace_unicode_punct and MosesTokenizer(lang)"
        ".tokenize(escape=True, aggressive_dash_splits=False), then "
        "s{(\\S)-(\\S)}{$1 ##AT##-##AT## $2}g, then sacreBLEU BLEU with tokenize='none', "
        "smooth_method='none' (multi-bleu.perl equivalent) on the tokens",
    )
    return out


def score_all(hyps, refs, lang: str) -> dict:
    """All three corpus scores of ``hyps`` against ``refs`` (target language ``lang``).

    Returns {'bleu_detok', 'chrf', 'bleu_tok_compound_split', 'hyps_tok', 'refs_tok'}.
    """
    if len(hyps) != len(refs):
        raise EvaluationError(f"{len(hyps)} hypotheses but {len(refs)} references")
    splitter = CompoundSplitTokenizer(lang)
    hyps_tok = [splitter(h) for h in hyps]
    refs_tok = [splitter(r) for r in refs]
    tok = score_bleu_tok_compound_split(hyps_tok, refs_tok)
    try:
        tok["tokenizer"] = f"sacremoses {metadata.version('sacremoses')} (lang={lang})"
    except metadata.PackageNotFoundError:  # pragma: no cover
        tok["tokenizer"] = f"sacremoses (lang={lang})"
    return {
        "bleu_detok": score_bleu_detok(hyps, refs),
        "chrf": score_chrf(hyps, refs),
        "bleu_tok_compound_split": tok,
        "hyps_tok": hyps_tok,
        "refs_tok": refs_tok,
    }


# --------------------------------------------------------------------------- checkpoint

_STANDARD_KEYS = {
    "args", "cfg", "model", "criterion", "optimizer_history", "task_state",
    "extra_state", "last_optimizer_state",
}


def _jsonable(value):
    try:
        json.dumps(value)
        return True
    except (TypeError, ValueError):
        return False


def _progress_fields(state: dict) -> dict:
    """epoch (finished epochs), mid_epoch, num_updates and the raw iterator state of a checkpoint."""
    extra = state.get("extra_state") or {}
    iterator = extra.get("train_iterator") or {}
    history = state.get("optimizer_history") or []
    epoch = mid_epoch = None
    if "epoch" in iterator:
        mid_epoch = (iterator.get("iterations_in_epoch", 0) or 0) > 0
        epoch = int(iterator["epoch"]) - 1
    return {
        "epoch": epoch,
        "mid_epoch": mid_epoch,
        "num_updates": history[-1].get("num_updates") if history else None,
        "train_iterator": {k: v for k, v in iterator.items() if _jsonable(v)},
    }


def model_option(state: dict, *names):
    """The first of ``names`` set in a checkpoint's model config (cfg.model, an omegaconf node or
    a dict), else in its legacy ``args`` Namespace; None when none is."""
    cfg = state.get("cfg")
    model_cfg = cfg.get("model") if isinstance(cfg, dict) else None
    for source in (model_cfg, state.get("args")):
        if source is None:
            continue
        for name in names:
            value = source.get(name) if isinstance(source, dict) else getattr(source, name, None)
            if value:
                return value
    return None


def checkpoint_info(path) -> dict:
    """Path, epoch, num_updates and arch of a fairseq checkpoint (weights-only load).

    ``epoch`` is the number of finished epochs: fairseq stores the iterator state
    after an epoch's end as {'epoch': N + 1, 'iterations_in_epoch': 0}. A
    checkpoint saved inside an epoch has ``mid_epoch`` true and ``epoch`` counts
    the finished epochs before it.

    An averaged checkpoint (scripts/average_checkpoints.py lists its inputs in
    ``extra_state['averaged_checkpoints']`` and keeps one input's other fields)
    gets the epoch and num_updates of the newest input that can still be read,
    and the list of inputs under ``averaged_checkpoints``.
    """
    from fairseq_plugins.checkpoint_loading import CheckpointError, load_checkpoint

    try:
        state = load_checkpoint(str(path))
    except CheckpointError as err:
        raise EvaluationError(str(err)) from err
    extra = state.get("extra_state") or {}
    arch = model_option(state, "arch", "_name")
    progress = _progress_fields(state)
    info = {
        "path": str(Path(path).resolve()),
        **progress,
        "progress_from": "this checkpoint's extra_state.train_iterator and optimizer_history",
        "arch": arch,
        "fairseq_training_seconds": extra.get("previous_training_time"),
        "size_bytes": os.path.getsize(path),
        "read_with": "fairseq_plugins.checkpoint_loading.load_checkpoint (weights-only)",
    }
    others = {k: v for k, v in state.items() if k not in _STANDARD_KEYS and _jsonable(v)}
    if others:
        info["other_entries"] = others
    averaged = extra.get("averaged_checkpoints")
    del state
    if isinstance(averaged, list) and averaged:
        members = []
        for member in averaged:
            entry = {"path": str(member), "epoch": None, "num_updates": None}
            try:
                sub = load_checkpoint(str(member))
            except CheckpointError as err:
                entry["unreadable"] = str(err)
            else:
                entry.update({k: v for k, v in _progress_fields(sub).items() if k != "train_iterator"})
                del sub
            members.append(entry)
        info["averaged_checkpoints"] = members
        known = [m for m in members if m["num_updates"] is not None]
        if known:
            newest = max(known, key=lambda m: m["num_updates"])
            info.update(
                epoch=newest["epoch"], mid_epoch=newest["mid_epoch"], num_updates=newest["num_updates"],
                progress_from=f"newest averaged input {newest['path']}",
            )
        else:
            info["progress_from"] += " (the averaged inputs could not be read)"
    return info


# --------------------------------------------------------------------------- generation


def _pump(stream, handle, lock):
    for raw in iter(stream.readline, b""):
        with lock:
            handle.write(raw.decode("utf-8", errors="replace"))
            handle.flush()
    stream.close()


def run_logged(cmd, log_path, env=None):
    """Runs ``cmd`` with stdout and stderr written, whole line by whole line, to log_path.

    Reading both pipes line by line keeps a stderr warning from landing in the
    middle of an H- line (which sharing one file descriptor would allow).
    Returns (exit status, wall seconds).
    """
    lock = threading.Lock()
    start = time.perf_counter()
    with open(log_path, "w", encoding="utf-8", newline="\n") as handle:
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
        threads = [
            threading.Thread(target=_pump, args=(proc.stdout, handle, lock), daemon=True),
            threading.Thread(target=_pump, args=(proc.stderr, handle, lock), daemon=True),
        ]
        for thread in threads:
            thread.start()
        returncode = proc.wait()
        for thread in threads:
            thread.join()
    return returncode, time.perf_counter() - start


def read_text_tail(path, n):
    with open(path, encoding="utf-8", errors="replace") as handle:
        return handle.readlines()[-n:]


def _find_split(bin_dir: Path, subset: str, src: str, tgt: str):
    for pair in (f"{src}-{tgt}", f"{tgt}-{src}"):
        prefix = bin_dir / f"{subset}.{pair}"
        if Path(f"{prefix}.{src}.idx").is_file() and Path(f"{prefix}.{tgt}.idx").is_file():
            return prefix
    return None


def check_inputs(args) -> dict:
    """Every input file, checked up front; a missing one is named in the error."""
    data = Path(args.data)
    if not data.is_dir():
        raise EvaluationError(f"{data}: no such data directory (expected raw/, spm/, bin/)")
    bin_dir = data / "bin"
    for name in (f"dict.{args.src}.txt", f"dict.{args.tgt}.txt"):
        if not (bin_dir / name).is_file():
            raise EvaluationError(
                f"{bin_dir / name}: missing (DATA_DIR/bin must be fairseq-preprocess output "
                f"for {args.src}-{args.tgt})"
            )
    split = _find_split(bin_dir, args.subset, args.src, args.tgt)
    if split is None:
        raise EvaluationError(
            f"{bin_dir / f'{args.subset}.{args.src}-{args.tgt}.{args.src}.idx'}: missing "
            f"(no binarised '{args.subset}' split for {args.src}-{args.tgt} in {bin_dir})"
        )
    spm_model = Path(args.spm_model) if args.spm_model else data / "spm" / "spm.model"
    if not spm_model.is_file():
        raise EvaluationError(f"{spm_model}: missing SentencePiece model (needed to detokenise)")
    reference = Path(args.reference) if args.reference else data / "raw" / f"{args.subset}.{args.tgt}"
    if not reference.is_file():
        raise EvaluationError(f"{reference}: missing reference (raw detokenised {args.tgt} text)")
    source = data / "raw" / f"{args.subset}.{args.src}"
    checkpoint = Path(args.checkpoint)
    if not checkpoint.is_file():
        raise EvaluationError(f"{checkpoint}: no such checkpoint file")
    return {
        "data": data,
        "bin": bin_dir,
        "split_prefix": split,
        "spm_model": spm_model,
        "reference": reference,
        "source": source if source.is_file() else None,
        "checkpoint": checkpoint,
        "src": args.src,
    }


def build_generate_command(args, paths, info_path) -> list:
    """The fairseq-generate command line, run via pipeline.fairseq_generate."""
    cmd = [
        sys.executable, "-m", "pipeline.fairseq_generate", str(info_path), str(paths["checkpoint"]),
        "--", str(paths["bin"]),
        "--path", str(paths["checkpoint"]),
        "--user-dir", str(PLUGINS),
        "--task", "translation",
        "--gen-subset", args.subset,
        "--source-lang", args.src,
        "--target-lang", args.tgt,
        "--beam", str(args.beam),
        "--lenpen", str(args.lenpen),
        "--nbest", "1",
        "--max-tokens", str(args.max_tokens),
        "--required-batch-size-multiple", "1",
    ]
    if args.batch_size:
        cmd += ["--batch-size", str(args.batch_size)]
    if args.cpu:
        cmd.append("--cpu")
    cmd += list(args.extra)
    return cmd


def detokenise(hypotheses: dict, n_refs: int, spm_model: Path, log_path: Path) -> list:
    """H- pieces in corpus order, SentencePiece-decoded; every id 0..n_refs-1 exactly once."""
    import sentencepiece as spm

    ids = sorted(hypotheses)
    expected = set(range(n_refs))
    missing = sorted(expected - set(ids))
    extra = sorted(set(ids) - expected)
    if missing or extra or len(ids) != n_refs:
        raise EvaluationError(
            f"{log_path}: {len(ids)} hypotheses for {n_refs} reference lines "
            f"(missing ids: {missing[:10]}{'...' if len(missing) > 10 else ''}; "
            f"unexpected ids: {extra[:10]}{'...' if len(extra) > 10 else ''}). "
            "Is DATA_DIR/bin binarised from the same raw files?"
        )
    processor = spm.SentencePieceProcessor(model_file=str(spm_model))
    return [processor.decode_pieces(hypotheses[i][1].split()) for i in range(n_refs)]


def _versions() -> dict:
    out = {}
    for name in ("sacrebleu", "sacremoses", "sentencepiece", "fairseq-fixed", "torch"):
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = None
    return out


def _device(cpu: bool) -> str:
    if cpu:
        return "cpu"
    try:
        import torch

        if torch.cuda.is_available():
            return f"cuda ({torch.cuda.get_device_name(0)})"
    except Exception:  # pragma: no cover
        pass
    return "cpu"


def check_generate_flags(args) -> None:
    """Refuse the flag combinations that crash or mislead the pinned fairseq-generate.

    (docs/training.md, "Known fairseq traps"): --diverse-beam-groups raises an IndexError in
    fairseq/search.py; --sampling needs --nbest equal to --beam, and evaluation keeps one
    hypothesis (--nbest 1).
    """
    extra = [flag.split("=", 1)[0] for flag in args.extra]
    if "--nbest" in extra:
        raise EvaluationError("--nbest after '--': evaluation scores one hypothesis per sentence "
                              "(it passes --nbest 1 itself); use fairseq-generate for n-best lists")
    if "--diverse-beam-groups" in extra:
        raise EvaluationError("--diverse-beam-groups crashes the pinned fairseq-generate (IndexError "
                              "in fairseq/search.py): leave it out")
    if "--sampling" in extra and args.beam != 1:
        raise EvaluationError(f"--sampling with --beam {args.beam}: fairseq needs --nbest = --beam and "
                              "evaluation keeps one hypothesis, so give --beam 1 with --sampling")


def check_source_lengths(paths, state) -> None:
    """Stop before decoding when a source is longer than the model's positional embeddings.

    fairseq-generate would crash on it mid-run ('max_source_positions'); the fix belongs to
    training (--max-source-positions) or to the data (shorter segments).
    """
    from fairseq.data import data_utils

    limit = model_option(state, "max_source_positions")
    if not limit:
        return
    prefix = f"{paths['split_prefix']}.{paths['src']}"
    dataset = data_utils.load_indexed_dataset(prefix, None)
    if dataset is None:
        return
    sizes = dataset.sizes
    too_long = [i for i, n in enumerate(sizes) if n > limit]
    if too_long:
        raise EvaluationError(
            f"{prefix}.bin: {len(too_long)} source sentence(s) longer than the model's "
            f"{limit} positions (first: line {too_long[0] + 1}, {int(sizes[too_long[0]])} tokens "
            f"incl. </s>); fairseq-generate would crash on them. Split or drop them in the corpus, "
            f"or train with a larger --max-source-positions"
        )


def check_provenance(args, paths) -> dict:
    """The checkpoint against --data, --src/--tgt and the SentencePiece model (pipeline.provenance).

    Raises EvaluationError when they do not belong together; an unrecorded provenance (an older
    checkpoint) is a note on stderr and ``checked: false`` in scores.json.
    """
    from fairseq_plugins.checkpoint_loading import CheckpointError, load_checkpoint

    try:
        state = load_checkpoint(str(paths["checkpoint"]))
    except CheckpointError as err:
        raise EvaluationError(str(err)) from err
    try:
        result = check_provenance_of(paths["checkpoint"], state, paths["bin"], args.src, args.tgt,
                                     paths["spm_model"])
    except ProvenanceError as err:
        raise EvaluationError(str(err)) from err
    if not result["checked"]:
        print(f"[evaluate] note: {result['note']}", file=sys.stderr)
    check_source_lengths(paths, state)
    return result


def evaluate(args) -> dict:
    check_generate_flags(args)
    paths = check_inputs(args)
    provenance = check_provenance(args, paths)
    refs = read_lines(paths["reference"])
    if not refs:
        raise EvaluationError(f"{paths['reference']}: empty reference file")
    if paths["source"] is not None:
        n_src = len(read_lines(paths["source"]))
        if n_src != len(refs):
            raise EvaluationError(
                f"{paths['source']} has {n_src} lines but the reference {paths['reference']} "
                f"has {len(refs)}: they must be line-aligned"
            )
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    scores_path = out / "scores.json"
    for stale in (scores_path, out / "hyp.txt", out / "hyp.tok", out / "ref.tok"):
        if stale.exists():
            stale.unlink()  # never leave old scores or translations next to a new log
    log_path = out / "generate.log"
    info_path = out / "checkpoint_info.json"
    cmd = build_generate_command(args, paths, info_path)
    env = dict(os.environ, PYTHONIOENCODING="utf-8", PYTHONUNBUFFERED="1")
    env["PYTHONPATH"] = os.pathsep.join(
        filter(None, [str(ROOT / "scripts"), str(ROOT), env.get("PYTHONPATH")])
    )
    print(f"[evaluate] fairseq-generate on {paths['checkpoint']} -> {log_path}", file=sys.stderr)
    if info_path.exists():
        info_path.unlink()
    returncode, wall = run_logged(cmd, log_path, env=env)
    ckpt = None
    if info_path.is_file():
        with open(info_path, encoding="utf-8") as handle:
            ckpt = json.load(handle)
        info_path.unlink()
        if "error" in ckpt:
            raise EvaluationError(ckpt["error"])
    if returncode != 0:
        tail = "".join(read_text_tail(log_path, 25))
        raise EvaluationError(
            f"fairseq-generate failed (exit {returncode}); see {log_path}. Last lines:\n{tail}"
        )
    if ckpt is None:
        raise EvaluationError(f"{info_path}: not written by pipeline.fairseq_generate")

    try:
        generated = parse_generate_log(log_path)
    except LogParseError as err:
        raise EvaluationError(str(err)) from err
    hyps = detokenise(generated["hypotheses"], len(refs), paths["spm_model"], log_path)
    hyp_path = out / "hyp.txt"
    write_lines(hyp_path, hyps)

    scored = score_all(hyps, refs, args.tgt)
    write_lines(out / "hyp.tok", scored["hyps_tok"])
    write_lines(out / "ref.tok", scored["refs_tok"])

    speed = generated["speed"]
    if speed is None:
        raise EvaluationError(f"{log_path}: no 'Translated N sentences ...' line from fairseq-generate")
    speed = dict(speed)
    speed.update(
        {
            "computed_as": "fairseq-generate's 'Translated N sentences (T tokens) in Xs "
            "(S sentences/s, W tokens/s)' line: time inside beam search only (no model "
            "loading); tokens are generated target pieces incl. EOS",
            "command_wall_seconds": wall,
            "device": _device(args.cpu),
            "batch": {"max_tokens": args.max_tokens, "batch_size": args.batch_size},
        }
    )

    scores = {
        "schema": SCHEMA,
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "subset": args.subset,
        "src": args.src,
        "tgt": args.tgt,
        "num_sentences": len(refs),
        "bleu_detok": scored["bleu_detok"],
        "chrf": scored["chrf"],
        "bleu_tok_compound_split": scored["bleu_tok_compound_split"],
        "speed": speed,
        "checkpoint": ckpt,
        "decoding": {
            "beam": args.beam,
            "lenpen": args.lenpen,
            "nbest": 1,
            "extra_generate_args": list(args.extra),
            "postprocess": "H- line SentencePiece pieces, put in corpus order by id, decoded "
            "with SentencePieceProcessor.decode_pieces(spm.model); fairseq-generate ran "
            "without --remove-bpe",
            "command": ["fairseq-generate", *cmd[cmd.index("--") + 1:]],
            "run_as": "python -m pipeline.fairseq_generate INFO CHECKPOINT -- <command>: "
            "fairseq_cli.generate.cli_main with these arguments, after reading the checkpoint's "
            "metadata",
        },
        "fairseq_bleu_line": generated["fairseq_bleu"],
        "provenance": provenance,
        "files": {
            "eval_dir": str(out.resolve()),
            "hyp": str(hyp_path.resolve()),
            "hyp_sha256": sha256_of(hyp_path),
            "hyp_tok": str((out / "hyp.tok").resolve()),
            "ref_tok": str((out / "ref.tok").resolve()),
            "reference": str(paths["reference"].resolve()),
            "reference_sha256": sha256_of(paths["reference"]),
            "source": str(paths["source"].resolve()) if paths["source"] else None,
            "generate_log": str(log_path.resolve()),
            "data_dir": str(paths["data"].resolve()),
            "data_bin": str(paths["bin"].resolve()),
            "spm_model": str(paths["spm_model"].resolve()),
            "checkpoint": ckpt["path"],
        },
        "versions": _versions(),
    }
    tmp = scores_path.with_suffix(".json.tmp")
    with open(tmp, "w", encoding="utf-8") as handle:
        json.dump(scores, handle, indent=2, ensure_ascii=False)
        handle.write("\n")
    os.replace(tmp, scores_path)
    return scores


def format_summary(scores: dict) -> str:
    b, c, t, s, k = (
        scores["bleu_detok"], scores["chrf"], scores["bleu_tok_compound_split"],
        scores["speed"], scores["checkpoint"],
    )
    lines = [
        f"BLEU  detok sacreBLEU             {b['score']:6.2f}   {b['signature']}",
        f"BLEU  tokenised, compound-split   {t['score']:6.2f}   {t['signature']} "
        f"(Moses tok + ##AT## split)",
        f"chrF2 sacreBLEU                   {c['score']:6.2f}   {c['signature']}",
        f"speed {s['sentences_per_second']:.2f} sentences/s, {s['tokens_per_second']:.1f} "
        f"tokens/s ({s['sentences']} sentences in {s['seconds']:.1f}s of search, "
        f"{s['command_wall_seconds']:.1f}s in all, {s['device']})",
        f"checkpoint {k['path']} (epoch {k['epoch']}, {k['num_updates']} updates); "
        f"beam {scores['decoding']['beam']}, lenpen {scores['decoding']['lenpen']}",
        f"hyp.txt and scores.json in {scores['files']['eval_dir']}",
    ]
    return "\n".join(lines)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="scripts/evaluate.sh",
        description="Translate DATA_DIR's test set with a checkpoint and score it "
        "(detok sacreBLEU, chrF, tokenised compound-split BLEU, speed).",
        epilog="Arguments after '--' go to fairseq-generate unchanged (e.g. -- --fp16).",
    )
    parser.add_argument("--data", required=True, help="prepared corpus: raw/, spm/spm.model, bin/")
    parser.add_argument("--checkpoint", required=True, help="fairseq checkpoint (.pt)")
    parser.add_argument("--out", required=True, help="EVAL_DIR for hyp.txt, generate.log, scores.json")
    parser.add_argument("--subset", default="test",
                        help="the main test set, scored into EVAL_DIR [test]")
    parser.add_argument("--test-sets", default="all", metavar="all|none|NAME,...",
                        help="further prepared test sets (prepare_corpus.sh --test-prefix NAME=P), "
                             "each scored into EVAL_DIR/NAME: all of them, none, or those named [all]")
    parser.add_argument("--src", default="en")
    parser.add_argument("--tgt", default="de")
    parser.add_argument("--beam", type=int, default=4)
    parser.add_argument("--lenpen", type=float, default=0.6)
    parser.add_argument("--max-tokens", type=int, default=4096)
    parser.add_argument("--batch-size", type=int, default=None)
    parser.add_argument("--cpu", action="store_true", help="decode on CPU even if a GPU is present")
    parser.add_argument("--spm-model", default=None, help="default: DATA_DIR/spm/spm.model")
    parser.add_argument("--reference", default=None, help="default: DATA_DIR/raw/SUBSET.TGT")
    return parser


def parse_args(argv=None):
    argv = list(sys.argv[1:] if argv is None else argv)
    extra = []
    if "--" in argv:
        cut = argv.index("--")
        argv, extra = argv[:cut], argv[cut + 1:]
    args = build_parser().parse_args(argv)
    args.extra = extra
    return args


def prepared_test_sets(bin_dir: Path, src: str, tgt: str) -> list:
    """Names of the binarised splits of DATA/bin other than train and valid, sorted."""
    names = set()
    for pair in (f"{src}-{tgt}", f"{tgt}-{src}"):
        for idx in Path(bin_dir).glob(f"*.{pair}.{src}.idx"):
            names.add(idx.name[: -len(f".{pair}.{src}.idx")])
    return sorted(names - {"train", "valid"})


def further_test_sets(args) -> list:
    """The test sets to score besides --subset, from --test-sets."""
    if args.test_sets == "none":
        return []
    prepared = prepared_test_sets(Path(args.data) / "bin", args.src, args.tgt)
    if args.test_sets == "all":
        return [name for name in prepared if name != args.subset]
    named = [name for name in args.test_sets.split(",") if name and name != args.subset]
    missing = [name for name in named if name not in prepared]
    if missing:
        raise EvaluationError(
            f"--test-sets {args.test_sets}: {', '.join(missing)} not prepared in "
            f"{Path(args.data) / 'bin'} (prepared: {', '.join(prepared) or 'none'}); add it with "
            "prepare_corpus.sh --test-prefix NAME=PREFIX"
        )
    return named


def main(argv=None) -> int:
    args = parse_args(argv)
    try:
        further = further_test_sets(args)
        scores = evaluate(args)
        print(format_summary(scores))
        for name in further:
            print(f"[evaluate] test set {name} -> {Path(args.out) / name}", file=sys.stderr)
            sub_args = argparse.Namespace(**{**vars(args), "subset": name,
                                             "out": str(Path(args.out) / name), "reference": None})
            print(format_summary(evaluate(sub_args)))
    except EvaluationError as err:
        print(f"evaluate: error: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
