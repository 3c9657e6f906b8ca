"""Kill and resume: scripts/train.sh SIGKILLed mid-run and re-run with the same command ends
with exactly the model of an uninterrupted run.

Bitwise on CPU, model and optimizer state: fairseq's checkpoint holds the epoch iterator's
position (the resumed run skips the batches already consumed) and Adam's moments and the lr
scheduler; the batch order is a function of seed + epoch, and the torch RNG (dropout) is
re-seeded at every update with seed + num_updates. One catch, fixed in train.sh: fairseq
forms the batches (which sentences go together) under seed + the epoch its iterator is made
in and reuses them for every later epoch, so a run resumed in epoch >= 2 would train on other
batches than the uninterrupted one -- and, mid-epoch, skip other sentences than those already
trained on. train.sh passes ``--update-epoch-batch-itr True`` (batches formed anew each epoch
under seed + epoch), which makes resuming exact
(test_fairseq_forms_batches_in_the_epoch_the_iterator_is_made).

How fairseq 0.12 writes checkpoints, and what these tests pin:

* the first file of a save (checkpoint_E_U.pt / checkpointE.pt) is written to ``NAME.tmp``
  and renamed: a kill during the write leaves a partial ``.tmp`` that nothing reads, and
  checkpoint_last.pt still holds the previous save (test_kill_while_writing_a_checkpoint,
  made deterministic by putting a FIFO where the ``.tmp`` goes);
* checkpoint_last.pt (and _best) are then *copied* from it in place (shutil.copyfile, not
  atomic): a kill during that copy leaves a truncated checkpoint_last.pt. fairseq-train then
  fails with torch's "failed finding central directory" traceback that does not name the
  file; scripts/train.sh checks checkpoint_last.pt first, keeps a damaged one as
  checkpoint_last.pt.damaged and resumes from the newest intact checkpoint
  (test_truncated_checkpoint_last_resumes_from_the_newest_intact_one), or stops naming the
  files when none loads (test_truncated_checkpoint_is_refused_by_name).

Re-running a finished training leaves it alone (test_rerunning_a_finished_training_changes_nothing):
fairseq-train tests --max-update only after an update, so it would train one more. SIGINT or
SIGTERM sent to train.sh itself stops fairseq-train, and the same command resumes
(test_sigint_to_train_sh_stops_the_training_and_a_rerun_resumes).
"""

import hashlib
import json
import os
import re
import shutil
import signal
import select
import subprocess
import threading
import time
from pathlib import Path

import pytest
import torch

import fairseq_plugins  # noqa: F401  (allowlists what fairseq checkpoints hold)
from fairseq_plugins.checkpoint_loading import load_checkpoint
from contextpool_mt.resume import reached_limit
from contextpool_mt import machine
from helpers import BIN, binarize, cli_env, write_reversal_corpus

pytestmark = pytest.mark.slow

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TRAIN_SH = os.path.join(REPO, "scripts", "train.sh")
MAX_UPDATE = 30
# 160 sentences at --max-tokens 100: 14 batches an epoch. Saves: checkpoint_1_8, checkpoint1
# (update 14), checkpoint_2_16, checkpoint_2_24, checkpoint2, and checkpoint_best at 30; each
# then copied to checkpoint_last.pt
TRAIN_ARGS = ["--arch", "contextpool_transformer_tiny", "--cpu", "--seed", "1",
              "--max-tokens", "100", "--lr", "0.002", "--warmup", "4",
              "--max-update", str(MAX_UPDATE), "--",
              "--save-interval-updates", "8", "--num-workers", "0", "--dropout", "0.1",
              "--log-format", "simple", "--log-interval", "1"]
STARTED = {}  # runs started in the background by the workdir fixture
LOADED = re.compile(r"Loaded checkpoint (\S+) \(epoch (\d+) @ (\d+) updates\)")


def train_cmd(run_dir, *extra):
    return ["bash", TRAIN_SH, "--data", "data-bin", "--run-dir", str(run_dir), *TRAIN_ARGS, *extra]


def start(cmd, cwd, stdout=subprocess.PIPE, preexec_fn=None):
    # own process group: SIGKILL reaches bash, fairseq-train and tee at once, as when a
    # scheduler kills a job
    return subprocess.Popen(cmd, cwd=cwd, env=cli_env(), stdout=stdout, stderr=subprocess.STDOUT,
                            text=True, start_new_session=True, preexec_fn=preexec_fn)


def finish(proc, timeout=300):
    out, _ = proc.communicate(timeout=timeout)
    assert proc.returncode == 0, f"{' '.join(proc.args)} failed:\n{out[-4000:]}"
    return out


def kill(proc):
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    out, _ = proc.communicate(timeout=60)
    return out


def num_updates(path):
    return load_checkpoint(str(path))["optimizer_history"][-1]["num_updates"]


def assert_same_final_state(resumed_dir, reference_dir):
    got = load_checkpoint(str(resumed_dir / "checkpoints" / "checkpoint_last.pt"))
    want = load_checkpoint(str(reference_dir / "checkpoints" / "checkpoint_last.pt"))
    assert got["optimizer_history"][-1]["num_updates"] == MAX_UPDATE
    assert got["model"].keys() == want["model"].keys()
    for key, value in want["model"].items():
        assert torch.equal(got["model"][key], value), f"model {key} differs"
    got_opt, want_opt = got["last_optimizer_state"], want["last_optimizer_state"]
    assert got_opt["param_groups"] == want_opt["param_groups"]
    for idx, state in want_opt["state"].items():
        for name, value in state.items():
            assert torch.equal(torch.as_tensor(got_opt["state"][idx][name]),
                               torch.as_tensor(value)), f"optimizer {idx}.{name} differs"
    assert (got["optimizer_history"][-1]["lr_scheduler_state"]
            == want["optimizer_history"][-1]["lr_scheduler_state"])
    assert (got["extra_state"]["train_iterator"] == want["extra_state"]["train_iterator"])


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    """A tiny corpus, binarized. Starts, in the background, the uninterrupted reference run
    and the run test_kill_while_writing_a_checkpoint kills (it waits at its FIFO)."""
    root = tmp_path_factory.mktemp("resume")
    write_reversal_corpus(root, {"train": 160, "valid": 16})
    binarize(root)

    # fairseq names it checkpoint_{epoch}_{updates}.pt.tmp; update 16 is in epoch 2
    (root / "killed_writing" / "checkpoints").mkdir(parents=True)
    os.mkfifo(root / "killed_writing" / "checkpoints" / "checkpoint_2_16.pt.tmp")
    for name in ("reference", "killed_writing"):
        with open(root / f"{name}.out", "w") as out:  # a file: nobody reads a pipe meanwhile
            STARTED[name] = start(train_cmd(root / name), root, stdout=out)
    yield root
    for proc in STARTED.values():
        if proc.poll() is None:
            kill(proc)


def reference(workdir):
    """The uninterrupted run's directory, once it has finished."""
    proc = STARTED["reference"]
    proc.wait(timeout=300)
    text = (workdir / "reference.out").read_text()
    assert proc.returncode == 0, text[-3000:]
    assert "done training" in text and "resuming" not in text
    return workdir / "reference"


def test_kill_after_a_checkpoint_and_resume(workdir):
    """SIGKILL once checkpoint_last.pt exists (right after the mid-epoch save at update 16);
    the same command resumes from checkpoint_last.pt and ends bitwise equal. A partial
    checkpoint_last.pt.tmp (what a write interrupted before its rename leaves) is ignored."""
    run_dir = workdir / "killed"
    proc = start(train_cmd(run_dir), workdir)
    timer = threading.Timer(300, kill, [proc])
    timer.start()
    seen = []
    for line in proc.stdout:
        seen.append(line)
        if re.search(r"Saved checkpoint \S+checkpoint_\d+_16\.pt", line):
            os.killpg(proc.pid, signal.SIGKILL)
            break
    timer.cancel()
    out = "".join(seen) + kill(proc)
    assert proc.returncode == -signal.SIGKILL, out[-3000:]
    assert "done training" not in out

    ckpt = run_dir / "checkpoints"
    last = ckpt / "checkpoint_last.pt"
    interrupted_at = num_updates(last)
    assert 16 <= interrupted_at < MAX_UPDATE
    half = last.read_bytes()
    (ckpt / "checkpoint_last.pt.tmp").write_bytes(half[: len(half) // 2])

    out = finish(start(train_cmd(run_dir), workdir))
    assert f"train.sh: resuming from {last}" in out
    loaded = LOADED.search(out)
    assert loaded, out[-3000:]
    assert loaded.group(1) == str(last) and int(loaded.group(3)) == interrupted_at
    assert "done training" in out
    assert_same_final_state(run_dir, reference(workdir))
    # train.sh recorded what the run trained on, and kept it over the resume
    recorded = json.loads((ckpt / "provenance.json").read_text(encoding="utf-8"))
    data_bin = Path(recorded["data"])
    assert (recorded["source_lang"], recorded["target_lang"]) == ("en", "de")
    for side, lang in zip(("source", "target"), ("en", "de")):
        dict_file = data_bin / f"dict.{lang}.txt"
        assert recorded[f"{side}_dict_sha256"] == hashlib.sha256(dict_file.read_bytes()).hexdigest()
    # and, for each of its two fairseq-train processes, the machine that ran it
    lines = (run_dir / "train.log").read_text(encoding="utf-8").splitlines()
    assert [r for r in map(machine.parse_line, lines) if r] == [machine.describe(cpu_only=True)] * 2


def test_kill_while_writing_a_checkpoint(workdir):
    """SIGKILL in the middle of writing the update-16 checkpoint: a FIFO where fairseq puts
    its temporary file stops the writer inside torch.save once the pipe is full,
    deterministically. The rename never happens, checkpoint_last.pt still holds the previous
    save (end of epoch 1), and re-running resumes from it and ends bitwise equal to the
    uninterrupted run."""
    run_dir = workdir / "killed_writing"
    ckpt = run_dir / "checkpoints"
    fifo = ckpt / "checkpoint_2_16.pt.tmp"
    proc = STARTED["killed_writing"]
    fd = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)
    partial = b""
    try:
        for _ in range(600):  # up to 5 minutes
            if select.select([fd], [], [], 0.5)[0]:
                chunk = os.read(fd, 1 << 16)
                partial += chunk
                if len(partial) >= 4096 or not chunk:
                    break
            assert proc.poll() is None, (workdir / "killed_writing.out").read_text()[-3000:]
        # the writer is inside torch.save, blocked on the full pipe
        os.killpg(proc.pid, signal.SIGKILL)
    finally:
        os.close(fd)
    proc.wait(timeout=60)
    assert len(partial) >= 4096, (workdir / "killed_writing.out").read_text()[-3000:]
    # what an interrupted write leaves on a disk: a partial temporary file, nothing renamed
    os.unlink(fifo)
    fifo.write_bytes(partial)
    assert not (ckpt / "checkpoint_2_16.pt").exists()
    last_good = num_updates(ckpt / "checkpoint_last.pt")
    assert last_good == num_updates(ckpt / "checkpoint1.pt") < 16  # the end of epoch 1

    out = finish(start(train_cmd(run_dir), workdir))
    loaded = LOADED.search(out)
    assert loaded and int(loaded.group(3)) == last_good, out[-3000:]
    assert_same_final_state(run_dir, reference(workdir))
    assert num_updates(ckpt / "checkpoint_2_16.pt") == 16  # rewritten by the resumed run


@pytest.mark.fairseq_behaviour
def test_fairseq_forms_batches_in_the_epoch_the_iterator_is_made(workdir):
    """Why train.sh passes --update-epoch-batch-itr True. fairseq groups sentences into
    batches under numpy seed + the epoch the iterator is made in, and by default keeps that
    iterator for every later epoch. A run resumed in epoch 2 makes it in epoch 2: same batch
    sizes, other sentences in them, so skipping the batches the killed run had consumed skips
    other sentences -- some are trained on twice in that epoch, some never. With the flag,
    batches are formed anew each epoch, the same way whether resumed or not."""
    from fairseq.tasks.translation import TranslationConfig, TranslationTask

    def epoch2_batches(resumed, update_epoch_batch_itr):
        task = TranslationTask.setup_task(TranslationConfig(
            data=str(workdir / "data-bin"), dataset_impl="mmap", train_subset="train",
            required_seq_len_multiple=1))
        task.load_dataset("train")

        def iterator(epoch):  # as fairseq's trainer asks for it at the start of each epoch
            return task.get_batch_iterator(
                task.dataset("train"), max_tokens=100, seed=1, epoch=epoch,
                required_batch_size_multiple=8, update_epoch_batch_itr=update_epoch_batch_itr)

        if resumed:
            epoch_itr = iterator(2)
        else:
            epoch_itr = iterator(1)
            for _ in epoch_itr.next_epoch_itr(shuffle=True):
                pass
            epoch_itr = iterator(epoch_itr.next_epoch_idx)
        return [batch["id"].tolist() for batch in epoch_itr.next_epoch_itr(shuffle=True)]

    def trained_on(straight, resumed, done=2):  # killed after `done` batches of epoch 2
        return [i for batch in straight[:done] + resumed[done:] for i in batch]

    straight, resumed = epoch2_batches(False, False), epoch2_batches(True, False)
    assert [len(b) for b in straight] == [len(b) for b in resumed] and straight != resumed
    ids = trained_on(straight, resumed)
    assert len(ids) == 160 and len(set(ids)) < 160

    straight, resumed = epoch2_batches(False, True), epoch2_batches(True, True)
    assert straight == resumed
    assert sorted(trained_on(straight, resumed)) == list(range(160))


def truncate(source, target):
    data = source.read_bytes()
    target.write_bytes(data[: len(data) // 2])


def test_truncated_checkpoint_last_resumes_from_the_newest_intact_one(workdir):
    """A kill during fairseq's in-place copy of checkpoint_last.pt truncates it, while the
    atomically written checkpoint_2_16.pt beside it holds the same state: the same train.sh
    command keeps the damaged file as checkpoint_last.pt.damaged, names it, resumes from
    checkpoint_2_16.pt and ends bitwise equal to the uninterrupted run."""
    ref = reference(workdir) / "checkpoints"
    run_dir = workdir / "truncated_last"
    ckpt = run_dir / "checkpoints"
    ckpt.mkdir(parents=True)
    for age, name in enumerate(["checkpoint_2_16.pt", "checkpoint1.pt", "checkpoint_1_8.pt"]):
        (ckpt / name).write_bytes((ref / name).read_bytes())
        os.utime(ckpt / name, (1e9 - age * 100, 1e9 - age * 100))  # 2_16 newest
    last = ckpt / "checkpoint_last.pt"
    truncate(ref / "checkpoint_2_16.pt", last)
    size = last.stat().st_size

    out = finish(start(train_cmd(run_dir), workdir))
    assert f"train.sh: damaged checkpoint, kept as {last}.damaged: {last}: cannot be read" in out
    assert f"train.sh: resuming from {ckpt / 'checkpoint_2_16.pt'}" in out
    loaded = LOADED.search(out)
    assert loaded and loaded.group(1) == str(ckpt / "checkpoint_2_16.pt") and loaded.group(3) == "16"
    assert (ckpt / "checkpoint_last.pt.damaged").stat().st_size == size
    assert_same_final_state(run_dir, reference(workdir))


def test_truncated_checkpoint_is_refused_by_name(workdir):
    """A truncated checkpoint_last.pt with nothing intact beside it, or a truncated
    --restore-file: train.sh stops before training with an error naming the file.
    fairseq-train alone also refuses it, but its torch traceback does not name the file."""
    good = reference(workdir) / "checkpoints" / "checkpoint_2_16.pt"
    run_dir = workdir / "truncated"
    (run_dir / "checkpoints").mkdir(parents=True)
    last = run_dir / "checkpoints" / "checkpoint_last.pt"
    truncate(good, last)
    size = last.stat().st_size

    # fairseq-train by itself: it fails too (never loads it silently), but names the file
    # only in an earlier log line, not in its error
    plain = subprocess.run(
        [os.path.join(BIN, "fairseq-train"), "data-bin", "--user-dir",
         os.path.join(REPO, "fairseq_plugins"), "--arch", "contextpool_transformer_tiny",
         "--share-all-embeddings", "--optimizer", "adam", "--lr", "0.002", "--max-tokens", "100",
         "--cpu", "--num-workers", "0", "--save-dir", str(run_dir / "checkpoints")],
        cwd=workdir, env=cli_env(), capture_output=True, text=True, timeout=300)
    assert plain.returncode != 0
    error = plain.stderr.strip().splitlines()[-1]
    assert "failed finding central directory" in error and str(last) not in error
    assert f"Preparing to load checkpoint {last}" in plain.stdout + plain.stderr
    assert "begin training epoch" not in plain.stdout + plain.stderr

    result = subprocess.run(train_cmd(run_dir), cwd=workdir, env=cli_env(), capture_output=True,
                            text=True, timeout=300)
    assert result.returncode != 0
    assert f"train.sh: damaged checkpoint, kept as {last}.damaged: {last}: cannot be read" in result.stderr
    assert f"train.sh: cannot resume: no checkpoint in {run_dir / 'checkpoints'} loads" in result.stderr
    assert "truncated" in result.stderr and "Traceback" not in result.stderr
    assert "fairseq_cli.train" not in result.stdout + result.stderr  # never started
    assert not last.exists() and (run_dir / "checkpoints" / "checkpoint_last.pt.damaged").stat().st_size == size

    restore = workdir / "half_restore.pt"
    truncate(good, restore)
    other = workdir / "restore_run"
    result = subprocess.run(train_cmd(other, "--restore-file", str(restore)), cwd=workdir,
                            env=cli_env(), capture_output=True, text=True, timeout=300)
    assert result.returncode != 0
    assert f"train.sh: cannot resume: {restore}: cannot be read" in result.stderr
    assert "Traceback" not in result.stderr
    assert restore.exists()  # an explicit --restore-file is never renamed

    # an explicit --restore-file that does not exist: fairseq would train from scratch
    result = subprocess.run(train_cmd(other, "--restore-file", "nowhere.pt"), cwd=workdir,
                            env=cli_env(), capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert "--restore-file nowhere.pt: no such file" in result.stderr


def files_of(directory):
    return {path.name: path.read_bytes() for path in sorted(Path(directory).iterdir())}


def test_rerunning_a_finished_training_changes_nothing(workdir):
    """The same command once the training is done: fairseq-train would train update 31
    ("num_updates: 31 >= max_update: 30") and overwrite checkpoint_last.pt and
    checkpoint_best.pt. train.sh says it is done, starts nothing and changes no file; likewise
    for a checkpoint_last.pt at the end of the last epoch of --max-epoch (given after --)."""
    run_dir = workdir / "finished"
    shutil.copytree(reference(workdir), run_dir)
    before, log = files_of(run_dir / "checkpoints"), (run_dir / "train.log").read_bytes()

    out = finish(start(train_cmd(run_dir), workdir))
    assert f"train.sh: already at max-update {MAX_UPDATE}; nothing to do" in out
    assert "fairseq_cli.train" not in out and "begin training" not in out
    assert files_of(run_dir / "checkpoints") == before
    assert (run_dir / "train.log").read_bytes() == log
    assert num_updates(run_dir / "checkpoints" / "checkpoint_last.pt") == MAX_UPDATE

    epoch_done = workdir / "finished_epoch" / "checkpoints"
    epoch_done.mkdir(parents=True)
    shutil.copy(run_dir / "checkpoints" / "checkpoint1.pt", epoch_done / "checkpoint_last.pt")
    shutil.copy(run_dir / "checkpoints" / "provenance.json", epoch_done)
    before = files_of(epoch_done)
    out = finish(start(train_cmd(epoch_done.parent, "--max-epoch", "1"), workdir))
    assert "train.sh: already at max-epoch 1; nothing to do" in out
    assert "fairseq_cli.train" not in out
    assert files_of(epoch_done) == before


def test_what_counts_as_finished(workdir):
    """contextpool_mt.resume.reached_limit, on the checkpoints of the uninterrupted run: fairseq's
    limits (0: none); an end-of-epoch checkpoint records the next epoch."""
    ckpt = reference(workdir) / "checkpoints"
    last, epoch1, mid1 = (load_checkpoint(str(ckpt / name))
                          for name in ("checkpoint_last.pt", "checkpoint1.pt", "checkpoint_1_8.pt"))
    assert reached_limit(last, MAX_UPDATE, 0) == "max-update"
    assert reached_limit(last, MAX_UPDATE + 1, 0) is None
    assert reached_limit(last, 0, 0) is None
    assert reached_limit(epoch1, MAX_UPDATE, 1) == "max-epoch"
    assert reached_limit(epoch1, MAX_UPDATE, 2) is None
    assert reached_limit(mid1, MAX_UPDATE, 1) is None  # epoch 1 not finished at update 8
    assert reached_limit(mid1, 8, 1) == "max-update"


def process_group(pgid):
    """{pid: command line} of the live processes in process group ``pgid`` (Linux /proc)."""
    found = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
            fields = stat[stat.rindex(")") + 2:].split()  # state, ppid, pgrp, ...
            if int(fields[2]) == pgid and fields[0] != "Z":
                found[int(entry)] = Path(f"/proc/{entry}/cmdline").read_bytes().replace(b"\0", b" ").decode()
        except (OSError, ValueError):
            continue
    return found


def test_sigint_to_train_sh_stops_the_training_and_a_rerun_resumes(workdir):
    """`kill -INT` to train.sh's own process (not its process group), once the training is
    under way: fairseq-train stops at once, train.sh exits 130 and leaves no process behind; the
    checkpoints saved so far stay, and the same command resumes and ends bitwise equal to the
    uninterrupted run. (bash alone would run its trap only after fairseq-train ended, and
    fairseq-train, started in the background, would ignore SIGINT.)"""
    run_dir = workdir / "interrupted"
    # started as `train.sh ... &` from a script is: with SIGINT ignored, which bash cannot trap
    # unless train.sh undoes it for itself
    proc = start(train_cmd(run_dir), workdir,
                 preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN))
    try:
        seen = []
        for line in proc.stdout:
            seen.append(line)
            if re.search(r"Saved checkpoint \S+checkpoint_\d+_8\.pt", line):
                break
        trainers = {pid: cmd for pid, cmd in process_group(proc.pid).items() if "fairseq-train" in cmd}
        assert trainers, "".join(seen)[-3000:]
        os.kill(proc.pid, signal.SIGINT)
        sent = time.monotonic()
        out = "".join(seen) + proc.communicate(timeout=120)[0]
        took = time.monotonic() - sent
    finally:
        kill(proc)
    assert proc.returncode == 130, out[-3000:]
    assert took < 30, f"train.sh took {took:.0f} s to stop"
    assert "done training" not in out
    assert f"train.sh: stopped by SIGINT; the checkpoints saved so far are in {run_dir / 'checkpoints'}" in out
    assert not process_group(proc.pid), "a process of the interrupted run is still alive"
    assert all(not Path(f"/proc/{pid}").exists() for pid in trainers)

    last = run_dir / "checkpoints" / "checkpoint_last.pt"
    interrupted_at = num_updates(last)
    assert 8 <= interrupted_at < MAX_UPDATE
    out = finish(start(train_cmd(run_dir), workdir))
    assert f"train.sh: resuming from {last}" in out
    assert_same_final_state(run_dir, reference(workdir))
    assert "train.sh stopped by SIGINT" in (run_dir / "train.log").read_text()
