"""scripts/run_study.sh: its configurations are the lines of configs/study/configurations.txt
and give the committed study's exact fairseq-train commands; --status says where each run
stands; SIGTERM / SIGINT stop every run it started.

fairseq-train itself is never run: train.sh takes its program from FAIRSEQ_TRAIN, here a stub,
and logs the full command line it would run (``# command:`` in RUN/train.log).
"""

import fcntl
import json
import os
import shlex
import signal
import subprocess
import sys
import time
import types
from pathlib import Path

import pytest
import torch

from contextpool_mt import study

REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / "scripts" / "run_study.sh"
TABLE = REPO / "configs" / "study" / "configurations.txt"
# the committed studies: folder -> (run_study.sh --precision, the task train.sh picks for it,
# the fewest configurations the folder must hold, run_study.sh --device)
COMMITTED = {"study-bf16": ("bf16", "translation_bf16", 10, "cpu"),  # main pairs, ablations, peers
             "study-fp32": ("fp32", "translation_provenance", 4, "cpu"),  # fp32 figure, issue 24 screen
             "study-gpu-bf16": ("bf16", "translation_bf16", 8, "cuda")}  # the GPU figure
SWEEP = ["baseline_1x1", "baseline_2x2", "contextpool_1x1", "contextpool_2x2",
         "lightconv_1x1", "lightconv_2x2", "dynamicconv_1x1", "dynamicconv_2x2"]
# issue 24's screen: configuration -> (the option it changes, its parsed value)
VARIANTS = {"cp_heads4": ("contextpool_heads", 4), "cp_kernel3": ("contextpool_predictor_kernel", 3),
            "cp_stream": ("contextpool_placement", "stream"),
            "cp_enc_only": ("contextpool_decoder_layers", "none")}


# how long run_study.sh may take to start its first stub run: it checks the corpus with
# cpmt-study (Python, torch, fairseq imports) first, which took over a minute on a 2-core machine
# with two trainings beside it; the bound only stops a hang, it times nothing
STARTUP_S = 300


def env(**extra):
    """This interpreter's tools first on PATH (run_study.sh finds the project through PYTHON)."""
    return dict(os.environ, PYTHON=sys.executable, OMP_NUM_THREADS="1", **extra)


def table():
    """{name: (arch, [options])} of the configuration table, `common` included."""
    rows = {}
    for line in TABLE.read_text().splitlines():
        fields = line.split()
        if fields and not fields[0].startswith("#"):
            rows[fields[0]] = (fields[1], fields[2:])
    return rows


@pytest.fixture
def fake_data(tmp_path):
    """DATA/bin as far as train.sh looks at it: dictionaries and one language pair."""
    bin_dir = tmp_path / "data" / "bin"
    bin_dir.mkdir(parents=True)
    for lang in ("en", "de"):
        (bin_dir / f"dict.{lang}.txt").write_text("a 1\nb 1\n")
    (bin_dir / "train.en-de.en.idx").write_bytes(b"")
    return tmp_path / "data"


def print_commands(data, runs, configs, seeds="1", budget="12", precision="bf16", device=()):
    out = subprocess.run(["bash", str(SCRIPT), "--print-commands", "--data", str(data), "--runs",
                          str(runs), "--artefacts", str(runs.parent / "artefacts"), "--budget-epochs",
                          budget, "--seeds", seeds, "--configs", " ".join(configs),
                          "--precision", precision, *device], env=env(), capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    return out.stdout.splitlines()


def fairseq_command(train_sh_line, tmp_path):
    """The fairseq-train command that train.sh builds from one printed line, read from the
    ``# command:`` line it logs, with fairseq-train replaced by a stub that does nothing."""
    stub = tmp_path / "fairseq-train"
    stub.write_text("#!/bin/sh\nexit 0\n")
    stub.chmod(0o755)
    argv = shlex.split(train_sh_line)
    out = subprocess.run(argv, env=env(FAIRSEQ_TRAIN=str(stub)), capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    run_dir = Path(argv[argv.index("--run-dir") + 1])
    logged = [line for line in (run_dir / "train.log").read_text().splitlines()
              if line.startswith("# command:")]
    return logged[-1][len("# command:"):].strip()


def normalised(command_line):
    """A fairseq-train line without what depends on the machine: the program, the data, the
    plugin's path and the folder above RUN/checkpoints."""
    tokens = shlex.split(command_line)
    tokens[0], tokens[1] = "fairseq-train", "DATA/bin"
    for option in ("--user-dir", "--save-dir"):
        i = tokens.index(option)
        path = Path(tokens[i + 1])
        tokens[i + 1] = "fairseq_plugins" if option == "--user-dir" else f"{path.parent.name}/{path.name}"
    return tokens


def committed_commands(study="study-bf16"):
    """{(config, seed): the last fairseq-train line of docs/results/STUDY/NAME/command.txt}."""
    committed = {}
    for command in sorted((REPO / "docs" / "results" / study).glob("*_s*/command.txt")):
        config, seed = command.parent.name.rsplit("_s", 1)
        committed[(config, seed)] = command.read_text().strip().splitlines()[-1]
    return committed


def split_printed(line):
    """A printed train.sh line: ({train.sh option: value}, [the fairseq args after '--'])."""
    argv = shlex.split(line)
    cut = argv.index("--")
    head, options, i = argv[2:cut], {}, 0
    while i < len(head):
        if head[i] in ("--cpu", "--tensorboard"):
            options[head[i]], i = True, i + 1
        else:
            options[head[i]], i = head[i + 1], i + 2
    return options, argv[cut + 1:]


def last_value(tokens, option):
    return [b for a, b in zip(tokens, tokens[1:]) if a == option][-1]


@pytest.mark.parametrize("study", sorted(COMMITTED))
def test_existing_configurations_give_the_committed_commands(tmp_path, fake_data, study):
    """Every committed run's last fairseq-train line (docs/results/STUDY/NAME/command.txt)
    is what run_study.sh runs today for that name, seed and the study's precision and device:
    train.sh's options map onto it and the arguments after '--' are its tail, token for token."""
    precision, task, fewest, device = COMMITTED[study]
    committed = committed_commands(study)
    assert len({config for config, _ in committed}) >= fewest
    for (config, seed), expected in committed.items():
        (line,) = print_commands(fake_data, tmp_path / "runs", [config], seeds=seed,
                                 precision=precision, device=("--device", device))
        options, extra = split_printed(line)
        tokens = shlex.split(expected)
        for ours, theirs in (("--arch", "--arch"), ("--max-tokens", "--max-tokens"), ("--lr", "--lr"),
                             ("--warmup", "--warmup-updates"), ("--max-epoch", "--max-epoch"),
                             ("--seed", "--seed")):
            assert options[ours] == last_value(tokens, theirs), (config, seed, ours)
        assert options["--precision"] == precision and last_value(tokens, "--task") == task
        if device == "cpu":
            assert options["--cpu"] and tokens[tokens.index("--cpu") + 1:] == extra, (config, seed)
        else:  # on a GPU: no --cpu anywhere, the arguments after '--' follow --task's value
            assert "--cpu" not in options and "--cpu" not in tokens, (config, seed)
            assert tokens[tokens.index("--task") + 2:] == extra, (config, seed)
        assert Path(options["--run-dir"]).name == f"{config}_s{seed}"


@pytest.mark.parametrize("study, config", [("study-bf16", "dynamicconv"), ("study-fp32", "cp_stream")])
def test_train_sh_turns_a_printed_line_into_the_committed_command(tmp_path, fake_data, study, config):
    """End to end for one run of each study (the peer with the most options; an issue 24
    variant in fp32): the printed train.sh line, run with a stub for fairseq-train, logs exactly
    the committed fairseq-train line."""
    expected = committed_commands(study)[(config, "1")]
    (line,) = print_commands(fake_data, tmp_path / "runs", [config], seeds="1",
                             precision=COMMITTED[study][0])
    assert normalised(fairseq_command(line, tmp_path)) == normalised(expected)


def test_sweep_configurations_keep_the_first_kernels_and_build(tmp_path, fake_data):
    """The depth sweep: L+L layers, convolutions with the first L of 3, 7, 15 as kernels; every
    configuration of the table builds in fairseq exactly as its printed command says."""
    from fairseq import options
    from fairseq.models import ARCH_MODEL_REGISTRY

    from fairseq_plugins.modules import ContextPool

    from helpers import make_dictionary

    rows = table()
    for name in SWEEP:
        assert name in rows, name
    lines = print_commands(fake_data, tmp_path / "runs", list(rows.keys() - {"common"}))
    dictionary = make_dictionary(20)
    task = types.SimpleNamespace(source_dictionary=dictionary, target_dictionary=dictionary)
    for line in lines:
        printed, extra = split_printed(line)
        name = Path(printed["--run-dir"]).name.rsplit("_s", 1)[0]
        args = options.parse_args_and_arch(options.get_training_parser(), input_args=[
            "data", "--arch", printed["--arch"], "--share-all-embeddings", *extra])
        depth = {"1x1": 1, "2x2": 2}.get(name.rsplit("_", 1)[-1])
        if depth:
            assert args.encoder_layers == args.decoder_layers == depth, name
        else:
            assert args.decoder_layers == 3 and args.encoder_layers in (2, 3), name
        assert args.encoder_embed_dim == 256 and args.dropout == 0.1, name
        if args.arch.startswith("lightconv"):
            kernels = [3, 7, 15][: args.encoder_layers]
            assert args.encoder_kernel_size_list == args.decoder_kernel_size_list == kernels, name
            assert args.encoder_conv_type == ("dynamic" if name.startswith("dynamic") else "lightweight")
        built = ARCH_MODEL_REGISTRY[args.arch].build_model(args, task)
        assert len(built.encoder.layers) == args.encoder_layers, name
        if name in VARIANTS:  # issue 24's screen: the option reaches every pooled layer
            option, value = VARIANTS[name]
            assert getattr(args, option) == value, name
            pools = {part: [m for m in getattr(built, part).modules() if isinstance(m, ContextPool)]
                     for part in ("encoder", "decoder")}
            assert len(pools["encoder"]) == 3 and len(pools["decoder"]) == (name != "cp_enc_only") * 3


def test_cuda_runs_train_the_same_recipe_without_cpu(tmp_path, fake_data):
    """--device cuda changes where a run trains and nothing else: each printed line is the CPU
    line without train.sh's --cpu (which puts --cpu into fairseq-train's command)."""
    configs = ["baseline", "contextpool_1x1", "dynamicconv"]
    cpu = print_commands(fake_data, tmp_path / "runs", configs, seeds="1 2")
    cuda = print_commands(fake_data, tmp_path / "runs", configs, seeds="1 2", device=("--device", "cuda"))
    assert len(cuda) == len(cpu) == 6
    for on_cpu, on_cuda in zip(cpu, cuda):
        tokens = shlex.split(on_cpu)
        assert "--cpu" in tokens and "--cpu" not in shlex.split(on_cuda)
        tokens.remove("--cpu")
        assert shlex.split(on_cuda) == tokens
        assert "--cpu" not in shlex.split(fairseq_command(on_cuda, tmp_path))


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the error without a GPU")
def test_cuda_without_a_gpu_stops_before_training(tmp_path, fake_data):
    out = subprocess.run(["bash", str(SCRIPT), "--data", str(fake_data), "--runs", str(tmp_path / "r"),
                          "--artefacts", str(tmp_path / "a"), "--budget-epochs", "2", "--configs",
                          "baseline", "--device", "cuda"], env=env(), capture_output=True, text=True)
    assert out.returncode == 2
    assert "--device cuda" in out.stderr and "sees no CUDA GPU" in out.stderr
    assert not (tmp_path / "r").exists()


def test_a_study_never_trains_on_another_corpus_than_its_exported_runs(tmp_path, fake_data):
    """Exported runs record their corpus (scores.json's provenance, by content): run_study.sh
    starts nothing on a corpus whose dictionaries differ, and says which runs and what differs;
    on the same corpus, or beside runs that recorded none, it goes on."""
    from contextpool_mt.provenance import fingerprint

    artefacts = tmp_path / "a"
    recorded = fingerprint(fake_data / "bin", "en", "de")
    for name, data in (("baseline_s1", recorded), ("contextpool_s1", None)):
        (artefacts / name / "eval" / "avg").mkdir(parents=True)
        (artefacts / name / "eval" / "avg" / "scores.json").write_text(
            json.dumps({"provenance": {"data": data} if data else {}}))
    check = [os.path.join(os.path.dirname(sys.executable), "cpmt-study"), "check-corpus",
             "--artefacts", str(artefacts), "--data", str(fake_data)]
    same = subprocess.run(check, env=env(), capture_output=True, text=True)
    assert same.returncode == 0 and "is the corpus of the 1 exported runs" in same.stdout, same.stderr

    (fake_data / "bin" / "dict.de.txt").write_text("a 1\nc 1\n")  # the corpus prepared otherwise
    out = subprocess.run(["bash", str(SCRIPT), "--data", str(fake_data), "--runs", str(tmp_path / "r"),
                          "--artefacts", str(artefacts), "--budget-epochs", "2", "--configs", "baseline",
                          "--seeds", "2"], env=env(), capture_output=True, text=True)
    assert out.returncode == 2
    assert f"{fake_data} is not the corpus 1 of the 1 exported runs in {artefacts}" in out.stderr
    assert "target dictionary sha256" in out.stderr and "baseline_s1" in out.stderr
    assert "source dictionary" not in out.stderr and "contextpool_s1" not in out.stderr
    assert not (tmp_path / "r").exists()


def test_an_unknown_device_is_refused(tmp_path, fake_data):
    out = subprocess.run(["bash", str(SCRIPT), "--print-commands", "--data", str(fake_data), "--runs",
                          str(tmp_path / "r"), "--artefacts", str(tmp_path / "a"), "--budget-epochs",
                          "2", "--device", "gpu"], env=env(), capture_output=True, text=True)
    assert out.returncode == 2 and "--device must be cpu or cuda, got 'gpu'" in out.stderr


def test_unknown_configuration_names_the_known_ones(fake_data, tmp_path):
    out = subprocess.run(["bash", str(SCRIPT), "--data", str(fake_data), "--runs", str(tmp_path / "r"),
                          "--artefacts", str(tmp_path / "a"), "--budget-epochs", "2",
                          "--configs", "baseline transformer_3x3"], env=env(), capture_output=True, text=True)
    assert out.returncode == 2
    assert "unknown configuration 'transformer_3x3'" in out.stderr
    assert "baseline_1x1" in out.stderr and "dynamicconv_2x2" in out.stderr
    assert not (tmp_path / "r").exists()


# --------------------------------------------------------------------------- status


def fake_study(tmp_path):
    """baseline_s1 exported, contextpool_s1 stopped at epoch 3, baseline_s2 being trained (its
    lock held), contextpool_s2 trained to the budget but not exported, the rest not started."""
    runs, artefacts = tmp_path / "runs", tmp_path / "artefacts"
    scores = artefacts / "baseline_s1" / "eval" / "avg"
    scores.mkdir(parents=True)
    (scores / "scores.json").write_text(json.dumps({"bleu_detok": {"score": 38.16}}))
    for name, epochs in (("contextpool_s1", 3), ("baseline_s2", 1), ("contextpool_s2", 4)):
        (runs / name / "checkpoints").mkdir(parents=True)
        for epoch in range(1, epochs + 1):
            (runs / name / "checkpoints" / f"checkpoint{epoch}.pt").write_bytes(b"")
        (runs / name / "checkpoints" / "checkpoint_last.pt").write_bytes(b"")
        (runs / f"{name}.lock").write_bytes(b"")
    lock = open(runs / "baseline_s2.lock", "w")
    fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    return runs, artefacts, lock


def test_status_of_every_run(tmp_path):
    runs, artefacts, lock = fake_study(tmp_path)
    with lock:
        states = study.study_status(runs, artefacts, ["baseline", "contextpool"], [1, 2, 3], budget=4)
    got = {s["name"]: (s["state"], s["epoch"]) for s in states}
    assert got == {"baseline_s1": ("done", None), "contextpool_s1": ("stopped", 3),
                   "baseline_s2": ("running", 1), "contextpool_s2": ("stopped", 4),
                   "baseline_s3": ("not started", None), "contextpool_s3": ("not started", None)}
    assert states[0]["bleu"] == 38.16
    # the lock is free again once its holder has closed it
    assert study.run_state(runs, artefacts, "baseline_s2")["state"] == "stopped"


def test_status_through_run_study(tmp_path):
    runs, artefacts, lock = fake_study(tmp_path)
    with lock:
        out = subprocess.run(["bash", str(SCRIPT), "--status", "--runs", str(runs), "--artefacts",
                              str(artefacts), "--configs", "baseline contextpool", "--seeds", "1 2 3",
                              "--budget-epochs", "4"], env=env(), capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    rows = {line.split()[0]: line for line in out.stdout.splitlines()[1:-1]}
    assert "done" in rows["baseline_s1"] and "test BLEU 38.16" in rows["baseline_s1"]
    assert "running" in rows["baseline_s2"] and "epoch 1 of 4 saved" in rows["baseline_s2"]
    assert "stopped" in rows["contextpool_s1"] and "epoch 3 of 4 saved; run the study again" in rows["contextpool_s1"]
    assert "trained to epoch 4, not exported" in rows["contextpool_s2"]
    assert "not started" in rows["contextpool_s3"]
    assert out.stdout.splitlines()[-1] == "1 done, 1 running, 2 stopped, 2 not started (6 runs)"


# --------------------------------------------------------------------------- signals


def alive(pid):
    """Whether a process runs (a zombie waiting for its parent to reap it does not)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


@pytest.mark.parametrize("signum, code", [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_a_signal_stops_every_run(tmp_path, fake_data, signum, code):
    """Two runs train at once (a fairseq-train stub that sleeps); the signal to run_study.sh
    reaches both, it waits for them and exits with 128 + the signal's number."""
    stub = tmp_path / "fairseq-train"
    stub.write_text('#!/bin/sh\nwhile [ $# -gt 0 ]; do [ "$1" = --save-dir ] && dir="$2"; shift; done\n'
                    'echo $$ > "$dir/stub.pid"\nexec sleep 120\n')
    stub.chmod(0o755)
    runs = tmp_path / "runs"
    study_process = subprocess.Popen(
        ["bash", str(SCRIPT), "--data", str(fake_data), "--runs", str(runs), "--artefacts",
         str(tmp_path / "artefacts"), "--budget-epochs", "1", "--seeds", "1", "--configs",
         "baseline contextpool", "--jobs", "2"],
        env=env(FAIRSEQ_TRAIN=str(stub)), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        # started as `run_study.sh ... &` from a script is: with SIGINT ignored, which the
        # script must undo for itself
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN))
    pid_files = [runs / name / "checkpoints" / "stub.pid" for name in ("baseline_s1", "contextpool_s1")]
    deadline = time.time() + STARTUP_S
    while not all(p.is_file() and p.read_text().strip() for p in pid_files):
        assert study_process.poll() is None, study_process.communicate()
        assert time.time() < deadline, "the stub runs did not start"
        time.sleep(0.1)
    stubs = [int(p.read_text()) for p in pid_files]
    study_process.send_signal(signum)
    _, stderr = study_process.communicate(timeout=30)
    assert study_process.returncode == code, stderr
    assert f"SIG{signal.Signals(signum).name[3:]}: stopping 2 run(s)" in stderr
    assert not any(alive(pid) for pid in stubs)
    # the locks are free again, so the study can be resumed at once
    assert [study.run_state(runs, tmp_path / "artefacts", n)["state"]
            for n in ("baseline_s1", "contextpool_s1")] == ["not started", "not started"]


def test_a_status_probe_does_not_stop_a_run_from_starting(tmp_path, fake_data):
    """--status tests a run's lock by taking it for an instant (study.is_locked): a run that
    starts meanwhile waits for it instead of failing with 'being trained by another process'.
    Here the probe holds it for a second."""
    stub = tmp_path / "fairseq-train"
    stub.write_text('#!/bin/sh\nwhile [ $# -gt 0 ]; do [ "$1" = --save-dir ] && dir="$2"; shift; done\n'
                    'echo $$ > "$dir/stub.pid"\nexec sleep 120\n')
    stub.chmod(0o755)
    runs = tmp_path / "runs"
    runs.mkdir()
    with open(runs / "baseline_s1.lock", "w") as probe:
        fcntl.flock(probe, fcntl.LOCK_SH | fcntl.LOCK_NB)
        study_process = subprocess.Popen(
            ["bash", str(SCRIPT), "--data", str(fake_data), "--runs", str(runs), "--artefacts",
             str(tmp_path / "artefacts"), "--budget-epochs", "1", "--seeds", "1", "--configs",
             "baseline"], env=env(FAIRSEQ_TRAIN=str(stub)), stdout=subprocess.PIPE,
            stderr=subprocess.PIPE, text=True)
        time.sleep(1)
    pid_file = runs / "baseline_s1" / "checkpoints" / "stub.pid"
    deadline = time.time() + STARTUP_S
    while not (pid_file.is_file() and pid_file.read_text().strip()):
        assert study_process.poll() is None, study_process.communicate()
        assert time.time() < deadline, "the stub run did not start"
        time.sleep(0.1)
    study_process.send_signal(signal.SIGTERM)
    _, stderr = study_process.communicate(timeout=30)
    assert study_process.returncode == 143, stderr
    assert "being trained by another process" not in stderr


def test_a_finished_run_frees_its_slot_at_once(tmp_path, fake_data):
    """--jobs 2 over baseline, contextpool, lightconv where contextpool_s1 is already exported:
    its slot goes to lightconv_s1 while baseline_s1 still trains (the scheduler once waited for
    the oldest run, so one core idled for a whole run)."""
    stub = tmp_path / "fairseq-train"
    stub.write_text('#!/bin/sh\nwhile [ $# -gt 0 ]; do [ "$1" = --save-dir ] && dir="$2"; shift; done\n'
                    'echo $$ > "$dir/stub.pid"\nexec sleep 120\n')
    stub.chmod(0o755)
    runs, artefacts = tmp_path / "runs", tmp_path / "artefacts"
    scores = artefacts / "contextpool_s1" / "eval" / "avg"
    scores.mkdir(parents=True)
    (scores / "scores.json").write_text(json.dumps({"bleu_detok": {"score": 38.0}}))
    study_process = subprocess.Popen(
        ["bash", str(SCRIPT), "--data", str(fake_data), "--runs", str(runs), "--artefacts",
         str(artefacts), "--budget-epochs", "1", "--seeds", "1", "--configs",
         "baseline contextpool lightconv", "--jobs", "2"],
        env=env(FAIRSEQ_TRAIN=str(stub)), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    pid_files = [runs / name / "checkpoints" / "stub.pid" for name in ("baseline_s1", "lightconv_s1")]
    deadline = time.time() + STARTUP_S
    while not all(p.is_file() and p.read_text().strip() for p in pid_files):
        assert study_process.poll() is None, study_process.communicate()
        assert time.time() < deadline, "lightconv_s1 did not start beside baseline_s1"
        time.sleep(0.1)
    stubs = [int(p.read_text()) for p in pid_files]
    assert all(alive(pid) for pid in stubs)
    study_process.send_signal(signal.SIGTERM)
    stdout, stderr = study_process.communicate(timeout=30)
    assert study_process.returncode == 143, stderr
    assert "contextpool_s1: done" in stdout
    assert "stopping 2 run(s)" in stderr and not any(alive(pid) for pid in stubs)
