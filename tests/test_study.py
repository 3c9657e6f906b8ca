"""cpmt-study: export of a run's artefacts, and the report over configurations and seeds,
on synthetic runs whose every number is recomputed here."""

import json
import random
import shutil
import statistics
import subprocess
import sys
import os

import pytest
from sacrebleu.metrics import BLEU
from scipy import stats

from contextpool_mt import study
from contextpool_mt.metrics import score_all
from contextpool_mt.provenance import sha256_of
from contextpool_mt.text import write_lines

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
WORDS = "ein Mann mit einem Hut sitzt auf der Bank vor dem Haus und liest eine Zeitung".split()


def train_log(params, valid_bleus, seconds_per_epoch):
    lines = ["# 2026-01-01T10:00:00Z train.sh start",
             "# command: fairseq-train data --arch transformer_tiny --seed 1",
             f"2026-01-01 10:00:01 | INFO | fairseq_cli.train | num. shared model params: "
             f"{params:,} (num. trained: {params:,})"]
    for epoch, bleu in enumerate(valid_bleus, start=1):
        wall = epoch * seconds_per_epoch
        lines.append(f'2026-01-01 10:00:10 | INFO | valid | {{"epoch": {epoch}, "valid_loss": '
                     f'"{5 - epoch * 0.1:.3f}", "valid_bleu": "{bleu}", "valid_num_updates": "{epoch * 10}"}}')
        lines.append(f'2026-01-01 10:00:10 | INFO | train | {{"epoch": {epoch}, "train_loss": "4", '
                     f'"train_wps": "500", "train_ups": "1", "train_wpb": "300", "train_num_updates": '
                     f'"{epoch * 10}", "train_train_wall": "{seconds_per_epoch}", "train_wall": "{wall}"}}')
    return "\n".join(lines) + "\n"


def make_run(root, name, refs, ref_path, drop, valid_bleus, rng):
    """A run folder: train.log and eval/avg/{hyp.txt,hyp.tok,ref.tok,scores.json} as cpmt-evaluate
    writes them (hyps = refs minus words)."""
    run = root / "runs" / name
    (run / "eval" / "avg").mkdir(parents=True)
    (run / "train.log").write_text(train_log(1000 + len(name), valid_bleus, 60))
    hyps = [" ".join(w for w in r.split() if rng.random() > drop) or "ein" for r in refs]
    write_lines(run / "eval" / "avg" / "hyp.txt", hyps)
    scores = score_all(hyps, refs, "de")
    write_lines(run / "eval" / "avg" / "hyp.tok", scores["hyps_tok"])
    write_lines(run / "eval" / "avg" / "ref.tok", scores["refs_tok"])
    scores = {k: v for k, v in scores.items() if not k.endswith("_tok")}
    scores["files"] = {"hyp_sha256": sha256_of(run / "eval" / "avg" / "hyp.txt"),
                       "reference": str(ref_path), "reference_sha256": sha256_of(ref_path)}
    (run / "eval" / "avg" / "scores.json").write_text(json.dumps(scores))
    return run, hyps


@pytest.fixture(scope="module")
def studied(tmp_path_factory):
    root = tmp_path_factory.mktemp("study")
    rng = random.Random(0)
    refs = [" ".join(rng.choice(WORDS) for _ in range(rng.randint(4, 12))) for _ in range(60)]
    (root / "data" / "raw").mkdir(parents=True)
    ref_path = root / "data" / "raw" / "test.de"
    write_lines(ref_path, refs)
    hyps = {}
    curves = {"baseline": [10, 20, 25, 26], "contextpool": [12, 24, 27, 28]}
    drops = {"baseline": 0.3, "contextpool": 0.2}
    for config in ("baseline", "contextpool"):
        for seed in (1, 2, 3):
            name = f"{config}_s{seed}"
            curve = [b + seed * 0.1 for b in curves[config]]
            run, hyps[name] = make_run(root, name, refs, ref_path, drops[config], curve, rng)
            out = study.export_run(run, root / "artefacts" / name)
            assert (out / "command.txt").read_text().startswith("fairseq-train data")
            assert all((out / "eval" / "avg" / f).is_file() for f in study.EVAL_FILES)  # what cpmt-compare reads
    report = study.build_study_report(root / "artefacts", root / "data", "baseline", budget=3)
    return root, refs, hyps, report


def test_report_numbers_are_recomputed(studied):
    root, refs, hyps, report = studied
    rows = {row["config"]: row for row in report["configs"]}
    bleu = lambda h: BLEU().corpus_score(h, [refs]).score  # noqa: E731
    for config in ("baseline", "contextpool"):
        scores = [bleu(hyps[f"{config}_s{s}"]) for s in (1, 2, 3)]
        mean, sd = rows[config]["bleu_mean_sd"]
        assert mean == pytest.approx(statistics.mean(scores)) and sd == pytest.approx(statistics.stdev(scores))
    cp = rows["contextpool"]
    deltas = [bleu(hyps[f"contextpool_s{s}"]) - bleu(hyps[f"baseline_s{s}"]) for s in (1, 2, 3)]
    assert [cp["per_seed_bootstrap"][s]["delta"] for s in (1, 2, 3)] == pytest.approx(deltas)
    assert cp["pooled_bootstrap"]["delta"] == pytest.approx(statistics.mean(deltas))
    assert cp["seed_ttest"]["p_value"] == pytest.approx(stats.ttest_1samp(deltas, 0).pvalue)
    low, high = cp["pooled_bootstrap"]["ci95"]
    assert low < cp["pooled_bootstrap"]["delta"] < high
    # the baseline's valid BLEU at the budget (epoch 3): mean of 25.1, 25.2, 25.3
    assert report["baseline_valid_bleu_at_budget"] == pytest.approx(25.2)
    assert [cp["reach_baseline_valid_bleu"][s]["epoch"] for s in (1, 2, 3)] == [3, 3, 3]
    assert rows["baseline"]["reach_baseline_valid_bleu"][1] is None  # 25.1 < 25.2 within the budget
    assert rows["baseline"]["reach_baseline_valid_bleu"][3]["wall_seconds"] == 180
    assert rows["contextpool"]["training_seconds_mean_sd"][0] == 180  # budget: 3 epochs of 60 s


def test_report_files_and_cli(studied):
    root, _, _, _ = studied
    out = subprocess.run(
        [os.path.join(os.path.dirname(sys.executable), "cpmt-study"), "report", "--artefacts",
         str(root / "artefacts"), "--data", str(root / "data"), "--out", str(root / "report"),
         "--budget-epochs", "3"], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    text = (root / "report" / "study.md").read_text()
    assert "| contextpool | 1,2,3 |" in text and "t-test p =" in text
    assert (root / "report" / "bleu_vs_time.png").stat().st_size > 1000
    assert json.loads((root / "report" / "study.json").read_text())["budget_epochs"] == 3


def test_report_of_some_seeds_leaves_the_others_out_of_every_number(studied):
    """--seeds: a confirmation tests its fresh seeds only, not the seed that selected the change."""
    root, refs, hyps, _ = studied
    report = study.build_study_report(root / "artefacts", root / "data", "baseline", budget=3, seeds={2, 3})
    rows = {row["config"]: row for row in report["configs"]}
    bleu = lambda h: BLEU().corpus_score(h, [refs]).score  # noqa: E731
    deltas = [bleu(hyps[f"contextpool_s{s}"]) - bleu(hyps[f"baseline_s{s}"]) for s in (2, 3)]
    cp = rows["contextpool"]
    assert report["seeds"] == [2, 3] and cp["seeds"] == [2, 3] and sorted(cp["per_seed_bootstrap"]) == [2, 3]
    assert cp["pooled_bootstrap"]["delta"] == pytest.approx(statistics.mean(deltas))
    assert cp["seed_ttest"]["p_value"] == pytest.approx(stats.ttest_1samp(deltas, 0).pvalue)
    assert rows["baseline"]["bleu_mean_sd"][0] == pytest.approx(
        statistics.mean(bleu(hyps[f"baseline_s{s}"]) for s in (2, 3)))
    assert report["baseline_valid_bleu_at_budget"] == pytest.approx(25.25)  # 25.2 and 25.3 only
    assert "only the runs of seeds 2, 3." in study.render(report)
    with pytest.raises(study.StudyError, match="no run of the baseline configuration 'baseline' at seeds 7"):
        study.build_study_report(root / "artefacts", root / "data", "baseline", budget=3, seeds={7})


@pytest.mark.parametrize("seeds", ["", "2,3", "two"])
def test_report_refuses_seeds_that_are_not_whole_numbers(studied, seeds, capsys):
    root, _, _, _ = studied
    code = study.main(["report", "--artefacts", str(root / "artefacts"), "--data", str(root / "data"),
                       "--out", str(root / "unwritten"), "--seeds", seeds])
    assert code == 2 and not (root / "unwritten").exists()
    assert f"--seeds {seeds!r}: give whole numbers" in capsys.readouterr().err


def test_changed_hypotheses_are_refused(studied, tmp_path):
    root, _, _, _ = studied
    shutil.copytree(root / "artefacts", tmp_path / "artefacts")
    hyp = tmp_path / "artefacts" / "contextpool_s2" / "eval" / "avg" / "hyp.txt"
    hyp.write_text(hyp.read_text().replace("ein", "eine", 1))
    with pytest.raises(study.StudyError, match="contextpool_s2/eval/avg/hyp.txt: changed"):
        study.build_study_report(tmp_path / "artefacts", root / "data", "baseline", budget=3)


def test_precision_of_reads_the_command(tmp_path):
    command = tmp_path / "command.txt"
    assert study.precision_of(command) is None
    command.write_text("fairseq-train d --task translation_bf16 --bf16 --arch transformer\n")
    assert study.precision_of(command) == "bf16"
    command.write_text("fairseq-train d --task translation --fp16 --arch transformer\n")
    assert study.precision_of(command) == "fp16"
    command.write_text("fairseq-train d --task translation --arch transformer --save-dir fp16-runs\n")
    assert study.precision_of(command) == "fp32"


def test_report_names_each_runs_precision_and_warns_when_they_mix(studied, tmp_path):
    """Each run's precision is read from its own command.txt: one bf16 seed among fp32 runs is
    named and warned of, as the guide's rule is one precision to a table."""
    root, _, _, report = studied
    assert report["precisions"] == {"fp32": [f"{c}_s{s}" for c in ("baseline", "contextpool") for s in (1, 2, 3)]}
    assert "2 precisions" not in study.render(report)
    shutil.copytree(root / "artefacts", tmp_path / "artefacts")
    command = tmp_path / "artefacts" / "contextpool_s2" / "command.txt"
    command.write_text(command.read_text().replace("fairseq-train data", "fairseq-train data --task translation_bf16 --bf16"))
    mixed = study.build_study_report(tmp_path / "artefacts", root / "data", "baseline", budget=3)
    assert mixed["precisions"]["bf16"] == ["contextpool_s2"] and len(mixed["precisions"]["fp32"]) == 5
    text = study.render(mixed)
    assert "- bf16: contextpool_s2" in text and "**Warning: 2 precisions.**" in text


def test_report_names_machines_and_corpora_and_warns_when_a_comparison_mixes_them(studied, tmp_path):
    """Runs exported before train.sh recorded machines count as unrecorded, without a warning;
    a run resumed on another machine type, or trained on another vocabulary, is named and warned of."""
    from contextpool_mt import machine

    _, _, _, report = studied
    assert list(report["machines"]) == ["unrecorded"] and len(report["machines"]["unrecorded"]) == 6
    assert "Warning" not in study.render(report)

    rng = random.Random(1)
    refs = [" ".join(rng.choice(WORDS) for _ in range(rng.randint(4, 12))) for _ in range(40)]
    (tmp_path / "data" / "raw").mkdir(parents=True)
    ref_path = tmp_path / "data" / "raw" / "test.de"
    write_lines(ref_path, refs)
    zen3 = {"cpu": "AMD EPYC", "cpu_id": "AuthenticAMD family 25 model 1", "bf16_native": False,
            "cores": 2, "gpu": None, "torch": "2.13.0+cpu"}
    zen1 = dict(zen3, cpu_id="AuthenticAMD family 23 model 1")
    plan = {"baseline_s1": ([zen3], "a" * 64), "contextpool_s1": ([zen3, zen1], "b" * 64)}
    for name, (machines, dict_sha) in plan.items():
        run, _ = make_run(tmp_path, name, refs, ref_path, 0.2, [10, 20], rng)
        log = "".join(machine.PREFIX + json.dumps(m) + "\n" + train_log(1000, [10, 20], 60) for m in machines)
        (run / "train.log").write_text(log)
        scores_path = run / "eval" / "avg" / "scores.json"
        scores = json.loads(scores_path.read_text())
        scores["provenance"] = {"data": {"source_lang": "en", "target_lang": "de", "source_dict_sha256": dict_sha,
                                         "source_dict_size": 100, "spm_model_content_sha256": "c" * 64}}
        scores_path.write_text(json.dumps(scores))
        exported = study.export_run(run, tmp_path / "artefacts" / name)
        assert json.loads((exported / "epochs.json").read_text())["machines"] == machines
    mixed = study.build_study_report(tmp_path / "artefacts", tmp_path / "data", "baseline", budget=None)
    assert mixed["machines"] == {"AMD EPYC (AuthenticAMD family 23 model 1)": ["contextpool_s1"],
                                 "AMD EPYC (AuthenticAMD family 25 model 1)": ["baseline_s1", "contextpool_s1"]}
    assert mixed["corpora"] == {"en-de, dictionary aaaaaaaaaaaa (100 entries)": ["baseline_s1"],
                                "en-de, dictionary bbbbbbbbbbbb (100 entries)": ["contextpool_s1"]}
    text = study.render(mixed)
    assert "**Warning: 2 machine types.**" in text and "**Warning: 2 corpora.**" in text
    # an epochs.json exported before machines were recorded: the run counts as unrecorded
    epochs_path = tmp_path / "artefacts" / "baseline_s1" / "epochs.json"
    epochs = json.loads(epochs_path.read_text())
    del epochs["machines"]
    epochs_path.write_text(json.dumps(epochs))
    older = study.build_study_report(tmp_path / "artefacts", tmp_path / "data", "baseline", budget=None)
    assert older["machines"]["unrecorded"] == ["baseline_s1"]
    assert "**Warning: 2 machine types.**" in study.render(older)
