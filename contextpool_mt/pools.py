"""What ContextPool's pools learn: predicted sizes and weights of a checkpoint on a test set.

Command line (``cpmt-inspect-pools`` runs :func:`main`)::

    cpmt-inspect-pools --data DATA_DIR --checkpoint CKPT [--checkpoint CKPT2 ...] \\
        --out DIR [--subset test] [--sentence 0] [--src en --tgt de] [--max-tokens 4096]

For every checkpoint, the model reads every sentence of the prepared split
(DATA_DIR/bin, the pieces of DATA_DIR's SentencePiece model) with teacher forcing: the
encoder pools the source pieces, the decoder the reference's prefix (``</s>`` first), as in
training. Forward hooks on every :class:`~fairseq_plugins.modules.ContextPool` record its input,
and the module's own :meth:`~fairseq_plugins.modules.ContextPool.predict` turns it into the
pooling weight ``w_i`` and size ``s_i = max_size * sigmoid(.)`` (the radius in tokens; ``sigma =
s / 2``) of every non-padding token, per pool where a layer has several
(``--contextpool-heads``). Written to DIR/NAME/ (NAME: the checkpoint's file stem, or
``epochE`` when several checkpoints share a stem):

* ``pools.json``: per layer (encoder and decoder, 0-based) the number of tokens, mean and
  quantiles (5, 25, 50, 75, 95 %) of sizes and weights over all its pools, the same per pool
  (``size_by_head``, ``weight_by_head``) where it has several, and the mean size over
  word-initial pieces (``▁...``), continuation pieces and punctuation pieces; the checkpoint's
  epoch and updates; the sentence shown in the heatmaps.
* ``sizes.png`` / ``weights.png``: histograms per layer (all its pools together).
* ``sentence.png``: for sentence ``--sentence`` (0-based line of the split), the pooling
  coefficients ``a[i, j]`` (row i pools columns j; rows sum to 1 under ``mean``) of each layer
  (and each pool) as a heatmap labelled with the pieces.

With several checkpoints DIR/pools.json lists them all and DIR/sizes_over_training.png shows
the mean size per layer against training updates: whether sizes widen, narrow or collapse.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import pickle
import sys
import unicodedata
from pathlib import Path

from contextpool_mt.corpus import binarised_folder_error
from contextpool_mt.plotting import pyplot

SCHEMA = "contextpool-mt/pools/v1"
QUANTILES = (0.05, 0.25, 0.5, 0.75, 0.95)
PIECE_CLASSES = ("word_initial", "continuation", "punctuation")
_WORD_START = "\u2581"  # SentencePiece's ▁


class PoolInspectionError(RuntimeError):
    """An input the tool cannot use; the message names it."""


def piece_class(piece: str) -> str | None:
    """'punctuation' (only punctuation once ▁ is dropped), 'word_initial' (starts with ▁) or
    'continuation'; None for special symbols such as </s>."""
    if piece.startswith("<") and piece.endswith(">"):
        return None
    bare = piece.lstrip(_WORD_START)
    if bare and all(unicodedata.category(ch).startswith("P") for ch in bare):
        return "punctuation"
    return "word_initial" if piece.startswith(_WORD_START) else "continuation"


def summarize(values) -> dict:
    """Count, mean and the QUANTILES of a 1-D float tensor."""
    import torch

    values = values.double()
    if values.numel() == 0:
        return {"count": 0, "mean": None, "quantiles": {}}
    qs = torch.quantile(values, torch.tensor(QUANTILES, dtype=torch.float64))
    return {
        "count": int(values.numel()),
        "mean": float(values.mean()),
        "quantiles": {f"{int(q * 100)}": float(v) for q, v in zip(QUANTILES, qs)},
    }


# --------------------------------------------------------------------------- the model


def load(checkpoint: Path, data_bin: Path, src: str, tgt: str):
    """Model, task and checkpoint_info of a checkpoint read once, its data pointed at ``data_bin``.

    Stops unless the checkpoint was trained on ``data_bin`` (contextpool_mt.provenance).
    """
    import fairseq_plugins  # noqa: F401  (registers the model, allowlists checkpoint contents)
    from fairseq import checkpoint_utils

    from contextpool_mt.checkpoints import checkpoint_info
    from contextpool_mt.provenance import ProvenanceError, check, spm_model_of

    if not checkpoint.is_file():
        raise PoolInspectionError(f"{checkpoint}: no such checkpoint file")
    overrides = {"data": str(data_bin), "source_lang": src, "target_lang": tgt}
    try:
        state = checkpoint_utils.load_checkpoint_to_cpu(str(checkpoint), overrides)
    except (OSError, RuntimeError, EOFError, pickle.UnpicklingError) as err:
        raise PoolInspectionError(f"{checkpoint}: cannot be read as a fairseq checkpoint ({err})") from err
    try:
        result = check(checkpoint, state, data_bin, src, tgt, spm_model_of(data_bin))
    except ProvenanceError as err:
        raise PoolInspectionError(str(err)) from err
    if not result["checked"]:
        logging.getLogger(__name__).warning("%s", result["note"])
    info = checkpoint_info(checkpoint, state)
    models, cfg, task = checkpoint_utils.load_model_ensemble_and_task([str(checkpoint)], state=state)
    return models[0].eval(), task, info


def pool_modules(model):
    """[(side, layer index, ContextPool)] in layer order, encoder first."""
    from fairseq_plugins.modules import ContextPool

    found = []
    for side in ("encoder", "decoder"):
        for index, layer in enumerate(getattr(model, side).layers):
            pools = [m for m in layer.modules() if isinstance(m, ContextPool)]
            if pools:
                found.append((side, index, pools[0]))
    if not found:
        raise PoolInspectionError("the checkpoint's model has no ContextPool layer to inspect")
    return found


class PoolRecorder:
    """Forward hooks on every ContextPool: inputs -> per-token weights and sizes (T x B x H,
    H pools)."""

    def __init__(self, pools):
        self.pools = pools
        self.records = {}
        self.handles = [
            pool.register_forward_hook(self._hook(side, index))
            for side, index, pool in pools
        ]

    def _hook(self, side, index):
        def hook(module, inputs, output):
            x = inputs[0]
            padding_mask = inputs[1] if len(inputs) > 1 else None
            weight, sigma = module.predict(x, padding_mask)
            self.records[(side, index)] = (weight.detach(), sigma.detach())

        return hook

    def close(self):
        for handle in self.handles:
            handle.remove()


def coefficient_matrix(pool, weight, sigma):
    """a[i, j] of one sentence and pool (T x T, zero outside the band): weight, sigma are T x 1."""
    import torch

    from fairseq_plugins.modules.context_pool import _coefficients, _pad_time

    left = pool.max_size
    right = 0 if pool.causal else pool.max_size
    coeffs = _coefficients(sigma, _pad_time(weight, left, right), left, right,
                           pool.normalize == "mean")[0][:, 0]  # T x D
    T = weight.size(0)
    full = torch.zeros(T, T + left + right, dtype=coeffs.dtype)
    for i in range(T):
        full[i, i : i + left + right + 1] = coeffs[i]
    return full[:, left : left + T]


# --------------------------------------------------------------------------- one checkpoint


def inspect_checkpoint(checkpoint: Path, data: Path, subset: str, src: str, tgt: str,
                       max_tokens: int, sentence: int) -> dict:
    """Statistics of every pool of ``checkpoint`` over the split, and one sentence's matrices."""
    import torch

    model, task, info = load(checkpoint, data / "bin", src, tgt)
    pools = pool_modules(model)
    try:
        task.load_dataset(subset)
    except FileNotFoundError as err:
        raise PoolInspectionError(f"{data / 'bin'}: no '{subset}' split ({err})") from err
    dataset = task.dataset(subset)
    if not 0 <= sentence < len(dataset):
        raise PoolInspectionError(
            f"--sentence {sentence}: the '{subset}' split has {len(dataset)} sentences "
            f"(valid 0..{len(dataset) - 1})"
        )
    itr = task.get_batch_iterator(
        dataset=dataset, max_tokens=max_tokens, required_batch_size_multiple=1,
        ignore_invalid_inputs=False,
    ).next_epoch_itr(shuffle=False)
    dictionary = {"encoder": task.source_dictionary, "decoder": task.target_dictionary}
    pad = task.source_dictionary.pad()
    sizes = {key[:2]: [] for key in pools}
    weights = {key[:2]: [] for key in pools}
    classes = {key[:2]: {c: [] for c in PIECE_CLASSES} for key in pools}
    shown = None
    recorder = PoolRecorder(pools)
    try:
        with torch.no_grad():
            for sample in itr:
                net_input = sample["net_input"]
                model(**net_input)
                tokens = {"encoder": net_input["src_tokens"], "decoder": net_input["prev_output_tokens"]}
                for side, index, pool in pools:
                    weight, sigma = recorder.records[(side, index)]  # T x B x H
                    tok = tokens[side].t()  # T x B
                    keep = tok.ne(pad)
                    size = 2 * sigma  # s = max_size * sigmoid(.), sigma = s / 2
                    sizes[(side, index)].append(size[keep].float())  # tokens x H
                    weights[(side, index)].append(weight[keep].float())
                    symbols = [dictionary[side][t] for t in tok[keep].tolist()]
                    # a piece's size: the mean over the layer's pools
                    for value, symbol in zip(size[keep].mean(-1).tolist(), symbols):
                        kind = piece_class(symbol)
                        if kind:
                            classes[(side, index)][kind].append(value)
                ids = sample["id"].tolist()
                if sentence in ids:
                    b = ids.index(sentence)
                    shown = {"id": sentence, "layers": []}
                    for side, index, pool in pools:
                        weight, sigma = recorder.records[(side, index)]
                        keep = tokens[side][b].ne(pad)
                        pieces = [dictionary[side][t] for t in tokens[side][b][keep].tolist()]
                        for head in range(pool.heads):
                            w = weight[:, b, head][keep].unsqueeze(1).double()
                            s = sigma[:, b, head][keep].unsqueeze(1).double()
                            entry = {"side": side, "layer": index, "pieces": pieces,
                                     "coefficients": coefficient_matrix(pool, w, s).tolist()}
                            if pool.heads > 1:
                                entry["head"] = head
                            shown["layers"].append(entry)
    finally:
        recorder.close()
    layers = []
    for side, index, pool in pools:
        key = (side, index)
        # tokens x H
        all_sizes = torch.cat(sizes[key]) if sizes[key] else torch.zeros(0, pool.heads)
        all_weights = torch.cat(weights[key]) if weights[key] else torch.zeros(0, pool.heads)
        layer = {
            "side": side,
            "layer": index,
            "max_size": pool.max_size,
            "normalize": pool.normalize,
            "causal": pool.causal,
            "heads": pool.heads,
            "predictor_kernel": pool.predictor_kernel,
            "size": summarize(all_sizes.flatten()),
            "weight": summarize(all_weights.flatten()),
            "mean_size_by_piece": {
                kind: (sum(v) / len(v) if v else None) for kind, v in classes[key].items()
            },
            "tokens_by_piece": {kind: len(v) for kind, v in classes[key].items()},
            "_sizes": all_sizes.flatten(),
            "_weights": all_weights.flatten(),
        }
        if pool.heads > 1:
            layer["size_by_head"] = [summarize(all_sizes[:, h]) for h in range(pool.heads)]
            layer["weight_by_head"] = [summarize(all_weights[:, h]) for h in range(pool.heads)]
        layers.append(layer)
    return {
        "checkpoint": str(checkpoint.resolve()),
        "epoch": info.get("epoch"),
        "num_updates": info.get("num_updates"),
        "subset": subset,
        "sentences": len(dataset),
        "layers": layers,
        "sentence": shown,
    }


# --------------------------------------------------------------------------- plots


def _grid(n):
    cols = min(n, 3)
    return math.ceil(n / cols), cols


def plot_histograms(result: dict, field: str, path: Path, xlabel: str):
    plt = pyplot()

    layers = result["layers"]
    rows, cols = _grid(len(layers))
    fig, axes = plt.subplots(rows, cols, figsize=(4 * cols, 2.8 * rows), squeeze=False)
    for ax, layer in zip(axes.flat, layers):
        values = layer[f"_{field}s"].numpy()
        upper = layer["max_size"] if field == "size" else 1.0
        ax.hist(values, bins=40, range=(0, upper), color="tab:blue")
        stats = layer[field]
        if stats["mean"] is not None:
            ax.axvline(stats["mean"], color="tab:red", lw=1)
            ax.set_title(f"{layer['side']} {layer['layer']}: mean {stats['mean']:.2f}, "
                         f"median {stats['quantiles']['50']:.2f}", fontsize=9)
        ax.set_xlabel(xlabel, fontsize=8)
    for ax in list(axes.flat)[len(layers):]:
        ax.axis("off")
    fig.suptitle(f"{Path(result['checkpoint']).name} (update {result['num_updates']}), "
                 f"{result['subset']}: {xlabel} per token", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_sentence(result: dict, path: Path):
    plt = pyplot()

    shown = result["sentence"]
    layers = shown["layers"]
    rows, cols = _grid(len(layers))
    longest = max(len(layer["pieces"]) for layer in layers)
    side = max(3.5, 0.22 * longest)
    fig, axes = plt.subplots(rows, cols, figsize=(side * cols, side * rows), squeeze=False)
    for ax, layer in zip(axes.flat, layers):
        ax.imshow(layer["coefficients"], cmap="viridis", vmin=0)
        ticks = range(len(layer["pieces"]))
        ax.set_xticks(ticks, layer["pieces"], rotation=90, fontsize=6)
        ax.set_yticks(ticks, layer["pieces"], fontsize=6)
        head = f" head {layer['head']}" if "head" in layer else ""
        ax.set_title(f"{layer['side']} layer {layer['layer']}{head}", fontsize=9)
    for ax in list(axes.flat)[len(layers):]:
        ax.axis("off")
    fig.suptitle(f"sentence {shown['id']}: pooling coefficients a[i, j] (row i pools column j)",
                 fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def plot_over_training(results: list, path: Path):
    plt = pyplot()

    ordered = sorted(results, key=lambda r: r["num_updates"] or 0)
    fig, ax = plt.subplots(figsize=(6, 4))
    for i, layer in enumerate(ordered[0]["layers"]):
        xs = [r["num_updates"] for r in ordered]
        ys = [r["layers"][i]["size"]["mean"] for r in ordered]
        ax.plot(xs, ys, marker="o", ls="-" if layer["side"] == "encoder" else "--",
                label=f"{layer['side']} {layer['layer']}")
    ax.set_xlabel("training updates")
    ax.set_ylabel("mean pooling size s (tokens)")
    ax.set_ylim(bottom=0)
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


# --------------------------------------------------------------------------- command line


def _public(result: dict) -> dict:
    out = dict(result)
    out["layers"] = [{k: v for k, v in layer.items() if not k.startswith("_")}
                     for layer in result["layers"]]
    return out


def _names(results):
    stems = [Path(r["checkpoint"]).stem for r in results]
    if len(set(stems)) == len(stems):
        return stems
    return [f"epoch{r['epoch']}_update{r['num_updates']}" for r in results]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        description="Histograms and heatmaps of what ContextPool's pools learn (see module doc)."
    )
    parser.add_argument("--data", required=True, type=Path,
                        help="prepared corpus (cpmt-prepare-corpus output: bin/, spm/)")
    parser.add_argument("--checkpoint", required=True, type=Path, action="append",
                        help="a ContextPool checkpoint; repeat for several (e.g. early, middle, final)")
    parser.add_argument("--out", required=True, type=Path, help="output directory")
    parser.add_argument("--subset", default="test", help="binarised split to read [test]")
    parser.add_argument("--sentence", type=int, default=0,
                        help="0-based line of the split shown in the heatmaps [0]")
    parser.add_argument("--src", default="en")
    parser.add_argument("--tgt", default="de")
    parser.add_argument("--max-tokens", type=int, default=4096)
    return parser


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    import torch

    torch.set_grad_enabled(False)
    results = []
    try:
        if wrong_layout := binarised_folder_error(str(args.data)):
            raise PoolInspectionError(wrong_layout)
        for checkpoint in args.checkpoint:
            print(f"inspect_pools: {checkpoint}", flush=True)
            results.append(inspect_checkpoint(checkpoint, args.data, args.subset, args.src,
                                              args.tgt, args.max_tokens, args.sentence))
    except PoolInspectionError as err:
        print(f"inspect_pools: error: {err}", file=sys.stderr)
        return 2
    args.out.mkdir(parents=True, exist_ok=True)
    for name, result in zip(_names(results), results):
        folder = args.out / name
        folder.mkdir(exist_ok=True)
        plot_histograms(result, "size", folder / "sizes.png", "pooling size s (tokens)")
        plot_histograms(result, "weight", folder / "weights.png", "pooling weight w")
        plot_sentence(result, folder / "sentence.png")
        with open(folder / "pools.json", "w", encoding="utf-8") as handle:
            json.dump({"schema": SCHEMA, **_public(result)}, handle, indent=1)
        for layer in result["layers"]:
            stats = layer["size"]
            by = layer["mean_size_by_piece"]
            per_head = ""
            if "size_by_head" in layer:
                per_head = " (per head " + ", ".join(
                    _fmt(h["mean"]) for h in layer["size_by_head"]) + ")"
            print(f"  {name} {layer['side']} {layer['layer']}: size mean {stats['mean']:.3f}"
                  f"{per_head} (median {stats['quantiles']['50']:.3f}); word-initial "
                  f"{_fmt(by['word_initial'])}, continuation {_fmt(by['continuation'])}, "
                  f"punctuation {_fmt(by['punctuation'])}")
    if len(results) > 1:
        plot_over_training(results, args.out / "sizes_over_training.png")
        with open(args.out / "pools.json", "w", encoding="utf-8") as handle:
            json.dump({"schema": SCHEMA, "checkpoints": [_public(r) for r in results]}, handle,
                      indent=1)
    print(f"inspect_pools: wrote {args.out}")
    return 0


def _fmt(value):
    return "n/a" if value is None else f"{value:.3f}"


if __name__ == "__main__":
    sys.exit(main())
