"""The quality-cost frontier of a study across depths (``cpmt-study frontier``, issue 23).

Reads exported study artefacts (``ARTEFACTS/NAME_sSEED/``: eval/avg/{scores.json,hyp.txt},
cost.json, command.txt; see contextpool_mt/study.py), optionally a benchmark JSON of
``benchmarks/benchmark.py --models ...`` (measured speed) and recounted costs, and writes
OUT/frontier.md, frontier.json and two figures:

* ``frontier_train.png``: test BLEU (mean over seeds, error bars = sample sd over seeds)
  against training GFLOPs per target token and against measured training words/s; one line
  per architecture through its depths (``--line``);
* ``frontier_decode.png``: the same against decoding GFLOPs per output token and measured
  generation sentences/s.

The report has, per depth, every point's mean ± sd and its comparisons (the seed t-test and
the pooled bootstrap of study.py) against the same-depth Transformer, against the Transformer
points just below and just above it in measured training words/s (training GFLOPs when no
benchmark is given), and against its own architecture's 3+3 point; BLEU by source-length
bucket for chosen points; and the smallest BLEU difference three seeds can detect
(:func:`min_detectable_difference`). Points or seeds that are missing are marked, not skipped
silently.
"""

from __future__ import annotations

import json
import shlex
import statistics
from pathlib import Path

from contextpool_mt.plotting import pyplot
from contextpool_mt.provenance import sha256_of
from contextpool_mt.study import (
    StudyError,
    _mean_sd,
    _pm,
    collect,
    pooled_bootstrap,
    read_configurations,
    seed_ttest,
)
from contextpool_mt.text import read_lines

SCHEMA = "contextpool-mt/frontier/v1"
# label=configurations from the smallest depth to the largest; the first is the reference line
LINES = {
    "Transformer": ["baseline_1x1", "baseline_2x2", "baseline_enc2", "baseline"],
    "ContextPool": ["contextpool_1x1", "contextpool_2x2", "contextpool_enc2", "contextpool"],
    "LightConv": ["lightconv_1x1", "lightconv_2x2", "lightconv"],
    "DynamicConv": ["dynamicconv_1x1", "dynamicconv_2x2", "dynamicconv"],
}
BUCKET_EDGES = (10, 15, 20)
EXPECTED_SEEDS = 3
ALPHA, POWER = 0.05, 0.8


# --------------------------------------------------------------------------- power


def min_detectable_difference(sd: float, n: int, alpha: float = ALPHA, power: float = POWER) -> float:
    """The smallest true mean difference a two-sided one-sample t-test on ``n`` per-seed
    differences (the seed t-test: paired seeds) detects with probability ``power`` at level
    ``alpha``, when the per-seed differences have standard deviation ``sd``.

    Solves P(|T| > t_crit) = power for T noncentral t with n - 1 degrees of freedom and
    noncentrality delta sqrt(n) / sd (both tails counted).
    """
    from scipy import optimize, stats

    if n < 2 or sd <= 0:
        raise ValueError("needs n >= 2 seeds and a positive sd")
    df = n - 1
    t_crit = stats.t.ppf(1 - alpha / 2, df)

    def shortfall(ncp):
        return stats.nct.sf(t_crit, df, ncp) + stats.nct.cdf(-t_crit, df, ncp) - power

    high = 1.0
    while shortfall(high) < 0:  # bracket the root by doubling (nct is NaN far out)
        high *= 2
    ncp = optimize.brentq(shortfall, 0.0, high)
    return ncp * sd / n ** 0.5


# --------------------------------------------------------------------------- points


def layers_of(command_file: Path, fallback_options) -> tuple:
    """(encoder layers, decoder layers) of a run: the last values on its fairseq-train line
    (argparse's last wins), else in ``fallback_options`` (the configuration table's); a value
    that is not a number is a StudyError naming where it was read."""
    sources = [(list(fallback_options), "the configuration table")]
    if command_file.is_file():
        lines = [line for line in read_lines(command_file) if line.strip()]
        if lines:
            sources.append((shlex.split(lines[-1]), str(command_file)))
    found = {}
    for tokens, source in sources:
        for option, value in zip(tokens, tokens[1:]):
            if option in ("--encoder-layers", "--decoder-layers"):
                try:
                    found[option] = int(value)
                except ValueError:
                    raise StudyError(f"{source}: {option} {value!r} is not a number of "
                                     "layers") from None
    if len(found) < 2:
        return None
    return found["--encoder-layers"], found["--decoder-layers"]


def read_benchmark(path: Path, precision: str | None, runs_precisions=()):
    """{model: {wps, wps_ratio, sentences_per_s, speed_ratio}} of a benchmark JSON's part
    ``models`` in ``precision`` (default: the runs' one precision if the JSON has it, else its
    first), and what was read."""
    if not path.is_file():
        raise StudyError(f"{path}: no such benchmark JSON")
    data = json.loads(path.read_text(encoding="utf-8"))
    models = data.get("models")
    if not models:
        raise StudyError(f"{path}: no 'models' part (run benchmarks/benchmark.py --frontier)")
    have = list(dict.fromkeys(r["precision"] for r in models["train"]))
    if precision is None:
        precision = runs_precisions[0] if list(runs_precisions)[:1] and runs_precisions[0] in have else have[0]
    if precision not in have:
        raise StudyError(f"{path}: no {precision} rows (it has {', '.join(have)}): --benchmark-precision")
    speed = {}
    for row in models["train"]:
        if row["precision"] == precision:
            speed[row["model"]] = {"wps": row["wps"], "wps_ratio": row["wps_ratio"],
                                   "peak_bytes": row["peak_bytes"], "memory_ratio": row["memory_ratio"]}
    for row in models["generate"]:
        if row["precision"] == precision and row["model"] in speed:
            speed[row["model"]].update(sentences_per_s=row["sentences_per_s"], speed_ratio=row["speed_ratio"])
    return speed, {"file": str(path), "precision": precision, "reference": models["reference"],
                   "machine": data.get("machine", {}), "date": data.get("date")}


def point_cost(config: str, runs: dict, costs_dir: Path | None) -> dict:
    """A configuration's FLOPs per token: COSTS_DIR/CONFIG.json if given, else the mean over
    its runs' cost.json; ``method`` says how decoding was counted."""
    if costs_dir is not None and (costs_dir / f"{config}.json").is_file():
        costs = [json.loads((costs_dir / f"{config}.json").read_text(encoding="utf-8"))]
        source = str(costs_dir / f"{config}.json")
    else:
        costs = [r["cost"] for r in runs.values() if r["cost"]]
        source = "each run's cost.json"
    if not costs:
        return {"train_gflops": None, "decode_gflops": None, "source": None, "method": None}
    methods = {c.get("decode_method", "own hypotheses (before forced lengths)") for c in costs}
    return {
        "train_gflops": statistics.mean(c["train_flops_per_target_token"] for c in costs) / 1e9,
        "decode_gflops": statistics.mean(c["decode_flops_per_output_token"] for c in costs) / 1e9,
        "source": source,
        "method": "; ".join(sorted(methods)),
    }


def build_points(configs: dict, artefacts: Path, lines: dict, table: dict,
                 costs_dir: Path | None) -> list:
    points = []
    for line, names in lines.items():
        for name in names:
            runs = configs.get(name, {})
            seeds = sorted(runs)
            own = table[name][1] if name in table else []
            command = artefacts / f"{name}_s{seeds[0]}" / "command.txt" if seeds else Path("/nonexistent")
            layers = layers_of(command, table.get("common", (None, []))[1] + own)
            bleu = [runs[s]["scores"]["bleu_detok"]["score"] for s in seeds]
            chrf = [runs[s]["scores"]["chrf"]["score"] for s in seeds]
            precisions = sorted({runs[s]["precision"] for s in seeds} - {"unrecorded"})
            points.append({
                "config": name, "line": line, "layers": layers,
                "depth": f"{layers[0]}+{layers[1]}" if layers else "?",
                "seeds": seeds, "bleu": bleu, "bleu_mean_sd": _mean_sd(bleu),
                "chrf_mean_sd": _mean_sd(chrf),
                "precision": "+".join(precisions) or None,  # "bf16+fp32": seeds disagree
                "params": runs[seeds[0]]["params"] if seeds else None,
                "cost": point_cost(name, runs, costs_dir) if seeds else None,
            })
    return points


# --------------------------------------------------------------------------- comparisons


def compare(a: dict, b: dict, configs: dict, refs: list, n_samples: int) -> dict:
    """Point ``a`` minus point ``b``: the seed t-test over their common seeds and the pooled
    bootstrap (study.py), or why not."""
    common = [s for s in a["seeds"] if s in b["seeds"]]
    result = {"against": b["config"], "seeds": common}
    if not common:
        return dict(result, note="no common seed")
    runs_a, runs_b = configs[a["config"]], configs[b["config"]]
    deltas = [runs_a[s]["scores"]["bleu_detok"]["score"] - runs_b[s]["scores"]["bleu_detok"]["score"]
              for s in common]
    result["seed_ttest"] = seed_ttest(deltas)
    result["per_seed_delta"] = dict(zip(common, deltas))
    result["pooled_bootstrap"] = pooled_bootstrap(
        [(runs_b[s]["hyps"], runs_a[s]["hyps"]) for s in common], refs, n_samples=n_samples)
    return result


def neighbours(point: dict, reference_points: list, axis) -> tuple:
    """The reference points just below and just above ``point`` on ``axis`` (a function of a
    point, None where unknown): the nearest with a smaller value and the nearest with a larger
    or equal one."""
    x = axis(point)
    if x is None:
        return None, None
    known = [(axis(p), p) for p in reference_points if p is not point and axis(p) is not None]
    below = max((v for v in known if v[0] < x), key=lambda v: v[0], default=(None, None))[1]
    above = min((v for v in known if v[0] >= x), key=lambda v: v[0], default=(None, None))[1]
    return below, above


def length_buckets(sources: list, edges) -> list:
    """[(label, [sentence indices])] by source length in words: 1-e1, e1+1-e2, ..., > last."""
    bounds = [0, *edges, None]
    buckets = []
    for low, high in zip(bounds, bounds[1:]):
        label = f"{low + 1}-{high}" if high is not None else f"> {low}"
        idx = [i for i, s in enumerate(sources)
               if len(s.split()) > low and (high is None or len(s.split()) <= high)]
        buckets.append((label, idx))
    return buckets


def bucket_scores(point: dict, against, configs: dict, refs: list, buckets, n_samples: int) -> list:
    from contextpool_mt.metrics import bleu_detok_metric

    metric = bleu_detok_metric()
    runs = configs[point["config"]]
    rows = []
    for label, idx in buckets:
        row = {"bucket": label, "sentences": len(idx)}
        if idx:
            sub_refs = [refs[i] for i in idx]
            bleu = [metric.corpus_score([runs[s]["hyps"][i] for i in idx], [sub_refs]).score
                    for s in point["seeds"]]
            row["bleu_mean_sd"] = _mean_sd(bleu)
            if against is not None:
                base = configs[against["config"]]
                common = [s for s in point["seeds"] if s in against["seeds"]]
                if common:
                    row["against"], row["common_seeds"] = against["config"], common
                    row["pooled_bootstrap"] = pooled_bootstrap(
                        [([base[s]["hyps"][i] for i in idx], [runs[s]["hyps"][i] for i in idx])
                         for s in common], sub_refs, n_samples=n_samples)
        rows.append(row)
    return rows


# --------------------------------------------------------------------------- report


def build_frontier(artefacts: Path, reference: Path, source: Path | None = None,
                   benchmark: Path | None = None, benchmark_precision: str | None = None,
                   costs_dir: Path | None = None, lines: dict | None = None,
                   bucket_points=None, edges=BUCKET_EDGES, mde_pair=("contextpool", "baseline"),
                   n_samples: int = 1000, eval_name: str = "avg") -> dict:
    lines = lines or LINES
    reference_line = next(iter(lines))
    if not reference.is_file():
        raise StudyError(f"{reference}: missing reference (--reference or DATA/raw/test.de)")
    refs = read_lines(reference)
    ref_sha = sha256_of(reference)
    configs = collect(artefacts, eval_name)
    for runs in configs.values():
        for run in runs.values():
            if run["scores"]["files"].get("reference_sha256") != ref_sha:
                raise StudyError(f"{run['folder']}: scored against another reference than {reference}")
    table = read_configurations()
    points = build_points(configs, artefacts, lines, table, costs_dir)
    by_config = {p["config"]: p for p in points}
    present = [p for p in points if p["seeds"]]
    precisions = sorted({x for p in present if p["precision"] for x in p["precision"].split("+")})
    speed, bench_info = ({}, None)
    if benchmark:
        speed, bench_info = read_benchmark(benchmark, benchmark_precision, precisions)
        if len(precisions) == 1 and bench_info["precision"] != precisions[0]:
            bench_info["note"] = (f"measured in {bench_info['precision']}, the runs trained in "
                                  f"{precisions[0]}")
    for point in points:
        point["speed"] = speed.get(point["config"])
    transformer = [p for p in present if p["line"] == reference_line]
    if bench_info:
        axis_name = "training words/s (benchmark)"
        axis = lambda p: p["speed"]["wps"] if p["speed"] else None  # noqa: E731
    else:
        # without a measured speed, the nearest cheaper / dearer Transformer in training FLOPs:
        # faster means cheaper, so the axis is minus the cost
        axis_name = "training GFLOPs per token (no benchmark given)"
        axis = lambda p: -p["cost"]["train_gflops"] if p["cost"] and p["cost"]["train_gflops"] else None  # noqa: E731
    for point in present:
        comparisons = {}
        if point["line"] != reference_line:
            same = [t for t in transformer if t["layers"] == point["layers"]]
            if same:
                comparisons["same_depth"] = compare(point, same[0], configs, refs, n_samples)
            below, above = neighbours(point, transformer, axis)
            # below in speed = a slower (dearer) Transformer; above = a faster (cheaper) one
            if below is not None:
                comparisons["slower_transformer"] = compare(point, below, configs, refs, n_samples)
            if above is not None:
                comparisons["faster_transformer"] = compare(point, above, configs, refs, n_samples)
        top = [p for p in present if p["line"] == point["line"] and p["layers"] == (3, 3)]
        if top and top[0] is not point:
            comparisons["own_3x3"] = compare(point, top[0], configs, refs, n_samples)
        point["comparisons"] = comparisons

    mde = {"assumptions": f"two-sided one-sample t-test on per-seed BLEU differences (paired "
                          f"seeds), alpha {ALPHA}, power {POWER}, {EXPECTED_SEEDS} seeds; sd of the "
                          f"per-seed differences of {mde_pair[0]} - {mde_pair[1]}"}
    a, b = (by_config.get(c) or {"config": c, "seeds": []} for c in mde_pair)
    if a["seeds"] and b["seeds"] and len([s for s in a["seeds"] if s in b["seeds"]]) >= 2:
        pair = compare(a, b, configs, refs, n_samples)
        sd = pair["seed_ttest"].get("sd")
        mde.update(pair_seeds=pair["seeds"], sd=sd,
                   bleu=min_detectable_difference(sd, EXPECTED_SEEDS) if sd else None,
                   bootstrap_ci95=pair["pooled_bootstrap"]["ci95"],
                   bootstrap_delta=pair["pooled_bootstrap"]["delta"])
    else:
        mde.update(bleu=None, note=f"{mde_pair[0]} and {mde_pair[1]} share fewer than 2 seeds")

    buckets = None
    if source is not None:
        sources = read_lines(source)
        if len(sources) != len(refs):
            raise StudyError(f"{source}: {len(sources)} lines, the reference {reference} has {len(refs)}")
        groups = length_buckets(sources, edges)
        wanted = bucket_points or [p["config"] for p in present if p["layers"] in ((1, 1), (3, 3))]
        buckets = []
        for name in wanted:
            point = by_config.get(name)
            if point is None or not point["seeds"]:
                buckets.append({"config": name, "missing": True})
                continue
            same = [t for t in transformer if t["layers"] == point["layers"] and t is not point]
            buckets.append({"config": name, "depth": point["depth"], "seeds": point["seeds"],
                            "rows": bucket_scores(point, same[0] if same else None, configs, refs,
                                                  groups, n_samples)})
    return {
        "schema": SCHEMA, "artefacts": str(artefacts), "reference": str(reference),
        "reference_sha256": ref_sha, "source": str(source) if source else None,
        "lines": lines, "reference_line": reference_line, "precisions": precisions,
        "benchmark": bench_info, "neighbour_axis": axis_name, "points": points,
        "min_detectable_difference": mde, "length_buckets": buckets,
        "bucket_edges": list(edges), "n_samples": n_samples,
    }


# --------------------------------------------------------------------------- rendering


def _comparison(c) -> str:
    if not c:
        return ""
    if "pooled_bootstrap" not in c:
        return f"vs {c['against']}: {c.get('note', 'n/a')}"
    pb, tt = c["pooled_bootstrap"], c["seed_ttest"]
    tp = "n/a" if tt.get("p_value") is None else f"{tt['p_value']:.2f}"
    seeds = f"; {len(c['seeds'])} seed" + ("s" if len(c["seeds"]) > 1 else "")
    return (f"{pb['delta']:+.2f} vs {c['against']} (t p = {tp}; boot p = {pb['p_value']:.3f}, "
            f"CI {pb['ci95'][0]:+.2f} to {pb['ci95'][1]:+.2f}{seeds})")


def _fmt(value, spec, missing="n/a"):
    return missing if value is None else format(value, spec)


def _seeds_text(seeds: list) -> str:
    """'1,2 (1 missing)': a point's seeds and how many it lacks of EXPECTED_SEEDS."""
    missing = EXPECTED_SEEDS - len(seeds)
    return ",".join(map(str, seeds)) + (f" ({missing} missing)" if missing > 0 else "")


def _precision_of_points(report: dict) -> str:
    """'bf16: a, b; fp32: c; bf16+fp32: d': the points that ran, by precision (d's seeds
    trained in different precisions)."""
    by_precision = {}
    for p in report["points"]:
        if p["seeds"]:
            by_precision.setdefault(p["precision"] or "unknown", []).append(p["config"])
    return "; ".join(f"{k}: {', '.join(v)}" for k, v in sorted(by_precision.items()))


def render(report: dict) -> str:
    bench = report["benchmark"]
    mde = report["min_detectable_difference"]
    lines = [
        "# Quality-cost frontier",
        "",
        f"Artefacts `{report['artefacts']}`; test reference `{Path(report['reference']).name}` "
        f"(sha256 {report['reference_sha256'][:12]}); training precision of the runs: "
        f"{', '.join(report['precisions']) or 'unknown'}"
        + (f" (MIXED: do not draw one figure from them; {_precision_of_points(report)})"
           if len(report["precisions"]) > 1 else "") + ".",
        "BLEU is detok sacreBLEU of each run's averaged checkpoint, mean ± sample sd over seeds; "
        "t p = the seed t-test on per-seed differences, boot p = the pooled paired bootstrap "
        f"({report['n_samples']:,} resamples; test-set noise only), as in the study report.",
        "Speed: " + (f"`{bench['file']}` ({bench['precision']}; {bench['machine'].get('cpu', '?')}, "
                     f"{bench['date']}); ratios to `{bench['reference']}`"
                     + (f" ({bench['note']})." if bench.get("note") else ".") if bench
                     else "no benchmark JSON given (--benchmark): no measured speed."),
        "",
    ]
    if mde.get("bleu") is not None:
        low, high = mde["bootstrap_ci95"]
        lines += [
            f"**Smallest difference three seeds can detect**: {mde['bleu']:.2f} BLEU "
            f"({mde['assumptions']}: {mde['sd']:.2f}, seeds {','.join(map(str, mde['pair_seeds']))}). "
            f"The pooled bootstrap of that pair ({mde['bootstrap_delta']:+.2f}) has a 95 % interval "
            f"of {low:+.2f} to {high:+.2f} (half-width {(high - low) / 2:.2f} BLEU), test-set noise "
            "only. So a true difference of that size is found 8 times in 10 by the seed t-test; a "
            "tie at three seeds says little about smaller ones.",
            "",
        ]
    else:
        lines += [f"Smallest detectable difference: n/a ({mde.get('note')}).", ""]
    depths = sorted({p["depth"] for p in report["points"]},
                    key=lambda d: sum(int(x) for x in d.split("+")) if d != "?" else 99)
    for depth in depths:
        lines += [f"## {depth}", "",
                  "| point | seeds | BLEU | chrF2 | params | train / decode GFLOPs per token "
                  "| train words/s (ratio) | gen sent/s (ratio) | vs same-depth Transformer "
                  "| vs Transformer below / above in speed | vs own 3+3 |",
                  "|---|---|---:|---:|---:|---:|---:|---:|---|---|---|"]
        for p in [p for p in report["points"] if p["depth"] == depth]:
            if not p["seeds"]:
                lines.append(f"| {p['line']} `{p['config']}` | not run | | | | | | | | | |")
                continue
            seeds = _seeds_text(p["seeds"])
            cost, speed, comp = p["cost"] or {}, p["speed"] or {}, p["comparisons"]
            neighbours_text = "<br>".join(f"{side}: {_comparison(comp.get(key))}" for side, key in
                                          (("slower", "slower_transformer"), ("faster", "faster_transformer"))
                                          if comp.get(key))
            lines.append(
                f"| {p['line']} `{p['config']}` | {seeds} | {_pm(p['bleu_mean_sd'])} "
                f"| {_pm(p['chrf_mean_sd'])} | {_fmt(p['params'], ',')} "
                f"| {_fmt(cost.get('train_gflops'), '.4f')} / {_fmt(cost.get('decode_gflops'), '.4f')} "
                f"| {_fmt(speed.get('wps'), '.0f')} ({_fmt(speed.get('wps_ratio'), '.2f')}) "
                f"| {_fmt(speed.get('sentences_per_s'), '.2f')} ({_fmt(speed.get('speed_ratio'), '.2f')}) "
                f"| {_comparison(comp.get('same_depth'))} | {neighbours_text} "
                f"| {_comparison(comp.get('own_3x3'))} |")
        lines.append("")
    lines += [f"Neighbours in speed: the Transformer points just slower and just faster than the "
              f"point, by {report['neighbour_axis']}.", ""]
    methods = sorted({p["cost"]["method"] for p in report["points"] if p.get("cost") and p["cost"]["method"]})
    if methods:
        lines += ["Decoding FLOPs counted with: " + " | ".join(methods) + ". Counts on each run's "
                  "own hypotheses depend on their lengths; recount with `cpmt-study cost --command` "
                  "and pass `--costs` for one method throughout.", ""]
    if report["length_buckets"] is not None:
        lines += ["## BLEU by source length (words)", "",
                  "| point | bucket | sentences | BLEU | Δ vs same-depth Transformer (pooled bootstrap p) |",
                  "|---|---|---:|---:|---|"]
        for entry in report["length_buckets"]:
            if entry.get("missing"):
                lines.append(f"| `{entry['config']}` | not run | | | |")
                continue
            seeds = _seeds_text(entry["seeds"])
            for row in entry["rows"]:
                pb = row.get("pooled_bootstrap")
                delta = (f"{pb['delta']:+.2f} vs {row['against']} (seeds "
                         f"{','.join(map(str, row['common_seeds']))}; p = {pb['p_value']:.3f})" if pb else "")
                lines.append(f"| `{entry['config']}` ({entry['depth']}; seeds {seeds}) | {row['bucket']} "
                             f"| {row['sentences']} | {_pm(row.get('bleu_mean_sd', (None, None)))} | {delta} |")
        lines.append("")
    lines += ["![training cost](frontier_train.png)", "", "![decoding cost](frontier_decode.png)", ""]
    return "\n".join(lines)


def plot_frontier(report: dict, path: Path, part: str):
    """Two panels: BLEU against FLOPs per token and against measured speed (``part``:
    ``train`` or ``decode``), one line per architecture through its depths."""
    plt = pyplot()
    flops_key, flops_label = {"train": ("train_gflops", "training GFLOPs per target token"),
                              "decode": ("decode_gflops", "decoding GFLOPs per output token")}[part]
    measured = f"benchmark, {report['benchmark']['precision']}" if report["benchmark"] else "benchmark"
    speed_key, speed_label = {"train": ("wps", f"training words/s ({measured})"),
                              "decode": ("sentences_per_s", f"generation sentences/s ({measured})")}[part]
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.8), sharey=True)
    for ax, value, label in ((axes[0], lambda p: (p["cost"] or {}).get(flops_key), flops_label),
                             (axes[1], lambda p: (p["speed"] or {}).get(speed_key), speed_label)):
        drawn = False
        for line in report["lines"]:
            pts = sorted(((value(p), p) for p in report["points"]
                          if p["line"] == line and p["seeds"] and value(p) is not None),
                         key=lambda v: v[0])
            if not pts:
                continue
            drawn = True
            xs = [x for x, _ in pts]
            ys = [p["bleu_mean_sd"][0] for _, p in pts]
            errs = [p["bleu_mean_sd"][1] or 0 for _, p in pts]
            handle = ax.errorbar(xs, ys, yerr=errs, marker="o", capsize=3, label=line)
            color = handle[0].get_color()
            for x, (_, p), y in zip(xs, pts, ys):
                few = len(p["seeds"]) < EXPECTED_SEEDS
                if few:  # fewer seeds than planned: hollow marker
                    ax.plot([x], [y], marker="o", markersize=9, markerfacecolor="white", color=color)
                ax.annotate(p["depth"] + (f" ({len(p['seeds'])} seed)" if few else ""), (x, y),
                            textcoords="offset points", xytext=(4, 4), fontsize=7)
        ax.set_xlabel(label)
        if not drawn:
            ax.text(0.5, 0.5, "no data (give --benchmark / costs)", ha="center", va="center",
                    transform=ax.transAxes)
    axes[0].set_ylabel("test BLEU (mean over seeds, bar = sd)")
    handles, labels = axes[0].get_legend_handles_labels()
    if handles:
        axes[0].legend(fontsize=8)
    fig.suptitle(f"quality against {'training' if part == 'train' else 'decoding'} cost "
                 f"({', '.join(report['precisions']) or '?'} runs; hollow = fewer than "
                 f"{EXPECTED_SEEDS} seeds)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def write_frontier(report: dict, out: Path, force: bool = False):
    if (out / "frontier.md").exists() and not force:
        raise StudyError(f"{out / 'frontier.md'}: exists (--force to replace the report)")
    out.mkdir(parents=True, exist_ok=True)
    plot_frontier(report, out / "frontier_train.png", "train")
    plot_frontier(report, out / "frontier_decode.png", "decode")
    for name, text in (("frontier.md", render(report)),
                       ("frontier.json", json.dumps(report, indent=1, default=str) + "\n")):
        tmp = out / (name + ".tmp")
        tmp.write_text(text, encoding="utf-8")
        tmp.replace(out / name)


# --------------------------------------------------------------------------- command line


def parse_lines(values) -> dict:
    """``--line LABEL=cfg,cfg,...`` (repeatable) into {label: [configs]}; none: LINES."""
    if not values:
        return LINES
    lines = {}
    for value in values:
        label, sep, names = value.partition("=")
        configs = [n.strip() for n in names.split(",") if n.strip()]
        if not sep or not label.strip() or not configs:
            raise StudyError(f"--line {value!r}: give LABEL=CONFIG,CONFIG,...")
        lines[label.strip()] = configs
    return lines


def add_parser(sub):
    """The ``frontier`` subcommand of cpmt-study."""
    parser = sub.add_parser(
        "frontier", help="quality against cost across depths: plots, tables per depth, length buckets",
        description="From a study's exported artefacts: test BLEU (mean ± sd over seeds) against "
        "training and decoding cost (FLOPs per token; measured speed from a benchmark JSON), one "
        "line per architecture through its depths (frontier_train.png, frontier_decode.png); per "
        "depth, each point against the same-depth Transformer, the Transformer points just slower "
        "and just faster, and its own 3+3 point (seed t-test, pooled bootstrap); BLEU by source "
        "length; the smallest difference three seeds can detect. Missing points and seeds are "
        "marked. Writes OUT/frontier.md and frontier.json.")
    parser.add_argument("--artefacts", required=True, type=Path,
                        help="folder of exported runs, one NAME_sSEED folder each")
    parser.add_argument("--data", type=Path,
                        help="prepared corpus: its raw/test.de and raw/test.en (or give --reference/--source)")
    parser.add_argument("--reference", type=Path, help="the test reference (default: DATA/raw/test.de)")
    parser.add_argument("--source", type=Path,
                        help="the test source, for the length buckets (default: DATA/raw/test.en; "
                        "without either, no buckets)")
    parser.add_argument("--benchmark", type=Path,
                        help="JSON of benchmarks/benchmark.py --frontier (--models ...): measured speed")
    parser.add_argument("--benchmark-precision",
                        help="which precision's rows of --benchmark (default: the runs' precision if "
                        "measured, else the benchmark's first)")
    parser.add_argument("--costs", type=Path,
                        help="folder of CONFIG.json from `cpmt-study cost --command` (one count per "
                        "configuration) instead of each run's cost.json")
    parser.add_argument("--line", action="append", metavar="LABEL=CONFIG,...",
                        help="an architecture's points from the smallest depth up (repeatable; the "
                        "first is the reference, the Transformer); default: "
                        + "; ".join(f"{k}={','.join(v)}" for k, v in LINES.items()))
    parser.add_argument("--bucket-points", help="comma list of configurations to break down by source "
                        "length (default: every 1+1 and 3+3 point)")
    parser.add_argument("--length-buckets", default=",".join(map(str, BUCKET_EDGES)),
                        help="upper bounds of the source-length buckets in words (default: %(default)s)")
    parser.add_argument("--mde-pair", default="contextpool,baseline",
                        help="the pair whose per-seed differences give the seed sd for the smallest "
                        "detectable difference (default: %(default)s, the 3+3 pair)")
    parser.add_argument("--bootstrap-samples", type=int, default=1000, help="(default: %(default)s)")
    parser.add_argument("--eval", default="avg", help="which NAME/eval/EVAL holds the scores (default: avg)")
    parser.add_argument("--out", required=True, type=Path,
                        help="report folder: frontier.md, frontier.json, frontier_train.png, frontier_decode.png")
    parser.add_argument("--force", action="store_true", help="replace an existing report in --out")
    return parser


def run(args) -> Path:
    reference = args.reference or (args.data / "raw" / "test.de" if args.data else None)
    if reference is None:
        raise StudyError("give --data (raw/test.de) or --reference")
    source = args.source or (args.data / "raw" / "test.en" if args.data else None)
    if source is not None and not source.is_file():
        if args.source:
            raise StudyError(f"{source}: missing test source")
        source = None
    try:
        edges = tuple(int(e) for e in args.length_buckets.split(","))
    except ValueError:
        raise StudyError(f"--length-buckets {args.length_buckets}: give increasing integers, e.g. 10,15,20") from None
    if list(edges) != sorted(set(edges)) or edges[0] < 1:
        raise StudyError(f"--length-buckets {args.length_buckets}: give increasing integers >= 1")
    pair = tuple(c.strip() for c in args.mde_pair.split(","))
    if len(pair) != 2:
        raise StudyError(f"--mde-pair {args.mde_pair}: give two configurations, A,B")
    bucket_points = [c.strip() for c in args.bucket_points.split(",")] if args.bucket_points else None
    report = build_frontier(args.artefacts, reference, source, args.benchmark, args.benchmark_precision,
                            args.costs, parse_lines(args.line), bucket_points, edges, pair,
                            args.bootstrap_samples, args.eval)
    write_frontier(report, args.out, args.force)
    return args.out / "frontier.md"
