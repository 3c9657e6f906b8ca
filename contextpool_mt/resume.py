"""What scripts/train.sh resumes from, checked before fairseq-train starts.

    python -m contextpool_mt.resume check CHECKPOINT      # an explicit --restore-file
    python -m contextpool_mt.resume choose CHECKPOINT_DIR # checkpoint_last.pt or the newest intact
    python -m contextpool_mt.resume finished CHECKPOINT --max-update N --max-epoch N

fairseq-train fails on an unreadable checkpoint with a torch traceback that does not name the
file. ``check`` loads the file (weights-only) and names it on failure. ``choose`` prints
checkpoint_last.pt, or, if that is damaged (fairseq copies it in place: a kill during the copy
truncates it), the newest intact checkpoint; damaged files are renamed ``*.damaged`` (kept for
inspection, out of the way of resuming and averaging). Exit status 1 with a message when there
is nothing to resume from.

``finished`` prints why a training resumed from CHECKPOINT has nothing left to do (it is at
--max-update, or past --max-epoch), and prints nothing while there is something left to train:
fairseq-train tests --max-update only *after* an update, so re-running a finished command would
train one update more and overwrite checkpoint_last.pt and checkpoint_best.pt.
"""

import argparse
import os
import sys

from fairseq_plugins.checkpoint_loading import (
    CheckpointError,
    CheckpointRefusedError,
    load_checkpoint,
    newest_intact_checkpoint,
)


def check(path: str) -> int:
    try:
        load_checkpoint(path)
    except CheckpointError as err:
        print(f"train.sh: cannot resume: {err}", file=sys.stderr)
        return 1
    return 0


def choose(directory: str) -> int:
    try:
        chosen, damaged = newest_intact_checkpoint(directory)
    except CheckpointRefusedError as err:
        print(f"train.sh: cannot resume: {err}", file=sys.stderr)
        return 1
    for path, error in damaged:
        os.replace(path, path + ".damaged")
        print(f"train.sh: damaged checkpoint, kept as {path}.damaged: {error}", file=sys.stderr)
    if chosen is None:
        print(f"train.sh: cannot resume: no checkpoint in {directory} loads (see above); "
              "move the run directory away to train from scratch", file=sys.stderr)
        return 1
    print(chosen)
    return 0


def reached_limit(state: dict, max_update: int, max_epoch: int):
    """The limit a training resumed from the checkpoint ``state`` has already reached:
    ``"max-update"``, ``"max-epoch"``, or None when there is still something to train.

    The limits are fairseq's (0: none). ``--max-update``: the checkpoint's update count has reached
    it. ``--max-epoch``: fairseq trains while the iterator's next epoch is <= max_epoch, and a
    checkpoint saved at the end of epoch E records epoch E + 1 (``EpochBatchIterator.state_dict``).
    """
    updates = (state.get("optimizer_history") or [{}])[-1].get("num_updates")
    next_epoch = ((state.get("extra_state") or {}).get("train_iterator") or {}).get("epoch")
    if max_update > 0 and updates is not None and updates >= max_update:
        return "max-update"
    if max_epoch > 0 and next_epoch is not None and next_epoch > max_epoch:
        return "max-epoch"
    return None


def finished(path: str, max_update: int, max_epoch: int) -> int:
    try:
        state = load_checkpoint(path)
    except CheckpointError as err:
        print(f"train.sh: cannot resume: {err}", file=sys.stderr)
        return 1
    limit = reached_limit(state, max_update, max_epoch)
    if limit:
        value = max_update if limit == "max-update" else max_epoch
        updates = (state.get("optimizer_history") or [{}])[-1].get("num_updates")
        print(f"already at {limit} {value}; nothing to do ({path} holds update {updates}; "
              f"raise --{limit} to train on)")
    return 0


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m contextpool_mt.resume", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("check", help="an explicit --restore-file must load").add_argument("checkpoint")
    sub.add_parser("choose", help="print the checkpoint to resume from").add_argument("directory")
    done = sub.add_parser("finished", help="print why resuming CHECKPOINT has nothing to train "
                                           "(nothing when it has)")
    done.add_argument("checkpoint")
    done.add_argument("--max-update", type=int, required=True, help="fairseq's --max-update (0: none)")
    done.add_argument("--max-epoch", type=int, required=True, help="fairseq's --max-epoch (0: none)")
    args = parser.parse_args(argv)
    if args.command == "finished":
        return finished(args.checkpoint, args.max_update, args.max_epoch)
    return check(args.checkpoint) if args.command == "check" else choose(args.directory)


if __name__ == "__main__":
    sys.exit(main())
