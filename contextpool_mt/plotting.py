"""matplotlib for the reports' PNGs: imported on first use, headless, and quiet."""

from __future__ import annotations

import logging


def pyplot():
    """``matplotlib.pyplot`` on the non-interactive Agg backend (no display needed), with
    matplotlib's own logger held at WARNING: fairseq configures the root logger verbosely."""
    import matplotlib

    logging.getLogger("matplotlib").setLevel(logging.WARNING)
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt
