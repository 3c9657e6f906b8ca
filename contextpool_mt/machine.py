"""Which machine trained a run, recorded in its log, so a comparison can tell when it mixes machines.

Words per second mean nothing across CPU models (the AMD EPYC machines this project trains on
differ 2.7x per update, docs/results.md), bf16 speed depends on native bf16 instructions, and one
comparison's runs are meant to share a machine type. train.sh writes one line per fairseq-train
process into RUN_DIR/train.log, before the process's own output::

    # machine: {"cpu": "AMD EPYC", "cpu_id": "AuthenticAMD family 23 model 1", "bf16_native": false, ...}

:mod:`contextpool_mt.fairseq_logs` gives each process (segment) of a log its record,
``cpmt-study export`` copies them into epochs.json and ``cpmt-study report`` names the machine
types of a study's runs and warns when there is more than one.

    python -m contextpool_mt.machine [--log RUN_DIR/train.log] [--cpu]

prints this machine's line; with ``--log`` it also warns (stderr) when the last machine recorded
in that log is of another type, as a resumed run then mixes two machines.
"""

import argparse
import json
import os
import platform
import sys
from pathlib import Path

PREFIX = "# machine: "
BF16_FLAGS = ("avx512_bf16", "amx_bf16")


def _cpuinfo(path: Path = Path("/proc/cpuinfo")) -> dict:
    """The first processor's ``key: value`` fields of /proc/cpuinfo ({} where there is none)."""
    fields = {}
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return fields
    for line in text.splitlines():
        if not line.strip():
            if fields:
                break
            continue
        key, _, value = line.partition(":")
        fields.setdefault(key.strip(), value.strip())
    return fields


def describe(cpuinfo: dict | None = None, cpu_only: bool = False) -> dict:
    """This machine: CPU model and identity, native bf16, cores, GPU (if torch sees one and the
    run may use it: not with ``cpu_only``), torch."""
    info = _cpuinfo() if cpuinfo is None else cpuinfo
    flags = set(info.get("flags", "").split())
    vendor, family, model = info.get("vendor_id"), info.get("cpu family"), info.get("model")
    record = {
        "cpu": info.get("model name") or platform.processor() or platform.machine(),
        "cpu_id": f"{vendor} family {family} model {model}" if vendor else None,
        "bf16_native": bool(flags & set(BF16_FLAGS)),
        "cores": os.cpu_count(),
        "gpu": None,
        "torch": None,
    }
    try:  # a record must never stop a training: a torch that fails to load is left unnamed
        import torch

        record["torch"] = torch.__version__
        if not cpu_only and torch.cuda.is_available():
            record["gpu"] = torch.cuda.get_device_name(0)
    except Exception:  # noqa: BLE001
        pass
    return record


def machine_type(record: dict | None) -> str:
    """What a comparison must hold constant: the CPU model and identity, and the GPU if any."""
    if not record:
        return "unrecorded"
    cpu = record.get("cpu") or "unknown CPU"
    name = f"{cpu} ({record['cpu_id']})" if record.get("cpu_id") else cpu
    return f"{name} + {record['gpu']}" if record.get("gpu") else name


def parse_line(line: str) -> dict | None:
    """The record of a ``# machine: {...}`` log line, or None for any other line."""
    if not line.startswith(PREFIX):
        return None
    try:
        record = json.loads(line[len(PREFIX):])
    except json.JSONDecodeError:
        return None
    return record if isinstance(record, dict) else None


def last_recorded(log: Path) -> dict | None:
    """The last machine record in a train.log (None if it has none or does not exist)."""
    last = None
    if log.is_file():
        with open(log, encoding="utf-8", errors="replace") as handle:
            for line in handle:
                last = parse_line(line.rstrip("\n")) or last
    return last


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m contextpool_mt.machine", description=__doc__.split("\n\n")[0])
    parser.add_argument("--log", type=Path, help="a run's train.log: warn if it was trained on another machine type")
    parser.add_argument("--cpu", action="store_true", help="the run trains on the CPU: record no GPU")
    args = parser.parse_args(argv)
    record = describe(cpu_only=args.cpu)
    if args.log is not None:
        before = last_recorded(args.log)
        if before is not None and machine_type(before) != machine_type(record):
            print(f"warning: {args.log} was trained so far on {machine_type(before)}; this machine is "
                  f"{machine_type(record)}: its words/s and times will mix two machines, and a "
                  "comparison should keep its runs on one machine type", file=sys.stderr)
    print(PREFIX + json.dumps(record, sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
