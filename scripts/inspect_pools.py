#!/usr/bin/env python
"""What ContextPool's pools learn: size and weight histograms, a sentence's coefficients.

    python scripts/inspect_pools.py --data DATA_DIR --checkpoint CKPT [--checkpoint CKPT2 ...] \
        --out DIR [--subset test] [--sentence 0]

See scripts/pipeline/pools.py for what is computed and written.
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from pipeline.pools import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
