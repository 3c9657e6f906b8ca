"""Loading fairseq checkpoints with torch's weights-only unpickler.

Since PyTorch 2.6 ``torch.load`` defaults to ``weights_only=True``, which
refuses the ``argparse.Namespace`` that fairseq stores under ``"args"``. Rather
than turning the safe loader off, importing this module (which ``--user-dir
fairseq_plugins`` does before any checkpoint is read) allowlists that one
class: fairseq-train's resume, fairseq-generate, fairseq-interactive and
cpmt-average then all load checkpoints weights-only.
A Namespace is rebuilt by setting attributes, so allowing it runs no code.
"""

import argparse
import os

import numpy
import torch

# argparse.Namespace: fairseq's "args". The numpy entries rebuild plain numeric arrays and
# scalars, which fairseq stores with --best-checkpoint-metric (e.g. the best valid BLEU of
# --eval-bleu, a numpy float64); they construct data only, as torch's own docs allow.
SAFE_GLOBALS = (
    argparse.Namespace,
    numpy.core.multiarray._reconstruct,
    numpy.core.multiarray.scalar,
    numpy.ndarray,
    numpy.dtype,
) + tuple(type(numpy.dtype(t)) for t in (  # numpy.dtypes.Float64DType and friends
    numpy.float64, numpy.float32, numpy.float16, numpy.int64, numpy.int32, numpy.bool_,
))

torch.serialization.add_safe_globals(list(SAFE_GLOBALS))


class CheckpointError(RuntimeError):
    """A checkpoint file that is missing, truncated or not a fairseq checkpoint."""


class CheckpointRefusedError(CheckpointError):
    """An intact checkpoint that holds an object the weights-only loader does not allow."""


def load_checkpoint(path: str) -> dict:
    """Loads a fairseq checkpoint on CPU, weights-only, with errors that name the file."""
    if not os.path.isfile(path):
        raise CheckpointError(f"{path}: no such checkpoint file")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # torch raises RuntimeError, UnpicklingError, EOFError...
        if "WeightsUnpickler error" in str(err):  # intact, but holds a type not allowed
            unsafe = torch.serialization.get_unsafe_globals_in_checkpoint(path)
            raise CheckpointRefusedError(
                f"{path}: holds objects the weights-only loader does not allow ({', '.join(unsafe)}); "
                "the file is not damaged. If you trust it, load it with a loader that allows "
                "them (torch.serialization.add_safe_globals)."
            ) from err
        raise CheckpointError(
            f"{path}: cannot be read as a PyTorch checkpoint ({type(err).__name__}: "
            f"{str(err).splitlines()[0] if str(err) else ''}). The file may be truncated "
            "by an interrupted write or copy: use another checkpoint or re-copy it."
        ) from err
    if not isinstance(state, dict) or "model" not in state:
        raise CheckpointError(f"{path}: not a fairseq checkpoint (no 'model' entry)")
    return state


def newest_intact_checkpoint(save_dir: str):
    """The checkpoint to resume from: ``checkpoint_last.pt`` if it loads, else the newest
    (by modification time) epoch or update checkpoint that loads.

    fairseq writes checkpoint{E}.pt and checkpoint_{E}_{U}.pt atomically (temp file and
    rename) but *copies* checkpoint_last.pt in place, so a kill during that copy leaves a
    truncated checkpoint_last.pt next to an intact file holding the same state.
    checkpoint_best.pt is not a candidate (it holds the best, not the newest state).

    Returns ``(path or None, [(damaged path, error message), ...])`` with the damaged files
    that are newer than the one returned (all of them when none loads). Raises
    :class:`CheckpointRefusedError` for an intact file the weights-only loader refuses.
    """
    last = os.path.join(save_dir, "checkpoint_last.pt")
    others = [
        os.path.join(save_dir, name)
        for name in os.listdir(save_dir)
        if name.startswith("checkpoint") and name.endswith(".pt")
        and name not in ("checkpoint_last.pt", "checkpoint_best.pt")
    ]
    others.sort(key=os.path.getmtime, reverse=True)
    damaged = []
    for path in ([last] if os.path.isfile(last) else []) + others:
        try:
            load_checkpoint(path)
        except CheckpointRefusedError:
            raise  # intact: never renamed as damaged
        except CheckpointError as err:
            damaged.append((path, str(err)))
            continue
        return path, damaged
    return None, damaged
