"""What a fairseq checkpoint says about itself: training progress, model options, and, for an
average written by :mod:`contextpool_mt.average`, the inputs it averaged; and which run a
checkpoint belongs to (its run folder's ``checkpoints/``), which evaluation and the reports check.

A checkpoint is read once (``fairseq_plugins.checkpoint_loading.load_checkpoint``, weights-only)
by whoever needs it; these functions only look at the loaded dict.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from contextpool_mt.provenance import sha256_of

AVERAGED_KEY = "averaged_checkpoints"  # extra_state entry of an average: its inputs' progress
def progress_of(state: dict) -> dict:
    """epoch (finished epochs), mid_epoch and num_updates of a loaded checkpoint.

    fairseq stores the iterator state after an epoch's end as {'epoch': N + 1,
    'iterations_in_epoch': 0}; a checkpoint saved inside an epoch has ``mid_epoch`` true and
    ``epoch`` counts the finished epochs before it.
    """
    iterator = (state.get("extra_state") or {}).get("train_iterator") or {}
    history = state.get("optimizer_history") or []
    epoch = mid_epoch = None
    if "epoch" in iterator:
        mid_epoch = (iterator.get("iterations_in_epoch", 0) or 0) > 0
        epoch = int(iterator["epoch"]) - 1
    return {
        "epoch": epoch,
        "mid_epoch": mid_epoch,
        "num_updates": history[-1].get("num_updates") if history else None,
    }


def model_option(state: dict, *names):
    """The first of ``names`` set in a checkpoint's model config (cfg.model: a dict, an omegaconf
    DictConfig as fairseq's loader returns it, or a Namespace), else in its legacy ``args``
    Namespace; None when none is."""
    cfg = state.get("cfg")
    model_cfg = cfg.get("model") if isinstance(cfg, Mapping) else None
    for source in (model_cfg, state.get("args")):
        if source is None:
            continue
        for name in names:
            value = source.get(name) if isinstance(source, Mapping) else getattr(source, name, None)
            if value:
                return value
    return None


def checkpoint_info(path, state: dict) -> dict:
    """Path, progress and arch of the checkpoint ``state`` loaded from ``path``.

    An average lists its inputs with their own progress under ``averaged_checkpoints`` (the
    averager read them when it averaged), and gets the epoch and num_updates of the newest one.
    """
    extra = state.get("extra_state") or {}
    info = {"path": str(Path(path).resolve()), **progress_of(state),
            "arch": model_option(state, "arch", "_name")}
    members = extra.get(AVERAGED_KEY)
    if members:
        info[AVERAGED_KEY] = members
        known = [m for m in members if isinstance(m, dict) and m.get("num_updates") is not None]
        if known:
            newest = max(known, key=lambda m: m["num_updates"])
            info.update(epoch=newest["epoch"], mid_epoch=newest["mid_epoch"],
                        num_updates=newest["num_updates"])
        else:  # averaged before the averager recorded its inputs' progress
            info.update(epoch=None, mid_epoch=None, num_updates=None)
    return info


# --------------------------------------------------------------------------- which run a checkpoint is of


def run_of_eval_dir(eval_dir):
    """RUN when EVAL_DIR is RUN/eval/NAME of a run folder (one with RUN/checkpoints), else None."""
    eval_dir = Path(os.path.abspath(eval_dir))
    run = eval_dir.parent.parent
    if eval_dir.parent.name == "eval" and (run / "checkpoints").is_dir():
        return run
    return None


def is_in_run(checkpoint, run_dir) -> bool:
    """Whether the file CHECKPOINT lies in RUN_DIR/checkpoints (links followed on both sides)."""
    folder = os.path.realpath(Path(run_dir) / "checkpoints")
    return os.path.realpath(checkpoint).startswith(folder + os.sep)


def scored_checkpoint_is_of_run(scored: dict, run_dir) -> bool:
    """Whether the checkpoint a scores.json records (its ``checkpoint`` entry: ``path``, resolved at
    evaluation, and ``sha256`` since it is recorded) is one of RUN_DIR's.

    It is when its path lies in RUN_DIR/checkpoints; or in the checkpoints folder of a run of
    RUN_DIR's name (the run folder moved, or exported by ``cpmt-study export``, whose artefact
    folders keep the run's name); or when RUN_DIR/checkpoints holds a file of its name with the
    content it was scored with (the run folder renamed).
    """
    if not scored.get("path"):
        return False
    recorded = Path(scored["path"])
    if is_in_run(recorded, run_dir):
        return True
    if recorded.parent.name == "checkpoints" and recorded.parent.parent.name == Path(run_dir).resolve().name:
        return True
    candidate = Path(run_dir) / "checkpoints" / recorded.name
    return bool(scored.get("sha256")) and candidate.is_file() and sha256_of(candidate) == scored["sha256"]

