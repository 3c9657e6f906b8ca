#!/usr/bin/env python
"""Compare training runs against a baseline: table, significance, plots.

    python scripts/compare_runs.py --run baseline=RUN_DIR --run contextpool=RUN_DIR2 \
        [--run NAME=DIR ...] [--baseline baseline] --data DATA_DIR --out REPORT_DIR \
        [--eval avg] [--bootstrap-samples 1000]

See scripts/pipeline/report.py for what is read and how every number is computed.
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from pipeline.report import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
