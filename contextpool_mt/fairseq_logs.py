"""Parsers for the logs fairseq's command-line tools write.

Two logs are read:

* ``RUN_DIR/train.log``: what ``fairseq-train --log-format json`` prints. Each
  process (a first run, or a resume from ``checkpoint_last.pt``) prints a
  ``num. shared model params: N (num. trained: M)`` line, then JSON records
  tagged ``train_inner`` (every ``--log-interval`` updates), ``valid`` and
  ``train`` (one each per epoch; the ``train`` record's keys carry a
  ``train_`` prefix). In a ``train`` record, ``train_wall`` is fairseq's
  ``wall`` meter, the seconds since the process built its Trainer (so it
  restarts at 0 in every process), and ``train_train_wall`` is the seconds
  spent inside ``train_step`` during that epoch (forward, backward, update;
  not data loading, validation or checkpoint writing).
* ``EVAL_DIR/generate.log``: ``fairseq-generate``'s output: ``S-``/``T-``/
  ``H-``/``D-``/``P-`` lines per sentence and the closing line
  ``Translated N sentences (T tokens) in Xs (S sentences/s, W tokens/s)``.

All values in fairseq's JSON records are strings ("7", "313.5"); they are
turned into numbers here.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable

from contextpool_mt.machine import parse_line as parse_machine_line

__all__ = [
    "LogParseError",
    "to_number",
    "parse_json_record",
    "parse_param_line",
    "parse_train_log",
    "parse_train_log_lines",
    "parse_translated_line",
    "parse_generate_log",
    "parse_generate_log_lines",
]


class LogParseError(ValueError):
    """A log that lacks what is needed, with the file named in the message."""


# "2026-11-24 18:18:10 | INFO | train | {...}" (also tolerates other prefixes).
_JSON_RECORD = re.compile(r"\|\s*(?P<tag>train_inner|train|valid[\w-]*)\s*\|\s*(?P<json>\{.*\})\s*$")
_PARAMS = re.compile(
    r"num\. shared model params:\s*(?P<all>[\d,]+)\s*\(num\. trained:\s*(?P<trained>[\d,]+)\)"
)
_LOADED = re.compile(r"Loaded checkpoint (?P<path>.+?) \(epoch (?P<epoch>\d+) @ (?P<updates>\d+) updates\)")
_DONE = re.compile(r"done training in (?P<seconds>[\d.]+) seconds")
_ARCH = re.compile(r"\barch='(?P<arch>[^']+)'")
_TRANSLATED = re.compile(
    r"Translated (?P<sentences>[\d,]+) sentences \((?P<tokens>[\d,]+) tokens\) in "
    r"(?P<seconds>[\d.]+)s \((?P<sps>[\d.]+|inf|nan) sentences/s, (?P<tps>[\d.]+|inf|nan) tokens/s\)"
)
_HYPOTHESIS = re.compile(r"^H-(?P<id>\d+)\t(?P<score>[^\t]*)\t(?P<text>.*)$")


def to_number(value):
    """'7' -> 7, '313.5' -> 313.5, '1,234' -> 1234; anything else is returned as is."""
    if isinstance(value, (int, float)) or value is None:
        return value
    text = str(value).replace(",", "")
    try:
        return int(text)
    except ValueError:
        pass
    try:
        return float(text)
    except ValueError:
        return value


def parse_json_record(line: str):
    """Returns (tag, {key: number}) for a fairseq JSON log line, else None."""
    match = _JSON_RECORD.search(line)
    if not match:
        return None
    try:
        record = json.loads(match.group("json"))
    except json.JSONDecodeError:
        return None
    if not isinstance(record, dict):
        return None
    return match.group("tag"), {k: to_number(v) for k, v in record.items()}


def parse_param_line(line: str):
    """Returns (params, params_trained) from fairseq-train's parameter count line, else None."""
    match = _PARAMS.search(line)
    if not match:
        return None
    return int(match.group("all").replace(",", "")), int(match.group("trained").replace(",", ""))


def parse_train_log(path) -> dict:
    """Parses RUN_DIR/train.log; see :func:`parse_train_log_lines`."""
    path = Path(path)
    if not path.is_file():
        raise LogParseError(f"{path}: no such training log (fairseq-train output with --log-format json)")
    with open(path, encoding="utf-8", errors="replace") as handle:
        return parse_train_log_lines(handle, source=str(path))


def parse_train_log_lines(lines: Iterable[str], source: str = "<train.log>") -> dict:
    """Parses fairseq-train's json-format log.

    Returns a dict with ``params``/``params_trained`` (from the last process's
    count line), ``arch``, ``segments`` (one per fairseq-train process),
    ``machines`` (each process's :mod:`contextpool_mt.machine` record, None
    where train.sh wrote none),
    ``epochs`` (one entry per epoch, the last record of each epoch winning when
    an epoch was run twice), and totals:

    * ``wall_seconds``: sum of the per-epoch wall times. An epoch's wall time is
      the difference of fairseq's ``wall`` meter between its ``train`` record and
      the previous one in the same process; the first epoch of a process gets the
      whole meter (time since that process built its Trainer), plus the time a
      previous, interrupted process spent after its last finished epoch (its
      last logged ``wall``), so that work later lost to a crash still counts.
    * ``train_wall_seconds``: sum of fairseq's per-epoch ``train_wall`` (seconds
      in ``train_step``). fairseq rounds it to whole seconds per epoch.
    * ``words``: sum over epochs of ``wpb`` (target tokens per update, averaged
      over the epoch) times the epoch's updates.
    * ``words_per_second``: ``words / train_wall_seconds``;
      ``words_per_wall_second``: ``words / wall_seconds``;
      ``fairseq_wps_mean``: the words-weighted mean of fairseq's own per-epoch
      ``wps`` (``words / sum(words_e / wps_e)``).
    """
    segments = _split_segments(event for raw in lines for event in _line_events(raw))
    if not segments:
        raise LogParseError(
            f"{source}: no 'num. shared model params' line and no json records: "
            "not a fairseq-train log?"
        )
    records = [entry for segment in segments for entry in segment.epoch_records]
    if not records:
        raise LogParseError(
            f"{source}: no per-epoch json 'train' records: was fairseq-train run with "
            "--log-format json, and did it finish an epoch?"
        )
    _add_wall_seconds(segments)
    kept, discarded = _latest_epochs(records)
    totals = _accumulate_epochs(kept)
    return _train_log_summary(source, segments, kept, discarded, totals)


@dataclass
class _Segment:
    """What one fairseq-train process logged (its part of an appended train.log)."""

    index: int
    params: int | None
    params_trained: int | None
    arch: str | None
    machine: dict | None = None  # train.sh's ``# machine:`` record for the process, if it wrote one
    loaded_checkpoint: dict | None = None
    max_wall: float = 0.0  # the largest ``wall`` meter reading the process logged
    done_training_seconds: float | None = None
    epoch_records: list = field(default_factory=list)  # one entry per ``train`` record
    pending_valid: dict | None = None  # the valid record waiting for its epoch's train record


@dataclass
class _Totals:
    """Running sums over the kept epochs, in epoch order."""

    wall_seconds: float = 0.0
    train_wall_seconds: float = 0.0
    num_updates: int = 0  # of the last epoch added
    words: float = 0.0
    fairseq_seconds: float = 0.0  # sum of words_e / wps_e


def _line_events(raw: str) -> list:
    """What one train.log line says, as a list of (kind, value) events.

    Kinds: ``params`` ((params, params_trained)) for the count line that opens a
    process, ``machine`` (the record of train.sh's ``# machine:`` line, written
    before the process starts), ``record`` ((tag, values)) for a JSON record, and for other lines
    ``arch`` (the name in ``arch='...'``), ``loaded`` (the regex match of the
    checkpoint a resume loaded) and ``done`` (the match of ``done training in N
    seconds``). Matches are turned into values only inside a process (see
    :func:`_add_event`), as lines before the first process are ignored.
    """
    line = raw.rstrip("\n")
    machine = parse_machine_line(line)
    if machine is not None:
        return [("machine", machine)]
    params = parse_param_line(line)
    if params is not None:
        return [("params", params)]
    record = parse_json_record(line) if "{" in line else None
    if record is not None:
        return [("record", record)]
    events = []
    arch = _ARCH.search(line) if "arch=" in line else None
    if arch:
        events.append(("arch", arch.group("arch")))
    loaded = _LOADED.search(line)
    if loaded:
        events.append(("loaded", loaded))
    done = _DONE.search(line)
    if done:
        events.append(("done", done))
    return events


def _split_segments(events: Iterable) -> list:
    """Groups the log's events into one :class:`_Segment` per fairseq-train process.

    A process starts at its parameter count line, or at the first JSON record of
    a log cut at the top. Its arch is the last ``arch='...'`` seen before it
    starts (fairseq-train prints its config before the count line), its machine
    the ``# machine:`` record written since the previous process started; other
    lines before the first process are ignored.
    """
    segments = []
    arch_hint = machine_hint = None
    for kind, value in events:
        if kind == "arch":
            arch_hint = value
        elif kind == "machine":
            machine_hint = value
        elif kind == "params":
            segments.append(_Segment(len(segments), *value, arch=arch_hint, machine=machine_hint))
            machine_hint = None
        elif segments or kind == "record":
            if not segments:
                segments.append(_Segment(0, None, None, arch=arch_hint, machine=machine_hint))
                machine_hint = None
            _add_event(segments[-1], kind, value)
    return segments


def _add_event(segment: _Segment, kind: str, value) -> None:
    """Adds a ``loaded``, ``done`` or ``record`` event to the process that logged it."""
    if kind == "loaded":
        segment.loaded_checkpoint = {
            "path": value.group("path"),
            "epoch": int(value.group("epoch")),
            "num_updates": int(value.group("updates")),
        }
    elif kind == "done":
        segment.done_training_seconds = float(value.group("seconds"))
    elif kind == "record":
        _add_record(segment, *value)


def _add_record(segment: _Segment, tag: str, values: dict) -> None:
    """Adds one JSON record: ``train_inner`` and ``train`` advance the wall meter,
    a ``valid*`` record waits for its epoch's ``train`` record, which makes an epoch entry.

    Of several valid records before a ``train`` record, a plain ``valid`` one wins,
    else the first.
    """
    if tag == "train_inner":
        _note_wall(segment, values.get("wall"))
    elif tag.startswith("valid"):
        if tag == "valid" or segment.pending_valid is None:
            segment.pending_valid = values
    elif tag == "train":
        _note_wall(segment, values.get("train_wall"))
        segment.epoch_records.append(_epoch_entry(values, segment.pending_valid, segment.index))
        segment.pending_valid = None


def _note_wall(segment: _Segment, wall) -> None:
    """Keeps the largest numeric ``wall`` meter reading of the process."""
    if isinstance(wall, (int, float)):
        segment.max_wall = max(segment.max_wall, float(wall))


def _epoch_entry(values: dict, valid: dict | None, segment_index: int) -> dict:
    """One epoch's entry from its ``train`` record, with the losses of the valid
    record logged before it when that is of the same epoch."""
    entry = {
        "epoch": values.get("epoch"),
        "num_updates": values.get("train_num_updates"),
        "segment": segment_index,
        "wall_meter": values.get("train_wall"),
        "train_wall_seconds": values.get("train_train_wall"),
        "fairseq_wps": values.get("train_wps"),
        "wpb": values.get("train_wpb"),
        "ups": values.get("train_ups"),
        "train_loss": values.get("train_loss"),
        "valid_loss": None,
        "valid_bleu": None,
    }
    if valid is not None and valid.get("epoch") == entry["epoch"]:
        entry["valid_loss"] = valid.get("valid_loss")
        entry["valid_bleu"] = valid.get("valid_bleu")  # with --eval-bleu
    return entry


def _add_wall_seconds(segments: list) -> None:
    """Sets every epoch entry's ``wall_seconds``: the wall meter's difference to the
    process's previous epoch; a process's first epoch also gets the time earlier
    processes spent after their last epoch (their largest meter reading past it)."""
    carried = 0.0
    for segment in segments:
        previous_wall = 0.0
        for entry in segment.epoch_records:
            meter = float(entry["wall_meter"] or 0.0)
            entry["wall_seconds"] = meter - previous_wall + carried
            carried = 0.0
            previous_wall = meter
        carried += max(0.0, segment.max_wall - previous_wall)


def _latest_epochs(records: list) -> tuple:
    """Splits the epoch entries, in log order, into (kept, discarded).

    The last record of every epoch is kept (a resume from an older checkpoint
    re-runs epochs), and a re-run epoch also supersedes every later-numbered
    epoch logged before it; the records superseded are the discarded ones.
    """
    last_index = {}
    for index, entry in enumerate(records):
        last_index[entry["epoch"]] = index
    kept = []
    for index in sorted(last_index.values()):
        entry = records[index]
        kept = [e for e in kept if e["epoch"] < entry["epoch"]]
        kept.append(entry)
    kept_ids = {id(e) for e in kept}
    return kept, [e for e in records if id(e) not in kept_ids]


def _accumulate_epochs(kept: list) -> _Totals:
    """Adds each kept epoch's updates, words, cumulative times and words/s to its
    entry, and returns the totals over all of them."""
    totals = _Totals()
    for entry in kept:
        updates = entry["num_updates"] or 0
        entry["updates_in_epoch"] = updates - totals.num_updates
        totals.num_updates = updates
        entry["words"] = (entry["wpb"] or 0) * entry["updates_in_epoch"]
        totals.wall_seconds += entry["wall_seconds"]
        totals.train_wall_seconds += float(entry["train_wall_seconds"] or 0)
        entry["cumulative_wall_seconds"] = totals.wall_seconds
        entry["cumulative_train_wall_seconds"] = totals.train_wall_seconds
        entry["words_per_second"] = (
            entry["words"] / entry["train_wall_seconds"] if entry["train_wall_seconds"] else None
        )
        totals.words += entry["words"]
        if entry["fairseq_wps"]:
            totals.fairseq_seconds += entry["words"] / entry["fairseq_wps"]
    return totals


def _train_log_summary(source: str, segments: list, kept: list, discarded: list, totals: _Totals) -> dict:
    """The dict :func:`parse_train_log_lines` returns."""
    params_segments = [s for s in segments if s.params is not None]
    params = params_segments[-1].params if params_segments else None
    params_trained = params_segments[-1].params_trained if params_segments else None
    arch = next((s.arch for s in reversed(segments) if s.arch), None)
    done = [s.done_training_seconds for s in segments if s.done_training_seconds is not None]
    return {
        "source": source,
        "params": params,
        "params_trained": params_trained,
        "params_by_process": [s.params for s in segments],
        "arch": arch,
        "num_processes": len(segments),
        "machines": [s.machine for s in segments],
        "resumed_from": [s.loaded_checkpoint for s in segments if s.loaded_checkpoint],
        "epochs": [_public_epoch(e) for e in kept],
        "discarded_epoch_records": [_public_epoch(e) for e in discarded],
        "num_epochs": len(kept),
        "num_updates": kept[-1]["num_updates"],
        "wall_seconds": totals.wall_seconds,
        "wall_seconds_including_discarded": totals.wall_seconds
        + sum(e["wall_seconds"] for e in discarded),
        "train_wall_seconds": totals.train_wall_seconds,
        "words": totals.words,
        "words_per_second": totals.words / totals.train_wall_seconds if totals.train_wall_seconds else None,
        "words_per_wall_second": totals.words / totals.wall_seconds if totals.wall_seconds else None,
        "fairseq_wps_mean": totals.words / totals.fairseq_seconds if totals.fairseq_seconds else None,
        "done_training_seconds": sum(done) if done else None,
        "finished": segments[-1].done_training_seconds is not None,
    }


def _public_epoch(entry: dict) -> dict:
    keys = (
        "epoch", "num_updates", "updates_in_epoch", "segment", "wall_seconds",
        "cumulative_wall_seconds", "train_wall_seconds", "cumulative_train_wall_seconds",
        "words", "words_per_second", "fairseq_wps", "wpb", "ups", "train_loss", "valid_loss",
        "valid_bleu", "wall_meter",
    )
    return {k: entry.get(k) for k in keys}


def parse_translated_line(line: str):
    """Parses fairseq-generate's 'Translated N sentences (T tokens) in Xs (...)' line."""
    match = _TRANSLATED.search(line)
    if not match:
        return None
    return {
        "sentences": int(match.group("sentences").replace(",", "")),
        "tokens": int(match.group("tokens").replace(",", "")),
        "seconds": float(match.group("seconds")),
        "sentences_per_second": float(match.group("sps")),
        "tokens_per_second": float(match.group("tps")),
    }


def parse_generate_log(path) -> dict:
    path = Path(path)
    if not path.is_file():
        raise LogParseError(f"{path}: no such fairseq-generate log")
    with open(path, encoding="utf-8", errors="replace", newline="\n") as handle:
        return parse_generate_log_lines(handle, source=str(path))


def parse_generate_log_lines(lines: Iterable[str], source: str = "<generate.log>") -> dict:
    """Returns {'hypotheses': {id: (score, text)}, 'speed': {...} or None}.

    ``text`` is the H- line's hypothesis as fairseq printed it (SentencePiece
    pieces joined by spaces when fairseq-generate ran without --remove-bpe).
    A repeated H- id (from --nbest > 1) is an error.
    """
    hypotheses = {}
    speed = None
    for raw in lines:
        line = raw.rstrip("\n").rstrip("\r")
        match = _HYPOTHESIS.match(line)
        if match:
            sample_id = int(match.group("id"))
            if sample_id in hypotheses:
                raise LogParseError(
                    f"{source}: hypothesis H-{sample_id} appears twice (run with --nbest 1)"
                )
            hypotheses[sample_id] = (to_number(match.group("score")), match.group("text"))
            continue
        parsed = parse_translated_line(line)
        if parsed is not None:
            speed = parsed
    return {"hypotheses": hypotheses, "speed": speed}


def progress_line(name: str, line: str):
    """One line of progress for a fairseq-train output line, or None.

    ``NAME: epoch N loss L, W target words/s`` at each epoch's end (its ``train`` record, with
    the epoch's valid BLEU when ``--eval-bleu`` logs one), ``NAME: train.sh: ...`` for the
    wrapper's own messages; everything else is left to the run's train.log.
    """
    if line.startswith("train.sh:"):
        return f"{name}: {line.rstrip()}"
    parsed = parse_json_record(line)
    if parsed is None:
        return None
    tag, record = parsed
    if tag == "train" and "epoch" in record:
        return (f"{name}: epoch {record['epoch']} loss {record.get('train_loss')}, "
                f"{record.get('train_wps')} target words/s")
    if tag == "valid" and record.get("valid_bleu") is not None:
        return f"{name}: epoch {record.get('epoch')} valid BLEU {record['valid_bleu']}"
    return None


def main(argv=None) -> int:
    """``python -m contextpool_mt.fairseq_logs progress NAME``: fairseq-train output on stdin ->
    one progress line per epoch on stdout (the comparison and study scripts' view of a run)."""
    import argparse
    import sys

    parser = argparse.ArgumentParser(prog="python -m contextpool_mt.fairseq_logs", description=main.__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    progress = sub.add_parser("progress", help="per-epoch progress of fairseq-train output on stdin")
    progress.add_argument("name", help="run name to prefix every line with")
    args = parser.parse_args(argv)
    for line in sys.stdin:
        shown = progress_line(args.name, line)
        if shown is not None:
            print(shown, flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
