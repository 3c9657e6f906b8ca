"""contextpool_mt.machine: the machine record train.sh writes into each run's train.log."""

import json
import subprocess
import sys

from contextpool_mt import machine
from contextpool_mt.fairseq_logs import parse_train_log_lines

ZEN1 = {"vendor_id": "AuthenticAMD", "cpu family": "23", "model": "1", "model name": "AMD EPYC",
        "flags": "fpu avx2 fma"}
SAPPHIRE = {"vendor_id": "GenuineIntel", "cpu family": "6", "model": "143",
            "model name": "Intel(R) Xeon(R) Platinum 8481C", "flags": "avx2 avx512_bf16 amx_bf16"}


def test_describe_names_the_cpu_and_its_native_bf16():
    zen1, intel = machine.describe(ZEN1), machine.describe(SAPPHIRE)
    assert (zen1["cpu"], zen1["cpu_id"], zen1["bf16_native"]) == ("AMD EPYC", "AuthenticAMD family 23 model 1", False)
    assert intel["bf16_native"] is True
    assert machine.machine_type(zen1) == "AMD EPYC (AuthenticAMD family 23 model 1)"
    assert machine.machine_type(dict(zen1, gpu="NVIDIA H200")) == "AMD EPYC (AuthenticAMD family 23 model 1) + NVIDIA H200"
    # another core count or torch is the same machine type; another CPU model is not
    assert machine.machine_type(dict(zen1, cores=16, torch="x")) == machine.machine_type(zen1)
    assert machine.machine_type(dict(zen1, cpu_id="AuthenticAMD family 25 model 1")) != machine.machine_type(zen1)
    assert machine.machine_type(None) == "unrecorded"


def test_cpuinfo_reads_the_first_processor(tmp_path):
    info = tmp_path / "cpuinfo"
    info.write_text("processor\t: 0\nvendor_id\t: AuthenticAMD\ncpu family\t: 25\nmodel\t\t: 1\n"
                    "model name\t: AMD EPYC 7B13\nflags\t\t: avx2\n\nprocessor\t: 1\nmodel name\t: other\n")
    assert machine.describe(machine._cpuinfo(info))["cpu_id"] == "AuthenticAMD family 25 model 1"
    assert machine.describe(machine._cpuinfo(info))["cpu"] == "AMD EPYC 7B13"


def test_the_log_line_round_trips_and_a_resume_elsewhere_warns(tmp_path):
    log = tmp_path / "train.log"
    out = subprocess.run([sys.executable, "-m", "contextpool_mt.machine", "--log", str(log)],
                         capture_output=True, text=True, check=True)
    line = out.stdout.strip()
    assert "trained so far" not in out.stderr and machine.parse_line(line) == machine.describe()
    log.write_text(line + "\n")
    again = subprocess.run([sys.executable, "-m", "contextpool_mt.machine", "--log", str(log)],
                           capture_output=True, text=True, check=True)
    assert "trained so far" not in again.stderr  # the same machine: nothing to say
    log.write_text(machine.PREFIX + json.dumps(machine.describe(SAPPHIRE)) + "\n")
    moved = subprocess.run([sys.executable, "-m", "contextpool_mt.machine", "--log", str(log)],
                           capture_output=True, text=True, check=True)
    assert "was trained so far on Intel(R) Xeon(R) Platinum 8481C (GenuineIntel family 6 model 143)" in moved.stderr
    assert machine.parse_line(moved.stdout.strip()) == machine.describe()


def test_each_process_of_a_log_gets_the_machine_written_before_it():
    zen1, intel = machine.describe(ZEN1), machine.describe(SAPPHIRE)

    def process(record, epoch):
        lines = [machine.PREFIX + json.dumps(record)] if record else []
        return lines + [
            "2026-01-01 10:00:01 | INFO | fairseq_cli.train | num. shared model params: 1,000 (num. trained: 1,000)",
            f'2026-01-01 10:00:10 | INFO | train | {{"epoch": {epoch}, "train_loss": "4", "train_wpb": "300", '
            f'"train_num_updates": "{epoch * 10}", "train_train_wall": "60", "train_wall": "60"}}']

    log = process(zen1, 1) + process(None, 2) + process(intel, 3)
    assert parse_train_log_lines(log)["machines"] == [zen1, None, intel]
