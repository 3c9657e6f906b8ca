"""matplotlib for the reports' PNGs: imported on first use, headless, and quiet."""

from __future__ import annotations

import logging


def pyplot():
    """``matplotlib.pyplot`` on the non-interactive Agg backend (no display needed), with
    matplotlib's own logger held at WARNING: fairseq sets the root logger to DEBUG (its
    text_to_speech task calls logging.basicConfig on import), and matplotlib logs at DEBUG while
    it is imported, so the level is set first."""
    logging.getLogger("matplotlib").setLevel(logging.WARNING)
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt
