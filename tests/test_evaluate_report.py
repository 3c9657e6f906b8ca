"""cpmt-evaluate and cpmt-compare, end to end on a tiny corpus, plus unit tests.

The session fixture prepares a synthetic EN->DE corpus with cpmt-prepare-corpus's code
(raw/, spm/spm.model, bin/; test set 'test' and a second one, 'year2'), trains transformer_tiny and
contextpool_transformer_tiny for 2 epochs, evaluates them with
cpmt-evaluate and compares them with cpmt-compare. The test
set has 21 lines, not a multiple of 8, so a dropped last batch would show.
"""

import json
import os
import random
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import sacrebleu
import sentencepiece as spm
from sacrebleu.metrics import BLEU

from contextpool_mt import evaluate as ev
from contextpool_mt import metrics
from contextpool_mt import fairseq_logs as fl
from contextpool_mt import report as rp
from contextpool_mt.provenance import sha256_of
from contextpool_mt.text import read_lines
from helpers import rewrite_dictionaries_as_other_pieces

ROOT = Path(__file__).resolve().parents[1]
PY = sys.executable
BIN = Path(PY).parent  # the console commands installed with the project
N_TEST = 21
N_YEAR2 = 13
ARCHS = {"baseline": "transformer_tiny", "contextpool": "contextpool_transformer_tiny"}

# --------------------------------------------------------------------------- fixture

_LEXICON = {
    "the": "der", "a": "ein", "house": "Haus", "cat": "Katze", "dog": "Hund", "big": "groß",
    "small": "klein", "red": "rot", "blue": "blau", "car": "Auto", "tree": "Baum", "man": "Mann",
    "sees": "sieht", "has": "hat", "likes": "mag", "old": "alt", "new": "neu",
    "long-term": "Langzeit-Studie", "know-how": "Know-how", "east-west": "Ost-West-Konflikt",
}


def _sentences(n, rng):
    words = sorted(_LEXICON)
    pairs = []
    for _ in range(n):
        chosen = [rng.choice(words) for _ in range(rng.randint(2, 5))]
        en = " ".join(chosen).capitalize() + "."
        de = " ".join(_LEXICON[w] for w in chosen)
        de = de[0].upper() + de[1:] + "."
        if rng.random() < 0.2:
            en, de = f'"{en}"', f"„{de}“"
        pairs.append((en, de))
    return pairs


def _env():
    env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", PYTHONIOENCODING="utf-8")
    return env


def _run(cmd, **kw):
    proc = subprocess.run(cmd, capture_output=True, text=True, env=_env(), **kw)
    assert proc.returncode == 0, f"{cmd} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    return proc


def _wait_all(procs):
    for cmd, proc, log in procs:
        rc = proc.wait()
        if rc != 0:
            text = Path(log).read_text(errors="replace") if log else ""
            raise AssertionError(f"{cmd} failed ({rc}):\n{text[-3000:]}")


def _make_corpus(data: Path):
    """The corpus through cpmt-prepare-corpus's code, with a second test set 'year2'."""
    from contextpool_mt import corpus

    rng = random.Random(7)
    source = data.parent / "input"
    source.mkdir(parents=True)
    for split, n in (("train", 160), ("valid", 16), ("test", N_TEST), ("year2", N_YEAR2)):
        pairs = _sentences(n, rng)
        (source / f"{split}.en").write_text("".join(e + "\n" for e, _ in pairs), encoding="utf-8")
        (source / f"{split}.de").write_text("".join(d + "\n" for _, d in pairs), encoding="utf-8")
    assert corpus.main(["--input", str(source), "--src", "en", "--tgt", "de", "--out", str(data),
                        "--test-prefix", f"year2={source / 'year2'}", "--vocab-size", "90",
                        "--max-len", "0", "--ratio", "0", "--workers", "1"]) == 0


@pytest.fixture(scope="session")
def pipeline(tmp_path_factory):
    root = tmp_path_factory.mktemp("eval_report")
    data = root / "data"
    _make_corpus(data)

    runs = {name: root / name for name in ARCHS}
    procs = []
    for name, arch in ARCHS.items():
        runs[name].mkdir()
        log = runs[name] / "train.log"
        cmd = [PY, "-m", "fairseq_cli.train", str(data / "bin"), "--user-dir", str(ROOT / "fairseq_plugins"),
               "--arch", arch, "--share-all-embeddings", "--optimizer", "adam", "--lr", "1e-3",
               "--max-tokens", "300", "--max-epoch", "2", "--save-dir", str(runs[name] / "checkpoints"),
               "--log-format", "json", "--log-interval", "2", "--cpu", "--seed", "1", "--num-workers", "0"]
        with open(log, "w") as handle:
            procs.append((cmd, subprocess.Popen(cmd, stdout=handle, stderr=subprocess.STDOUT, env=_env()), log))
    _wait_all(procs)

    evals = [("baseline", "last", "checkpoint_last.pt"), ("contextpool", "last", "checkpoint_last.pt"),
             ("contextpool", "epoch1", "checkpoint1.pt")]
    procs = []
    for name, eval_name, ckpt in evals:
        out = runs[name] / "eval" / eval_name
        out.parent.mkdir(exist_ok=True)
        cmd = [str(BIN / "cpmt-evaluate"), "--data", str(data),
               "--checkpoint", str(runs[name] / "checkpoints" / ckpt), "--out", str(out),
               "--beam", "2", "--cpu", "--", "--max-len-a", "1.2", "--max-len-b", "4", "--num-workers", "0"]
        log = root / f"evaluate_{name}_{eval_name}.out"
        with open(log, "w") as handle:
            procs.append((cmd, subprocess.Popen(cmd, stdout=handle, stderr=subprocess.STDOUT, env=_env()), log))
    _wait_all(procs)

    report_dir = root / "report"
    proc = _run([str(BIN / "cpmt-compare"), "--run", f"baseline={runs['baseline']}",
                 "--run", f"contextpool={runs['contextpool']}", "--baseline", "baseline",
                 "--data", str(data), "--out", str(report_dir), "--bootstrap-samples", "200"])
    return {"root": root, "data": data, "runs": runs, "report": report_dir, "report_stdout": proc.stdout,
            "evals": [(name, runs[name] / "eval" / e) for name, e, _ in evals]}


def _scores(eval_dir):
    return json.loads((eval_dir / "scores.json").read_text(encoding="utf-8"))


# --------------------------------------------------------------------------- cpmt-evaluate

slow = pytest.mark.slow


@slow
def test_hyp_txt_has_one_line_per_reference_line(pipeline):
    refs = read_lines(pipeline["data"] / "raw" / "test.de")
    assert len(refs) == N_TEST
    for _, eval_dir in pipeline["evals"]:
        hyps = read_lines(eval_dir / "hyp.txt")
        assert len(hyps) == len(refs)
        scores = _scores(eval_dir)
        assert scores["num_sentences"] == N_TEST
        for name in ("generate.log", "hyp.tok", "ref.tok"):
            assert (eval_dir / name).is_file()


@slow
def test_hyp_txt_is_the_spm_decoded_generate_output_in_source_order(pipeline):
    processor = spm.SentencePieceProcessor(model_file=str(pipeline["data"] / "spm" / "spm.model"))
    for _, eval_dir in pipeline["evals"]:
        by_id = {}
        for line in (eval_dir / "generate.log").read_text(encoding="utf-8").split("\n"):
            if line.startswith("H-"):
                head, _score, text = line.split("\t", 2)
                by_id[int(head[2:])] = processor.decode(text.split())
        assert sorted(by_id) == list(range(N_TEST))
        assert read_lines(eval_dir / "hyp.txt") == [by_id[i] for i in range(N_TEST)]


@slow
def test_scores_equal_a_sacrebleu_recomputation(pipeline):
    refs = read_lines(pipeline["data"] / "raw" / "test.de")
    for _, eval_dir in pipeline["evals"]:
        scores = _scores(eval_dir)
        hyps = read_lines(eval_dir / "hyp.txt")
        assert scores["bleu_detok"]["score"] == pytest.approx(sacrebleu.corpus_bleu(hyps, [refs]).score, abs=1e-9)
        assert scores["chrf"]["score"] == pytest.approx(sacrebleu.corpus_chrf(hyps, [refs]).score, abs=1e-9)
        assert scores["bleu_detok"]["signature"].startswith("nrefs:1|case:mixed|eff:no|tok:13a|smooth:exp")
        assert "nc:6" in scores["chrf"]["signature"]
        # tokenised compound-split BLEU: the kept tokenised files, BLEU with no further tokenisation
        hyp_tok, ref_tok = read_lines(eval_dir / "hyp.tok"), read_lines(eval_dir / "ref.tok")
        splitter = metrics.CompoundSplitTokenizer("de")
        assert hyp_tok == [splitter(h) for h in hyps]
        assert ref_tok == [splitter(r) for r in refs]
        assert any("##AT##-##AT##" in r for r in ref_tok)
        tok = BLEU(tokenize="none", smooth_method="none", force=True).corpus_score(hyp_tok, [ref_tok])
        assert scores["bleu_tok_compound_split"]["score"] == pytest.approx(tok.score, abs=1e-9)
        assert "tok:none|smooth:none" in scores["bleu_tok_compound_split"]["signature"]
        # what the tokenised files are is pinned by their sha256 (the report checks them)
        assert scores["files"]["hyp_tok_sha256"] == sha256_of(eval_dir / "hyp.tok")
        assert scores["files"]["ref_tok_sha256"] == sha256_of(eval_dir / "ref.tok")


@slow
def test_scores_record_checkpoint_speed_and_decoding(pipeline):
    for name, eval_dir in pipeline["evals"]:
        scores = _scores(eval_dir)
        train = fl.parse_train_log(pipeline["runs"][name] / "train.log")
        ckpt = scores["checkpoint"]
        if eval_dir.name == "epoch1":
            assert Path(ckpt["path"]).name == "checkpoint1.pt"
            assert (ckpt["epoch"], ckpt["num_updates"]) == (1, train["epochs"][0]["num_updates"])
        else:
            assert (ckpt["epoch"], ckpt["num_updates"]) == (2, train["num_updates"])
        assert ckpt["mid_epoch"] is False
        speed = scores["speed"]
        line = next(l for l in (eval_dir / "generate.log").read_text().split("\n") if "Translated " in l)
        assert speed["sentences"] == N_TEST
        assert f"Translated {N_TEST} sentences" in line
        assert f"({speed['sentences_per_second']:.2f} sentences/s" in line
        assert speed["seconds"] >= 0 and speed["tokens"] > 0 and speed["device"] == "cpu"
        assert scores["decoding"]["beam"] == 2 and scores["decoding"]["lenpen"] == 0.6
        assert "--required-batch-size-multiple" in scores["decoding"]["command"]
        assert scores["decoding"]["extra_generate_args"][:2] == ["--max-len-a", "1.2"]
        assert scores["files"]["reference"] == str((pipeline["data"] / "raw" / "test.de").resolve())


@slow
def test_checkpoint_info_of_plain_and_averaged_checkpoints(pipeline, tmp_path):
    from fairseq_plugins.checkpoint_loading import load_checkpoint

    from contextpool_mt import average as avg
    from contextpool_mt.checkpoints import checkpoint_info

    ckpts = pipeline["runs"]["baseline"] / "checkpoints"
    train = fl.parse_train_log(pipeline["runs"]["baseline"] / "train.log")
    first = checkpoint_info(ckpts / "checkpoint1.pt", load_checkpoint(str(ckpts / "checkpoint1.pt")))
    assert (first["epoch"], first["num_updates"], first["mid_epoch"]) == (1, train["epochs"][0]["num_updates"], False)
    assert first["arch"] == "transformer_tiny"
    # the averager records its inputs with their progress: the newest input's counts, and
    # nothing re-opens the inputs (they are gone when the average is described)
    inputs = []
    for name in ("checkpoint1.pt", "checkpoint2.pt"):
        shutil.copy(ckpts / name, tmp_path / name)
        inputs.append(str(tmp_path / name))
    avg.save_atomically(avg.average_checkpoints(inputs, log=lambda *_: None), str(tmp_path / "avg.pt"))
    for path in inputs:
        os.remove(path)
    info = checkpoint_info(tmp_path / "avg.pt", load_checkpoint(str(tmp_path / "avg.pt")))
    assert (info["epoch"], info["num_updates"]) == (2, train["num_updates"])
    assert [m["path"] for m in info["averaged_checkpoints"]] == inputs
    assert [(m["epoch"], m["num_updates"]) for m in info["averaged_checkpoints"]] == [
        (1, train["epochs"][0]["num_updates"]), (2, train["num_updates"])]


# --------------------------------------------------------------------------- cpmt-compare


@pytest.fixture(scope="session")
def report(pipeline):
    return json.loads((pipeline["report"] / "report.json").read_text(encoding="utf-8"))


@slow
def test_report_numbers_match_scores_and_train_log(pipeline, report):
    assert report["baseline"] == "baseline"
    assert list(report["runs"]) == ["baseline", "contextpool"]
    for name, run in report["runs"].items():
        run_dir = pipeline["runs"][name]
        scores = _scores(run_dir / "eval" / "last")
        main = run["main_eval"]
        assert run["main_eval_name"] == "last" and "avg" in run["main_eval_note"]  # avg missing: fallback
        assert main["bleu_detok"] == scores["bleu_detok"]["score"]
        assert main["bleu_tok_compound_split"] == scores["bleu_tok_compound_split"]["score"]
        assert main["chrf"] == scores["chrf"]["score"]
        assert main["sentences_per_second"] == scores["speed"]["sentences_per_second"]
        assert Path(main["scores_json"]) == (run_dir / "eval" / "last" / "scores.json").resolve()
        assert Path(run["train_log"]) == (run_dir / "train.log").resolve()
        train = fl.parse_train_log(run_dir / "train.log")
        for key in ("params", "wall_seconds", "train_wall_seconds", "num_updates", "words_per_second"):
            assert run["training"][key] == train[key]
        assert run["training"]["num_epochs"] == 2
        assert main["training_wall_seconds_at_checkpoint"] == train["wall_seconds"]
    # every input named in report.json exists
    assert Path(report["data"]["reference"]).is_file()
    assert report["data"]["num_sentences"] == N_TEST
    curve = report["runs"]["contextpool"]["curve"]
    assert [p["name"] for p in curve] == ["epoch1", "last"]
    assert curve[0]["num_updates"] < curve[1]["num_updates"]
    assert "baseline" in pipeline["report_stdout"] and "contextpool" in pipeline["report_stdout"]


@slow
def test_report_params_are_the_models_real_parameter_counts(pipeline, report):
    from fairseq.data import Dictionary

    from helpers import build_model

    dictionary = Dictionary.load(str(pipeline["data"] / "bin" / "dict.en.txt"))
    for name, arch in ARCHS.items():
        model = build_model(arch, dictionary=dictionary)
        real = sum(p.numel() for p in model.parameters())
        assert report["runs"][name]["training"]["params"] == real
    assert report["runs"]["contextpool"]["training"]["params"] > report["runs"]["baseline"]["training"]["params"]


@slow
def test_report_significance_plots_and_markdown(pipeline, report):
    comparison = report["significance"]["comparisons"]["contextpool"]
    assert set(comparison) == {"bleu_detok", "chrf", "bleu_tok_compound_split"}
    for entry in comparison.values():
        assert 0 < entry["p_value"] <= 1
        assert entry["delta"] == pytest.approx(entry["system_score"] - entry["baseline_score"])
        assert isinstance(entry["significant_at_0.05"], bool)
        assert entry["significant_at_0.05"] == (entry["p_value"] < 0.05 and entry["delta"] != 0)
    assert comparison["bleu_detok"]["baseline_score"] == report["runs"]["baseline"]["main_eval"]["bleu_detok"]
    assert "bs:200" in report["significance"]["signatures"]["bleu_detok"]
    markdown = (pipeline["report"] / "report.md").read_text(encoding="utf-8")
    for key in ("bleu_vs_time", "bleu_vs_updates", "bleu_vs_params"):
        png = pipeline["report"] / report["plots"][key]
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert png.stat().st_size > 2000
        assert f"]({png.name})" in markdown
    assert "p-value" in markdown and "compound-split" in markdown


# --------------------------------------------------------------------------- missing files


def test_evaluate_names_a_missing_checkpoint(tmp_path):
    data = tmp_path / "data"
    (data / "raw").mkdir(parents=True)
    proc = subprocess.run(
        [str(BIN / "cpmt-evaluate"), "--data", str(data),
         "--checkpoint", str(tmp_path / "nope.pt"), "--out", str(tmp_path / "out")],
        capture_output=True, text=True, env=_env(),
    )
    assert proc.returncode == 2
    assert str(data / "bin" / "dict.en.txt") in proc.stderr  # the first missing input


@slow
def test_evaluate_names_each_missing_input(pipeline, tmp_path, capsys):
    data = tmp_path / "data"
    shutil.copytree(pipeline["data"], data)
    ckpt = pipeline["runs"]["baseline"] / "checkpoints" / "checkpoint_last.pt"
    args = ["--data", str(data), "--checkpoint", str(ckpt), "--out", str(tmp_path / "out")]

    missing_ckpt = tmp_path / "missing.pt"
    assert ev.main(["--data", str(data), "--checkpoint", str(missing_ckpt), "--out", str(tmp_path / "o")]) == 2
    assert str(missing_ckpt) in capsys.readouterr().err

    truncated = tmp_path / "truncated.pt"
    truncated.write_bytes(ckpt.read_bytes()[:1000])
    assert ev.main(["--data", str(data), "--checkpoint", str(truncated), "--out", str(tmp_path / "o")]) == 2
    assert str(truncated) in capsys.readouterr().err

    for victim in (data / "raw" / "test.de", data / "spm" / "spm.model", data / "bin" / "test.en-de.en.idx"):
        saved = victim.read_bytes()
        victim.unlink()
        assert ev.main(args) == 2
        assert str(victim) in capsys.readouterr().err
        victim.write_bytes(saved)

    with open(data / "raw" / "test.de", "a", encoding="utf-8") as handle:
        handle.write("Noch ein Satz.\n")
    assert ev.main(args) == 2
    err = capsys.readouterr().err
    assert str(data / "raw" / "test.en") in err and "line-aligned" in err

    # nothing was written for the failed runs
    assert not (tmp_path / "out" / "scores.json").exists()


@slow
def test_compare_runs_names_missing_files(pipeline, tmp_path, capsys):
    base = pipeline["runs"]["baseline"]
    broken = tmp_path / "contextpool"  # the run folder moved: its scores still score its checkpoints
    shutil.copytree(pipeline["runs"]["contextpool"], broken, ignore=shutil.ignore_patterns("*.pt"))
    common = ["--data", str(pipeline["data"]), "--out", str(tmp_path / "rep")]

    (broken / "train.log").unlink()
    assert rp.main(["--run", f"b={base}", "--run", f"c={broken}", *common]) == 2
    assert str(broken / "train.log") in capsys.readouterr().err

    shutil.copy(pipeline["runs"]["contextpool"] / "train.log", broken / "train.log")
    shutil.rmtree(broken / "eval" / "last")
    shutil.rmtree(broken / "eval" / "epoch1")
    assert rp.main(["--run", f"b={base}", "--run", f"c={broken}", *common]) == 2
    err = capsys.readouterr().err
    assert str(broken / "eval" / "avg" / "scores.json") in err and str(broken / "eval" / "last" / "scores.json") in err

    # with an 'avg' evaluation present, it is the main one (no fallback)
    shutil.copytree(pipeline["runs"]["contextpool"] / "eval" / "last", broken / "eval" / "avg")
    assert rp.main(["--run", f"b={base}", "--run", f"c={broken}", "--eval", "avg", *common]) == 0
    capsys.readouterr()
    made = json.loads((tmp_path / "rep" / "report.json").read_text(encoding="utf-8"))
    assert made["runs"]["c"]["main_eval_name"] == "avg" and made["runs"]["c"]["main_eval_note"] is None
    assert made["runs"]["b"]["main_eval_name"] == "last"

    (broken / "eval" / "avg" / "hyp.txt").unlink()
    assert rp.main(["--run", f"b={base}", "--run", f"c={broken}", *common]) == 2
    assert str(broken / "eval" / "avg" / "hyp.txt") in capsys.readouterr().err

    # a hyp.txt edited after scoring is caught
    shutil.copy(pipeline["runs"]["contextpool"] / "eval" / "last" / "hyp.txt", broken / "eval" / "avg" / "hyp.txt")
    with open(broken / "eval" / "avg" / "hyp.txt", "a", encoding="utf-8") as handle:
        handle.write("extra\n")
    assert rp.main(["--run", f"b={base}", "--run", f"c={broken}", *common]) == 2
    assert "sha256" in capsys.readouterr().err

    assert rp.main(["--run", f"b={base}", "--data", str(tmp_path / "nodata"), "--out", str(tmp_path / "r")]) == 2
    assert str(tmp_path / "nodata") in capsys.readouterr().err


# --------------------------------------------------------------------------- several test sets


@slow
def test_evaluate_scores_every_prepared_test_set_into_its_own_folder(pipeline):
    for _, eval_dir in pipeline["evals"]:
        main, year2 = _scores(eval_dir), _scores(eval_dir / "year2")
        assert main["subset"] == "test" and main["num_sentences"] == N_TEST
        assert year2["subset"] == "year2" and year2["num_sentences"] == N_YEAR2
        assert year2["files"]["reference"] == str((pipeline["data"] / "raw" / "year2.de").resolve())
        assert len(read_lines(eval_dir / "year2" / "hyp.txt")) == N_YEAR2
        refs = read_lines(pipeline["data"] / "raw" / "year2.de")
        hyps = read_lines(eval_dir / "year2" / "hyp.txt")
        assert year2["bleu_detok"]["score"] == pytest.approx(sacrebleu.corpus_bleu(hyps, [refs]).score, abs=1e-9)


def test_evaluate_names_a_test_set_that_is_not_prepared(tmp_path, capsys):
    (tmp_path / "bin").mkdir()
    (tmp_path / "bin" / "test.en-de.en.idx").write_text("")
    args = ["--data", str(tmp_path), "--checkpoint", str(tmp_path / "c.pt"), "--out", str(tmp_path / "o"),
            "--test-sets", "newstest2015"]
    assert ev.main(args) == 2
    err = capsys.readouterr().err
    assert "newstest2015 not prepared" in err and "--test-prefix NAME=PREFIX" in err


@slow
def test_report_has_one_table_and_test_per_test_set(pipeline, report):
    sets = report["test_sets"]
    assert list(sets) == ["test", "year2"]
    for name, eval_name in (("test", "last"), ("year2", "last/year2")):
        for run in ("baseline", "contextpool"):
            stored = _scores(pipeline["runs"][run] / "eval" / eval_name)
            assert sets[name]["scores"][run]["bleu_detok"] == pytest.approx(stored["bleu_detok"]["score"], abs=1e-9)
        comparison = sets[name]["comparisons"]["contextpool"]["bleu_detok"]
        assert comparison["delta"] == pytest.approx(
            sets[name]["scores"]["contextpool"]["bleu_detok"] - sets[name]["scores"]["baseline"]["bleu_detok"])
        assert 0 < comparison["p_value"] <= 1
    mean = report["mean_over_test_sets"]["contextpool"]["bleu_detok"]
    assert mean == pytest.approx((sets["test"]["scores"]["contextpool"]["bleu_detok"]
                                  + sets["year2"]["scores"]["contextpool"]["bleu_detok"]) / 2)
    markdown = (pipeline["report"] / "report.md").read_text(encoding="utf-8")
    assert "### test (" in markdown and "### year2 (" in markdown and "Mean over the 2 test sets" in markdown


@slow
def test_an_evaluation_on_another_reference_is_set_aside_not_fatal(pipeline, tmp_path, capsys):
    run = tmp_path / "contextpool"  # the run folder moved, under its name
    shutil.copytree(pipeline["runs"]["contextpool"], run, ignore=shutil.ignore_patterns("*.pt"))
    other = run / "eval" / "othercorpus"
    shutil.copytree(run / "eval" / "last", other)
    scores = json.loads((other / "scores.json").read_text(encoding="utf-8"))
    scores["files"]["reference"], scores["files"]["reference_sha256"] = "/elsewhere/test.de", "f" * 64
    (other / "scores.json").write_text(json.dumps(scores), encoding="utf-8")
    assert rp.main(["--run", f"b={pipeline['runs']['baseline']}", "--run", f"c={run}", "--eval", "last",
                    "--data", str(pipeline["data"]), "--out", str(tmp_path / "rep")]) == 0
    capsys.readouterr()
    markdown = (tmp_path / "rep" / "report.md").read_text(encoding="utf-8")
    assert "`othercorpus` was scored on `/elsewhere/test.de`, another reference" in markdown
    # the main evaluation on another reference is still refused: that table would mix references
    assert rp.main(["--run", f"b={pipeline['runs']['baseline']}", "--run", f"c={run}", "--eval", "othercorpus",
                    "--data", str(pipeline["data"]), "--out", str(tmp_path / "rep2")]) == 2
    assert "sha256 differs" in capsys.readouterr().err


# --------------------------------------------------------------------------- whose scores


@slow
def test_evaluate_refuses_another_runs_checkpoint_into_a_run_folder(pipeline, tmp_path, capsys):
    base = tmp_path / "runs" / "baseline"
    shutil.copytree(pipeline["runs"]["baseline"], base, ignore=shutil.ignore_patterns("*.pt"))
    before = (base / "eval" / "last" / "scores.json").read_bytes()
    theirs = pipeline["runs"]["contextpool"] / "checkpoints" / "checkpoint_last.pt"
    for force in ([], ["--force"]):
        assert ev.main(["--data", str(pipeline["data"]), "--checkpoint", str(theirs),
                        "--out", str(base / "eval" / "last"), "--cpu", *force]) == 2
        err = capsys.readouterr().err
        assert f"evaluation folder of the run {base}" in err and str(theirs) in err
        assert (base / "eval" / "last" / "scores.json").read_bytes() == before


@slow
def test_compare_refuses_scores_of_another_runs_checkpoint(pipeline, tmp_path, capsys):
    # scores written into the baseline's folder from ContextPool's checkpoint (cpmt-evaluate
    # before it checked): they must not be reported as the baseline's
    base = tmp_path / "baseline"
    shutil.copytree(pipeline["runs"]["baseline"], base, ignore=shutil.ignore_patterns("*.pt"))
    shutil.rmtree(base / "eval" / "last")
    shutil.copytree(pipeline["runs"]["contextpool"] / "eval" / "last", base / "eval" / "last")
    common = ["--data", str(pipeline["data"]), "--out", str(tmp_path / "rep")]
    assert rp.main(["--run", f"b={base}", "--run", f"c={pipeline['runs']['contextpool']}", *common]) == 2
    err = capsys.readouterr().err
    assert str(base / "eval" / "last" / "scores.json") in err and "not a checkpoint of run 'b'" in err

    # a test set scored from another checkpoint than its main evaluation is refused too
    shutil.rmtree(base)
    shutil.copytree(pipeline["runs"]["baseline"], base, ignore=shutil.ignore_patterns("*.pt"))
    year2 = base / "eval" / "last" / "year2" / "scores.json"
    scores = json.loads(year2.read_text(encoding="utf-8"))
    scores["checkpoint"]["path"] = scores["checkpoint"]["path"].replace("checkpoint_last.pt", "checkpoint1.pt")
    year2.write_text(json.dumps(scores), encoding="utf-8")
    assert rp.main(["--run", f"b={base}", "--run", f"c={pipeline['runs']['contextpool']}", *common]) == 2
    assert f"{year2}: scores" in capsys.readouterr().err


@slow
def test_compare_of_a_run_with_itself_is_p_one_and_not_significant(pipeline, tmp_path, capsys):
    same = tmp_path / "baseline"  # a copy of the baseline run: the same hypotheses
    shutil.copytree(pipeline["runs"]["baseline"], same, ignore=shutil.ignore_patterns("*.pt"))
    assert rp.main(["--run", f"b={pipeline['runs']['baseline']}", "--run", f"same={same}",
                    "--data", str(pipeline["data"]), "--out", str(tmp_path / "rep"),
                    "--bootstrap-samples", "100"]) == 0
    assert "ΔBLEU +0.00, p = 1.0000 (not significant at 0.05)" in capsys.readouterr().out
    markdown = (tmp_path / "rep" / "report.md").read_text(encoding="utf-8")
    assert "**same** vs b: BLEU +0.00 (p = 1.0000): not significant at 0.05." in markdown


def test_reports_accept_the_committed_artefacts_and_refuse_another_runs(tmp_path):
    """The study's committed artefact folders (cpmt-study export: the run's name, no checkpoints)
    pass the run-checkpoint check of cpmt-compare and cpmt-study report; the same folder under
    another run's name does not."""
    from contextpool_mt import study

    committed = ROOT / "docs" / "results" / "study-bf16" / "baseline_s1"
    shutil.copytree(committed, tmp_path / "ours" / "baseline_s1")
    assert list(study.collect(tmp_path / "ours", "avg")["baseline"]) == [1]
    run = rp.collect_run("baseline", tmp_path / "ours" / "baseline_s1", "avg")
    assert run["main_eval"]["bleu_detok"] == _scores(committed / "eval" / "avg")["bleu_detok"]["score"]

    shutil.copytree(committed, tmp_path / "mislabelled" / "contextpool_s1")
    with pytest.raises(study.StudyError, match="a checkpoint of another run than contextpool_s1"):
        study.collect(tmp_path / "mislabelled", "avg")
    with pytest.raises(rp.ReportError, match="not a checkpoint of run 'contextpool'"):
        rp.collect_run("contextpool", tmp_path / "mislabelled" / "contextpool_s1", "avg")


# --------------------------------------------------------------------------- data provenance


def _recorded_copy(pipeline, tmp_path, name="baseline"):
    """A copy of a run's last checkpoint with train.sh's provenance.json for the fixture's corpus."""
    from contextpool_mt import provenance

    ckpts = tmp_path / f"{name}_run" / "checkpoints"
    ckpts.mkdir(parents=True)
    shutil.copy(pipeline["runs"][name] / "checkpoints" / "checkpoint_last.pt", ckpts / "checkpoint_last.pt")
    provenance.record(pipeline["data"] / "bin", ckpts)
    return ckpts / "checkpoint_last.pt"


@slow
def test_evaluate_refuses_a_corpus_whose_dictionary_has_the_same_size(pipeline, tmp_path, capsys):
    ckpt = _recorded_copy(pipeline, tmp_path)
    other = tmp_path / "other"
    shutil.copytree(pipeline["data"], other)
    rewrite_dictionaries_as_other_pieces(other)
    assert ev.main(["--data", str(other), "--checkpoint", str(ckpt), "--out", str(tmp_path / "out"), "--cpu"]) == 2
    err = capsys.readouterr().err
    assert str(pipeline["data"] / "bin") in err and str(other / "bin") in err  # both sides named
    assert "source dictionary" in err and "target dictionary" in err
    assert not (tmp_path / "out" / "scores.json").exists()


@slow
def test_evaluate_refuses_another_sentencepiece_model_and_a_swapped_direction(pipeline, tmp_path, capsys):
    ckpt = _recorded_copy(pipeline, tmp_path)
    other = tmp_path / "other"
    shutil.copytree(pipeline["data"], other)
    spm.SentencePieceTrainer.train(
        input=f"{other}/raw/train.de", model_prefix=str(other / "spm" / "spm"), vocab_size=60,
        character_coverage=1.0, hard_vocab_limit=False, bos_id=-1, eos_id=-1, pad_id=-1, unk_id=0,
        num_threads=1, minloglevel=2,
    )
    assert ev.main(["--data", str(other), "--checkpoint", str(ckpt), "--out", str(tmp_path / "o1"), "--cpu"]) == 2
    err = capsys.readouterr().err
    assert "SentencePiece model" in err and "dictionary" not in err

    assert ev.main(["--data", str(pipeline["data"]), "--checkpoint", str(ckpt), "--out", str(tmp_path / "o2"),
                    "--src", "de", "--tgt", "en", "--cpu"]) == 2
    assert "source language en vs de" in capsys.readouterr().err


@slow
def test_checkpoints_without_provenance_still_score_with_a_note(pipeline, tmp_path, capsys):
    # the fixture trains with fairseq_cli.train directly: nothing recorded, as before provenance
    for _, eval_dir in pipeline["evals"]:
        recorded = _scores(eval_dir)["provenance"]
        assert recorded["checked"] is False and "cannot check" in recorded["note"]
        assert recorded["data"]["source_dict_sha256"] == sha256_of(pipeline["data"] / "bin" / "dict.en.txt")
    # what such a checkpoint does show, its embedding rows, is still checked against the dictionary
    bigger = tmp_path / "bigger"
    shutil.copytree(pipeline["data"], bigger)
    with open(bigger / "bin" / "dict.en.txt", "a", encoding="utf-8") as handle:
        handle.write("extra1 1\nextra2 1\n")
    ckpt = pipeline["runs"]["baseline"] / "checkpoints" / "checkpoint_last.pt"
    assert ev.main(["--data", str(bigger), "--checkpoint", str(ckpt), "--out", str(tmp_path / "out"), "--cpu"]) == 2
    assert "embedding rows" in capsys.readouterr().err


@slow
def test_train_sh_records_provenance_and_refuses_to_resume_on_other_data(pipeline, tmp_path):
    from fairseq_plugins.corpus_fingerprint import spm_content_sha256

    from contextpool_mt import provenance

    ckpts = tmp_path / "checkpoints"
    first = provenance.record(pipeline["data"] / "bin", ckpts)
    assert first == json.loads((ckpts / provenance.FILE).read_text(encoding="utf-8"))
    assert (first["source_lang"], first["target_lang"]) == ("en", "de")
    assert first["fingerprint_version"] == 2
    assert first["spm_model_content_sha256"] == spm_content_sha256(pipeline["data"] / "spm" / "spm.model")
    assert provenance.record(pipeline["data"] / "bin", ckpts) == first  # same data: resume is fine
    (ckpts / "checkpoint_last.pt").write_bytes(b"")  # a checkpoint trained on it
    other = tmp_path / "other"
    shutil.copytree(pipeline["data"], other)
    rewrite_dictionaries_as_other_pieces(other)
    with pytest.raises(provenance.ProvenanceError, match="resuming would mix two corpora"):
        provenance.record(other / "bin", ckpts)
    proc = subprocess.run([PY, "-m", "contextpool_mt.provenance", "record", "--data", str(other / "bin"),
                           "--out", str(ckpts)], capture_output=True, text=True, env=_env())
    assert proc.returncode == 2 and str(other / "bin") in proc.stderr


@slow
def test_averaging_refuses_checkpoints_trained_on_different_data(pipeline, tmp_path, capsys):
    from contextpool_mt import average as avg
    from contextpool_mt import provenance

    mine = _recorded_copy(pipeline, tmp_path)
    theirs_dir = tmp_path / "theirs" / "checkpoints"
    theirs_dir.mkdir(parents=True)
    shutil.copy(mine, theirs_dir / "checkpoint_last.pt")
    other = tmp_path / "other"
    shutil.copytree(pipeline["data"], other)
    rewrite_dictionaries_as_other_pieces(other)
    provenance.record(other / "bin", theirs_dir)
    with pytest.raises(avg.AverageError, match="trained on different data"):
        avg.average_checkpoints([str(mine), str(theirs_dir / "checkpoint_last.pt")], log=lambda *_: None)
    # of one corpus, the average carries the provenance, and evaluation finds it there
    averaged = avg.average_checkpoints([str(mine), str(mine)], log=lambda *_: None)
    assert averaged["extra_state"][provenance.EXTRA_STATE_KEY] == provenance.recorded_for(mine)
    assert provenance.recorded_for(tmp_path / "elsewhere.pt", averaged) == provenance.recorded_for(mine)


@slow
def test_report_and_pool_inspection_refuse_other_data(pipeline, tmp_path, capsys):
    from contextpool_mt import pools

    run = tmp_path / "contextpool"  # the run folder moved, under its name
    shutil.copytree(pipeline["runs"]["contextpool"], run, ignore=shutil.ignore_patterns("*.pt"))
    scores_path = run / "eval" / "last" / "scores.json"
    scores = json.loads(scores_path.read_text(encoding="utf-8"))
    scores["provenance"]["data"]["target_dict_sha256"] = "0" * 64  # scored on another corpus
    scores_path.write_text(json.dumps(scores), encoding="utf-8")
    assert rp.main(["--run", f"b={pipeline['runs']['baseline']}", "--run", f"c={run}",
                    "--data", str(pipeline["data"]), "--out", str(tmp_path / "rep")]) == 2
    assert "target dictionary" in capsys.readouterr().err

    ckpt = _recorded_copy(pipeline, tmp_path, "contextpool")
    with pytest.raises(pools.PoolInspectionError, match="target language de vs en"):
        pools.load(ckpt, pipeline["data"] / "bin", "de", "en")
    assert pools.load(ckpt, pipeline["data"] / "bin", "en", "de")[2]["num_updates"]  # its own corpus passes


@pytest.mark.parametrize("flags, beam, message", [
    (["--diverse-beam-groups", "2"], 4, "IndexError"),
    (["--sampling"], 4, "give --beam 1 with --sampling"),
    (["--nbest=3"], 4, "one hypothesis per sentence"),
])
def test_evaluate_refuses_generate_flags_of_known_fairseq_traps(tmp_path, capsys, flags, beam, message):
    args = ["--data", str(tmp_path), "--checkpoint", str(tmp_path / "c.pt"), "--out", str(tmp_path / "o"),
            "--beam", str(beam), "--", *flags]
    assert ev.main(args) == 2
    assert message in capsys.readouterr().err


@slow
def test_evaluate_refuses_sources_longer_than_the_positions(pipeline):
    from argparse import Namespace

    from contextpool_mt.checkpoints import model_option

    paths = {"split_prefix": pipeline["data"] / "bin" / "test.en-de", "src": "en"}
    state = {"cfg": {"model": Namespace(max_source_positions=3)}}
    assert model_option(state, "max_source_positions") == 3
    ev.check_source_lengths(paths, 1024)  # fits
    with pytest.raises(ev.EvaluationError, match=r"longer than the model's 3 positions \(first: line \d+"):
        ev.check_source_lengths(paths, model_option(state, "max_source_positions"))


# --------------------------------------------------------------------------- unit tests


def test_model_option_reads_every_form_of_the_model_config():
    from argparse import Namespace

    from omegaconf import OmegaConf

    from contextpool_mt.checkpoints import model_option

    # fairseq's load_checkpoint_to_cpu returns cfg as an omegaconf DictConfig, the weights-only
    # loader a dict; old checkpoints keep their options in a Namespace under "args"
    for state in ({"cfg": OmegaConf.create({"model": {"_name": "transformer_tiny"}})},
                  {"cfg": {"model": {"_name": "transformer_tiny"}}},
                  {"cfg": {"model": Namespace(_name="transformer_tiny")}},
                  {"cfg": None, "args": Namespace(arch="transformer_tiny")}):
        assert model_option(state, "arch", "_name") == "transformer_tiny", state
    assert model_option({"cfg": OmegaConf.create({"model": {}})}, "arch", "_name") is None


def test_compound_split_matches_the_perl_substitution():
    assert metrics.compound_split("rich-text format") == "rich ##AT##-##AT## text format"
    # non-overlapping left to right like Perl's s///g: the middle "b" is consumed
    assert metrics.compound_split("a-b-c") == "a ##AT##-##AT## b-c"
    assert metrics.compound_split("Ost-West-Konflikt") == "Ost ##AT##-##AT## West ##AT##-##AT## Konflikt"
    assert metrics.compound_split("a - b -- c") == "a - b -- c"
    assert metrics.compound_split("-x x-") == "-x x-"


def test_compound_split_tokenizer_is_moses_then_atat():
    splitter = metrics.CompoundSplitTokenizer("de")
    assert splitter("Die Langzeit-Studie kostet 3,50 €.") == "Die Langzeit ##AT##-##AT## Studie kostet 3,50 € ."
    # replace-unicode-punctuation turns “ into ", which tokenizer.perl escapes
    assert splitter("Das „Know-how“ & mehr") == "Das „ Know ##AT##-##AT## how &quot; &amp; mehr"


def test_tokenised_bleu_is_plain_bleu_on_tokens():
    hyps = ["Die Langzeit ##AT##-##AT## Studie ist gut .", "Ein Haus ."]
    refs = ["Die Langzeit ##AT##-##AT## Studie ist gut .", "Ein rotes Haus ."]
    got = metrics.score_bleu_tok_compound_split(hyps, refs)
    expected = BLEU(tokenize="none", smooth_method="none").corpus_score(hyps, [refs])
    assert got["score"] == pytest.approx(expected.score)
    assert got["sys_len"] == 10 and got["ref_len"] == 11


def test_detokenise_rejects_missing_or_extra_hypotheses(tmp_path):
    model = tmp_path / "m"
    text = tmp_path / "t.txt"
    text.write_text("".join(f"zeile {i} mit etwas text\n" for i in range(50)), encoding="utf-8")
    spm.SentencePieceTrainer.train(input=str(text), model_prefix=str(model), vocab_size=30,
                                   hard_vocab_limit=False, minloglevel=2, num_threads=1)
    processor = spm.SentencePieceProcessor(model_file=f"{model}.model")
    zeile, text_ = " ".join(processor.encode("zeile 1", out_type=str)), " ".join(processor.encode("text", out_type=str))
    hyps = {0: (-1.0, zeile), 2: (-1.0, text_)}
    with pytest.raises(ev.EvaluationError, match=r"2 hypotheses for 3 reference lines.*missing ids: \[1\]"):
        ev.detokenise(hyps, 3, Path(f"{model}.model"), tmp_path / "generate.log")
    with pytest.raises(ev.EvaluationError, match=r"unexpected ids: \[2\]"):
        ev.detokenise(hyps | {1: (0.0, text_)}, 2, Path(f"{model}.model"), tmp_path / "generate.log")
    assert ev.detokenise({1: (0.0, text_), 0: (0.0, zeile)}, 2, Path(f"{model}.model"), tmp_path) == [
        "zeile 1", "text"]


def test_read_lines_counts_like_wc():
    assert read_lines.__doc__
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "f"
        path.write_bytes("a\n\nb\u2028c\r\n".encode("utf-8"))
        assert read_lines(path) == ["a", "", "b\u2028c"]
        path.write_bytes(b"\n")
        assert read_lines(path) == [""]
        path.write_bytes(b"")
        assert read_lines(path) == []


def _fake_corpus(root):
    """DATA with raw/test.{en,de} (40 lines), spm/spm.model and the bin/ files evaluate checks for
    before generation, and an empty checkpoint file; returns (DATA, checkpoint, references)."""
    data = root / "data"
    for sub in ("raw", "spm", "bin"):
        (data / sub).mkdir(parents=True)
    pairs = _sentences(40, random.Random(3))
    refs = [d for _, d in pairs]
    (data / "raw" / "test.en").write_text("".join(e + "\n" for e, _ in pairs), encoding="utf-8")
    (data / "raw" / "test.de").write_text("".join(r + "\n" for r in refs), encoding="utf-8")
    spm.SentencePieceTrainer.train(
        input=str(data / "raw" / "test.de"), model_prefix=str(data / "spm" / "spm"), vocab_size=60,
        hard_vocab_limit=False, minloglevel=2, num_threads=1, bos_id=-1, eos_id=-1, pad_id=-1)
    for name in ("dict.en.txt", "dict.de.txt", "test.en-de.en.idx", "test.en-de.de.idx"):
        (data / "bin" / name).write_text("")  # only their presence is checked before generation
    ckpt = root / "checkpoint3.pt"
    ckpt.write_bytes(b"")
    return data, ckpt, refs


def _fake_generation(monkeypatch, data, ckpt, hyps, interrupt=None):
    """cpmt-evaluate with fairseq-generate replaced: its log has H- lines of HYPS (pieces, in
    fairseq's length order); with INTERRUPT, half of it is written, then INTERRUPT is raised (an
    exception) or the command fails (an exit status). The empty checkpoint cannot be loaded, so
    reading it is replaced too (reading real ones is tested above)."""
    processor = spm.SentencePieceProcessor(model_file=str(data / "spm" / "spm.model"))

    def fake_run_logged(cmd, log_path, env=None):
        assert cmd[1:3] == ["-m", "fairseq_cli.generate"] and cmd[3] == str(data / "bin")
        assert "--required-batch-size-multiple" in cmd and "--cpu" in cmd
        lines = []
        for i in reversed(range(len(hyps))):  # fairseq prints batches sorted by length
            pieces = " ".join(processor.encode(hyps[i], out_type=str))
            lines += [f"S-{i}\tx\n", f"H-{i}\t-0.5\t{pieces}\n", f"D-{i}\t-0.5\tx\n"]
        lines.append(f"2026-01-01 | INFO | fairseq_cli.generate | Translated {len(hyps)} sentences "
                     "(400 tokens) in 2.0s (20.00 sentences/s, 200.00 tokens/s)\n")
        if interrupt is not None:
            Path(log_path).write_text("".join(lines[: len(lines) // 2]), encoding="utf-8")
            if isinstance(interrupt, BaseException):
                raise interrupt
            return interrupt, 1.0
        Path(log_path).write_text("".join(lines), encoding="utf-8")
        return 0, 2.5

    monkeypatch.setattr(ev, "run_logged", fake_run_logged)
    monkeypatch.setattr(ev, "read_checkpoint", lambda args, paths: {
        "info": {"path": str(ckpt), "epoch": 3, "num_updates": 30},
        "provenance": {"checked": False, "note": "", "data": None}, "max_source_positions": None})


def test_evaluate_orders_detokenises_and_scores_generate_output(tmp_path, monkeypatch, capsys):
    """evaluate.py after fairseq-generate, on a fake generate.log with non-trivial BLEU."""
    data, ckpt, refs = _fake_corpus(tmp_path)
    # hypotheses: the reference with its last word dropped on every other line
    expected = [r if i % 2 else " ".join(r.split()[:-1]) or r for i, r in enumerate(refs)]
    _fake_generation(monkeypatch, data, ckpt, expected)
    out = tmp_path / "eval"
    assert ev.main(["--data", str(data), "--checkpoint", str(ckpt), "--out", str(out), "--cpu",
                    "--beam", "5", "--lenpen", "1.0"]) == 0
    printed = capsys.readouterr().out
    hyps = read_lines(out / "hyp.txt")
    assert hyps == expected
    scores = _scores(out)
    bleu = sacrebleu.corpus_bleu(expected, [refs]).score
    assert 20 < bleu < 100 and scores["bleu_detok"]["score"] == pytest.approx(bleu, abs=1e-9)
    assert scores["chrf"]["score"] == pytest.approx(sacrebleu.corpus_chrf(expected, [refs]).score, abs=1e-9)
    splitter = metrics.CompoundSplitTokenizer("de")
    tok = BLEU(tokenize="none", smooth_method="none").corpus_score(
        [splitter(h) for h in expected], [[splitter(r) for r in refs]])
    assert scores["bleu_tok_compound_split"]["score"] == pytest.approx(tok.score, abs=1e-9)
    assert scores["speed"]["sentences_per_second"] == 20.0 and scores["speed"]["seconds"] == 2.0
    assert scores["checkpoint"]["num_updates"] == 30 and scores["decoding"]["beam"] == 5
    assert scores["checkpoint"]["sha256"] == sha256_of(ckpt)  # what was scored, by content
    assert f"{bleu:6.2f}" in printed and "sentences/s" in printed
    assert scores["files"]["hyp_tok_sha256"] == sha256_of(out / "hyp.tok")
    assert scores["files"]["generate_log"] == str((out / "generate.log").resolve())
    assert sorted(p.name for p in tmp_path.iterdir()) == ["checkpoint3.pt", "data", "eval"]  # no staging left


def test_evaluate_replaces_earlier_scores_only_with_force(tmp_path, monkeypatch, capsys):
    data, ckpt, refs = _fake_corpus(tmp_path)
    out = tmp_path / "eval"
    args = ["--data", str(data), "--checkpoint", str(ckpt), "--out", str(out), "--cpu"]
    _fake_generation(monkeypatch, data, ckpt, refs)
    assert ev.main(args) == 0
    first = (out / "scores.json").read_bytes()
    capsys.readouterr()

    # the same checkpoint (by content), decoding and reference: nothing to do, the scores stay
    assert ev.main(args) == 0
    captured = capsys.readouterr()
    assert "nothing to do" in captured.err and "BLEU" in captured.out
    assert (out / "scores.json").read_bytes() == first

    # another checkpoint into the same folder: refused, naming the file and the way out
    ckpt.write_bytes(b"another checkpoint")
    worse = [" ".join(r.split()[:-1]) or r for r in refs]
    _fake_generation(monkeypatch, data, ckpt, worse)
    assert ev.main(args) == 2
    err = capsys.readouterr().err
    assert f"{out / 'scores.json'}: exists" in err and "--force" in err and len(err.splitlines()) == 1
    assert (out / "scores.json").read_bytes() == first

    assert ev.main(args + ["--force"]) == 0
    assert read_lines(out / "hyp.txt") == worse
    assert _scores(out)["checkpoint"]["sha256"] == sha256_of(ckpt)


@pytest.mark.parametrize("interrupt", [KeyboardInterrupt(), 1], ids=["interrupted", "failed"])
def test_an_interrupted_evaluation_leaves_the_previous_one_intact(tmp_path, monkeypatch, capsys, interrupt):
    data, ckpt, refs = _fake_corpus(tmp_path)
    out = tmp_path / "eval"
    args = ["--data", str(data), "--checkpoint", str(ckpt), "--out", str(out), "--cpu"]
    _fake_generation(monkeypatch, data, ckpt, refs)
    assert ev.main(args) == 0
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    assert set(before) == set(ev.OUTPUT_FILES)

    _fake_generation(monkeypatch, data, ckpt, refs[::-1], interrupt=interrupt)
    if isinstance(interrupt, BaseException):
        capsys.readouterr()
        assert ev.main(args + ["--force"]) == 130  # Ctrl-C: one line, no traceback
        err = capsys.readouterr().err
        assert "Traceback" not in err and err.splitlines()[-1] == (
            f"cpmt-evaluate: interrupted; {out} unchanged (the previous result, if any, is kept)")
        assert not (tmp_path / ".eval.incomplete").exists()  # its unpublished files removed
    else:
        assert ev.main(args + ["--force"]) == 2
        staged_log = tmp_path / ".eval.incomplete" / "generate.log"
        assert f"see {staged_log}" in capsys.readouterr().err and staged_log.is_file()
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before  # every file as it was
    # the next evaluation starts afresh and replaces the earlier one whole
    _fake_generation(monkeypatch, data, ckpt, refs[::-1])
    assert ev.main(args + ["--force"]) == 0
    assert read_lines(out / "hyp.txt") == refs[::-1]
    assert not (tmp_path / ".eval.incomplete").exists()


TRAIN_LOG = """\
2026-01-01 10:00:00 | INFO | fairseq_cli.train | Namespace(arch='contextpool_transformer_tiny', max_epoch=3)
2026-01-01 10:00:01 | INFO | fairseq_cli.train | num. shared model params: 141,576 (num. trained: 141,576)
2026-01-01 10:00:05 | INFO | train_inner | {"epoch": 1, "update": 0.5, "loss": "6.5", "wps": "600", "num_updates": "5", "train_wall": "4", "wall": "5"}
2026-01-01 10:00:10 | INFO | valid | {"epoch": 1, "valid_loss": "5.655", "valid_num_updates": "10"}
2026-01-01 10:00:10 | INFO | train | {"epoch": 1, "train_loss": "6.122", "train_wps": "500.0", "train_ups": "1", "train_wpb": "300", "train_num_updates": "10", "train_train_wall": "8", "train_wall": "10"}
2026-01-01 10:00:20 | INFO | valid | {"epoch": 2, "valid_loss": "5.053", "valid_num_updates": "20", "valid_best_loss": "5.053"}
2026-01-01 10:00:20 | INFO | train | {"epoch": 2, "train_loss": "5.4", "train_wps": "400", "train_ups": "1", "train_wpb": "200", "train_num_updates": "20", "train_train_wall": "5", "train_wall": "20"}
2026-01-01 10:00:27 | INFO | train_inner | {"epoch": 3, "update": 2.5, "loss": "5", "num_updates": "25", "train_wall": "3", "wall": "27"}
2026-01-01 10:01:00 | INFO | fairseq_cli.train | Namespace(arch='contextpool_transformer_tiny', max_epoch=3)
2026-01-01 10:01:01 | INFO | fairseq_cli.train | num. shared model params: 141,576 (num. trained: 141,576)
2026-01-01 10:01:02 | INFO | fairseq.trainer | Loaded checkpoint run/checkpoints/checkpoint_last.pt (epoch 3 @ 20 updates)
2026-01-01 10:01:10 | INFO | valid | {"epoch": 3, "valid_loss": "4.2", "valid_num_updates": "30"}
2026-01-01 10:01:10 | INFO | train | {"epoch": 3, "train_loss": "4.7", "train_wps": "1000", "train_ups": "1", "train_wpb": "250", "train_num_updates": "30", "train_train_wall": "2", "train_wall": "9"}
2026-01-01 10:01:10 | INFO | fairseq_cli.train | done training in 9.1 seconds
"""


def test_parse_train_log_with_a_resumed_run():
    log = fl.parse_train_log_lines(TRAIN_LOG.splitlines(True), source="snippet")
    assert (log["params"], log["params_trained"], log["arch"]) == (141576, 141576, "contextpool_transformer_tiny")
    assert log["num_processes"] == 2 and log["resumed_from"][0]["num_updates"] == 20
    assert [e["epoch"] for e in log["epochs"]] == [1, 2, 3]
    assert [e["updates_in_epoch"] for e in log["epochs"]] == [10, 10, 10]
    # epoch 3: 9 s in the second process + 7 s the first one spent after epoch 2 (wall 27 - 20)
    assert [e["wall_seconds"] for e in log["epochs"]] == [10, 10, 16]
    assert [e["cumulative_wall_seconds"] for e in log["epochs"]] == [10, 20, 36]
    assert [e["valid_loss"] for e in log["epochs"]] == [5.655, 5.053, 4.2]
    assert log["wall_seconds"] == 36 and log["train_wall_seconds"] == 15
    assert log["words"] == 300 * 10 + 200 * 10 + 250 * 10
    assert log["words_per_second"] == pytest.approx(7500 / 15)
    assert log["fairseq_wps_mean"] == pytest.approx(7500 / (3000 / 500 + 2000 / 400 + 2500 / 1000))
    assert log["num_updates"] == 30 and log["finished"] and log["done_training_seconds"] == 9.1


def test_parse_train_log_keeps_the_last_run_of_a_repeated_epoch():
    lines = TRAIN_LOG.splitlines(True)
    epoch2 = next(l for l in lines if '"epoch": 2, "train_loss"' in l)
    rerun = [
        "x | INFO | fairseq_cli.train | num. shared model params: 141,576 (num. trained: 141,576)\n",
        epoch2.replace('"train_wall": "20"', '"train_wall": "11"').replace('"5.4"', '"5.3"'),
    ]
    log = fl.parse_train_log_lines(lines + rerun, source="snippet")
    assert [e["epoch"] for e in log["epochs"]] == [1, 2]
    assert log["epochs"][1]["train_loss"] == 5.3
    assert [e["epoch"] for e in log["discarded_epoch_records"]] == [2, 3]
    assert log["num_updates"] == 20


def test_parse_train_log_errors_name_the_file(tmp_path):
    with pytest.raises(fl.LogParseError, match="no-such.log"):
        fl.parse_train_log(tmp_path / "no-such.log")
    path = tmp_path / "train.log"
    path.write_text("num. shared model params: 10 (num. trained: 10)\n")
    with pytest.raises(fl.LogParseError, match=str(path)):
        fl.parse_train_log(path)


def test_parse_generate_log():
    lines = [
        "S-1\t▁hello\n",
        "H-1\t-0.25\t▁hal lo\n",
        "INFO:fairseq_cli.generate:Translated 3,003 sentences (87,654 tokens) in 12.3s "
        "(244.15 sentences/s, 7126.34 tokens/s)\n",
        "H-0\t-1.5\t\n",
        "Generate test with beam=4: BLEU4 = 1.00, 1/1/1/1 (BP=1.000, ratio=1.0, syslen=3, reflen=3)\n",
    ]
    parsed = fl.parse_generate_log_lines(lines)
    assert parsed["hypotheses"] == {1: (-0.25, "▁hal lo"), 0: (-1.5, "")}
    assert parsed["speed"] == {"sentences": 3003, "tokens": 87654, "seconds": 12.3,
                               "sentences_per_second": 244.15, "tokens_per_second": 7126.34}
    assert set(parsed) == {"hypotheses", "speed"}  # fairseq's own BLEU line (on pieces) is not kept
    with pytest.raises(fl.LogParseError, match="H-1 appears twice"):
        fl.parse_generate_log_lines(lines + ["H-1\t-0.3\t▁x\n"], source="g.log")


def test_paired_bootstrap_p_values():
    refs = [f"das ist satz nummer {i} hier" for i in range(40)]
    good = list(refs)
    bad = [f"etwas ganz anderes {i}" for i in range(40)]
    splitter = metrics.CompoundSplitTokenizer("de")

    def rec(hyps):
        return {"hyps": hyps, "hyps_tok": [splitter(h) for h in hyps], "refs_tok": [splitter(r) for r in refs]}

    result = rp.significance({"base": None, "same": None, "better": None}, "base",
                             {"base": rec(bad), "same": rec(bad), "better": rec(good)}, refs, 200)
    same, better = result["comparisons"]["same"], result["comparisons"]["better"]
    for entry in list(same.values()) + list(better.values()):
        assert 0 < entry["p_value"] <= 1
    assert same["bleu_detok"]["delta"] == 0 and not same["bleu_detok"]["significant_at_0.05"]
    # identical systems: every resample is at least as extreme as the observed difference, 0
    assert all(entry["p_value"] == 1.0 and not entry["significant_at_0.05"] for entry in same.values())
    assert better["bleu_detok"]["delta"] > 50 and better["bleu_detok"]["gain_significant_at_0.05"]
    assert better["chrf"]["p_value"] < 0.05
    assert "bs:200" in result["signatures"]["bleu_detok"]


def test_progress_lines_of_fairseq_train_output():
    name = "cp"
    train = ('2026-01-01 10:00:10 | INFO | train | {"epoch": 3, "train_loss": "6.122", '
             '"train_wps": "500.5", "train_num_updates": "10"}\n')
    valid = '2026-01-01 10:00:10 | INFO | valid | {"epoch": 3, "valid_loss": "5.6", "valid_bleu": "12.34"}\n'
    assert fl.progress_line(name, train) == "cp: epoch 3 loss 6.122, 500.5 target words/s"
    assert fl.progress_line(name, valid) == "cp: epoch 3 valid BLEU 12.34"
    assert fl.progress_line(name, "train.sh: resuming from x\n") == "cp: train.sh: resuming from x"
    assert fl.progress_line(name, '2026 | INFO | train_inner | {"epoch": 1, "loss": "7"}\n') is None
    assert fl.progress_line(name, "INFO:fairseq_cli.preprocess: anything\n") is None
    proc = subprocess.run([PY, "-m", "contextpool_mt.fairseq_logs", "progress", name], input=train + "noise\n" + valid,
                          capture_output=True, text=True, env=_env())
    assert proc.returncode == 0 and proc.stdout.splitlines() == [
        "cp: epoch 3 loss 6.122, 500.5 target words/s", "cp: epoch 3 valid BLEU 12.34"]
