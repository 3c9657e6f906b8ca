"""Compare training runs: a table, paired bootstrap significance and plots.

Command line (``cpmt-compare`` runs :func:`main`)::

    cpmt-compare --run baseline=RUN_DIR --run contextpool=RUN_DIR2 \\
        [--run NAME=DIR ...] [--baseline baseline] --data DATA_DIR --out REPORT_DIR \\
        [--eval avg] [--bootstrap-samples 1000]

For every run it reads

* ``RUN_DIR/train.log`` (fairseq-train, ``--log-format json``): parameter count,
  training wall time, train_wall, words per second, updates, per-epoch times
  (see :mod:`contextpool_mt.fairseq_logs` for the exact definitions);
* ``RUN_DIR/eval/<name>/scores.json`` and ``hyp.txt`` for every evaluated
  checkpoint (written by cpmt-evaluate). The run's *main* evaluation is
  ``--eval`` (default ``avg``), or ``last`` when that one is missing.

The scores are cpmt-evaluate's, read from scores.json (never recomputed here; tests check
that they equal a recomputation). Before anything is reported, every hyp.txt, hyp.tok and
ref.tok is checked against the sha256 its scores.json recorded, every scores.json against the
run it lies in (it must score one of the run's checkpoints, and a test set beside it the same
one), against the reference and corpus in DATA_DIR and against the metric signatures of this
environment. Significance is
sacreBLEU's own paired bootstrap resampling (:func:`contextpool_mt.metrics.paired_bootstrap`)
of every run's hyp.txt (and hyp.tok against ref.tok, for the tokenised BLEU) against the
baseline's.

Writes REPORT_DIR/report.md, REPORT_DIR/report.json and three PNG plots.
"""

from __future__ import annotations

import argparse
import datetime
import json
import math
import os
import re
import sys
from pathlib import Path

from contextpool_mt import metrics
from contextpool_mt.corpus import binarised_folder_error
from contextpool_mt.plotting import pyplot
from contextpool_mt.text import read_lines
from contextpool_mt.fairseq_logs import LogParseError, parse_train_log
from contextpool_mt.checkpoints import scored_checkpoint_is_of_run
from contextpool_mt.provenance import ProvenanceError, differing, fingerprint_like, sha256_of, spm_model_of

SCHEMA = "contextpool-mt/report/v1"
ALPHA = 0.05
_EPOCH_EVAL = re.compile(r"^epoch(\d+)$")


class ReportError(RuntimeError):
    """A run directory or data directory lacking what the report needs (named in the message)."""


# --------------------------------------------------------------------------- reading runs


def parse_run_spec(spec: str):
    if "=" not in spec:
        raise ReportError(f"--run {spec!r}: expected NAME=RUN_DIR")
    name, path = spec.split("=", 1)
    name = name.strip()
    if not name or not re.match(r"^[\w.+-]+$", name):
        raise ReportError(f"--run {spec!r}: run names may use letters, digits and _ . + - only")
    return name, Path(path)


def load_scores(eval_dir: Path) -> dict:
    scores_path = eval_dir / "scores.json"
    hyp_path = eval_dir / "hyp.txt"
    if not scores_path.is_file():
        raise ReportError(f"{scores_path}: missing (run cpmt-evaluate --out {eval_dir})")
    if not hyp_path.is_file():
        raise ReportError(f"{hyp_path}: missing (scores.json without its hypotheses)")
    with open(scores_path, encoding="utf-8") as handle:
        try:
            scores = json.load(handle)
        except json.JSONDecodeError as err:
            raise ReportError(f"{scores_path}: not valid JSON ({err})") from err
    for key in ("bleu_detok", "chrf", "bleu_tok_compound_split", "speed", "checkpoint", "files"):
        if key not in scores:
            raise ReportError(f"{scores_path}: no '{key}' entry (not written by cpmt-evaluate?)")
    recorded = scores["files"].get("hyp_sha256")
    actual = sha256_of(hyp_path)
    if recorded and recorded != actual:
        raise ReportError(
            f"{hyp_path}: changed since {scores_path} was written (sha256 differs); "
            "re-run cpmt-evaluate"
        )
    return {"scores": scores, "scores_path": scores_path, "hyp_path": hyp_path, "hyp_sha256": actual}


def find_evals(run_dir: Path) -> dict:
    root = run_dir / "eval"
    if not root.is_dir():
        return {}
    return {  # not the hidden staging folders of evaluations under way (cpmt-evaluate's .NAME.incomplete)
        child.name: child
        for child in sorted(root.iterdir())
        if child.is_dir() and not child.name.startswith(".") and (child / "scores.json").is_file()
    }


def check_run_checkpoint(name: str, run_dir: Path, loaded: dict) -> None:
    """The checkpoint a run's scores.json scored must be one of the run's own
    (:func:`contextpool_mt.checkpoints.scored_checkpoint_is_of_run`): scores written into one run's
    folder from another run's checkpoint would be reported as the first run's."""
    scored = loaded["scores"]["checkpoint"]
    if not scored_checkpoint_is_of_run(scored, run_dir):
        eval_dir = loaded["scores_path"].parent
        raise ReportError(
            f"{loaded['scores_path']}: scores {scored.get('path')}, which is not a checkpoint of run "
            f"'{name}' ({run_dir / 'checkpoints'}): these are another run's scores. Score the run's "
            f"own checkpoint into it: cpmt-evaluate --checkpoint {run_dir / 'checkpoints'}/CKPT "
            f"--out {eval_dir} --force"
        )


def check_same_checkpoint(main: dict, other: dict) -> None:
    """A test set scored beside a main evaluation must be of the same checkpoint."""
    a, b = main["scores"]["checkpoint"], other["scores"]["checkpoint"]
    if a.get("path") != b.get("path") or (a.get("sha256") and b.get("sha256") and a["sha256"] != b["sha256"]):
        raise ReportError(
            f"{other['scores_path']}: scores {b.get('path')}, another checkpoint than "
            f"{main['scores_path']} ({a.get('path')}): one evaluation folder holds one checkpoint's "
            f"scores; re-run cpmt-evaluate --out {main['scores_path'].parent} --force"
        )


def training_time_at(train: dict, num_updates):
    """Cumulative training wall seconds when the checkpoint with num_updates was written."""
    if num_updates is None:
        return None, None
    points = [(0, 0.0)] + [(e["num_updates"], e["cumulative_wall_seconds"]) for e in train["epochs"]]
    for updates, seconds in points:
        if updates == num_updates:
            return seconds, "train.log epoch record with these num_updates"
    for (u0, s0), (u1, s1) in zip(points, points[1:]):
        if u0 < num_updates < u1:
            return s0 + (s1 - s0) * (num_updates - u0) / (u1 - u0), "interpolated between epoch records"
    return points[-1][1], "beyond the last epoch record: total training time"


def _eval_summary(name: str, loaded: dict, train: dict) -> dict:
    scores = loaded["scores"]
    ckpt = scores["checkpoint"]
    seconds, how = training_time_at(train, ckpt.get("num_updates"))
    return {
        "name": name,
        "scores_json": str(loaded["scores_path"].resolve()),
        "hyp": str(loaded["hyp_path"].resolve()),
        "hyp_sha256": loaded["hyp_sha256"],
        "checkpoint": ckpt.get("path"),
        "epoch": ckpt.get("epoch"),
        "num_updates": ckpt.get("num_updates"),
        "training_wall_seconds_at_checkpoint": seconds,
        "training_time_source": how,
        "bleu_detok": scores["bleu_detok"]["score"],
        "bleu_tok_compound_split": scores["bleu_tok_compound_split"]["score"],
        "chrf": scores["chrf"]["score"],
        "sentences_per_second": scores["speed"].get("sentences_per_second"),
        "tokens_per_second": scores["speed"].get("tokens_per_second"),
        "decode_device": scores["speed"].get("device"),
        "beam": scores.get("decoding", {}).get("beam"),
        "lenpen": scores.get("decoding", {}).get("lenpen"),
        "num_sentences": scores.get("num_sentences"),
        "reference": scores["files"].get("reference"),
        "reference_sha256": scores["files"].get("reference_sha256"),
        "subset": scores.get("subset"),
        "src": scores.get("src"),
        "tgt": scores.get("tgt"),
    }


def collect_run(name: str, run_dir: Path, wanted_eval: str) -> dict:
    if not run_dir.is_dir():
        raise ReportError(f"{run_dir}: run directory of '{name}' does not exist")
    log_path = run_dir / "train.log"
    if not log_path.is_file():
        raise ReportError(
            f"{log_path}: missing: run '{name}' needs the fairseq-train log "
            "(--log-format json) for parameters and training time"
        )
    try:
        train = parse_train_log(log_path)
    except LogParseError as err:
        raise ReportError(str(err)) from err
    if train["params"] is None:
        raise ReportError(f"{log_path}: no 'num. shared model params' line")

    eval_dirs = find_evals(run_dir)
    main_name, note = wanted_eval, None
    if main_name not in eval_dirs:
        if "last" in eval_dirs:
            note = f"{run_dir / 'eval' / wanted_eval / 'scores.json'} missing: using 'last'"
            main_name = "last"
        else:
            raise ReportError(
                f"{run_dir / 'eval' / wanted_eval / 'scores.json'}: missing, and no fallback "
                f"{run_dir / 'eval' / 'last' / 'scores.json'} either: run cpmt-evaluate "
                f"--out {run_dir / 'eval' / wanted_eval} (run '{name}')"
            )
    evals = {}
    loaded_main = None
    for eval_name, eval_dir in eval_dirs.items():
        loaded = load_scores(eval_dir)
        check_run_checkpoint(name, run_dir, loaded)
        evals[eval_name] = _eval_summary(eval_name, loaded, train)
        if eval_name == main_name:
            loaded_main = loaded
    return {
        "name": name,
        "run_dir": str(run_dir.resolve()),
        "train_log": str(log_path.resolve()),
        "training": train,
        "main_eval": evals[main_name],
        "main_eval_name": main_name,
        "main_eval_note": note,
        "evals": sorted(evals.values(), key=_eval_order),
        "_loaded_main": loaded_main,
    }


def _eval_order(summary: dict):
    match = _EPOCH_EVAL.match(summary["name"])
    return (0 if match else 1, int(match.group(1)) if match else 0, summary["num_updates"] or 0, summary["name"])


def curve_points(run: dict) -> list:
    """Per-checkpoint evaluations for the curves: epochN and last, one per num_updates."""
    chosen = {}
    for summary in run["evals"]:
        if summary.get("other_reference"):
            continue
        if not (_EPOCH_EVAL.match(summary["name"]) or summary["name"] == "last"):
            continue
        if summary["num_updates"] is None:
            continue
        if summary["num_updates"] in chosen and summary["name"] == "last":
            continue
        chosen[summary["num_updates"]] = summary
    return [chosen[k] for k in sorted(chosen)]


# --------------------------------------------------------------------------- checks and significance


def check_reference(run: dict, ref_path: Path, ref_sha: str) -> None:
    """The run's main evaluation must be scored on ``ref_path``; its other evaluations on another
    reference are marked ``other_reference`` and kept out of this table and its curves."""
    main = run["main_eval"]
    if main["reference_sha256"] and main["reference_sha256"] != ref_sha:
        raise ReportError(
            f"{main['scores_json']}: scored against {main['reference']}, which is not "
            f"the reference {ref_path} (sha256 differs): give the --data it was scored on"
        )
    for summary in run["evals"]:
        summary["other_reference"] = bool(summary["reference_sha256"] and summary["reference_sha256"] != ref_sha)


def _checked_lines(path: Path, recorded_sha, scores_path: Path, n: int, ref_path: Path) -> list:
    if not path.is_file():
        raise ReportError(f"{path}: missing (written by cpmt-evaluate beside {scores_path}): re-run it")
    if recorded_sha and sha256_of(path) != recorded_sha:
        raise ReportError(f"{path}: changed since {scores_path} was written (sha256 differs); "
                          "re-run cpmt-evaluate")
    lines = read_lines(path)
    if len(lines) != n:
        raise ReportError(f"{path}: {len(lines)} lines but the reference {ref_path} has {n}")
    return lines


def check_scored_data(loaded: dict, corpus) -> None:
    """The corpus a scores.json was scored on (its ``provenance.data`` fingerprint) must be the
    report's CORPUS, (bin_dir, src, tgt, spm_model), compared in the record's fingerprint version.
    Nothing to compare when either is unknown (old scores, or a --data without bin/)."""
    scored_on = (loaded["scores"].get("provenance") or {}).get("data")
    if not scored_on or corpus is None:
        return
    try:
        actual = fingerprint_like(scored_on, *corpus)
    except ProvenanceError:
        return  # a corpus without bin/ (scores only): nothing to pair with
    differences = differing(scored_on, actual)
    if differences:
        raise ReportError(
            f"{loaded['scores_path']}: its model was scored on {scored_on.get('data')}, not on "
            f"the --data {actual['data']} of this report ({differences}); compare runs of one corpus"
        )


def read_set(loaded: dict, refs: list, ref_path: Path, signatures: dict, corpus=None) -> dict:
    """One scored test set of one run, as cpmt-evaluate wrote it: its scores and the texts the
    bootstrap resamples (hyp.txt; hyp.tok and ref.tok for the tokenised BLEU), all checked;
    ``signatures``: this environment's, metrics.signatures(); ``corpus``: see check_scored_data."""
    stored = loaded["scores"]
    check_scored_data(loaded, corpus)
    for key, signature in signatures.items():
        if stored[key]["signature"] != signature:
            raise ReportError(f"{loaded['scores_path']}: {key} signature {stored[key]['signature']} "
                              f"differs from this environment's {signature}: re-run cpmt-evaluate")
    files, folder = stored["files"], loaded["scores_path"].parent
    hyps = _checked_lines(loaded["hyp_path"], files.get("hyp_sha256"), loaded["scores_path"], len(refs), ref_path)
    return {
        "hyps": hyps,
        "hyps_tok": _checked_lines(folder / "hyp.tok", files.get("hyp_tok_sha256"), loaded["scores_path"],
                                   len(refs), ref_path),
        "refs_tok": _checked_lines(folder / "ref.tok", files.get("ref_tok_sha256"), loaded["scores_path"],
                                   len(refs), ref_path),
        "scores": stored,
    }


def significance(runs: dict, baseline: str, texts: dict, refs: list, n_samples: int) -> dict:
    order = [baseline] + [name for name in runs if name != baseline]
    comparisons = {name: {} for name in order[1:]}
    signatures = {}
    if len(order) < 2:
        return {"comparisons": comparisons, "signatures": signatures}
    detok_sigs, detok = metrics.paired_bootstrap(
        [(name, texts[name]["hyps"]) for name in order], refs,
        {"BLEU": metrics.bleu_detok_metric(), "chrF": metrics.chrf_metric()}, n_samples,
    )
    tok_refs = texts[baseline]["refs_tok"]
    for name in order[1:]:
        if texts[name]["refs_tok"] != tok_refs:
            raise ReportError(f"ref.tok of '{name}' differs from the baseline's: both must come from "
                              "one reference and one tokeniser; re-run cpmt-evaluate")
    tok_sigs, tok = metrics.paired_bootstrap(
        [(name, texts[name]["hyps_tok"]) for name in order], tok_refs,
        {"BLEU": metrics.tok_bleu_metric()}, n_samples,
    )
    tables = [
        ("bleu_detok", "BLEU (detok sacreBLEU)", detok["BLEU"], detok_sigs["BLEU"]),
        ("chrf", "chrF2", detok[next(k for k in detok if k.startswith("chrF"))],
         detok_sigs[next(k for k in detok_sigs if k.startswith("chrF"))]),
        ("bleu_tok_compound_split", "BLEU (tokenised, compound-split)", tok["BLEU"], tok_sigs["BLEU"]),
    ]
    for key, label, results, signature in tables:
        signatures[key] = signature
        base = results[0]
        for index, name in enumerate(order[1:], start=1):
            res = results[index]
            delta = res.score - base.score
            # a zero difference has p = 1 (metrics.paired_bootstrap), never significant
            significant = bool(res.p_value is not None and res.p_value < ALPHA)
            comparisons[name][key] = {
                "metric": label,
                "baseline_score": base.score,
                "system_score": res.score,
                "delta": delta,
                "p_value": res.p_value,
                "significant_at_0.05": significant,
                "gain_significant_at_0.05": significant and delta > 0,
                "system_bootstrap_mean": res.mean,
                "system_ci95_halfwidth": res.ci,
                "baseline_bootstrap_mean": base.mean,
                "baseline_ci95_halfwidth": base.ci,
            }
    return {"comparisons": comparisons, "signatures": signatures}


# --------------------------------------------------------------------------- plots


def _time_unit(max_seconds: float):
    if max_seconds >= 2 * 3600:
        return 3600.0, "hours"
    if max_seconds >= 120:
        return 60.0, "minutes"
    return 1.0, "seconds"


def make_plots(report: dict, out_dir: Path) -> dict:
    plt = pyplot()

    runs = report["runs"]
    files = {}

    all_times = [
        p["training_wall_seconds_at_checkpoint"] or 0.0
        for run in runs.values() for p in run["curve"] + [run["main_eval"]]
    ]
    scale, unit = _time_unit(max(all_times + [0.0]))

    for key, xfield, xlabel, title in (
        ("bleu_vs_time", "training_wall_seconds_at_checkpoint", f"training wall time ({unit})",
         "BLEU vs training time"),
        ("bleu_vs_updates", "num_updates", "updates", "BLEU vs updates"),
    ):
        fig, ax = plt.subplots(figsize=(6.4, 4.4), dpi=100)
        plotted = False
        for name, run in runs.items():
            div = scale if key == "bleu_vs_time" else 1.0
            xs = [p[xfield] / div for p in run["curve"] if p[xfield] is not None]
            ys = [p["bleu_detok"] for p in run["curve"] if p[xfield] is not None]
            line = None
            if xs:
                (line,) = ax.plot(xs, ys, marker="o", label=f"{name} (per-checkpoint)")
                plotted = True
            main = run["main_eval"]
            if main[xfield] is not None:
                ax.plot(
                    [main[xfield] / div], [main["bleu_detok"]], marker="*", markersize=14,
                    linestyle="none", color=line.get_color() if line else None,
                    label=f"{name} ({run['main_eval_name']})",
                )
                plotted = True
        if not plotted:
            ax.text(0.5, 0.5, "no evaluated checkpoints", ha="center", va="center", transform=ax.transAxes)
        ax.set_xlabel(xlabel)
        ax.set_ylabel("BLEU (detok sacreBLEU)")
        ax.set_title(title)
        ax.grid(True, alpha=0.3)
        if plotted:
            ax.legend(fontsize=8)
        fig.tight_layout()
        path = out_dir / f"{key}.png"
        fig.savefig(path)
        plt.close(fig)
        files[key] = path.name

    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4.2), dpi=100)
    total_scale, total_unit = _time_unit(max([r["training"]["wall_seconds"] for r in runs.values()] + [0.0]))
    for name, run in runs.items():
        params = run["training"]["params"]
        bleu = run["main_eval"]["bleu_detok"]
        seconds = run["training"]["wall_seconds"]
        left.scatter([params], [bleu], s=60)
        left.annotate(name, (params, bleu), textcoords="offset points", xytext=(5, 5), fontsize=9)
        right.scatter([seconds / total_scale], [bleu], s=60)
        right.annotate(name, (seconds / total_scale, bleu), textcoords="offset points", xytext=(5, 5), fontsize=9)
    left.set_xlabel("parameters")
    left.set_ylabel("BLEU (detok sacreBLEU)")
    left.set_title("BLEU vs parameters")
    right.set_xlabel(f"total training wall time ({total_unit})")
    right.set_title("BLEU vs training cost")
    for ax in (left, right):
        ax.grid(True, alpha=0.3)
        ax.margins(0.2)
    fig.tight_layout()
    path = out_dir / "bleu_vs_params.png"
    fig.savefig(path)
    plt.close(fig)
    files["bleu_vs_params"] = path.name
    return files


# --------------------------------------------------------------------------- markdown


def _hms(seconds) -> str:
    if seconds is None:
        return "n/a"
    seconds = float(seconds)
    if seconds < 60:
        return f"{seconds:.0f} s"
    hours, rest = divmod(int(round(seconds)), 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}"


def _num(value, fmt="{:.2f}") -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    return fmt.format(value)


def test_set_tables(report: dict) -> list:
    """Markdown: one table per test set (scores, delta and bootstrap p against the baseline),
    then the mean over the sets."""
    base = report["baseline"]
    lines = ["", "## Per test set", "",
             "Each set has its own reference (checked by sha256) and its own paired bootstrap "
             "against the baseline; sets are never pooled except in the mean below.", ""]
    for name, entry in report["test_sets"].items():
        lines += [f"### {name} (`{entry['reference']}`, {entry['num_sentences']} sentences)", "",
                  "| run | BLEU | ΔBLEU | p | chrF2 | BLEU (tok, compound-split) |",
                  "|---|---:|---:|---:|---:|---:|"]
        for run_name, scores in entry["scores"].items():
            comparison = entry["comparisons"].get(run_name, {}).get("bleu_detok")
            delta = _num(comparison["delta"], "{:+.2f}") if comparison else "baseline"
            p_value = _num(comparison["p_value"], "{:.3f}") if comparison else ""
            lines.append(f"| {run_name} | {_num(scores['bleu_detok'])} | {delta} | {p_value} "
                         f"| {_num(scores['chrf'])} | {_num(scores['bleu_tok_compound_split'])} |")
        lines.append("")
    lines += [f"### Mean over the {len(report['test_sets'])} test sets", "",
              "| run | BLEU | ΔBLEU | chrF2 | BLEU (tok, compound-split) |", "|---|---:|---:|---:|---:|"]
    means = report["mean_over_test_sets"]
    for run_name, scores in means.items():
        delta = scores["bleu_detok"] - means[base]["bleu_detok"]
        lines.append(f"| {run_name} | {_num(scores['bleu_detok'])} | "
                     f"{'baseline' if run_name == base else _num(delta, '{:+.2f}')} | {_num(scores['chrf'])} "
                     f"| {_num(scores['bleu_tok_compound_split'])} |")
    return lines


def render_markdown(report: dict) -> str:
    runs = report["runs"]
    base = report["baseline"]
    lines = [
        "# Run comparison",
        "",
        f"Generated {report['created']} by `{report['command']}`.",
        "",
        f"Test set: `{report['data']['reference']}` ({report['data']['num_sentences']} sentences, "
        f"{report['data']['tgt']}). Each run is scored on its `{report['main_eval']}` checkpoint "
        "(`last` where that evaluation is missing). Baseline: "
        f"**{base}**.",
        "",
        "| run | checkpoint | BLEU (detok sacreBLEU) | BLEU (tok, compound-split) | chrF2 | params "
        "| training wall time | train_wall | updates | words/s (train) | inference sent/s |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for name, run in runs.items():
        m, t = run["main_eval"], run["training"]
        lines.append(
            f"| {name} | {run['main_eval_name']} (epoch {m['epoch']}, {m['num_updates']} upd) "
            f"| {_num(m['bleu_detok'])} | {_num(m['bleu_tok_compound_split'])} | {_num(m['chrf'])} "
            f"| {t['params']:,} | {_hms(t['wall_seconds'])} | {_hms(t['train_wall_seconds'])} "
            f"| {t['num_updates']:,} | {_num(t['words_per_second'], '{:,.0f}')} "
            f"| {_num(m['sentences_per_second'])} |"
        )
    notes = [f"- {name}: {run['main_eval_note']}" for name, run in runs.items() if run["main_eval_note"]]
    if notes:
        lines += ["", "Fallbacks:", *notes]
    others = [f"- {name}: `{e['name']}` was scored on `{e['reference']}`, another reference: not in this table"
              for name, run in runs.items() for e in run["evals"] if e.get("other_reference")]
    if others:
        lines += ["", *others]
    if len(report["test_sets"]) > 1:
        lines += test_set_tables(report)
    lines += [
        "",
        "training wall time: sum over epochs of fairseq's `wall` meter (incl. validation and "
        "checkpoint writing); train_wall: fairseq's time inside `train_step`; words/s: target "
        "tokens trained on / train_wall; inference sent/s: fairseq-generate's own count "
        f"(beam search only, device in report.json).",
        "",
        f"## Significance against {base}",
        "",
        f"Paired bootstrap resampling, sacreBLEU {report['significance']['sacrebleu_version']} "
        f"(`PairedTest(test_type='bs')`, {report['significance']['n_samples']} resamples, seed "
        f"{report['significance']['seed']}); a difference is significant when p < {ALPHA}.",
        "",
        "| run | metric | baseline | run | Δ | p-value | significant at 0.05 |",
        "|---|---|---:|---:|---:|---:|---|",
    ]
    for name, compared in report["significance"]["comparisons"].items():
        for entry in compared.values():
            verdict = "yes" if entry["significant_at_0.05"] else "no"
            if entry["significant_at_0.05"]:
                verdict += " (gain)" if entry["delta"] > 0 else " (loss)"
            lines.append(
                f"| {name} | {entry['metric']} | {_num(entry['baseline_score'])} "
                f"| {_num(entry['system_score'])} | {entry['delta']:+.2f} "
                f"| {_num(entry['p_value'], '{:.4f}')} | {verdict} |"
            )
    lines.append("")
    for name, compared in report["significance"]["comparisons"].items():
        b = compared.get("bleu_detok")
        if b:
            word = "a significant gain" if b["gain_significant_at_0.05"] else (
                "a significant loss" if b["significant_at_0.05"] else "not significant")
            lines.append(
                f"- **{name}** vs {base}: BLEU {b['delta']:+.2f} (p = {b['p_value']:.4f}): {word} at 0.05."
            )
    plots = report["plots"]
    lines += [
        "",
        "## Plots",
        "",
        f"![BLEU vs training time]({plots['bleu_vs_time']})",
        "",
        f"![BLEU vs updates]({plots['bleu_vs_updates']})",
        "",
        f"![BLEU vs parameters and training cost]({plots['bleu_vs_params']})",
        "",
        "## Evaluated checkpoints",
        "",
    ]
    for name, run in runs.items():
        lines += [
            f"### {name}",
            "",
            "| eval | epoch | updates | training time at checkpoint | BLEU (detok) | BLEU (tok) | chrF2 | sent/s |",
            "|---|---:|---:|---:|---:|---:|---:|---:|",
        ]
        for e in run["evals"]:
            lines.append(
                f"| {e['name']} | {e['epoch']} | {e['num_updates']} "
                f"| {_hms(e['training_wall_seconds_at_checkpoint'])} | {_num(e['bleu_detok'])} "
                f"| {_num(e['bleu_tok_compound_split'])} | {_num(e['chrf'])} "
                f"| {_num(e['sentences_per_second'])} |"
            )
        lines += [
            "",
            "| epoch | updates | wall time | train_wall | words/s | train loss | valid loss |",
            "|---:|---:|---:|---:|---:|---:|---:|",
        ]
        for e in run["training"]["epochs"]:
            lines.append(
                f"| {e['epoch']} | {e['num_updates']} | {_hms(e['wall_seconds'])} "
                f"| {_hms(e['train_wall_seconds'])} | {_num(e['words_per_second'], '{:,.0f}')} "
                f"| {_num(e['train_loss'], '{:.3f}')} | {_num(e['valid_loss'], '{:.3f}')} |"
            )
        lines.append("")
    lines += ["## How the numbers were computed", ""]
    for key, sig in report["metric_signatures"].items():
        description = metrics.DESCRIPTIONS[key]
        lines.append(f"- `{key}`: {description}. Signature `{sig}`.")
    for key, sig in report["significance"]["signatures"].items():
        lines.append(f"- paired bootstrap `{key}`: signature `{sig}`.")
    lines += ["", "Inputs:", ""]
    for name, run in runs.items():
        lines.append(f"- {name}: `{run['train_log']}`; main scores `{run['main_eval']['scores_json']}`, "
                     f"hypotheses `{run['main_eval']['hyp']}`")
    lines.append("")
    return "\n".join(lines)


# --------------------------------------------------------------------------- driver


def further_test_sets(runs: dict) -> list:
    """Test sets scored beside every run's main one (cpmt-evaluate's EVAL_DIR/NAME), sorted.

    A set that only some runs were scored on cannot be compared and is left out of the report.
    """
    common = None
    for run in runs.values():
        folder = Path(run["main_eval"]["scores_json"]).parent
        names = {child.name for child in folder.iterdir() if (child / "scores.json").is_file()}
        common = names if common is None else common & names
    return sorted(common or ())


def test_set_entry(name, ref_path, ref_sha, n, runs, texts, sig) -> dict:
    """Scores and significance of every run on one test set, for report.json and report.md."""
    return {
        "reference": str(Path(ref_path).resolve()),
        "reference_sha256": ref_sha,
        "num_sentences": n,
        "scores": {run_name: {key: texts[run_name]["scores"][key]["score"]
                              for key in ("bleu_detok", "chrf", "bleu_tok_compound_split")}
                   for run_name in runs},
        "comparisons": sig["comparisons"],
    }


def build_report(args) -> dict:
    if wrong_layout := binarised_folder_error(args.data):
        raise ReportError(wrong_layout)
    specs = [parse_run_spec(s) for s in args.run]
    names = [name for name, _ in specs]
    if len(set(names)) != len(names):
        raise ReportError(f"run names must be unique: {names}")
    baseline = args.baseline or names[0]
    if baseline not in names:
        raise ReportError(f"--baseline {baseline!r} is not one of the runs {names}")
    specs.sort(key=lambda spec: spec[0] != baseline)  # baseline first, others in given order

    runs = {name: collect_run(name, path, args.eval) for name, path in specs}

    base_main = runs[baseline]["main_eval"]
    subset, tgt = base_main["subset"] or "test", base_main["tgt"] or "de"
    data = Path(args.data)
    ref_path = data / "raw" / f"{subset}.{tgt}"
    if not data.is_dir():
        raise ReportError(f"{data}: no such data directory")
    if not ref_path.is_file():
        raise ReportError(f"{ref_path}: missing reference (raw detokenised {tgt} text)")
    refs = read_lines(ref_path)
    ref_sha = sha256_of(ref_path)

    src = base_main.get("src") or "en"
    corpus = (data / "bin", src, tgt, spm_model_of(data / "bin"))
    for run in runs.values():
        check_reference(run, ref_path, ref_sha)
    here = metrics.signatures()
    texts = {name: read_set(run["_loaded_main"], refs, ref_path, here, corpus)
             for name, run in runs.items()}
    sig = significance(runs, baseline, texts, refs, args.bootstrap_samples)
    test_sets = {subset: test_set_entry(subset, ref_path, ref_sha, len(refs), runs, texts, sig)}
    for name in further_test_sets(runs):
        set_ref = data / "raw" / f"{name}.{tgt}"
        if not set_ref.is_file():
            raise ReportError(f"{set_ref}: missing reference of test set '{name}' (scored in "
                              f"{runs[baseline]['main_eval']['scores_json']}'s folder)")
        set_refs, set_sha = read_lines(set_ref), sha256_of(set_ref)
        loaded = {}
        for run_name, run in runs.items():
            loaded[run_name] = load_scores(Path(run["main_eval"]["scores_json"]).parent / name)
            check_same_checkpoint(run["_loaded_main"], loaded[run_name])
            stored_sha = loaded[run_name]["scores"]["files"].get("reference_sha256")
            if stored_sha and stored_sha != set_sha:
                raise ReportError(f"{loaded[run_name]['scores_path']}: scored against another "
                                  f"reference than {set_ref} (sha256 differs)")
        set_texts = {run_name: read_set(loaded[run_name], set_refs, set_ref, here, corpus)
                     for run_name in runs}
        set_sig = significance(runs, baseline, set_texts, set_refs, args.bootstrap_samples)
        test_sets[name] = test_set_entry(name, set_ref, set_sha, len(set_refs), runs, set_texts, set_sig)
    import sacrebleu

    seed = os.environ.get("SACREBLEU_SEED", "12345")
    base_stored = runs[baseline]["_loaded_main"]["scores"]
    report = {
        "schema": SCHEMA,
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "command": " ".join(["cpmt-compare", *args.argv]),
        "baseline": baseline,
        "main_eval": args.eval,
        "data": {
            "dir": str(data.resolve()),
            "reference": str(ref_path.resolve()),
            "reference_sha256": ref_sha,
            "num_sentences": len(refs),
            "subset": subset,
            "tgt": tgt,
        },
        "metric_signatures": {
            key: base_stored[key]["signature"] for key in ("bleu_detok", "bleu_tok_compound_split", "chrf")
        },
        "runs": {},
        "significance": {
            "method": "sacrebleu.significance.PairedTest(test_type='bs'): paired bootstrap "
            "resampling of each run's main hyp.txt against the baseline's, same resampled "
            "sentence sets for both; p = (count of centred resampled |differences| > observed "
            "|difference| + 1) / (n_samples + 1), and 1 when the observed difference is 0",
            "sacrebleu_version": sacrebleu.__version__,
            "n_samples": args.bootstrap_samples,
            "seed": seed,
            "alpha": ALPHA,
            **sig,
        },
        "test_sets": test_sets,
        "mean_over_test_sets": {
            run_name: {key: sum(t["scores"][run_name][key] for t in test_sets.values()) / len(test_sets)
                       for key in ("bleu_detok", "chrf", "bleu_tok_compound_split")}
            for run_name in runs
        },
    }
    for name, run in runs.items():
        entry = {k: v for k, v in run.items() if not k.startswith("_")}
        entry["curve"] = curve_points(run)
        report["runs"][name] = entry
    return report


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="cpmt-compare",
        description="Compare fairseq runs (BLEU, chrF, params, training time, speed) with "
        "paired bootstrap significance against a baseline and plots.",
    )
    parser.add_argument("--run", action="append", required=True, metavar="NAME=RUN_DIR",
                        help="a run directory (train.log, eval/<name>/scores.json); repeat")
    parser.add_argument("--baseline", default=None, help="run name to test the others against (default: first --run)")
    parser.add_argument("--data", required=True, help="prepared corpus (its raw/SUBSET.TGT is the reference)")
    parser.add_argument("--out", required=True, help="REPORT_DIR for report.md, report.json and PNG plots")
    parser.add_argument("--eval", default="avg", help="main evaluation name under RUN_DIR/eval (default avg, falls back to last)")
    parser.add_argument("--bootstrap-samples", type=int, default=1000)
    return parser


def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = build_parser().parse_args(argv)
    args.argv = argv
    try:
        report = build_report(args)
        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        report["plots"] = make_plots(report, out)
        report["files"] = {
            "report_md": str((out / "report.md").resolve()),
            "report_json": str((out / "report.json").resolve()),
            **{k: str((out / v).resolve()) for k, v in report["plots"].items()},
        }
        markdown = render_markdown(report)
    except ReportError as err:
        print(f"cpmt-compare: error: {err}", file=sys.stderr)
        return 2
    with open(out / "report.json", "w", encoding="utf-8") as handle:
        json.dump(report, handle, indent=2, ensure_ascii=False)
        handle.write("\n")
    with open(out / "report.md", "w", encoding="utf-8") as handle:
        handle.write(markdown)
    for name, run in report["runs"].items():
        m = run["main_eval"]
        print(
            f"{name:>14}: BLEU {m['bleu_detok']:.2f} (detok) {m['bleu_tok_compound_split']:.2f} "
            f"(tok, compound-split)  chrF2 {m['chrf']:.2f}  params {run['training']['params']:,}  "
            f"train {_hms(run['training']['wall_seconds'])}"
        )
    for name, compared in report["significance"]["comparisons"].items():
        b = compared["bleu_detok"]
        print(f"{name} vs {report['baseline']}: ΔBLEU {b['delta']:+.2f}, p = {b['p_value']:.4f}"
              f" ({'significant' if b['significant_at_0.05'] else 'not significant'} at 0.05)")
    print(f"report: {out / 'report.md'}")
    return 0
