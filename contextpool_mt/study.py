"""A multi-seed study: per-run artefacts, cost, and the report over configurations and seeds.

Command line (``cpmt-study`` runs :func:`main`; ``scripts/run_study.sh`` drives it)::

    cpmt-study curve --run-dir RUN_DIR
    cpmt-study export --run-dir RUN_DIR --out ARTEFACT_DIR [--eval avg]
    cpmt-study cost (--checkpoint CKPT | --command ARTEFACT/command.txt) --data DATA_DIR \\
        --out COST_JSON [--decode-length N] [--force]
    cpmt-study report --artefacts DIR --data DATA_DIR --out REPORT_DIR \\
        [--baseline baseline] [--budget-epochs E]
    cpmt-study status --runs DIR --artefacts DIR --configs "C ..." [--seeds "1 2 3"]
    cpmt-study check-corpus --artefacts DIR --data DATA_DIR
    cpmt-study frontier --artefacts DIR (--data DATA_DIR | --reference REF [--source SRC]) \\
        --out DIR [--benchmark JSON] [--costs DIR]      (contextpool_mt/frontier.py)

The configurations are the lines of configs/study/configurations.txt
(:func:`read_configurations`), which scripts/run_study.sh and benchmarks/benchmark.py read too.

Runs are named ``CONFIG_sSEED`` (``baseline_s1``, ``contextpool_enc2_s3``). ``export`` copies
what the report needs out of a run folder (which holds checkpoints and stays outside the
repository) into ARTEFACT_DIR/NAME, small enough to commit: ``train.log`` (fairseq's JSON log:
parameters, times, per-epoch losses and valid BLEU), ``epochs.json`` (that log's per-epoch
summary), ``command.txt`` and ``eval/EVAL/{scores.json,hyp.txt,hyp.tok,ref.tok}``. The layout is a run folder's,
so ``cpmt-compare`` reads artefact folders as they are.

``curve`` prints a run's per-epoch valid loss and valid BLEU (the pilot's learning curve).
``cost`` counts, with ``torch.utils.flop_counter.FlopCounterMode`` on the model and the first
64 sentences of the test split, the FLOPs of a training step (label-smoothed loss, forward +
backward) per target token and of beam search (beam 4) per output token, every output forced to
one length (the mean reference length of those sentences), so that equal architectures count
equal FLOPs. The counter counts matrix products and attention kernels, not elementwise
operations. FLOPs depend on the architecture only, so ``--command`` counts an exported run from
its fairseq-train line with untrained weights. ``status`` says which runs of a study are done,
running (RUNS/NAME.lock held), stopped or not started.

``report`` groups runs by configuration and writes REPORT_DIR/study.md, study.json and
``bleu_vs_time.png``:

* per configuration: test BLEU (detok sacreBLEU, averaged checkpoint) and chrF2, mean and
  sample standard deviation over seeds; parameters, FLOPs, training time;
* per seed: sacreBLEU's paired bootstrap of the configuration against the same seed's
  baseline;
* across seeds, two tests of the configuration against the baseline, each valid for a
  different question: (1) a paired t-test over the per-seed BLEU differences (seed pairs are
  independent trainings, so this accounts for training variance; low power with 3 seeds);
  (2) a pooled paired bootstrap over test sentences: every resample draws one set of sentence
  indices, applied to every seed of both configurations, and the statistic is the mean over
  seeds of the BLEU difference; p is two-sided from the resampled differences centred at
  zero, as sacreBLEU's own test does. It conditions on the trained models, so it measures
  test-set sampling noise of the seed-averaged difference, not training variance;
* time and updates to reach the converged baseline's valid BLEU (the mean over baseline seeds
  of the valid BLEU at the budget), from each run's per-epoch valid BLEU, within the budget.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import statistics
import sys
from pathlib import Path

from contextpool_mt.checkpoints import scored_checkpoint_is_of_run
from contextpool_mt.corpus import binarised_folder_error
from contextpool_mt.plotting import pyplot
from contextpool_mt.provenance import sha256_of
from contextpool_mt.text import read_lines
from contextpool_mt.fairseq_logs import LogParseError, parse_train_log
from contextpool_mt.machine import machine_type

SCHEMA = "contextpool-mt/study/v1"
RUN_NAME = re.compile(r"^(?P<config>[A-Za-z0-9_.+-]+?)_s(?P<seed>\d+)$")
BOOTSTRAP_SAMPLES = 1000
BOOTSTRAP_SEED = 12345
COST_SENTENCES = 64


class StudyError(RuntimeError):
    """An artefact or input the study cannot use; the message names it."""


# --------------------------------------------------------------------------- configurations


CONFIGURATIONS = Path(__file__).resolve().parent.parent / "configs" / "study" / "configurations.txt"
COMMON = "common"


def read_configurations(path: Path = CONFIGURATIONS) -> dict:
    """{NAME: (ARCH, [options])} of the study's configuration table, in its order.

    One configuration a line, ``NAME ARCH [fairseq-train options]``, options split on
    whitespace; ``#`` starts a comment line. The line named ``common`` (ARCH ``-``) holds the
    options every configuration starts from: a configuration's model options are
    ``common + its own`` (scripts/run_study.sh reads the same file).
    """
    if not path.is_file():
        raise StudyError(f"{path}: missing (the study's configuration table)")
    table = {}
    for number, line in enumerate(read_lines(path), start=1):
        fields = line.split()
        if not fields or fields[0].startswith("#"):
            continue
        if len(fields) < 2 or fields[0] in table:
            raise StudyError(f"{path}, line {number}: '{fields[0]}' needs an ARCH and must appear once")
        table[fields[0]] = (fields[1], fields[2:])
    if COMMON not in table:
        raise StudyError(f"{path}: no '{COMMON}' line (the options every configuration starts from)")
    return table


def model_options(table: dict, name: str) -> tuple:
    """(ARCH, options) of configuration ``name`` as run_study.sh passes them to fairseq-train:
    the common options, then its own."""
    if name == COMMON or name not in table:
        known = ", ".join(n for n in table if n != COMMON)
        raise StudyError(f"unknown configuration '{name}'; known: {known}")
    arch, own = table[name]
    return arch, table[COMMON][1] + own


# --------------------------------------------------------------------------- export


# what cpmt-compare reads of an evaluation (hyp.tok and ref.tok for its tokenised-BLEU bootstrap)
EVAL_FILES = ("scores.json", "hyp.txt", "hyp.tok", "ref.tok")


def export_run(run_dir: Path, out: Path, eval_name: str = "avg") -> Path:
    """Copies a run's small artefacts into ``out`` (replacing what was there)."""
    log = run_dir / "train.log"
    try:
        train = parse_train_log(log)
    except LogParseError as err:
        raise StudyError(str(err)) from err
    eval_dir = run_dir / "eval" / eval_name
    for name in EVAL_FILES:
        if not (eval_dir / name).is_file():
            raise StudyError(f"{eval_dir / name}: missing (evaluate the run first)")
    tmp = out.with_name(out.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    (tmp / "eval" / eval_name).mkdir(parents=True)
    shutil.copyfile(log, tmp / "train.log")
    for name in EVAL_FILES:
        shutil.copyfile(eval_dir / name, tmp / "eval" / eval_name / name)
    commands = [line[len("# command:"):].strip() for line in read_lines(log)
                if line.startswith("# command:")]
    (tmp / "command.txt").write_text("\n".join(commands) + "\n", encoding="utf-8")
    with open(tmp / "epochs.json", "w", encoding="utf-8") as handle:
        json.dump({"params": train["params"], "epochs": train["epochs"], "machines": train["machines"]},
                  handle, indent=1)
    if (run_dir / "cost.json").is_file():
        shutil.copyfile(run_dir / "cost.json", tmp / "cost.json")
    shutil.rmtree(out, ignore_errors=True)
    tmp.rename(out)
    return out


# --------------------------------------------------------------------------- cost


def model_from_command(command_file: Path, data_bin: Path):
    """The untrained model and task of a run's fairseq-train line (the last line of its
    command.txt), its data pointed at ``data_bin`` and its ``--user-dir`` at this checkout's
    fairseq_plugins: for counting FLOPs, which depend on the architecture, not on the weights.
    """
    import shlex

    import fairseq_plugins
    from fairseq import options, tasks

    lines = [line for line in read_lines(command_file) if line.strip()] if command_file.is_file() else []
    if not lines:
        raise StudyError(f"{command_file}: no fairseq-train command (export the run again)")
    argv = shlex.split(lines[-1])
    starts = [i for i, token in enumerate(argv) if Path(token).name == "fairseq-train"]
    if not starts or starts[0] + 1 >= len(argv):
        raise StudyError(f"{command_file}: its last line is not a fairseq-train command")
    argv = argv[starts[0] + 1:]
    argv[0] = str(data_bin)
    user_dir = str(Path(fairseq_plugins.__file__).parent)
    argv = [user_dir if i > 0 and argv[i - 1] == "--user-dir" else token for i, token in enumerate(argv)]
    try:
        args = options.parse_args_and_arch(options.get_training_parser(), input_args=argv)
    except SystemExit as err:
        raise StudyError(f"{command_file}: fairseq-train refuses its command line (above)") from err
    task = tasks.setup_task(args)
    return task.build_model(args), task


def count_cost(model, task, subset: str = "test", beam: int = 4, decode_length: int | None = None) -> dict:
    """FLOPs per target token of a training step and of beam search, on ``model``.

    Training: one step (label-smoothed loss, forward + backward) on the first
    ``COST_SENTENCES`` sentences of ``subset``, per target token. Decoding: beam search on
    the same sources with every output forced to ``decode_length`` tokens plus EOS
    (``min_len = max_len``, as benchmarks/benchmark.py decodes), per output token; by default
    the length is the mean reference length of those sentences, so every model of one corpus
    decodes the same number of steps and equal architectures count equal FLOPs (counting each
    model's own hypotheses made the count depend on how long they were).
    """
    import torch
    from fairseq.criterions.label_smoothed_cross_entropy import LabelSmoothedCrossEntropyCriterion
    from fairseq.sequence_generator import SequenceGenerator
    from torch.utils.flop_counter import FlopCounterMode

    task.load_dataset(subset)
    dataset = task.dataset(subset)
    n = min(COST_SENTENCES, len(dataset))
    sample = dataset.collater([dataset[i] for i in range(n)])
    target_tokens = int(sample["ntokens"])  # EOS included
    if decode_length is None:
        decode_length = max(1, round(target_tokens / n) - 1)
    criterion = LabelSmoothedCrossEntropyCriterion(task, sentence_avg=False, label_smoothing=0.1)
    model.train()
    with FlopCounterMode(display=False) as counter:
        loss, _, _ = criterion(model, sample)
        loss.backward()
    train_flops = counter.get_total_flops()
    model.eval()
    generator = SequenceGenerator([model], task.target_dictionary, beam_size=beam,
                                  max_len_a=0, max_len_b=decode_length, min_len=decode_length)
    net_input = {k: v for k, v in sample["net_input"].items() if k != "prev_output_tokens"}
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        hypos = generator.generate([model], {"net_input": net_input})
    decode_flops = counter.get_total_flops()
    lengths = {len(h[0]["tokens"]) for h in hypos}
    if lengths != {decode_length + 1}:
        raise StudyError(f"beam search was to decode {decode_length} tokens + EOS, decoded {sorted(lengths)}")
    output_tokens = n * (decode_length + 1)
    return {
        "params": sum(p.numel() for p in model.parameters()),
        "sentences": n,
        "train_target_tokens": target_tokens,
        "train_flops_per_target_token": train_flops / target_tokens,
        "decode_output_tokens": output_tokens,
        "decode_beam": beam,
        "decode_forced_length": decode_length,
        "decode_flops_per_output_token": decode_flops / output_tokens,
        "counted_with": "torch.utils.flop_counter.FlopCounterMode (matrix products and "
                        "attention kernels; elementwise operations are not counted)",
        "decode_method": f"beam {beam}, every output forced to {decode_length} tokens + EOS "
                         "(min_len = max_len)",
    }


# --------------------------------------------------------------------------- report


def precision_of(command_file: Path):
    """The training precision a run's command.txt gives (train.sh's bf16 task or --fp16), or
    None when the file is missing."""
    if not command_file.is_file():
        return None
    command = command_file.read_text(encoding="utf-8")
    if "translation_bf16" in command:
        return "bf16"
    return "fp16" if "--fp16" in command.split() else "fp32"


def collect(artefacts: Path, eval_name: str) -> dict:
    """{config: {seed: run}} of every NAME_sSEED folder with eval/EVAL/scores.json."""
    configs = {}
    for folder in sorted(p for p in artefacts.iterdir() if p.is_dir()):
        match = RUN_NAME.match(folder.name)
        scores_path = folder / "eval" / eval_name / "scores.json"
        if not match or not scores_path.is_file():
            continue
        scores = json.loads(scores_path.read_text(encoding="utf-8"))
        hyp_path = folder / "eval" / eval_name / "hyp.txt"
        if scores["files"].get("hyp_sha256") != sha256_of(hyp_path):
            raise StudyError(f"{hyp_path}: changed since {scores_path} was written")
        scored = scores.get("checkpoint") or {}
        if scored.get("path") and not scored_checkpoint_is_of_run(scored, folder):
            raise StudyError(f"{scores_path}: scores {scored.get('path')}, a checkpoint of another run "
                             f"than {folder.name}: export that run's own evaluation into {folder}")
        epochs_path = folder / "epochs.json"
        if not epochs_path.is_file():
            raise StudyError(f"{epochs_path}: missing (re-export the run)")
        epochs = json.loads(epochs_path.read_text(encoding="utf-8"))
        cost_path = folder / "cost.json"
        run = {
            "name": folder.name,
            "config": match.group("config"),
            "seed": int(match.group("seed")),
            "folder": str(folder),
            "scores": scores,
            "hyps": read_lines(hyp_path),
            "params": epochs["params"],
            "epochs": epochs["epochs"],
            # one record per fairseq-train process (contextpool_mt/machine.py); absent in exports
            # made before train.sh recorded machines
            "machines": epochs.get("machines") or [None],
            "corpus": corpus_identity(scores),
            "precision": precision_of(folder / "command.txt") or "unrecorded",
            "cost": json.loads(cost_path.read_text()) if cost_path.is_file() else None,
        }
        configs.setdefault(run["config"], {})[run["seed"]] = run
    return configs


def _stats(metric, hyps, refs):
    import numpy as np

    return np.array(metric._extract_corpus_statistics(hyps, [refs]), dtype=np.float64)


def _score(metric, stats) -> float:
    return metric._compute_score_from_stats(list(stats)).score


def pooled_bootstrap(pairs, refs, n_samples=BOOTSTRAP_SAMPLES, seed=BOOTSTRAP_SEED) -> dict:
    """Mean over seeds of BLEU(system) - BLEU(baseline), resampling sentences jointly.

    ``pairs``: [(baseline hyps, system hyps)] one per seed, on the same references.
    """
    import numpy as np
    from sacrebleu.metrics import BLEU

    metric = BLEU()
    stats = [(_stats(metric, b, refs), _stats(metric, s, refs)) for b, s in pairs]
    observed = statistics.mean(_score(metric, s.sum(0)) - _score(metric, b.sum(0)) for b, s in stats)
    rng = np.random.default_rng(seed)
    n = len(refs)
    deltas = []
    for _ in range(n_samples):
        idx = rng.integers(0, n, n)
        deltas.append(statistics.mean(
            _score(metric, s[idx].sum(0)) - _score(metric, b[idx].sum(0)) for b, s in stats))
    deltas = np.array(deltas)
    centred = deltas - deltas.mean()
    p = (np.sum(np.abs(centred) >= abs(observed)) + 1) / (n_samples + 1)
    low, high = np.percentile(deltas, [2.5, 97.5])
    return {"delta": observed, "p_value": float(p), "ci95": [float(low), float(high)],
            "n_samples": n_samples, "seed": seed}


def seed_ttest(deltas) -> dict:
    from scipy import stats

    if len(deltas) < 2:
        return {"n": len(deltas), "t": None, "p_value": None}
    mean, sd = statistics.mean(deltas), statistics.stdev(deltas)
    if sd == 0:
        return {"n": len(deltas), "t": None, "p_value": None, "note": "identical differences"}
    result = stats.ttest_1samp(deltas, 0.0)
    return {"n": len(deltas), "mean": mean, "sd": sd, "t": float(result.statistic),
            "p_value": float(result.pvalue)}


def reach(epochs, threshold, budget=None):
    """First epoch (<= budget) whose valid BLEU >= threshold: epoch, updates, wall seconds."""
    for entry in epochs:
        if budget is not None and entry["epoch"] > budget:
            break
        if entry.get("valid_bleu") is not None and entry["valid_bleu"] >= threshold:
            return {"epoch": entry["epoch"], "num_updates": entry["num_updates"],
                    "wall_seconds": entry["cumulative_wall_seconds"]}
    return None


def _mean_sd(values):
    values = [v for v in values if v is not None]
    if not values:
        return None, None
    return statistics.mean(values), (statistics.stdev(values) if len(values) > 1 else None)


def build_study_report(artefacts: Path, data: Path, baseline: str, budget: int | None,
                       eval_name: str = "avg", seeds=None) -> dict:
    """The report over every exported run, or only the runs of `seeds` (e.g. a confirmation's
    fresh seeds, leaving out the seed that selected the change it confirms)."""
    from sacrebleu.metrics import BLEU

    from contextpool_mt.metrics import paired_bootstrap

    refs_path = data / "raw" / "test.de"
    if not refs_path.is_file():
        raise StudyError(f"{refs_path}: missing reference")
    refs = read_lines(refs_path)
    ref_sha = sha256_of(refs_path)
    configs = collect(artefacts, eval_name)
    if seeds is not None:
        configs = {config: kept for config, runs in configs.items()
                   if (kept := {s: run for s, run in runs.items() if s in seeds})}
    if baseline not in configs:
        of_seeds = "" if seeds is None else f" at seeds {' '.join(map(str, sorted(seeds)))}"
        raise StudyError(f"{artefacts}: no run of the baseline configuration '{baseline}'{of_seeds}")
    for runs in configs.values():
        for run in runs.values():
            if run["scores"]["files"].get("reference_sha256") != ref_sha:
                raise StudyError(f"{run['folder']}: scored against another reference than {refs_path}")
    base_runs = configs[baseline]

    def valid_at_budget(run):
        rows = [e for e in run["epochs"] if budget is None or e["epoch"] <= budget]
        return rows[-1]["valid_bleu"] if rows else None

    target, _ = _mean_sd([valid_at_budget(r) for r in base_runs.values()])
    table = []
    for config, runs in configs.items():
        seeds = sorted(runs)
        bleu = [runs[s]["scores"]["bleu_detok"]["score"] for s in seeds]
        chrf = [runs[s]["scores"]["chrf"]["score"] for s in seeds]
        times = []
        for s in seeds:
            rows = [e for e in runs[s]["epochs"] if budget is None or e["epoch"] <= budget]
            times.append(rows[-1]["cumulative_wall_seconds"] if rows else None)
        reached = {s: (reach(runs[s]["epochs"], target, budget) if target is not None else None) for s in seeds}
        row = {
            "config": config,
            "seeds": seeds,
            "bleu": bleu, "bleu_mean_sd": _mean_sd(bleu),
            "chrf": chrf, "chrf_mean_sd": _mean_sd(chrf),
            "params": runs[seeds[0]]["params"],
            "cost": runs[seeds[0]]["cost"],
            "training_seconds_mean_sd": _mean_sd(times),
            "reach_baseline_valid_bleu": reached,
        }
        if config != baseline:
            common = [s for s in seeds if s in base_runs]
            per_seed = {}
            for s in common:
                _, results = paired_bootstrap(
                    [("baseline", base_runs[s]["hyps"]), (config, runs[s]["hyps"])], refs,
                    {"BLEU": BLEU()}, BOOTSTRAP_SAMPLES)
                base_res, sys_res = results["BLEU"]
                per_seed[s] = {"delta": sys_res.score - base_res.score, "p_value": sys_res.p_value}
            row["per_seed_bootstrap"] = per_seed
            row["seed_ttest"] = seed_ttest([per_seed[s]["delta"] for s in common])
            row["pooled_bootstrap"] = (pooled_bootstrap(
                [(base_runs[s]["hyps"], runs[s]["hyps"]) for s in common], refs) if common else None)
        table.append(row)
    return {"schema": SCHEMA, "baseline": baseline, "budget_epochs": budget,
            "seeds": None if seeds is None else sorted(seeds),
            "baseline_valid_bleu_at_budget": target, "reference": str(refs_path),
            "reference_sha256": ref_sha, "configs": table, "machines": runs_by_machine(configs),
            "corpora": runs_by_corpus(configs), "precisions": runs_by_precision(configs),
            "_configs": configs}


def _runs_by(configs: dict, labels) -> dict:
    """{label: [run names]}, sorted by label, where ``labels(run)`` gives a run's labels."""
    grouped = {}
    for runs in configs.values():
        for run in runs.values():
            for label in dict.fromkeys(labels(run)):
                grouped.setdefault(label, []).append(run["name"])
    return dict(sorted(grouped.items()))


def runs_by_machine(configs: dict) -> dict:
    """{machine type: [run names]} over every process of every run (a run resumed on another
    machine type appears under both); ``unrecorded`` for processes train.sh recorded no machine for."""
    return _runs_by(configs, lambda run: [machine_type(m) for m in run["machines"]])


def recorded_corpus(scores: dict) -> dict | None:
    """The corpus fingerprint cpmt-evaluate recorded in a scores.json, or None if it has none."""
    data = (scores.get("provenance") or {}).get("data")
    return data if data and data.get("source_dict_sha256") else None


def corpus_identity(scores: dict) -> str:
    """The corpus a scored model was trained on, by content (its dictionaries and SentencePiece
    model, contextpool_mt/provenance.py, as cpmt-evaluate recorded them), without the folder it
    was read from; ``unrecorded`` for scores written before evaluation recorded it."""
    data = recorded_corpus(scores)
    if data is None:
        return "unrecorded"
    # the dictionaries (pieces and counts) pin a corpus in every fingerprint version; the
    # SentencePiece digests of versions 1 and 2 are of different kinds, so they are left out
    dictionaries = data["source_dict_sha256"][:12]
    if data.get("target_dict_sha256") not in (None, data["source_dict_sha256"]):
        dictionaries += f" / {data['target_dict_sha256'][:12]}"
    return (f"{data.get('source_lang')}-{data.get('target_lang')}, dictionary {dictionaries} "
            f"({data.get('source_dict_size')} entries)")


def runs_by_corpus(configs: dict) -> dict:
    """{corpus identity: [run names]} (:func:`corpus_identity`)."""
    return _runs_by(configs, lambda run: [run["corpus"]])


def runs_by_precision(configs: dict) -> dict:
    """{training precision: [run names]} (:func:`precision_of`)."""
    return _runs_by(configs, lambda run: [run["precision"]])


def corpus_mismatches(artefacts: Path, data: Path, eval_name: str = "avg") -> tuple:
    """(runs checked, [(run name, what differs)]): the exported runs of ARTEFACTS whose recorded
    corpus (scores.json's provenance) is not the prepared corpus DATA. Runs that recorded none are
    not counted; fairseq (for the fingerprint) is imported only if some run recorded one."""
    recorded_runs = []
    for scores_path in sorted(artefacts.glob(f"*/eval/{eval_name}/scores.json")):
        if not RUN_NAME.match(scores_path.parents[2].name):
            continue
        recorded = recorded_corpus(json.loads(scores_path.read_text(encoding="utf-8")))
        if recorded is not None:
            recorded_runs.append((scores_path.parents[2].name, recorded))
    if not recorded_runs:
        return 0, []
    from contextpool_mt.provenance import ProvenanceError, differing, fingerprint_like, language_pair, spm_model_of

    bin_dir = data / "bin"
    try:
        src, tgt = language_pair(bin_dir)  # DATA's own pair: another one is a difference to report
        found = []
        for name, recorded in recorded_runs:
            actual = fingerprint_like(recorded, bin_dir, src, tgt, spm_model_of(bin_dir))
            what = differing(recorded, actual)
            if what:
                found.append((name, what))
    except ProvenanceError as err:
        raise StudyError(str(err)) from err
    return len(recorded_runs), found


def render_provenance(machines: dict, corpora: dict, precisions: dict) -> list:
    """Markdown lines naming the machine types, corpora and training precisions of a report's
    runs, with a warning where a comparison mixes several."""
    def listing(title, grouped, what, why):
        lines = ["", title, ""] + [f"- {name}: {', '.join(sorted(runs))}" for name, runs in grouped.items()]
        recorded = [name for name in grouped if name != "unrecorded"]
        return lines + (["", f"**Warning: {len(recorded)} {what}.** {why}"] if len(recorded) > 1 else [])

    return (listing("Machines that trained these runs (train.sh's record in each train.log):", machines,
                    "machine types", "Training times and words/s are not comparable across them, and one "
                    "comparison's runs should share a machine type.")
            + listing("Corpora they were trained on (cpmt-evaluate's provenance record in scores.json):",
                      corpora, "corpora", "These runs were trained on different vocabularies (the same text "
                      "prepared with other options, e.g. another --spm-threads): their differences mix the "
                      "architectures' with the corpora's.")
            + listing("Training precision (each run's command.txt):", precisions, "precisions",
                      "A model trained in bf16 and in fp32 can differ by more than its seeds do: "
                      "report each precision's runs on their own."))


def plot_bleu_vs_time(report: dict, path: Path):
    plt = pyplot()

    fig, ax = plt.subplots(figsize=(7, 4.5))
    for config, runs in report["_configs"].items():
        by_epoch = {}
        for run in runs.values():
            for e in run["epochs"]:
                if e.get("valid_bleu") is not None:
                    by_epoch.setdefault(e["epoch"], []).append((e["cumulative_wall_seconds"], e["valid_bleu"]))
        epochs = sorted(by_epoch)
        if not epochs:
            continue
        hours = [statistics.mean(t for t, _ in by_epoch[e]) / 3600 for e in epochs]
        mean = [statistics.mean(b for _, b in by_epoch[e]) for e in epochs]
        low = [min(b for _, b in by_epoch[e]) for e in epochs]
        high = [max(b for _, b in by_epoch[e]) for e in epochs]
        line, = ax.plot(hours, mean, marker=".", label=f"{config} ({len(runs)} seed(s))")
        ax.fill_between(hours, low, high, color=line.get_color(), alpha=0.2)
    ax.set_xlabel("training wall time (hours; mean over seeds)")
    ax.set_ylabel("valid BLEU (fairseq --eval-bleu)")
    ax.set_title("valid BLEU per epoch: mean over seeds, band = min..max")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _pm(pair, fmt="{:.2f}"):
    mean, sd = pair
    if mean is None:
        return "n/a"
    return fmt.format(mean) + (" ± " + fmt.format(sd) if sd is not None else "")


def _hours(seconds):
    return "n/a" if seconds is None else f"{seconds / 3600:.2f} h"


def render(report: dict) -> str:
    lines = [
        "# Study report",
        "",
        f"Baseline: `{report['baseline']}`; budget: "
        f"{report['budget_epochs'] if report['budget_epochs'] else 'all logged'} epochs; "
        f"test reference `{Path(report['reference']).name}` (sha256 {report['reference_sha256'][:12]})"
        + ("." if report.get("seeds") is None else
           f"; only the runs of seeds {', '.join(map(str, report['seeds']))}."),
        "BLEU is detok sacreBLEU of the averaged checkpoint; mean ± sample std over seeds.",
        "",
        "| config | seeds | BLEU | chrF2 | params | train GFLOPs/token | decode GFLOPs/token "
        "| training time | Δ BLEU vs baseline (seed t-test p; pooled bootstrap p) |",
        "|---|---|---:|---:|---:|---:|---:|---:|---|",
    ]
    for row in report["configs"]:
        cost = row["cost"] or {}
        tr = cost.get("train_flops_per_target_token")
        de = cost.get("decode_flops_per_output_token")
        if "pooled_bootstrap" in row and row["pooled_bootstrap"]:
            pb, tt = row["pooled_bootstrap"], row["seed_ttest"]
            tp = "n/a" if tt.get("p_value") is None else f"{tt['p_value']:.3f}"
            delta = f"{pb['delta']:+.2f} (t-test p = {tp}; bootstrap p = {pb['p_value']:.3f})"
        else:
            delta = "(baseline)"
        lines.append(
            f"| {row['config']} | {','.join(map(str, row['seeds']))} | {_pm(row['bleu_mean_sd'])} "
            f"| {_pm(row['chrf_mean_sd'])} | {row['params']:,} "
            f"| {'n/a' if tr is None else f'{tr / 1e9:.4f}'} | {'n/a' if de is None else f'{de / 1e9:.4f}'} "
            f"| {_hours(row['training_seconds_mean_sd'][0])} | {delta} |"
        )
    target = report["baseline_valid_bleu_at_budget"]
    lines += ["", f"Time to reach the baseline's valid BLEU at the budget (mean over its seeds, "
              f"{'n/a' if target is None else f'{target:.2f}'}), per seed:", "",
              "| config | seed | epoch | updates | wall time |", "|---|---:|---:|---:|---:|"]
    for row in report["configs"]:
        for seed, hit in row["reach_baseline_valid_bleu"].items():
            if hit:
                lines.append(f"| {row['config']} | {seed} | {hit['epoch']} | {hit['num_updates']} "
                             f"| {_hours(hit['wall_seconds'])} |")
            else:
                lines.append(f"| {row['config']} | {seed} | not reached | | |")
    lines += ["", "Per-seed paired bootstrap (sacreBLEU, 1,000 resamples) against the same seed's baseline:",
              "", "| config | seed | Δ BLEU | p |", "|---|---:|---:|---:|"]
    for row in report["configs"]:
        for seed, res in row.get("per_seed_bootstrap", {}).items():
            # sacreBLEU gives p = 1/(n+1) when every resample ties: no difference is no evidence
            p = f"{res['p_value']:.4f}" if res["delta"] != 0 else "n/a (identical scores)"
            lines.append(f"| {row['config']} | {seed} | {res['delta']:+.2f} | {p} |")
    lines += render_provenance(report["machines"], report["corpora"], report["precisions"])
    lines += ["", "![valid BLEU vs training time](bleu_vs_time.png)", ""]
    return "\n".join(lines)


def write_report(report: dict, out: Path):
    out.mkdir(parents=True, exist_ok=True)
    plot_bleu_vs_time(report, out / "bleu_vs_time.png")
    (out / "study.md").write_text(render(report), encoding="utf-8")
    public = {k: v for k, v in report.items() if not k.startswith("_")}
    with open(out / "study.json", "w", encoding="utf-8") as handle:
        json.dump(public, handle, indent=1, default=str)


# --------------------------------------------------------------------------- status


EPOCH_CHECKPOINT = re.compile(r"^checkpoint(\d+)\.pt$")


def is_locked(lock_file: Path) -> bool:
    """Whether a process holds ``lock_file`` (flock(2), as run_study.sh's ``flock`` takes it)."""
    import fcntl
    import os

    try:
        fd = os.open(lock_file, os.O_RDONLY)
    except FileNotFoundError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)  # closing drops a lock taken here
    return False


def run_state(runs: Path, artefacts: Path, name: str, budget: int | None = None,
              eval_name: str = "avg") -> dict:
    """Where one run of a study stands: ``done`` (exported; test BLEU), ``running`` (a
    run_study.sh holds RUNS/NAME.lock), ``stopped`` (epoch checkpoints, nobody training) or
    ``not started``; ``epoch`` is its last epoch checkpoint."""
    scores_path = artefacts / name / "eval" / eval_name / "scores.json"
    epochs = [int(m.group(1)) for p in (runs / name / "checkpoints").glob("checkpoint*.pt")
              if (m := EPOCH_CHECKPOINT.match(p.name))]
    state = {"name": name, "epoch": max(epochs) if epochs else None, "budget_epochs": budget}
    if scores_path.is_file():
        scores = json.loads(scores_path.read_text(encoding="utf-8"))
        return dict(state, state="done", bleu=scores["bleu_detok"]["score"], artefacts=str(artefacts / name))
    if is_locked(runs / f"{name}.lock"):
        return dict(state, state="running")
    return dict(state, state="stopped" if epochs else "not started")


def study_status(runs: Path, artefacts: Path, configs, seeds, budget: int | None = None) -> list:
    """``run_state`` of every configuration x seed, seed-major as run_study.sh starts them."""
    return [run_state(runs, artefacts, f"{config}_s{seed}", budget) for seed in seeds for config in configs]


def render_status(states: list) -> str:
    def detail(state):
        of = f" of {state['budget_epochs']}" if state["budget_epochs"] else ""
        if state["state"] == "done":
            return f"test BLEU {state['bleu']:.2f} ({state['artefacts']})"
        if state["epoch"] is None:
            return "no epoch finished yet" if state["state"] == "running" else ""
        if (state["state"] == "stopped" and state["budget_epochs"]
                and state["epoch"] >= state["budget_epochs"]):
            return f"trained to epoch {state['epoch']}, not exported: run the study again to score it"
        return f"epoch {state['epoch']}{of} saved" + (
            "; run the study again to resume" if state["state"] == "stopped" else "")

    width = max([len(s["name"]) for s in states] + [3])
    lines = [f"{'run':<{width}}  {'state':<11}  detail"]
    lines += [f"{s['name']:<{width}}  {s['state']:<11}  {detail(s)}".rstrip() for s in states]
    counts = {}
    for s in states:
        counts[s["state"]] = counts.get(s["state"], 0) + 1
    lines.append(", ".join(f"{counts[k]} {k}" for k in ("done", "running", "stopped", "not started")
                           if k in counts) + f" ({len(states)} runs)")
    return "\n".join(lines)


# --------------------------------------------------------------------------- command line


def parse_seeds(text: str) -> list:
    """--seeds "1 2 3" as [1, 2, 3]; anything else than whole numbers is refused."""
    if not text.split() or not all(s.isdigit() for s in text.split()):
        raise StudyError(f"--seeds {text!r}: give whole numbers, e.g. \"1 2 3\"")
    return [int(s) for s in text.split()]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        description="Multi-seed study: learning curve, export, cost, status, report, frontier.")
    sub = parser.add_subparsers(dest="command", required=True)
    run_help = "a run folder of scripts/run_study.sh (checkpoints/, train.log, eval/)"
    eval_help = "which RUN/eval/NAME holds the scores (default: avg, the averaged checkpoint)"
    curve = sub.add_parser("curve", help="a run's per-epoch valid loss and BLEU")
    curve.add_argument("--run-dir", required=True, type=Path, help=run_help)
    exp = sub.add_parser("export", help="copy a run's small artefacts for committing")
    exp.add_argument("--run-dir", required=True, type=Path, help=run_help)
    exp.add_argument("--out", required=True, type=Path,
                     help="where the artefacts go: ARTEFACTS/NAME_sSEED")
    exp.add_argument("--eval", default="avg", help=eval_help)
    cost = sub.add_parser(
        "cost", help="FLOPs per token of training and decoding",
        description="FLOPs (torch.utils.flop_counter: matrix products and attention kernels) of "
        f"one training step per target token and of beam search per output token, on the first "
        f"{COST_SENTENCES} test sentences. Decoding is forced to one output length for every "
        "model (--decode-length), so equal architectures count equal. FLOPs depend on the "
        "architecture only, so --command counts a run from its command.txt without its "
        "checkpoint. fairseq's LightConv/DynamicConv train (and encode) through a dense T x T "
        "banded matrix product, which is counted in full (docs/design.md).")
    model = cost.add_mutually_exclusive_group(required=True)
    model.add_argument("--checkpoint", type=Path, help="a fairseq checkpoint")
    model.add_argument("--command", type=Path, dest="command_file",
                       help="a run's command.txt (study artefacts): its fairseq-train line's model, "
                       "untrained, on --data")
    cost.add_argument("--data", required=True, type=Path,
                      help="prepared corpus (the folder with bin/): its first test sentences are counted")
    cost.add_argument("--decode-length", type=int,
                      help="output tokens (before EOS) every beam search is forced to "
                      "(default: the counted sentences' mean reference length)")
    cost.add_argument("--out", required=True, type=Path, help="the JSON file to write")
    cost.add_argument("--force", action="store_true", help="replace --out if it exists")
    status = sub.add_parser(
        "status", help="which runs of a study are done, running, stopped or not started",
        description="Per configuration x seed: done (ARTEFACTS/NAME/eval/avg/scores.json; its test "
        "BLEU), running (a run_study.sh holds RUNS/NAME.lock), stopped (its last epoch checkpoint "
        "in RUNS/NAME/checkpoints) or not started. scripts/run_study.sh --status runs this.")
    status.add_argument("--runs", required=True, type=Path, help="run_study.sh's --runs folder")
    status.add_argument("--artefacts", required=True, type=Path, help="run_study.sh's --artefacts folder")
    status.add_argument("--configs", required=True, help='configuration names, e.g. "baseline contextpool"')
    status.add_argument("--seeds", default="1 2 3", help='seeds (default: "1 2 3")')
    status.add_argument("--budget-epochs", type=int, help="the study's budget, to show epochs as E of B")
    check = sub.add_parser(
        "check-corpus", help="is DATA the corpus the exported runs were trained on?",
        description="Compares the corpus each exported run recorded (scores.json, written by "
        "cpmt-evaluate) with the prepared corpus DATA, and fails naming the runs and what differs "
        "(dictionaries, SentencePiece model, languages). scripts/run_study.sh runs it before it "
        "trains anything, so a study never mixes corpora.")
    check.add_argument("--artefacts", required=True, type=Path, help="folder of exported runs")
    check.add_argument("--data", required=True, type=Path, help="prepared corpus (the folder with bin/)")
    check.add_argument("--eval", default="avg", help=eval_help)
    rep = sub.add_parser("report", help="the study report from exported artefacts")
    rep.add_argument("--artefacts", required=True, type=Path,
                     help="folder of exported runs, one NAME_sSEED folder each")
    rep.add_argument("--data", required=True, type=Path, help="prepared corpus (raw/test.de)")
    rep.add_argument("--out", required=True, type=Path,
                     help="report folder: study.md, study.json, bleu_vs_time.png")
    rep.add_argument("--baseline", default="baseline",
                     help="the configuration every other one is tested against (default: baseline)")
    rep.add_argument("--budget-epochs", type=int,
                     help="read each run's curve up to this epoch (default: all epochs)")
    rep.add_argument("--eval", default="avg", help=eval_help)
    rep.add_argument("--seeds", help='report only the runs of these seeds, e.g. "2 3 4" for a '
                     "confirmation that leaves out the seed which selected it (default: every seed)")
    from contextpool_mt import frontier

    frontier.add_parser(sub)
    return parser


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    try:
        # cost, report and frontier read the prepared corpus (DATA), not its bin/ (train.sh's)
        if getattr(args, "data", None) and (wrong_layout := binarised_folder_error(str(args.data))):
            raise StudyError(wrong_layout)
        if args.command == "curve":
            try:
                epochs = parse_train_log(args.run_dir / "train.log")["epochs"]
            except LogParseError as err:
                raise StudyError(str(err)) from err
            for e in epochs:
                print(f"epoch {e['epoch']:3d}  updates {e['num_updates']:6d}  "
                      f"valid loss {e['valid_loss']}  valid BLEU {e['valid_bleu']}  "
                      f"wall {e['cumulative_wall_seconds'] / 3600:.2f} h")
        elif args.command == "export":
            print(f"study: exported {export_run(args.run_dir, args.out, args.eval)}")
        elif args.command == "cost":
            if args.out.exists() and not args.force:
                raise StudyError(f"{args.out}: exists (--force to replace it)")
            if args.decode_length is not None and args.decode_length < 1:
                raise StudyError(f"--decode-length {args.decode_length}: must be >= 1")
            if args.checkpoint is not None:
                from contextpool_mt.pools import PoolInspectionError, load

                try:
                    model, task, _ = load(args.checkpoint, args.data / "bin", "en", "de")
                except PoolInspectionError as err:
                    raise StudyError(str(err)) from err
                source = {"checkpoint": str(args.checkpoint)}
            else:
                model, task = model_from_command(args.command_file, args.data / "bin")
                source = {"command": str(args.command_file),
                          "weights": "untrained (FLOPs do not depend on them)"}
            result = dict(source, **count_cost(model, task, decode_length=args.decode_length))
            args.out.parent.mkdir(parents=True, exist_ok=True)
            tmp = args.out.with_name(args.out.name + ".tmp")
            tmp.write_text(json.dumps(result, indent=1) + "\n", encoding="utf-8")
            tmp.replace(args.out)
            print(f"study: {args.out}: train {result['train_flops_per_target_token'] / 1e9:.4f} "
                  f"GFLOPs/token, decode {result['decode_flops_per_output_token'] / 1e9:.4f} GFLOPs/token")
        elif args.command == "frontier":
            from contextpool_mt import frontier

            print(f"study: wrote {frontier.run(args)}")
        elif args.command == "check-corpus":
            checked, found = corpus_mismatches(args.artefacts, args.data, args.eval)
            if found:
                by_difference = {}
                for name, what in found:
                    by_difference.setdefault(what, []).append(name)
                listed = "; ".join(
                    f"{what}: {', '.join(names[:4])}{f' and {len(names) - 4} more' if len(names) > 4 else ''}"
                    for what, names in by_difference.items())
                raise StudyError(
                    f"{args.data} is not the corpus {len(found)} of the {checked} exported runs in "
                    f"{args.artefacts} were trained on (recorded vs this corpus: {listed}): runs trained on it would not "
                    "be comparable with them. Prepare the corpus as they did (docs/results.md, \"One "
                    "corpus per comparison\": SentencePiece's --spm-threads), or give other --artefacts")
            print(f"study: {args.data} is the corpus of the {checked} exported runs in {args.artefacts} "
                  "that recorded one")
        elif args.command == "status":
            print(render_status(study_status(args.runs, args.artefacts, args.configs.split(),
                                             parse_seeds(args.seeds), args.budget_epochs)))
        else:
            report = build_study_report(args.artefacts, args.data, args.baseline, args.budget_epochs,
                                        args.eval, None if args.seeds is None else set(parse_seeds(args.seeds)))
            write_report(report, args.out)
            print(f"study: wrote {args.out / 'study.md'}")
    except StudyError as err:
        print(f"study: error: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
