#!/usr/bin/env python
"""Multi-seed study: export a run's artefacts, count its FLOPs, report over seeds.

    python scripts/study.py export --run-dir RUN_DIR --out ARTEFACT_DIR
    python scripts/study.py cost --checkpoint CKPT --data DATA_DIR --out COST_JSON
    python scripts/study.py report --artefacts DIR --data DATA_DIR --out REPORT_DIR

See scripts/pipeline/study.py; scripts/run_study.sh runs the whole study.
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from pipeline.study import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
