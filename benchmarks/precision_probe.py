"""How much bf16 autocast moves a trained model's loss and gradients away from fp32's.

The study's bf16 and fp32 figures disagree on ContextPool's gain at 3+3 (+0.22 and +0.79
BLEU). If bf16 mattered more to the pooling than to the rest of the model, it would show
here: for each checkpoint, on the prepared corpus it was trained on,

* the teacher-forced test NLL per target token, in fp32 and under bf16 autocast (the
  precision ``--task translation_bf16`` trains, validates and generates in);
* the gradient of the NLL summed over the first N training batches (shuffled with seed 1),
  in fp32 and with the forward under bf16 autocast (backward outside it, as that task
  trains), compared per parameter group: cosine and relative error ``|g_bf16 - g_fp32| /
  |g_fp32|``. ContextPool's predictors (``weight_proj``, ``size_proj``) are groups of their
  own, per side.

Both passes run in eval mode (no dropout), so they differ only by the precision of the
forward. On a CPU without native bf16 the bf16 passes are slow (~10x here): keep N small.

    python benchmarks/precision_probe.py --data DATA_DIR --checkpoint RUN/checkpoints/average.pt \
        [--checkpoint ...] [--batches 2] [--out probe.json]

DATA_DIR is the prepared corpus (its ``bin/``), as for ``cpmt-inspect-pools``.
"""

import argparse
import contextlib
import json
import re
import sys
import time
from collections import defaultdict
from pathlib import Path

import torch

from contextpool_mt.pools import PoolInspectionError, load
from fairseq_plugins.tasks.translation_bf16 import bf16_autocast

GROUPS = (  # (pattern on the parameter name, group); the first match names the group
    (r"^(encoder|decoder)\..*\.(weight_proj|size_proj)\.", r"pool \2 (\1)"),
    (r"embed", "embeddings"),
    (r"self_attn|encoder_attn", "attention"),
    (r"fc1|fc2", "ffn"),
    (r"layer_norm", "layer norms"),
)


def group_of(name: str) -> str:
    """The parameter group a parameter's name falls in (``other`` if none)."""
    for pattern, group in GROUPS:
        match = re.search(pattern, name)
        if match:
            return match.expand(group)
    return "other"


def _precision(model, bf16: bool):
    return bf16_autocast(model) if bf16 else contextlib.nullcontext()


def summed_nll(model, sample, pad: int, bf16: bool) -> torch.Tensor:
    """Sum over the target tokens of -log p(token), the forward in fp32 or bf16 autocast."""
    with _precision(model, bf16):
        logits = model(**sample["net_input"])
        lprobs = model.get_normalized_probs(logits, log_probs=True).float()
    target = sample["target"]
    nll = -lprobs.gather(-1, target.unsqueeze(-1)).squeeze(-1)
    return nll[target.ne(pad)].sum()


def test_nll(model, batches, pad: int, bf16: bool) -> float:
    """Teacher-forced NLL per target token over ``batches``."""
    total, tokens = 0.0, 0
    with torch.no_grad():
        for sample in batches:
            total += summed_nll(model, sample, pad, bf16).item()
            tokens += sample["target"].ne(pad).sum().item()
    return total / tokens


def gradients(model, batches, pad: int, bf16: bool) -> dict:
    """{parameter name: gradient of the NLL summed over ``batches``}."""
    model.zero_grad()
    for sample in batches:
        summed_nll(model, sample, pad, bf16).backward()
    return {n: p.grad.detach().clone() for n, p in model.named_parameters() if p.grad is not None}


def compare(reference: dict, other: dict) -> dict:
    """{group: {"cosine", "relative_error", "parameters"}} of ``other`` against ``reference``."""
    sums = defaultdict(lambda: torch.zeros(4, dtype=torch.float64))  # a.b, a.a, b.b, numel
    for name, a in reference.items():
        a, b = a.double().flatten(), other[name].double().flatten()
        sums[group_of(name)] += torch.stack([a @ b, a @ a, b @ b, torch.tensor(a.numel())])
    result = {}
    for group, (ab, aa, bb, numel) in sorted(sums.items()):
        result[group] = {
            "cosine": (ab / (aa * bb).sqrt()).item(),
            "relative_error": ((aa - 2 * ab + bb).clamp_min(0) / aa).sqrt().item(),
            "parameters": int(numel),
        }
    return result


def batches_of(task, split: str, max_tokens: int, count=None, shuffle=False):
    task.load_dataset(split)
    itr = task.get_batch_iterator(
        dataset=task.dataset(split), max_tokens=max_tokens, seed=1
    ).next_epoch_itr(shuffle=shuffle)
    return [sample for _, sample in zip(range(count or len(itr)), itr)]


def probe(checkpoint: Path, data: Path, src: str, tgt: str, n_batches: int, max_tokens: int) -> dict:
    model, task, info = load(checkpoint, data / "bin", src, tgt)
    pad = task.target_dictionary.pad()
    test = batches_of(task, "test", max_tokens)
    train = batches_of(task, "train", max_tokens, n_batches, shuffle=True)
    result = {"checkpoint": str(checkpoint), "arch": info["arch"], "epoch": info["epoch"],
              "train_batches": n_batches, "seconds": {}}
    for name, bf16 in (("fp32", False), ("bf16", True)):
        start = time.time()
        result[f"test_nll_{name}"] = test_nll(model, test, pad, bf16)
        result[f"grad_{name}"] = gradients(model, train, pad, bf16)
        result["seconds"][name] = round(time.time() - start, 1)
    result["gradients"] = compare(result.pop("grad_fp32"), result.pop("grad_bf16"))
    return result


def print_result(r: dict):
    print(f"{r['checkpoint']} ({r['arch']}, epoch {r['epoch']}): test NLL per token "
          f"fp32 {r['test_nll_fp32']:.5f}, bf16 {r['test_nll_bf16']:.5f} "
          f"({r['test_nll_bf16'] - r['test_nll_fp32']:+.5f}); seconds {r['seconds']}")
    print(f"  gradients on {r['train_batches']} training batches, bf16 against fp32:")
    for group, g in r["gradients"].items():
        print(f"    {group:24s} cosine {g['cosine']:.5f}  relative error {g['relative_error']:.4f}"
              f"  ({g['parameters']:,} parameters)")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, required=True, help="prepared corpus (with bin/)")
    parser.add_argument("--checkpoint", type=Path, action="append", required=True)
    parser.add_argument("--src", default="en")
    parser.add_argument("--tgt", default="de")
    parser.add_argument("--batches", type=int, default=2, help="training batches [2]")
    parser.add_argument("--max-tokens", type=int, default=4096, help="per batch [4096]")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", type=Path, help="write the results as JSON")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    results = []
    for checkpoint in args.checkpoint:
        try:
            results.append(probe(checkpoint, args.data, args.src, args.tgt, args.batches,
                                 args.max_tokens))
        except PoolInspectionError as err:
            sys.exit(f"precision_probe: {err}")
        print_result(results[-1])
    if args.out:
        args.out.write_text(json.dumps({"torch": torch.__version__, "results": results}, indent=1) + "\n")


if __name__ == "__main__":
    main()
