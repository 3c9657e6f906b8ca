"""Loading fairseq checkpoints with torch's weights-only unpickler.

Since PyTorch 2.6 ``torch.load`` defaults to ``weights_only=True``, which
refuses the ``argparse.Namespace`` that fairseq stores under ``"args"``. Rather
than turning the safe loader off, importing this module (which ``--user-dir
fairseq_plugins`` does before any checkpoint is read) allowlists that one
class: fairseq-train's resume, fairseq-generate, fairseq-interactive and
scripts/average_checkpoints.py then all load checkpoints weights-only.
A Namespace is rebuilt by setting attributes, so allowing it runs no code.
"""

import argparse
import os

import torch

SAFE_GLOBALS = (argparse.Namespace,)

torch.serialization.add_safe_globals(list(SAFE_GLOBALS))


class CheckpointError(RuntimeError):
    """A checkpoint file that is missing, truncated or not a fairseq checkpoint."""


def load_checkpoint(path: str) -> dict:
    """Loads a fairseq checkpoint on CPU, weights-only, with errors that name the file."""
    if not os.path.isfile(path):
        raise CheckpointError(f"{path}: no such checkpoint file")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # torch raises RuntimeError, UnpicklingError, EOFError...
        raise CheckpointError(
            f"{path}: cannot be read as a PyTorch checkpoint ({type(err).__name__}: "
            f"{str(err).splitlines()[0] if str(err) else ''}). The file may be truncated "
            "by an interrupted write or copy: use another checkpoint or re-copy it."
        ) from err
    if not isinstance(state, dict) or "model" not in state:
        raise CheckpointError(f"{path}: not a fairseq checkpoint (no 'model' entry)")
    return state
