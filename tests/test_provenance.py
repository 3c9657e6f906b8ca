"""Data provenance: every checkpoint train.sh writes carries the fingerprint of its corpus (in the
task's state, which fairseq saves in each checkpoint), fingerprints are of content and not of
paths, and records of the old kind are still compared, as the old kind.

The module fixture prepares one small corpus twice, into two folders and with another number of
threads (A and B: the same corpus), makes C (A with other dictionary entries of the same count:
another corpus that fits the model's embeddings) and trains transformer_tiny on A for two epochs
with scripts/train.sh.
"""

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

import fairseq_plugins  # noqa: F401  (registers the tasks, allowlists checkpoint contents)
from fairseq_plugins.checkpoint_loading import load_checkpoint
from fairseq_plugins.corpus_fingerprint import spm_content_sha256
from helpers import binarize, cli_env, rewrite_dictionaries_as_other_pieces, write_reversal_corpus

from contextpool_mt import average as avg
from contextpool_mt import evaluate as ev
from contextpool_mt import provenance
from contextpool_mt import report as rp
from contextpool_mt.provenance import ProvenanceError, sha256_of

REPO = Path(__file__).resolve().parents[1]
TRAIN_SH = REPO / "scripts" / "train.sh"


def _prepare(source, out, workers):
    from contextpool_mt import corpus

    assert corpus.main(["--input", str(source), "--src", "en", "--tgt", "de", "--out", str(out),
                        "--vocab-size", "40", "--max-len", "0", "--ratio", "0",
                        "--workers", str(workers)]) == 0


@pytest.fixture(scope="module")
def corpora(tmp_path_factory):
    root = tmp_path_factory.mktemp("provenance")
    (root / "input").mkdir()
    write_reversal_corpus(root / "input", {"train": 160, "valid": 16, "test": 12})
    _prepare(root / "input", root / "A", workers=1)
    _prepare(root / "input", root / "B", workers=2)
    shutil.copytree(root / "A", root / "C")
    rewrite_dictionaries_as_other_pieces(root / "C")
    run = root / "run"
    proc = subprocess.run(
        ["bash", str(TRAIN_SH), "--data", str(root / "A" / "bin"), "--arch", "transformer_tiny",
         "--run-dir", str(run), "--cpu", "--max-tokens", "200", "--warmup", "4", "--lr", "0.002",
         "--max-epoch", "2", "--", "--num-workers", "0", "--log-format", "simple"],
        cwd=root, env=cli_env(), capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return {"root": root, "A": root / "A", "B": root / "B", "C": root / "C", "run": run}


def _fingerprint(data, version=None):
    bin_dir = data / "bin"
    return provenance.fingerprint(bin_dir, "en", "de", provenance.spm_model_of(bin_dir), version)


def _copied_out(corpora, tmp_path, name="checkpoint_best.pt"):
    """A checkpoint copied out of its run folder, without its provenance.json."""
    (tmp_path / "elsewhere").mkdir()
    return Path(shutil.copy(corpora["run"] / "checkpoints" / name, tmp_path / "elsewhere" / name))


# --------------------------------------------------------------------------- item: every checkpoint


@pytest.mark.slow
def test_every_checkpoint_train_sh_writes_records_its_corpus(corpora):
    written = sorted(p.name for p in (corpora["run"] / "checkpoints").glob("*.pt"))
    assert {"checkpoint1.pt", "checkpoint2.pt", "checkpoint_best.pt", "checkpoint_last.pt"} <= set(written)
    expected = _fingerprint(corpora["A"])
    for name in written:
        state = load_checkpoint(str(corpora["run"] / "checkpoints" / name))
        assert state["task_state"][provenance.TASK_STATE_KEY] == expected, name
    assert expected["fingerprint_version"] == 2


@pytest.mark.slow
def test_a_checkpoint_copied_out_of_its_run_is_refused_on_another_corpus(corpora, tmp_path, capsys):
    from contextpool_mt import pools

    ckpt = _copied_out(corpora, tmp_path)
    assert provenance.find_record(ckpt, load_checkpoint(str(ckpt)))[1] == "task_state"
    # C: another corpus whose dictionaries have as many entries (the embeddings fit)
    assert ev.main(["--data", str(corpora["C"]), "--checkpoint", str(ckpt), "--out", str(tmp_path / "out"),
                    "--cpu"]) == 2
    err = capsys.readouterr().err
    assert str(corpora["A"] / "bin") in err and str(corpora["C"] / "bin") in err
    assert "source dictionary" in err and "target dictionary" in err
    assert not (tmp_path / "out").exists()
    with pytest.raises(pools.PoolInspectionError, match="source dictionary"):
        pools.load(ckpt, corpora["C"] / "bin", "en", "de")


@pytest.mark.slow
def test_averages_keep_the_record(corpora, tmp_path):
    ckpts = corpora["run"] / "checkpoints"
    averaged = avg.average_checkpoints([str(ckpts / "checkpoint1.pt"), str(ckpts / "checkpoint2.pt")],
                                       log=lambda *_: None)
    expected = _fingerprint(corpora["A"])
    assert averaged["task_state"][provenance.TASK_STATE_KEY] == expected
    assert averaged["extra_state"][provenance.EXTRA_STATE_KEY] == expected
    avg.save_atomically(averaged, str(tmp_path / "average.pt"))
    assert provenance.find_record(tmp_path / "average.pt", load_checkpoint(str(tmp_path / "average.pt"))) == (
        expected, "task_state")


def test_the_bf16_task_records_its_corpus_too(tmp_path):
    from fairseq.tasks.translation import TranslationConfig

    from fairseq_plugins.tasks import TranslationBF16Task, TranslationProvenanceTask

    write_reversal_corpus(tmp_path, {"train": 20, "valid": 4})
    binarize(tmp_path)
    bin_dir = tmp_path / "data-bin"
    for task_class in (TranslationProvenanceTask, TranslationBF16Task):
        task = task_class.setup_task(TranslationConfig(data=str(bin_dir)))
        assert task.state_dict()[provenance.TASK_STATE_KEY] == provenance.fingerprint(bin_dir, "en", "de")
    assert issubclass(TranslationBF16Task, TranslationProvenanceTask)


# --------------------------------------------------------------------------- item: content, not paths


@pytest.mark.slow
def test_the_same_corpus_prepared_into_another_folder_is_accepted(corpora, tmp_path, capsys):
    a, b = _fingerprint(corpora["A"]), _fingerprint(corpora["B"])
    assert sha256_of(corpora["A"] / "spm" / "spm.model") != sha256_of(corpora["B"] / "spm" / "spm.model")
    assert {k: v for k, v in a.items() if k != "data"} == {k: v for k, v in b.items() if k != "data"}
    # train.sh resuming the run on B
    ckpts = tmp_path / "checkpoints"
    ckpts.mkdir()
    shutil.copy(corpora["run"] / "checkpoints" / provenance.FILE, ckpts / provenance.FILE)
    assert provenance.record(corpora["B"] / "bin", ckpts) == a
    # cpmt-evaluate of a copied-out checkpoint on B
    ckpt = _copied_out(corpora, tmp_path)
    assert ev.main(["--data", str(corpora["B"]), "--checkpoint", str(ckpt), "--out", str(tmp_path / "out"),
                    "--cpu", "--beam", "1"]) == 0
    capsys.readouterr()
    scored = json.loads((tmp_path / "out" / "scores.json").read_text(encoding="utf-8"))["provenance"]
    assert scored["checked"] is True and scored["recorded_in"] == "task_state"


def test_the_content_digest_ignores_paths_threads_and_scores(tmp_path):
    import sentencepiece as spm
    from sentencepiece import sentencepiece_model_pb2

    text = tmp_path / "t.txt"
    text.write_text("".join(f"zeile {i} mit etwas text\n" for i in range(50)), encoding="utf-8")
    spm.SentencePieceTrainer.train(input=str(text), model_prefix=str(tmp_path / "m"), vocab_size=30,
                                   hard_vocab_limit=False, minloglevel=2, num_threads=1)
    model = sentencepiece_model_pb2.ModelProto()
    model.ParseFromString((tmp_path / "m.model").read_bytes())
    model.trainer_spec.model_prefix, model.trainer_spec.num_threads = "/elsewhere/spm", 8
    model.trainer_spec.input[:] = ["/elsewhere/train.txt"]
    for piece in model.pieces:
        piece.score += 1e-6
    model.pieces.sort(key=lambda p: p.piece)
    (tmp_path / "moved.model").write_bytes(model.SerializeToString())
    assert sha256_of(tmp_path / "moved.model") != sha256_of(tmp_path / "m.model")
    assert spm_content_sha256(tmp_path / "moved.model") == spm_content_sha256(tmp_path / "m.model")
    model.pieces[-1].piece += "x"  # another vocabulary
    (tmp_path / "other.model").write_bytes(model.SerializeToString())
    assert spm_content_sha256(tmp_path / "other.model") != spm_content_sha256(tmp_path / "m.model")


@pytest.mark.slow
def test_fingerprints_of_the_old_kind_are_compared_as_the_old_kind(corpora, tmp_path):
    old = _fingerprint(corpora["A"], version=1)
    assert "fingerprint_version" not in old and provenance.version_of(old) == 1
    ckpts = tmp_path / "checkpoints"
    ckpts.mkdir()
    (ckpts / provenance.FILE).write_text(json.dumps(old), encoding="utf-8")
    (ckpts / "checkpoint_last.pt").write_bytes(b"")  # what the record protects
    assert provenance.record(corpora["A"] / "bin", ckpts) == old  # its own corpus passes, kept as it was
    assert json.loads((ckpts / provenance.FILE).read_text(encoding="utf-8")) == old
    state = {"extra_state": {provenance.EXTRA_STATE_KEY: old}}
    spm_a = provenance.spm_model_of(corpora["A"] / "bin")
    assert provenance.check(ckpts / "x.pt", state, corpora["A"] / "bin", "en", "de", spm_a)["checked"]
    # an old record hashed spm.model's bytes: B cannot be told from another corpus, and it says why
    with pytest.raises(ProvenanceError, match="old kind, fingerprint version 1"):
        provenance.record(corpora["B"] / "bin", ckpts)
    with pytest.raises(ProvenanceError, match="old kind, fingerprint version 1"):
        provenance.check(ckpts / "x.pt", state, corpora["B"] / "bin", "en", "de",
                         provenance.spm_model_of(corpora["B"] / "bin"))
    # the report compares scores.json's record of the old kind (the committed artefacts') likewise
    loaded = {"scores": {"provenance": {"data": old}}, "scores_path": tmp_path / "scores.json"}
    rp.check_scored_data(loaded, (corpora["A"] / "bin", "en", "de", spm_a))
    with pytest.raises(rp.ReportError, match="source dictionary"):
        rp.check_scored_data(loaded, (corpora["C"] / "bin", "en", "de", spm_a))


@pytest.mark.slow
def test_a_record_with_no_checkpoint_beside_it_is_replaced(corpora, tmp_path, capsys):
    """A run stopped before its first save left only provenance.json: on a rebuilt corpus the run
    starts afresh (nothing trained on the old one is kept) and says so; once a checkpoint exists
    the same record refuses."""
    ckpts = tmp_path / "checkpoints"
    on_a = provenance.record(corpora["A"] / "bin", ckpts)
    on_c = provenance.record(corpora["C"] / "bin", ckpts)
    assert on_c == _fingerprint(corpora["C"]) != on_a
    assert json.loads((ckpts / provenance.FILE).read_text(encoding="utf-8")) == on_c
    said = capsys.readouterr().err
    assert str(ckpts / provenance.FILE) in said and "source dictionary" in said
    assert f"starts afresh on {(corpora['C'] / 'bin').resolve()}" in said
    (ckpts / "checkpoint_last.pt").write_bytes(b"")
    with pytest.raises(ProvenanceError, match="resuming would mix two corpora"):
        provenance.record(corpora["A"] / "bin", ckpts)
    assert json.loads((ckpts / provenance.FILE).read_text(encoding="utf-8")) == on_c


@pytest.mark.slow
def test_a_changed_corpus_is_named_not_given_as_the_fix(corpora, tmp_path):
    data = tmp_path / "D"
    shutil.copytree(corpora["A"], data)
    ckpts = tmp_path / "checkpoints"
    record = provenance.record(data / "bin", ckpts)
    (ckpts / "checkpoint1.pt").write_bytes(b"")  # trained an epoch on it
    rewrite_dictionaries_as_other_pieces(data)  # rebuilt in place
    with pytest.raises(ProvenanceError) as refused:
        provenance.record(data / "bin", ckpts)
    message = str(refused.value)
    assert f"trained on {(data / 'bin').resolve()} as it was then; it has changed since" in message
    assert "--data" not in message and "another --run-dir" in message
    state = {"task_state": {provenance.TASK_STATE_KEY: record}}
    with pytest.raises(ProvenanceError) as refused:
        provenance.check(ckpts / "x.pt", state, data / "bin", "en", "de", provenance.spm_model_of(data / "bin"))
    assert "it has changed since" in str(refused.value) and "Give the corpus" not in str(refused.value)
    assert os.path.basename(str(data)) in str(refused.value)
