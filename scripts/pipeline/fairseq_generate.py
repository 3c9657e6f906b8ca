"""fairseq-generate, preceded by reading the checkpoint's metadata, in one process.

    python -m pipeline.fairseq_generate INFO_JSON CHECKPOINT -- FAIRSEQ_GENERATE_ARGS...

scripts/pipeline/evaluate.py runs this instead of ``python -m fairseq_cli.generate``
so that fairseq (several seconds of imports) is loaded once per evaluation, not
twice. It writes :func:`pipeline.evaluate.checkpoint_info` for CHECKPOINT to
INFO_JSON (``{"error": message}`` and exit status 3 when the checkpoint cannot
be read, before any translation starts), then runs fairseq-generate's own
``cli_main`` with FAIRSEQ_GENERATE_ARGS as its command line.
"""

import json
import sys

EXIT_BAD_CHECKPOINT = 3


def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if len(argv) < 3 or argv[2] != "--":
        print(__doc__, file=sys.stderr)
        return 2
    info_path, checkpoint, generate_args = argv[0], argv[1], argv[3:]

    from pipeline.evaluate import EvaluationError, checkpoint_info

    try:
        info = checkpoint_info(checkpoint)
    except EvaluationError as err:
        with open(info_path, "w", encoding="utf-8") as handle:
            json.dump({"error": str(err)}, handle)
        print(f"error: {err}", file=sys.stderr)
        return EXIT_BAD_CHECKPOINT
    with open(info_path, "w", encoding="utf-8") as handle:
        json.dump(info, handle, indent=2)

    from fairseq_cli.generate import cli_main

    sys.argv = ["fairseq-generate", *generate_args]
    cli_main()
    return 0


if __name__ == "__main__":
    sys.exit(main())
