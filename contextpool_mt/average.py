"""Averages the model parameters of several fairseq checkpoints of one run.

    cpmt-average --inputs runs/x/checkpoints \\
        --num-epoch-checkpoints 5 --output runs/x/checkpoints/checkpoint_avg5.pt
    cpmt-average --inputs a.pt b.pt c.pt --output avg.pt

With ``--num-epoch-checkpoints N`` (or ``--num-update-checkpoints N``) the single
directory in ``--inputs`` is searched for its last N epoch checkpoints
``checkpoint{epoch}.pt`` (or update checkpoints ``checkpoint_{epoch}_{updates}.pt``),
optionally only those at or below ``--checkpoint-upper-bound``; otherwise
``--inputs`` lists the checkpoint files themselves.

Every checkpoint is read with torch's weights-only loader
(:func:`fairseq_plugins.checkpoint_loading.load_checkpoint`). Checkpoints of
different models are refused: parameter names, shapes and the model
configuration (architecture and model hyperparameters, not training settings
such as lr, seed or save_dir) must match the first one. Parameters are summed in
float64 and written back in their original dtype. The output keeps the first
checkpoint's other fields (cfg/args, ...) so fairseq-generate loads it, drops the
optimizer state, records every input with its epoch and num_updates in
``extra_state["averaged_checkpoints"]`` (so that nobody needs to open the inputs again to know
what was averaged) and is written atomically (temporary file + ``os.replace``).
"""

import argparse
import os
import re
import sys
import tempfile
from collections.abc import Mapping

import torch

from fairseq_plugins.checkpoint_loading import CheckpointError, load_checkpoint

from contextpool_mt import provenance
from contextpool_mt.checkpoints import AVERAGED_KEY, progress_of

EPOCH_PATTERN = re.compile(r"^checkpoint(\d+)\.pt$")
UPDATE_PATTERN = re.compile(r"^checkpoint_(\d+)_(\d+)\.pt$")

# Model options that change how a model runs (memory, wrapping, export), not what it computes.
RUNTIME_ONLY_OPTIONS = frozenset(
    {"checkpoint_activations", "offload_activations", "min_params_to_wrap", "export"}
)
# Options that are never part of a model's configuration; used only when the
# model class is unknown and the checkpoint has no other config groups to tell.
TRAINING_OPTIONS = frozenset(
    {
        "lr", "seed", "save_dir", "data", "restore_file", "max_epoch", "max_update",
        "max_tokens", "batch_size", "update_freq", "optimizer", "lr_scheduler", "criterion",
        "clip_norm", "weight_decay", "adam_betas", "adam_eps", "warmup_updates",
        "warmup_init_lr", "log_interval", "log_format", "num_workers", "user_dir", "cpu",
        "fp16", "bf16", "distributed_world_size", "device_id", "tensorboard_logdir",
    }
)
# Entries of the first checkpoint that are not carried into the average.
DROPPED_FIELDS = ("last_optimizer_state",)
DROPPED_EXTRA_STATE = ("ema", "ema_fp32_params")  # an EMA copy of one input is not the average
MAX_LISTED = 6


class AverageError(Exception):
    """A user error: bad inputs, missing or incompatible checkpoints."""


# --------------------------------------------------------------------------- selection


def find_checkpoints(directory, kind, upper_bound=None):
    """Checkpoints of ``kind`` ('epoch' or 'update') in ``directory``, oldest first.

    Returns ``[(position, path)]`` where position is the epoch or the update count.
    """
    pattern = EPOCH_PATTERN if kind == "epoch" else UPDATE_PATTERN
    found = []
    for name in os.listdir(directory):
        match = pattern.match(name)
        if match is None:
            continue
        position = int(match.group(match.lastindex))  # epoch, or number of updates
        if upper_bound is not None and position > upper_bound:
            continue
        found.append((position, os.path.join(directory, name)))
    found.sort()
    return found


def select_inputs(inputs, num_epoch=None, num_update=None, upper_bound=None):
    """The checkpoint files to average, the newest first when taken from a directory."""
    count = num_epoch if num_epoch is not None else num_update
    if count is None:
        if upper_bound is not None:
            raise AverageError(
                "--checkpoint-upper-bound needs --num-epoch-checkpoints or --num-update-checkpoints"
            )
        for path in inputs:
            if os.path.isdir(path):
                raise AverageError(
                    f"{path} is a directory: pass --num-epoch-checkpoints N or "
                    "--num-update-checkpoints N to average its last N checkpoints, "
                    "or list checkpoint files"
                )
        seen = {}
        for path in inputs:
            key = os.path.realpath(path)
            if key in seen:
                raise AverageError(f"{path} is listed twice (also as {seen[key]})")
            seen[key] = path
        return list(inputs)

    if count < 1:
        raise AverageError("the number of checkpoints to average must be at least 1")
    if len(inputs) != 1 or not os.path.isdir(inputs[0]):
        raise AverageError(
            "with --num-epoch-checkpoints/--num-update-checkpoints, --inputs must be a single "
            f"checkpoint directory (got: {' '.join(inputs)})"
        )
    directory = inputs[0]
    kind = "epoch" if num_epoch is not None else "update"
    found = find_checkpoints(directory, kind, upper_bound)
    if len(found) < count:
        example = "checkpoint{epoch}.pt" if kind == "epoch" else "checkpoint_{epoch}_{updates}.pt"
        bound = f" at or below {upper_bound}" if upper_bound is not None else ""
        listed = ", ".join(os.path.basename(p) for _, p in found) or "none"
        hint = ""
        if not found:
            other = "update" if kind == "epoch" else "epoch"
            if find_checkpoints(directory, other):
                hint = f" (the directory has {other} checkpoints: use --num-{other}-checkpoints)"
        raise AverageError(
            f"asked to average the last {count} {kind} checkpoints ({example}){bound} in "
            f"{directory}, but found only {len(found)}: {listed}{hint}"
        )
    return [path for _, path in reversed(found[-count:])]


# --------------------------------------------------------------------------- compatibility


def _model_option_names(arch):
    """Names of the options the model class of ``arch`` declares, or None if unknown."""
    try:
        from fairseq.models import ARCH_MODEL_REGISTRY
    except ImportError:  # pragma: no cover - fairseq is a dependency of the plugins
        return None
    model_class = ARCH_MODEL_REGISTRY.get(arch)
    if model_class is None:
        return None
    parser = argparse.ArgumentParser(add_help=False)
    try:
        model_class.add_args(parser)
    except Exception:  # a model whose add_args cannot run outside fairseq-train
        return None
    return {action.dest for action in parser._actions}


def _normalize(value):
    if isinstance(value, tuple):
        return [_normalize(v) for v in value]
    if isinstance(value, list):
        return [_normalize(v) for v in value]
    if isinstance(value, Mapping):
        return {k: _normalize(v) for k, v in value.items()}
    return value


def model_config(state, path):
    """(arch, {option: value}, source) of a checkpoint: only the model's own options."""
    args = state.get("args")
    cfg = state.get("cfg")
    if args is not None:
        source = args
    elif isinstance(cfg, Mapping) and cfg.get("model") is not None:
        source = cfg["model"]
    else:
        raise AverageError(f"{path}: has no model configuration (neither 'args' nor 'cfg.model')")

    if isinstance(source, argparse.Namespace):
        # fairseq-train stores every command-line option in one Namespace: keep the model's.
        options = dict(vars(source))
        kind = "namespace"
    elif isinstance(source, Mapping):
        # fairseq-hydra-train stores the model group alone.
        options = dict(source)
        kind = "dict"
    else:
        raise AverageError(f"{path}: unreadable model configuration of type {type(source).__name__}")

    arch = options.get("arch") or options.get("_name")
    if kind == "namespace":
        names = _model_option_names(arch)
        if names is None:
            names = set(options) - TRAINING_OPTIONS
            if isinstance(cfg, Mapping):
                for group, values in cfg.items():
                    if group != "model" and isinstance(values, Mapping):
                        names -= set(values)
        options = {k: v for k, v in options.items() if k in names}
    options = {
        k: _normalize(v)
        for k, v in options.items()
        if k not in RUNTIME_ONLY_OPTIONS and k not in ("arch", "_name")
    }
    return arch, options, kind


def _listing(keys):
    keys = sorted(keys)
    shown = ", ".join(keys[:MAX_LISTED])
    return shown + (f", ... ({len(keys)} in all)" if len(keys) > MAX_LISTED else "")


def incompatibilities(first, other):
    """Human-readable differences between two checkpoints' model configs and parameters."""
    problems = []
    arch_a, cfg_a, kind_a = first["config"]
    arch_b, cfg_b, kind_b = other["config"]
    if arch_a != arch_b:
        problems.append(f"architecture: {arch_b!r} here, {arch_a!r} in the first")
    for key in sorted(set(cfg_a) | set(cfg_b)):
        if key in cfg_a and key in cfg_b:
            if cfg_a[key] != cfg_b[key]:
                problems.append(
                    f"model option {key}: {cfg_b[key]!r} here, {cfg_a[key]!r} in the first"
                )
        elif kind_a == kind_b:  # only compare presence between configs of the same format
            where = "here only" if key in cfg_b else "in the first only"
            value = cfg_b.get(key, cfg_a.get(key))
            problems.append(f"model option {key}: set {where} ({value!r})")

    names_a, names_b = set(first["shapes"]), set(other["shapes"])
    if names_a - names_b:
        problems.append(f"parameters missing here: {_listing(names_a - names_b)}")
    if names_b - names_a:
        problems.append(f"parameters not in the first: {_listing(names_b - names_a)}")
    shapes = [
        f"{k} {tuple(other['shapes'][k])} here, {tuple(first['shapes'][k])} in the first"
        for k in sorted(names_a & names_b)
        if first["shapes"][k] != other["shapes"][k]
    ]
    if shapes:
        more = f" ... ({len(shapes)} in all)" if len(shapes) > MAX_LISTED else ""
        problems.append("parameter shapes differ: " + "; ".join(shapes[:MAX_LISTED]) + more)
    return problems


def _describe(state, path):
    model = state["model"]
    if not isinstance(model, Mapping):
        raise AverageError(f"{path}: its 'model' entry is not a state dict")
    shapes = {k: tuple(v.shape) if torch.is_tensor(v) else None for k, v in model.items()}
    return {"path": path, "config": model_config(state, path), "shapes": shapes}


# --------------------------------------------------------------------------- averaging


def average_checkpoints(paths, log=print):
    """Averages the models of ``paths``; returns a checkpoint dict based on the first."""
    if not paths:
        raise AverageError("no checkpoints to average")
    first_state = load_checkpoint(paths[0])
    first = _describe(first_state, paths[0])
    model = first_state["model"]
    # drop what is not kept right away: the optimizer state is often twice the model
    dropped = [k for k in DROPPED_FIELDS if first_state.pop(k, None) is not None]
    extra = dict(first_state.get("extra_state") or {})
    first_data = provenance.recorded_for(paths[0], first_state)
    members = [{"path": os.path.abspath(paths[0]), **progress_of(first_state)}]
    dropped += [f"extra_state.{k}" for k in DROPPED_EXTRA_STATE if extra.pop(k, None) is not None]

    # Tied weights (shared embeddings) are one storage in the file: average them once
    # and keep them tied so the output is no larger than the inputs.
    alias_of, seen_storage = {}, {}
    for key, value in model.items():
        if torch.is_tensor(value) and value.is_floating_point():
            ident = (value.untyped_storage().data_ptr(), value.storage_offset(),
                     tuple(value.shape), tuple(value.stride()), value.dtype)
            alias_of[key] = seen_storage.setdefault(ident, key)
    sums = {key: model[key].detach().to(torch.float64).clone()
            for key, owner in alias_of.items() if owner == key}

    log(f"averaging {len(paths)} checkpoint(s):\n" + "\n".join(f"  {p}" for p in paths))
    for path in paths[1:]:
        state = load_checkpoint(path)
        other = _describe(state, path)
        problems = incompatibilities(first, other)
        if problems:
            raise AverageError(
                f"{path} cannot be averaged with {paths[0]} (the first checkpoint): "
                "they are different models or configurations:\n  - " + "\n  - ".join(problems)
            )
        data = provenance.recorded_for(path, state)
        members.append({"path": os.path.abspath(path), **progress_of(state)})
        if (first_data is None) != (data is None) or (data and provenance.differing(first_data, data)):
            raise AverageError(
                f"{path} cannot be averaged with {paths[0]} (the first checkpoint): they were "
                f"trained on different data ({_data_of(data)} vs {_data_of(first_data)}"
                f"{': ' + provenance.differing(first_data, data) if data and first_data else ''}); "
                "average checkpoints of runs on one corpus"
            )
        for key, total in sums.items():
            value = state["model"][key]
            if not (torch.is_tensor(value) and value.is_floating_point()):
                raise AverageError(
                    f"{path}: parameter {key} is not a floating-point tensor here but is in "
                    f"{paths[0]}"
                )
            total.add_(value.detach().to(torch.float64))
        del state

    averaged = {}
    for key, value in model.items():
        owner = alias_of.get(key)
        if owner is None:  # integer buffers and the like: the first checkpoint's value
            averaged[key] = value
        elif owner != key:
            averaged[key] = averaged[owner]
        else:
            averaged[key] = sums[owner].div_(len(paths)).to(value.dtype)

    result = dict(first_state)
    result["model"] = averaged
    extra[AVERAGED_KEY] = members
    extra["averaged_dropped"] = dropped
    if first_data is not None:
        extra[provenance.EXTRA_STATE_KEY] = first_data
    else:
        log("note: the inputs record no data provenance (trained before it was recorded): "
            "the average cannot be checked against its corpus either")
    result["extra_state"] = extra
    return result


def _data_of(recorded):
    return recorded.get("data") if recorded else "unrecorded provenance"


def save_atomically(state, output):
    """torch.save to a temporary file beside ``output``, then os.replace it into place."""
    directory = os.path.dirname(os.path.abspath(output))
    if not os.path.isdir(directory):
        raise AverageError(f"cannot write {output}: directory {directory} does not exist")
    fd, tmp = tempfile.mkstemp(prefix=f".{os.path.basename(output)}.", suffix=".tmp",
                               dir=directory)
    try:
        with os.fdopen(fd, "wb") as f:
            torch.save(state, f)
            f.flush()
            os.fsync(f.fileno())
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes 0600; give it a normal file's mode
        os.replace(tmp, output)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise


# --------------------------------------------------------------------------- command line


def build_parser():
    parser = argparse.ArgumentParser(
        description="Average the model parameters of fairseq checkpoints of one model.",
    )
    parser.add_argument(
        "--inputs", nargs="+", required=True, metavar="DIR_OR_FILE",
        help="checkpoint files, or one checkpoint directory with --num-*-checkpoints",
    )
    parser.add_argument("--output", required=True, metavar="OUT.pt",
                        help="where to write the averaged checkpoint (atomically)")
    count = parser.add_mutually_exclusive_group()
    count.add_argument("--num-epoch-checkpoints", type=int, metavar="N",
                       help="average the last N checkpoint{epoch}.pt of the directory")
    count.add_argument("--num-update-checkpoints", type=int, metavar="N",
                       help="average the last N checkpoint_{epoch}_{updates}.pt of the directory")
    parser.add_argument("--checkpoint-upper-bound", type=int, metavar="K",
                        help="only consider checkpoints of epoch (or update count) <= K")
    return parser


def main(argv=None):
    args = build_parser().parse_args(argv)
    try:
        paths = select_inputs(args.inputs, args.num_epoch_checkpoints,
                              args.num_update_checkpoints, args.checkpoint_upper_bound)
        state = average_checkpoints(paths)
        save_atomically(state, args.output)
    except (AverageError, CheckpointError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    except OSError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    print(f"wrote the average of {len(paths)} checkpoint(s) to {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
