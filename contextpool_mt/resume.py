"""What scripts/train.sh resumes from, checked before fairseq-train starts.

    python -m contextpool_mt.resume check CHECKPOINT      # an explicit --restore-file
    python -m contextpool_mt.resume choose CHECKPOINT_DIR # checkpoint_last.pt or the newest intact

fairseq-train fails on an unreadable checkpoint with a torch traceback that does not name the
file. ``check`` loads the file (weights-only) and names it on failure. ``choose`` prints
checkpoint_last.pt, or, if that is damaged (fairseq copies it in place: a kill during the copy
truncates it), the newest intact checkpoint; damaged files are renamed ``*.damaged`` (kept for
inspection, out of the way of resuming and averaging). Exit status 1 with a message when there
is nothing to resume from.
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


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m contextpool_mt.resume", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("check", help="an explicit --restore-file must load").add_argument("checkpoint")
    sub.add_parser("choose", help="print the checkpoint to resume from").add_argument("directory")
    args = parser.parse_args(argv)
    return check(args.checkpoint) if args.command == "check" else choose(args.directory)


if __name__ == "__main__":
    sys.exit(main())
