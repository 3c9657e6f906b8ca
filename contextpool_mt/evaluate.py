"""Translate a test set with fairseq-generate and score the translations.

Command line (``cpmt-evaluate --help``)::

    cpmt-evaluate --data DATA_DIR --checkpoint CKPT --out EVAL_DIR [--force] \\
        [--subset test] [--test-sets all|none|NAME,...] [--src en --tgt de] [--beam 4] \\
        [--lenpen 0.6] [--max-tokens 4096] [--batch-size N] [--cpu] [-- EXTRA fairseq-generate ARGS]

What it does, in order:

1. Checks its inputs and names any missing file: the checkpoint, DATA_DIR/bin
   (dictionaries and the binarised split), DATA_DIR/spm/spm.model and the raw
   reference DATA_DIR/raw/SUBSET.TGT; refuses fairseq-generate flags that crash or mislead.
   Checks where the scores go: an EVAL_DIR of a run folder (RUN/eval/NAME beside RUN/checkpoints)
   takes only a checkpoint of RUN/checkpoints, since the report reads it as RUN's scores; and an
   EVAL_DIR that holds scores already is replaced only with ``--force`` (the same checkpoint,
   decoding and reference scored again is "nothing to do", exit 0).
2. Reads the checkpoint once (``fairseq_plugins.checkpoint_loading.load_checkpoint``,
   weights-only): its epoch and num_updates (an average's come from the inputs it
   recorded, :mod:`contextpool_mt.checkpoints`), the data it was trained on, checked
   against DATA_DIR (:mod:`contextpool_mt.provenance`), and its max_source_positions,
   checked against every source sentence to be translated.
3. Runs fairseq-generate (``python -m fairseq_cli.generate DATA_DIR/bin --path CKPT --user-dir
   fairseq_plugins --beam B --lenpen L --nbest 1 --required-batch-size-multiple 1``,
   *without* ``--remove-bpe``); its stdout and stderr go, whole line by whole line, to
   EVAL_DIR/generate.log. ``--required-batch-size-multiple 1`` is not a tuning
   choice: the installed fairseq drops the last batch of a split when its size
   is not a multiple of that number (default 8), which would silently leave up
   to 7 test sentences untranslated.
4. Takes every ``H-<id>`` line (SentencePiece pieces), puts them back in corpus
   order by id, and detokenises each with DATA_DIR/spm/spm.model
   (``SentencePieceProcessor.decode_pieces``). That is the exact inverse of the
   encoding used to prepare the data, including pieces that fairseq's
   ``--remove-bpe sentencepiece`` string replacement would leave as they are
   (byte-fallback pieces such as ``<0xC3>``). Writes EVAL_DIR/hyp.txt, one line
   per reference line; a missing or extra sentence is an error.
5. Scores hyp.txt against the raw reference with :mod:`contextpool_mt.metrics` into
   EVAL_DIR/scores.json: ``bleu_detok``, ``chrf``, ``bleu_tok_compound_split`` (whose
   tokenised texts are kept as EVAL_DIR/hyp.tok and EVAL_DIR/ref.tok, for the report's
   bootstrap), ``speed`` (fairseq-generate's ``Translated N sentences (T tokens) in Xs``
   line: time inside the search only, plus the whole command's wall time), ``checkpoint``
   (with its sha256) and ``provenance``.

Every further prepared test set (``cpmt-prepare-corpus --test-prefix NAME=P``) is scored the same
way into EVAL_DIR/NAME, with the checkpoint read once for all of them.

Nothing is lost on an interruption: every file is written into EVAL_DIR's staging folder
(``.NAME.incomplete`` beside it; a failed fairseq-generate's log stays there, and the next run
removes it; Ctrl-C removes it at once and exits with status 130) and moved into EVAL_DIR only when every set is scored, each set's scores.json last,
with SIGINT/SIGTERM held back meanwhile. Until then the previous evaluation stays as it was.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from importlib import metadata
from pathlib import Path

from contextpool_mt import metrics
from contextpool_mt.checkpoints import checkpoint_info, is_in_run, model_option, run_of_eval_dir
from contextpool_mt.corpus import binarised_folder_error
from contextpool_mt.fairseq_logs import LogParseError, parse_generate_log
from contextpool_mt.provenance import ProvenanceError, sha256_of
from contextpool_mt.provenance import check as check_provenance_of
from contextpool_mt.text import read_lines, write_lines

PLUGINS = Path(__file__).resolve().parents[1] / "fairseq_plugins"
SCHEMA = "contextpool-mt/scores/v1"
# what an evaluation writes into each test set's folder; scores.json last, since it is what
# the report reads first and what makes a folder an evaluation
OUTPUT_FILES = ("generate.log", "hyp.txt", "hyp.tok", "ref.tok", "scores.json")


class EvaluationError(RuntimeError):
    """An evaluation that cannot go on; the message names the file at fault."""


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
    if wrong_layout := binarised_folder_error(str(data)):
        raise EvaluationError(wrong_layout)
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


def build_generate_command(args, paths) -> list:
    """The fairseq-generate command line (fairseq's own ``fairseq_cli.generate``)."""
    cmd = [
        sys.executable, "-m", "fairseq_cli.generate", str(paths["bin"]),
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


def check_source_lengths(paths, limit) -> None:
    """Stop before decoding when a source is longer than the model's positional embeddings.

    fairseq-generate would crash on it mid-run ('max_source_positions'); the fix belongs to
    training (--max-source-positions) or to the data (shorter segments).
    """
    from fairseq.data import data_utils

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


def read_checkpoint(args, paths) -> dict:
    """The checkpoint, read once: what scores.json records of it, and what is checked with it.

    Returns {'info': checkpoints.checkpoint_info, 'provenance': the result of checking it
    against --data, --src/--tgt and the SentencePiece model (contextpool_mt.provenance),
    'max_source_positions'}. Raises EvaluationError when they do not belong together; an
    unrecorded provenance (an older checkpoint) is a note on stderr and ``checked: false``.
    """
    from fairseq_plugins.checkpoint_loading import CheckpointError, load_checkpoint

    try:
        state = load_checkpoint(str(paths["checkpoint"]))
    except CheckpointError as err:
        raise EvaluationError(str(err)) from err
    try:
        provenance = check_provenance_of(paths["checkpoint"], state, paths["bin"], args.src, args.tgt,
                                         paths["spm_model"])
    except ProvenanceError as err:
        raise EvaluationError(str(err)) from err
    if not provenance["checked"]:
        print(f"[evaluate] note: {provenance['note']}", file=sys.stderr)
    return {
        "info": checkpoint_info(paths["checkpoint"], state),
        "provenance": provenance,
        "max_source_positions": model_option(state, "max_source_positions"),
    }


def evaluate_set(args, paths, checkpoint, work: Path) -> dict:
    """Translates and scores one test set (``args.subset``) for ``args.out``, writing every file
    into the staging folder WORK (:func:`publish` moves them); returns scores.json."""
    check_source_lengths(paths, checkpoint["max_source_positions"])
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
    out = Path(args.out)  # where the files will be once published: what scores.json records
    work.mkdir(parents=True, exist_ok=True)
    log_path = work / "generate.log"
    cmd = build_generate_command(args, paths)
    env = dict(os.environ, PYTHONIOENCODING="utf-8", PYTHONUNBUFFERED="1")
    print(f"[evaluate] fairseq-generate on {paths['checkpoint']} -> {log_path}", file=sys.stderr)
    returncode, wall = run_logged(cmd, log_path, env=env)
    if returncode != 0:
        tail = "".join(read_text_tail(log_path, 25))
        raise EvaluationError(
            f"fairseq-generate failed (exit {returncode}); see {log_path}. Last lines:\n{tail}"
        )
    ckpt = checkpoint["info"]

    try:
        generated = parse_generate_log(log_path)
    except LogParseError as err:
        raise EvaluationError(str(err)) from err
    hyps = detokenise(generated["hypotheses"], len(refs), paths["spm_model"], log_path)
    write_lines(work / "hyp.txt", hyps)

    scored = metrics.score_all(hyps, refs, args.tgt)
    write_lines(work / "hyp.tok", scored["hyps_tok"])
    write_lines(work / "ref.tok", scored["refs_tok"])

    speed = generated["speed"]
    if speed is None:
        raise EvaluationError(f"{log_path}: no 'Translated N sentences ...' line from fairseq-generate")
    speed = dict(speed)
    speed.update(
        {
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
            "command": ["fairseq-generate", *cmd[3:]],
        },
        "provenance": checkpoint["provenance"],
        "files": {
            "eval_dir": str(out.resolve()),
            "hyp": str((out / "hyp.txt").resolve()),
            "hyp_sha256": sha256_of(work / "hyp.txt"),
            "hyp_tok": str((out / "hyp.tok").resolve()),
            "hyp_tok_sha256": sha256_of(work / "hyp.tok"),
            "ref_tok": str((out / "ref.tok").resolve()),
            "ref_tok_sha256": sha256_of(work / "ref.tok"),
            "reference": str(paths["reference"].resolve()),
            "reference_sha256": sha256_of(paths["reference"]),
            "source": str(paths["source"].resolve()) if paths["source"] else None,
            "generate_log": str((out / "generate.log").resolve()),
            "data_dir": str(paths["data"].resolve()),
            "data_bin": str(paths["bin"].resolve()),
            "spm_model": str(paths["spm_model"].resolve()),
            "checkpoint": ckpt["path"],
        },
        "versions": _versions(),
    }
    with open(work / "scores.json", "w", encoding="utf-8") as handle:
        json.dump(scores, handle, indent=2, ensure_ascii=False)
        handle.write("\n")
    return scores


# --------------------------------------------------------------------------- where scores go


def check_destination(out: Path, checkpoint: Path) -> None:
    """An evaluation folder of a run (RUN/eval/NAME beside RUN/checkpoints) takes only a checkpoint
    of RUN/checkpoints: the report reads everything in RUN/eval as RUN's scores."""
    if out.exists() and not out.is_dir():
        raise EvaluationError(f"--out {out}: exists and is not a folder")
    run = run_of_eval_dir(out)
    if run is not None and not is_in_run(checkpoint, run):
        raise EvaluationError(
            f"--out {out} is an evaluation folder of the run {run}, but {checkpoint} is not one of "
            f"its checkpoints ({run / 'checkpoints'}): the report would take its scores for that "
            "run's. Score it into RUN/eval/NAME of the run it belongs to, or outside any run folder"
        )


def earlier_scores(out: Path) -> list:
    """The scores.json files of an earlier evaluation in OUT: its own and its test sets'."""
    if not out.is_dir():
        return []
    found = [out / "scores.json"] if (out / "scores.json").is_file() else []
    return found + [child / "scores.json" for child in sorted(out.iterdir())
                    if child.is_dir() and (child / "scores.json").is_file()]


def scored_already(sets, paths, checkpoint_sha: str, earlier: list):
    """The stored scores when EARLIER holds exactly this evaluation (every set, scored from a
    checkpoint with this content, with this fairseq-generate command, against these references),
    else None."""
    if sorted(earlier) != sorted(Path(one.out) / "scores.json" for one in sets):
        return None
    stored = []
    for one, one_paths in zip(sets, paths):
        try:
            scores = json.loads((Path(one.out) / "scores.json").read_text(encoding="utf-8"))
            same = (scores["checkpoint"].get("sha256") == checkpoint_sha
                    and scores["decoding"]["command"][1:] == build_generate_command(one, one_paths)[3:]
                    and scores["files"]["reference_sha256"] == sha256_of(one_paths["reference"]))
        except (OSError, ValueError, KeyError, TypeError):
            return None
        if not same:
            return None
        stored.append(scores)
    return stored


def _scored_checkpoint(scores_path: Path) -> str:
    try:
        return json.loads(scores_path.read_text(encoding="utf-8"))["checkpoint"]["path"]
    except (OSError, ValueError, KeyError, TypeError):
        return "another evaluation"


def staging_folder(out: Path) -> Path:
    """A new, empty staging folder beside OUT (on its file system, so that files move by rename);
    what an earlier interrupted evaluation left there is removed."""
    out = Path(os.path.abspath(out))
    staging = out.parent / f".{out.name}.incomplete"
    if staging.exists():
        shutil.rmtree(staging)
    staging.mkdir(parents=True)
    return staging


@contextlib.contextmanager
def signals_held(signals=(signal.SIGINT, signal.SIGTERM, signal.SIGHUP)):
    """Holds SIGNALS back (they stay pending) until the block is left."""
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, signals)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)


def publish(staging: Path, out: Path, set_names: list) -> None:
    """Moves a finished evaluation from STAGING into OUT: each further test set's files, then the
    main set's, scores.json last in each; then removes the test sets of an earlier evaluation
    that this one has not got. Interrupts wait until everything is in place."""
    with signals_held():
        for name in [*set_names, ""]:
            target = out / name
            target.mkdir(parents=True, exist_ok=True)
            for file in OUTPUT_FILES:
                os.replace(staging / name / file, target / file)
        for scores_path in earlier_scores(out):
            folder = scores_path.parent
            if folder != out and folder.name not in set_names:
                for file in OUTPUT_FILES:
                    (folder / file).unlink(missing_ok=True)
                with contextlib.suppress(OSError):
                    folder.rmdir()  # unless it holds files of someone else's
    shutil.rmtree(staging)


def evaluate(args) -> list:
    """Scores ``args.subset`` into ``args.out`` and every further test set into ``args.out/NAME``;
    returns their scores.json contents, the main set first. The checkpoint is read once."""
    check_generate_flags(args)
    further = further_test_sets(args)
    out = Path(args.out)
    sets = [args] + [argparse.Namespace(**{**vars(args), "subset": name, "reference": None,
                                           "out": str(out / name)}) for name in further]
    paths = [check_inputs(one) for one in sets]  # every missing file before any decoding
    check_destination(out, paths[0]["checkpoint"])
    checkpoint_sha = sha256_of(paths[0]["checkpoint"])
    earlier = earlier_scores(out)
    if earlier and not args.force:
        stored = scored_already(sets, paths, checkpoint_sha, earlier)
        if stored is not None:
            print(f"[evaluate] {out} already holds these scores (a checkpoint of the same content, "
                  "the same decoding and references): nothing to do; --force scores again",
                  file=sys.stderr)
            return stored
        raise EvaluationError(
            f"{earlier[0]}: exists (the scores of {_scored_checkpoint(earlier[0])}); "
            "give --force to replace that evaluation, or another --out"
        )
    checkpoint = read_checkpoint(args, paths[0])
    checkpoint["info"]["sha256"] = checkpoint_sha
    staging = staging_folder(out)
    results = []
    try:
        for one, one_paths in zip(sets, paths):
            if one is not args:
                print(f"[evaluate] test set {one.subset} -> {one.out}", file=sys.stderr)
            results.append(evaluate_set(one, one_paths, checkpoint, staging / Path(one.out).relative_to(out)))
        publish(staging, out, further)
    except KeyboardInterrupt:
        shutil.rmtree(staging, ignore_errors=True)  # this run's own, unpublished files
        raise
    return results


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
        prog="cpmt-evaluate",
        description="Translate DATA_DIR's test set with a checkpoint and score it "
        "(detok sacreBLEU, chrF, tokenised compound-split BLEU, speed).",
        epilog="Arguments after '--' go to fairseq-generate unchanged (e.g. -- --fp16).",
    )
    parser.add_argument("--data", required=True, help="prepared corpus: raw/, spm/spm.model, bin/")
    parser.add_argument("--checkpoint", required=True, help="fairseq checkpoint (.pt)")
    parser.add_argument("--out", required=True, help="EVAL_DIR for hyp.txt, generate.log, scores.json")
    parser.add_argument("--force", action="store_true",
                        help="replace the scores EVAL_DIR holds already (without it, an earlier "
                             "evaluation there is kept and the command stops)")
    parser.add_argument("--subset", default="test",
                        help="the main test set, scored into EVAL_DIR [test]")
    parser.add_argument("--test-sets", default="all", metavar="all|none|NAME,...",
                        help="further prepared test sets (cpmt-prepare-corpus --test-prefix NAME=P), "
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
            "cpmt-prepare-corpus --test-prefix NAME=PREFIX"
        )
    return named


def main(argv=None) -> int:
    args = parse_args(argv)
    try:
        for scores in evaluate(args):
            print(format_summary(scores))
    except EvaluationError as err:
        print(f"evaluate: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"cpmt-evaluate: interrupted; {args.out} unchanged (the previous result, if any, "
              "is kept)", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
