"""What ContextPool costs: a plain Transformer against its ContextPool twin, in one process.

    python benchmarks/benchmark.py [--quick] [--device cpu|cuda] [--out docs/benchmarks/NAME.json]
    python benchmarks/benchmark.py --frontier [--precision fp32,bf16] [--out ...]

Three measurements (and a fourth, ``models``, for any architecture), each running the baseline
and ContextPool alternately (A, B, B, A, ...)
so that both see the same machine load, and each reported as a ContextPool / baseline ratio
(the median of the per-repeat ratios). Times are wall time on CUDA and the process's CPU
time on a CPU, which other processes on a shared machine do not inflate (see ``clock``):

* ``op``: the ContextPool module alone (embed 512, max_size 8, ``mean``, bidirectional: the
  encoder's, the dearer of the two) against the layer's self-attention (fairseq's
  MultiheadAttention, 8 heads), forward + backward, at several sequence lengths with the
  same number of tokens per batch: time, peak memory and autograd-graph memory.
* ``train``: one training step (forward, label-smoothed cross-entropy, backward, Adam step) of
  ``transformer_*`` against ``contextpool_transformer_*`` on the same batch: target words
  per second and peak memory.
* ``generate``: beam search (fairseq's SequenceGenerator, beam 4, incremental decoding) with
  the same randomly initialised models; ``min_len = max_len`` so both run the same number of
  steps: sentences per second.
* ``models`` (``--models NAME,...``, ``--model NAME=ARCH OPTIONS``, ``--frontier``): any
  registered architecture, e.g. the study's configurations (configs/study/configurations.txt:
  LightConv, DynamicConv, the 1+1 / 2+2 depths), each built through fairseq-train's argument
  parser with the options scripts/run_study.sh trains it with; training words/s, peak memory
  and generation sentences/s of all of them in one interleaved loop per part, each also as a
  ratio to ``--reference`` (default ``baseline``, the Transformer 3+3) in the same precision.

``--precision fp32,bf16`` runs ``train``, ``generate`` and ``models`` in each precision, all of them
interleaved in one loop, and adds each model's speed in that precision / its fp32 speed. bf16
is mixed precision as ``--task translation_bf16`` trains: forward and loss under
``torch.autocast(dtype=torch.bfloat16)``, fp32 weights and optimizer state (fp16 the same
with float16, CUDA only). ``--sizes`` picks the model sizes (default: all).

The results go to a JSON file (``--out``) and to a section of docs/results.md between
``<!-- benchmark:NAME start -->`` and ``<!-- benchmark:NAME end -->`` (other sections are
kept). ``make bench`` runs the full set; ``--quick`` is a 1-2 minute version on a CPU.
"""

import argparse
import contextlib
import json
import logging
import os
import platform
import re
import shlex
import statistics
import sys
import time
import types
from typing import Callable, Dict, List

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
logging.getLogger("fairseq").setLevel(logging.WARNING)  # quiet imports

import torch  # noqa: E402
import fairseq  # noqa: E402
from fairseq.criterions.label_smoothed_cross_entropy import (  # noqa: E402
    LabelSmoothedCrossEntropyCriterion,
)
from fairseq.data import Dictionary  # noqa: E402
from fairseq.models import ARCH_CONFIG_REGISTRY, ARCH_MODEL_REGISTRY  # noqa: E402
from fairseq.modules import MultiheadAttention  # noqa: E402
from fairseq.sequence_generator import SequenceGenerator  # noqa: E402
from torch.utils._python_dispatch import TorchDispatchMode  # noqa: E402

import fairseq_plugins  # noqa: E402,F401  (registers the contextpool_transformer model)
from fairseq_plugins.modules import ContextPool  # noqa: E402
from contextpool_mt.study import StudyError, model_options, read_configurations  # noqa: E402

TARGETS = {
    # ContextPool / baseline, at every size in "target_sizes" and in every precision
    "train_wps_ratio_min": 0.95,
    "train_memory_ratio_max": 1.05,
    "generate_speed_ratio_min": 0.95,
    "target_sizes": ["wmt", "3+3x256", "tiny"],
    # bf16 / fp32 training words/s, for both models, at this size
    "bf16_train_speedup_min": 1.5,
    "bf16_speedup_size": "3+3x256",
}

# The model sizes: name -> (baseline arch, ContextPool arch, vocabulary size, arch overrides).
# The vocabularies are those of the usual joined set-ups (WMT14 EN-DE ~32k, IWSLT14 DE-EN ~10k,
# Multi30k 8k); the output layer is a large part of a step, so it is kept realistic. 3+3x256 is
# the size of the Multi30k experiments (docs/results.md).
SIZES = {
    "wmt": ("transformer_wmt_en_de", "contextpool_transformer_wmt_en_de", 32768, {}),
    "3+3x256": ("transformer_tiny", "contextpool_transformer_tiny", 8000, dict(
        encoder_layers=3, decoder_layers=3, encoder_embed_dim=256, decoder_embed_dim=256,
        encoder_ffn_embed_dim=1024, decoder_ffn_embed_dim=1024,
        encoder_attention_heads=4, decoder_attention_heads=4,
    )),
    "iwslt": ("transformer_iwslt_de_en", "contextpool_transformer_iwslt_de_en", 10000, {}),
    "tiny": ("transformer_tiny", "contextpool_transformer_tiny", 1000, {}),
}
PRECISIONS = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}
# --frontier: the study's configurations of issue 23's quality-cost frontier (3+3, 2+3 and the
# 1+1 / 2+2 sweep of the Transformer, ContextPool and both convolution peers)
FRONTIER = [
    "baseline", "contextpool", "lightconv", "dynamicconv", "baseline_enc2", "contextpool_enc2",
    "baseline_1x1", "contextpool_1x1", "lightconv_1x1", "dynamicconv_1x1",
    "baseline_2x2", "contextpool_2x2", "lightconv_2x2", "dynamicconv_2x2",
]

FULL = dict(
    op_lengths=[32, 64, 128, 256, 512, 1024, 2048],
    op_tokens=4096,
    op_repeats=5,
    sizes=list(SIZES),
    train_tokens=4096,
    train_length=32,
    train_repeats=5,
    gen_sentences=32,
    gen_src_length=32,
    gen_length=32,
    gen_repeats=3,
    beam=4,
    models_vocab=8000,  # --models: Multi30k's joined dictionary (8,028 entries), as 3+3x256
)
QUICK = dict(
    FULL,
    op_lengths=[32, 128, 512],
    op_tokens=1024,
    op_repeats=3,
    sizes=["wmt", "3+3x256", "tiny"],
    train_tokens=512,
    train_repeats=3,
    gen_sentences=8,
    gen_length=16,
    gen_repeats=2,
)


# --------------------------------------------------------------------------- measuring


def synchronize(device: str):
    if device == "cuda":
        torch.cuda.synchronize()


def clock(device: str) -> Callable[[], float]:
    """The timer: wall time on CUDA; on CPU the CPU time of this process.

    On a shared CPU machine other processes lengthen the wall time of a call by whatever
    time they take from it, which swings from run to run; the process's CPU time
    (``time.process_time``) leaves that out. With several torch threads it adds up their
    times, so it is a cost (CPU-seconds), compared like with like between the two models.
    """
    return time.perf_counter if device == "cuda" else time.process_time


def interleaved_times(fns: Dict[str, Callable], repeats: int, device: str, warmup: int = 1):
    """Seconds per call of each function (see ``clock``), calling them in turn, the order
    flipped every repeat."""
    now = clock(device)
    names = list(fns)
    for _ in range(warmup):
        for name in names:
            fns[name]()
    synchronize(device)
    times = {name: [] for name in names}
    for r in range(repeats):
        for name in names if r % 2 == 0 else names[::-1]:
            start = now()
            fns[name]()
            synchronize(device)
            times[name].append(now() - start)
    return times


def median_ratio(numerators: List[float], denominators: List[float]) -> float:
    """Median of the per-repeat ratios (each pair ran back to back)."""
    return statistics.median(n / d for n, d in zip(numerators, denominators))


def autocast(precision: str, device: str):
    """The precision's context: nothing for fp32, else autocast to bf16 / fp16 (fp32 weights)."""
    dtype = PRECISIONS[precision]
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device_type=device, dtype=dtype)


def precision_speedups(times: dict, precisions, part: str, size: str,
                       models=("baseline", "contextpool")) -> list:
    """Each model's speed in each precision / its fp32 speed, from one interleaved loop."""
    if "fp32" not in precisions:
        return []
    return [
        dict(part=part, size=size, model=model, precision=precision,
             speedup=median_ratio(times[f"{model}/fp32"], times[f"{model}/{precision}"]))
        for model in models
        for precision in precisions
        if precision != "fp32"
    ]


def peak_memory_bytes(fn: Callable, device: str) -> int:
    """Peak bytes of tensor memory allocated by ``fn`` above what was allocated before it.

    CUDA: ``torch.cuda.max_memory_allocated`` (the caching allocator's own count of live
    tensor bytes). CPU has no such counter, so the call runs under ``torch.profiler`` with
    ``profile_memory=True``, which records every tensor allocation and free of the CPU
    allocator with its size; the running sum of those sizes, in time order, is the tensor
    memory in use, and its maximum is the peak. This counts exactly the bytes of tensors
    (activations kept for backward, temporaries, gradients, optimizer buffers), not the
    process's RSS, so it is deterministic and comparable with the CUDA figure.
    """
    if device == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        before = torch.cuda.memory_allocated()
        fn()
        torch.cuda.synchronize()
        return torch.cuda.max_memory_allocated() - before
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        fn()

    def walk(nodes):
        for node in nodes:
            yield node
            yield from walk(node.children)

    tree = prof.profiler.kineto_results.experimental_event_tree()
    allocations = sorted(
        (n for n in walk(tree) if n.tag.name == "Allocation"), key=lambda n: n.start_time_ns
    )
    in_use = peak = 0
    for event in allocations:
        in_use += event.extra_fields.alloc_size
        peak = max(peak, in_use)
    return peak


def saved_tensor_bytes(forward: Callable) -> int:
    """Bytes of the distinct storages that autograd keeps for backward while ``forward`` runs.

    Deterministic (no timing, no allocator): it is what the graph holds between forward and
    backward, the part of training memory that grows with depth and sequence length.
    """
    storages = {}

    def pack(tensor):
        storage = tensor.untyped_storage()
        storages[(storage.device, storage.data_ptr())] = storage.nbytes()
        return tensor

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda tensor: tensor):
        forward()
    return sum(storages.values())


def tensor_bytes(tensors) -> int:
    return sum(t.numel() * t.element_size() for t in tensors if torch.is_tensor(t))


# --------------------------------------------------------------------------- op


def op_benchmark(lengths, tokens, repeats, device, embed_dim=512, heads=8, max_size=8, seed=0):
    """ContextPool alone vs. MultiheadAttention, forward + backward, equal tokens per batch."""
    torch.manual_seed(seed)
    attention = MultiheadAttention(embed_dim, heads, self_attention=True).to(device)
    pool = ContextPool(embed_dim, max_size=max_size, normalize="mean").to(device)
    rows = []
    for length in lengths:
        batch = max(1, tokens // length)
        x = torch.randn(length, batch, embed_dim, device=device, requires_grad=True)
        grad = torch.randn(length, batch, embed_dim, device=device)
        forwards = {
            "attention": lambda: attention(x, x, x, need_weights=False)[0],
            "contextpool": lambda: pool(x),
        }

        def step(forward):
            x.grad = None
            forward().backward(grad)

        steps = {name: (lambda f=f: step(f)) for name, f in forwards.items()}
        times = interleaved_times(steps, repeats, device)
        peak = {name: peak_memory_bytes(f, device) for name, f in steps.items()}
        saved = {name: saved_tensor_bytes(f) for name, f in forwards.items()}
        n = length * batch
        rows.append(
            dict(
                length=length,
                batch=batch,
                tokens=n,
                attention_ms=1e3 * statistics.median(times["attention"]),
                contextpool_ms=1e3 * statistics.median(times["contextpool"]),
                time_ratio=median_ratio(times["contextpool"], times["attention"]),
                contextpool_us_per_token=1e6 * statistics.median(times["contextpool"]) / n,
                attention_peak_bytes=peak["attention"],
                contextpool_peak_bytes=peak["contextpool"],
                memory_ratio=peak["contextpool"] / peak["attention"],
                attention_saved_bytes=saved["attention"],
                contextpool_saved_bytes=saved["contextpool"],
                contextpool_saved_bytes_per_token=saved["contextpool"] / n,
                seconds=times,
            )
        )
        print(
            f"  op T={length:5d} B={batch:4d}: attention {rows[-1]['attention_ms']:8.2f} ms, "
            f"contextpool {rows[-1]['contextpool_ms']:8.2f} ms "
            f"(x{rows[-1]['time_ratio']:.3f}); peak memory x{rows[-1]['memory_ratio']:.3f}",
            flush=True,
        )
    per_token = [r["contextpool_us_per_token"] for r in rows]
    saved_per_token = [r["contextpool_saved_bytes_per_token"] for r in rows]
    return dict(
        embed_dim=embed_dim,
        heads=heads,
        max_size=max_size,
        normalize="mean",
        causal=False,
        tokens_per_batch=tokens,
        rows=rows,
        # a linear-time op costs the same per token at every length (equal tokens per batch)
        contextpool_time_per_token_spread=max(per_token) / min(per_token),
        contextpool_saved_per_token_spread=max(saved_per_token) / min(saved_per_token),
    )


# --------------------------------------------------------------------------- models


def make_dictionary(size: int) -> Dictionary:
    d = Dictionary()
    for i in range(size - d.nspecial):
        d.add_symbol(f"w{i}")
    d.finalize(padding_factor=1)
    return d


def build_model(arch: str, dictionary: Dictionary, seed: int, **overrides):
    """A model of ``arch`` built through fairseq's registries, as fairseq-train builds it."""
    args = argparse.Namespace(arch=arch, share_all_embeddings=True, **overrides)
    ARCH_CONFIG_REGISTRY[arch](args)
    task = types.SimpleNamespace(source_dictionary=dictionary, target_dictionary=dictionary)
    torch.manual_seed(seed)
    return ARCH_MODEL_REGISTRY[arch].build_model(args, task)


def random_tokens(dictionary: Dictionary, batch: int, length: int, generator) -> torch.Tensor:
    """batch x length tokens, ending with EOS, as fairseq's datasets make them."""
    tokens = torch.randint(dictionary.nspecial, len(dictionary), (batch, length), generator=generator)
    tokens[:, -1] = dictionary.eos()
    return tokens


def make_sample(dictionary, batch, src_length, tgt_length, device, seed=0):
    g = torch.Generator().manual_seed(seed)
    src = random_tokens(dictionary, batch, src_length, g)
    target = random_tokens(dictionary, batch, tgt_length, g)
    prev = torch.cat([target[:, -1:], target[:, :-1]], dim=1)  # EOS first, shifted right
    return {
        "net_input": {
            "src_tokens": src.to(device),
            "src_lengths": torch.full((batch,), src_length, device=device),
            "prev_output_tokens": prev.to(device),
        },
        "target": target.to(device),
        "ntokens": target.numel(),
        "nsentences": batch,
    }


# --------------------------------------------------------------------------- training


def training_step(model, criterion, sample, precision, device):
    """A closure running one training step of ``model`` on ``sample`` (forward and loss under
    the precision's autocast, as translation_bf16 trains; backward; Adam), run once so that
    Adam's state exists; with the optimizer and the bytes of parameters + Adam state."""
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-4, betas=(0.9, 0.98), eps=1e-8)

    def step():
        optimizer.zero_grad(set_to_none=True)
        with autocast(precision, device):  # forward and loss, as translation_bf16
            loss, _, _ = criterion(model, sample)
        loss.backward()
        optimizer.step()

    step()  # creates Adam's state, so memory is measured at a steady state
    persistent = tensor_bytes(model.parameters()) + tensor_bytes(
        v for state in optimizer.state.values() for v in state.values()
    )
    return step, optimizer, persistent


class _OperatorCounter(TorchDispatchMode):
    """Counts the ATen operators dispatched while active, other than views (which only relabel
    memory): on a GPU most of those counted launch a kernel, a few (``empty``) none."""

    def __init__(self):
        super().__init__()
        self.count = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        if not func.is_view:
            self.count += 1
        return func(*args, **(kwargs or {}))


def operator_count(model, criterion, sample, precision, device) -> int:
    """The operators one forward, loss and backward of ``model`` on ``sample`` dispatch, from
    gradients set to None as a training step's ``zero_grad`` leaves them, after one step not
    counted (a first forward builds some buffers once, e.g. the sinusoidal positions). The
    optimizer's step is left out: its count depends on the optimizer's implementation, not on
    the model. ``model``'s gradients are left set."""
    counter = _OperatorCounter()
    for counted in (contextlib.nullcontext(), counter):
        model.zero_grad(set_to_none=True)
        with counted:
            with autocast(precision, device):
                loss, _, _ = criterion(model, sample)
            loss.backward()
    return counter.count


def step_peaks(steps, optimizers, persistent, device) -> dict:
    """Each step's peak on top of parameters and Adam state (gradients are freed each step)."""
    peak = {}
    for key, step in steps.items():
        optimizers[key].zero_grad(set_to_none=True)
        peak[key] = persistent[key] + peak_memory_bytes(step, device)
    return peak


def generation_run(model, dictionary, sample, beam, length, precision, device, lengths, key):
    """A closure running beam search with every output forced to ``length`` tokens + EOS
    (``min_len = max_len``), recording the output lengths in ``lengths[key]``."""
    generator = SequenceGenerator(
        [model], dictionary, beam_size=beam, max_len_a=0, max_len_b=length, min_len=length
    )

    def run():
        with torch.no_grad(), autocast(precision, device):
            hypos = generator.generate(generator.model.models, sample)
        lengths[key] = sorted({len(h[0]["tokens"]) for h in hypos})

    return run


def train_benchmark(sizes, tokens, length, repeats, device, precisions=("fp32",), seed=0):
    """Training steps of the baseline and ContextPool of each size, in each precision, on one
    batch: words/s, peak memory, and each model's speed-up over fp32."""
    results, speedups = [], []
    for size in sizes:
        base_arch, pool_arch, vocab, overrides = SIZES[size]
        dictionary = make_dictionary(vocab)
        batch = max(1, tokens // length)
        sample = make_sample(dictionary, batch, length, length, device, seed)
        task = types.SimpleNamespace(source_dictionary=dictionary, target_dictionary=dictionary)
        criterion = LabelSmoothedCrossEntropyCriterion(task, sentence_avg=False, label_smoothing=0.1)
        steps, persistent, params, optimizers = {}, {}, {}, {}
        for precision in precisions:
            for name, arch in (("baseline", base_arch), ("contextpool", pool_arch)):
                key = f"{name}/{precision}"
                model = build_model(arch, dictionary, seed, **overrides).to(device).train()
                steps[key], optimizers[key], persistent[key] = training_step(
                    model, criterion, sample, precision, device)
                params[name] = sum(p.numel() for p in model.parameters())
        times = interleaved_times(steps, repeats, device, warmup=0)
        peak = step_peaks(steps, optimizers, persistent, device)
        ntokens = sample["ntokens"]
        for precision in precisions:
            base, pool = f"baseline/{precision}", f"contextpool/{precision}"
            row = dict(
                size=size,
                precision=precision,
                baseline=base_arch,
                contextpool=pool_arch,
                overrides=overrides,
                vocab=vocab,
                batch=batch,
                src_length=length,
                tgt_length=length,
                target_tokens=ntokens,
                baseline_params=params["baseline"],
                contextpool_params=params["contextpool"],
                baseline_wps=ntokens / statistics.median(times[base]),
                contextpool_wps=ntokens / statistics.median(times[pool]),
                wps_ratio=median_ratio(times[base], times[pool]),
                baseline_peak_bytes=peak[base],
                contextpool_peak_bytes=peak[pool],
                memory_ratio=peak[pool] / peak[base],
                seconds={"baseline": times[base], "contextpool": times[pool]},
            )
            results.append(row)
            print(
                f"  train {size} {precision}: {row['baseline_wps']:.0f} vs "
                f"{row['contextpool_wps']:.0f} words/s (x{row['wps_ratio']:.3f}); "
                f"peak memory x{row['memory_ratio']:.3f}",
                flush=True,
            )
        speedups += precision_speedups(times, precisions, "train", size)
        del steps, optimizers
    return results, speedups


# --------------------------------------------------------------------------- generation


def generate_benchmark(sizes, sentences, src_length, length, beam, repeats, device,
                       precisions=("fp32",), seed=0):
    """Beam search with both models of each size, in each precision, forced to ``length``
    steps: sentences/s, and each model's speed-up over fp32."""
    results, speedups = [], []
    for size in sizes:
        base_arch, pool_arch, vocab, overrides = SIZES[size]
        dictionary = make_dictionary(vocab)
        sample = make_sample(dictionary, sentences, src_length, 2, device, seed)
        sample["net_input"].pop("prev_output_tokens")
        runs, lengths = {}, {}
        for name, arch in (("baseline", base_arch), ("contextpool", pool_arch)):
            model = build_model(arch, dictionary, seed, **overrides).to(device).eval()
            for precision in precisions:
                key = f"{name}/{precision}"
                runs[key] = generation_run(model, dictionary, sample, beam, length, precision,
                                           device, lengths, key)
        times = interleaved_times(runs, repeats, device)
        assert all(v == [length + 1] for v in lengths.values()), lengths
        for precision in precisions:
            base, pool = f"baseline/{precision}", f"contextpool/{precision}"
            row = dict(
                size=size,
                precision=precision,
                baseline=base_arch,
                contextpool=pool_arch,
                overrides=overrides,
                vocab=vocab,
                sentences=sentences,
                src_length=src_length,
                output_tokens=length,
                beam=beam,
                baseline_sentences_per_s=sentences / statistics.median(times[base]),
                contextpool_sentences_per_s=sentences / statistics.median(times[pool]),
                speed_ratio=median_ratio(times[base], times[pool]),
                seconds={"baseline": times[base], "contextpool": times[pool]},
            )
            results.append(row)
            print(
                f"  generate {size} {precision}: {row['baseline_sentences_per_s']:.2f} vs "
                f"{row['contextpool_sentences_per_s']:.2f} sentences/s (x{row['speed_ratio']:.3f})",
                flush=True,
            )
        speedups += precision_speedups(times, precisions, "generate", size)
    return results, speedups


# --------------------------------------------------------------------------- any architecture


class ModelSpec(types.SimpleNamespace):
    """A model to measure: ``name``, fairseq ``arch`` and fairseq-train ``options`` (a list)."""


def study_specs(names, table=None) -> List[ModelSpec]:
    """The study's configurations (configs/study/configurations.txt) by name, with the options
    scripts/run_study.sh trains them with: the table's common options, then their own."""
    table = table or read_configurations()
    specs = []
    for name in names:
        arch, options = model_options(table, name)
        specs.append(ModelSpec(name=name, arch=arch, options=options))
    return specs


def build_from_options(spec: ModelSpec, dictionary: Dictionary, seed: int):
    """``spec``'s model built through fairseq-train's own argument parser (architecture
    defaults, then the options, the last occurrence winning) and the model's registry."""
    from fairseq import options

    argv = ["unused-data", "--arch", spec.arch, "--share-all-embeddings", *spec.options]
    args = options.parse_args_and_arch(options.get_training_parser(), input_args=argv)
    task = types.SimpleNamespace(source_dictionary=dictionary, target_dictionary=dictionary)
    torch.manual_seed(seed)
    return ARCH_MODEL_REGISTRY[args.arch].build_model(args, task)


def models_benchmark(specs, reference, vocab, tokens, length, train_repeats, sentences, src_length,
                     gen_length, beam, gen_repeats, device, precisions=("fp32",), seed=0) -> dict:
    """Every model of ``specs`` in every precision, all in one interleaved loop per part:
    training words/s and peak memory, generation sentences/s (outputs forced to
    ``gen_length``), each also as a ratio to the ``reference`` model in the same precision."""
    names = [spec.name for spec in specs]
    if reference not in names:
        raise ValueError(f"the reference model '{reference}' is not among {names}")
    dictionary = make_dictionary(vocab)
    task = types.SimpleNamespace(source_dictionary=dictionary, target_dictionary=dictionary)
    criterion = LabelSmoothedCrossEntropyCriterion(task, sentence_avg=False, label_smoothing=0.1)
    batch = max(1, tokens // length)
    train_sample = make_sample(dictionary, batch, length, length, device, seed)
    gen_sample = make_sample(dictionary, sentences, src_length, 2, device, seed)
    gen_sample["net_input"].pop("prev_output_tokens")
    steps, optimizers, persistent, runs, lengths, params, ops = {}, {}, {}, {}, {}, {}, {}
    for spec in specs:
        for precision in precisions:
            key = f"{spec.name}/{precision}"
            model = build_from_options(spec, dictionary, seed).to(device).train()
            params[spec.name] = sum(p.numel() for p in model.parameters())
            ops[key] = operator_count(model, criterion, train_sample, precision, device)
            steps[key], optimizers[key], persistent[key] = training_step(
                model, criterion, train_sample, precision, device)
        model = build_from_options(spec, dictionary, seed).to(device).eval()
        for precision in precisions:
            key = f"{spec.name}/{precision}"
            runs[key] = generation_run(model, dictionary, gen_sample, beam, gen_length, precision,
                                       device, lengths, key)
    print(f"  models: {len(specs)} x {len(precisions)} precision(s), training steps interleaved", flush=True)
    train_times = interleaved_times(steps, train_repeats, device, warmup=0)
    peak = step_peaks(steps, optimizers, persistent, device)
    del steps, optimizers
    print("  models: generation interleaved", flush=True)
    gen_times = interleaved_times(runs, gen_repeats, device)
    assert all(v == [gen_length + 1] for v in lengths.values()), lengths
    ntokens = train_sample["ntokens"]
    train_rows, gen_rows = [], []
    for precision in precisions:
        ref = f"{reference}/{precision}"
        for spec in specs:
            key = f"{spec.name}/{precision}"
            train_rows.append(dict(
                model=spec.name, precision=precision, params=params[spec.name],
                wps=ntokens / statistics.median(train_times[key]),
                wps_ratio=median_ratio(train_times[ref], train_times[key]),
                peak_bytes=peak[key], memory_ratio=peak[key] / peak[ref],
                ops=ops[key], ops_ratio=ops[key] / ops[ref],
                seconds=train_times[key],
            ))
            gen_rows.append(dict(
                model=spec.name, precision=precision,
                sentences_per_s=sentences / statistics.median(gen_times[key]),
                speed_ratio=median_ratio(gen_times[ref], gen_times[key]),
                seconds=gen_times[key],
            ))
            print(f"  {spec.name} {precision}: train {train_rows[-1]['wps']:.0f} words/s "
                  f"(x{train_rows[-1]['wps_ratio']:.3f}), peak memory x{train_rows[-1]['memory_ratio']:.3f}, "
                  f"{ops[key]} operators (x{train_rows[-1]['ops_ratio']:.3f}); "
                  f"generate {gen_rows[-1]['sentences_per_s']:.2f} sentences/s "
                  f"(x{gen_rows[-1]['speed_ratio']:.3f})", flush=True)
    return dict(
        reference=reference,
        specs={spec.name: dict(arch=spec.arch, options=list(spec.options)) for spec in specs},
        vocab=vocab,
        train_batch=batch, train_length=length, train_target_tokens=ntokens,
        gen_sentences=sentences, gen_src_length=src_length, gen_output_tokens=gen_length, beam=beam,
        train=train_rows,
        generate=gen_rows,
        precision_speedup=precision_speedups(train_times, precisions, "train", "models", names)
        + precision_speedups(gen_times, precisions, "generate", "models", names),
    )


# --------------------------------------------------------------------------- report


def machine_info(device: str) -> dict:
    cpu = platform.processor() or "unknown"
    try:
        with open("/proc/cpuinfo") as f:
            names = [line.split(":", 1)[1].strip() for line in f if line.startswith("model name")]
        if names:
            cpu = names[0]
    except OSError:
        pass
    info = dict(
        cpu=cpu,
        cpu_count=os.cpu_count(),
        torch_threads=torch.get_num_threads(),
        torch=torch.__version__,
        fairseq=fairseq.__version__,
        python=platform.python_version(),
        device=device,
    )
    if device == "cuda":
        info["gpu"] = torch.cuda.get_device_name()
    return info


def check_targets(result: dict) -> dict:
    """Whether the targets of ``TARGETS`` hold for the sizes and precisions that were run."""
    checks = {}
    wanted = TARGETS["target_sizes"]
    for row in result.get("train", []):
        if row["size"] in wanted:
            label = f"{row['size']} {row['precision']}"
            checks[f"{label} train words/s ratio >= {TARGETS['train_wps_ratio_min']:.2f}"] = (
                row["wps_ratio"] >= TARGETS["train_wps_ratio_min"]
            )
            checks[f"{label} train peak memory ratio <= {TARGETS['train_memory_ratio_max']:.2f}"] = (
                row["memory_ratio"] <= TARGETS["train_memory_ratio_max"]
            )
    for row in result.get("generate", []):
        if row["size"] in wanted:
            label = f"{row['size']} {row['precision']}"
            checks[f"{label} generation speed ratio >= {TARGETS['generate_speed_ratio_min']:.2f}"] = (
                row["speed_ratio"] >= TARGETS["generate_speed_ratio_min"]
            )
    for row in result.get("precision_speedup", []):
        if row["part"] == "train" and row["precision"] == "bf16" and (
            row["size"] == TARGETS["bf16_speedup_size"]
        ):
            checks[f"{row['size']} {row['model']} bf16 / fp32 train words/s >= "
                   f"{TARGETS['bf16_train_speedup_min']:.1f}"] = (
                row["speedup"] >= TARGETS["bf16_train_speedup_min"]
            )
    if result.get("op"):
        # deterministic: the autograd graph holds the same bytes per token at every length
        checks["op memory linear in length (saved bytes per token, max / min <= 1.10)"] = (
            result["op"]["contextpool_saved_per_token_spread"] <= 1.10
        )
    return checks


def mib(n: float) -> str:
    return f"{n / 2 ** 20:.1f}"


def markdown_section(result: dict) -> str:
    m = result["machine"]
    gpu = f", GPU {m['gpu']}" if m.get("gpu") else ""
    lines = [
        f"### {result['name']}",
        "",
    ]
    if result.get("note"):
        lines += [result["note"], ""]
    lines += [
        f"`{result['command']}`  ",
        f"{m['cpu']} ({m['cpu_count']} cores, {m['torch_threads']} torch threads){gpu}; "
        f"device {m['device']}; torch {m['torch']}, fairseq {m['fairseq']}; {result['date']}. "
        f"Times are {result.get('timer', 'wall time')}, ratios medians of the per-repeat ratios.",
        "",
    ]
    op = result.get("op")
    if op:
        lines += [
            f"ContextPool op alone vs. self-attention (embed {op['embed_dim']}, {op['heads']} heads, "
            f"max_size {op['max_size']}, mean, bidirectional), forward + backward, "
            f"{op['tokens_per_batch']} tokens per batch; ratios are ContextPool / attention:",
            "",
            "| T | B | attention ms | ContextPool ms | time ratio | us/token | peak MiB attn / pool | "
            "memory ratio | saved MiB attn / pool |",
            "|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
        ]
        for r in op["rows"]:
            lines.append(
                f"| {r['length']} | {r['batch']} | {r['attention_ms']:.2f} | {r['contextpool_ms']:.2f} "
                f"| {r['time_ratio']:.3f} | {r['contextpool_us_per_token']:.2f} "
                f"| {mib(r['attention_peak_bytes'])} / {mib(r['contextpool_peak_bytes'])} "
                f"| {r['memory_ratio']:.3f} "
                f"| {mib(r['attention_saved_bytes'])} / {mib(r['contextpool_saved_bytes'])} |"
            )
        lines += [
            "",
            f"ContextPool time per token, max / min over lengths: "
            f"{op['contextpool_time_per_token_spread']:.2f} (1.00 = exactly linear); "
            f"saved bytes per token: {op['contextpool_saved_per_token_spread']:.2f}.",
            "",
        ]
    if result.get("train"):
        lines += [
            "Training step (forward, label-smoothed CE, backward, Adam), same batch; "
            "ratios are ContextPool / baseline:",
            "",
            "| size | precision | baseline | vocab | batch x len | words/s base | words/s pool | "
            "words/s ratio | peak MiB base | peak MiB pool | memory ratio |",
            "|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|",
        ]
        for r in result["train"]:
            lines.append(
                f"| {r.get('size', '')} | {r.get('precision', 'fp32')} | {r['baseline']} "
                f"| {r['vocab']} | {r['batch']} x {r['tgt_length']} "
                f"| {r['baseline_wps']:.0f} | {r['contextpool_wps']:.0f} | {r['wps_ratio']:.3f} "
                f"| {mib(r['baseline_peak_bytes'])} | {mib(r['contextpool_peak_bytes'])} "
                f"| {r['memory_ratio']:.3f} |"
            )
        lines.append("")
    if result.get("generate"):
        lines += [
            f"Generation (SequenceGenerator, beam {result['generate'][0]['beam']}, "
            "min_len = max_len so both decode the same number of steps):",
            "",
            "| size | precision | baseline | sentences x src len | output tokens | sent/s base "
            "| sent/s pool | speed ratio |",
            "|---|---|---|---:|---:|---:|---:|---:|",
        ]
        for r in result["generate"]:
            lines.append(
                f"| {r.get('size', '')} | {r.get('precision', 'fp32')} | {r['baseline']} "
                f"| {r['sentences']} x {r['src_length']} | {r['output_tokens']} "
                f"| {r['baseline_sentences_per_s']:.2f} | {r['contextpool_sentences_per_s']:.2f} "
                f"| {r['speed_ratio']:.3f} |"
            )
        lines.append("")
    if result.get("precision_speedup"):
        lines += [
            "Speed in lower precision / the same model's fp32 speed (same loop, interleaved):",
            "",
            "| part | size | model | precision | speed-up over fp32 |",
            "|---|---|---|---|---:|",
        ]
        for r in result["precision_speedup"]:
            lines.append(
                f"| {r['part']} | {r['size']} | {r['model']} | {r['precision']} | {r['speedup']:.3f} |"
            )
        lines.append("")
    if result.get("models"):
        lines += models_markdown(result["models"])
    if result.get("targets"):
        lines.append("Targets: " + "; ".join(
            f"{name}: {'met' if ok else 'NOT met'}" for name, ok in result["targets"].items()
        ) + ".")
    return "\n".join(lines).rstrip() + "\n"


def models_markdown(models: dict) -> list:
    """The part ``models``: one row per model and precision, ratios to the reference model."""
    gen = {(r["model"], r["precision"]): r for r in models["generate"]}
    counted = all("ops" in r for r in models["train"])  # runs before 2026-12-04 did not count
    lines = [
        f"Models of the study's configurations (configs/study/configurations.txt, built with "
        f"their fairseq-train options; vocabulary {models['vocab']}), all interleaved; training "
        f"step on {models['train_batch']} x {models['train_length']} tokens, generation of "
        f"{models['gen_sentences']} sentences forced to {models['gen_output_tokens']} tokens, "
        f"beam {models['beam']}; ratios are model / `{models['reference']}` in the same precision "
        "(speed: > 1 is faster)"
        + ("; operators: the ATen operators other than views that one forward, loss and "
           "backward dispatch (on a GPU most launch a kernel)" if counted else "") + ":",
        "",
        "| model | precision | params | train words/s | words/s ratio | peak MiB | memory ratio "
        "| sent/s | generation ratio |" + (" operators | operators ratio |" if counted else ""),
        "|---|---|---:|---:|---:|---:|---:|---:|---:|" + ("---:|---:|" if counted else ""),
    ]
    for r in models["train"]:
        g = gen[(r["model"], r["precision"])]
        lines.append(
            f"| {r['model']} | {r['precision']} | {r['params']:,} | {r['wps']:.0f} | {r['wps_ratio']:.3f} "
            f"| {mib(r['peak_bytes'])} | {r['memory_ratio']:.3f} | {g['sentences_per_s']:.2f} "
            f"| {g['speed_ratio']:.3f} |" + (f" {r['ops']} | {r['ops_ratio']:.3f} |" if counted else "")
        )
    lines.append("")
    return lines


RESULTS_HEADER = """# Results

Measured numbers of this project. Sections between `<!-- NAME start -->` / `<!-- NAME end -->`
markers are written by tools (`benchmarks/benchmark.py` writes `benchmark:*` sections) and
are replaced when the tool runs again; everything else is kept as it is.
"""


def update_results_markdown(path: str, name: str, section: str):
    """Writes ``section`` between this benchmark's markers, leaving the rest of the file intact."""
    start, end = f"<!-- benchmark:{name} start -->", f"<!-- benchmark:{name} end -->"
    block = f"{start}\n{section.rstrip()}\n{end}\n"
    text = open(path).read() if os.path.exists(path) else RESULTS_HEADER
    pattern = re.compile(re.escape(start) + r".*?" + re.escape(end) + r"\n?", re.S)
    if pattern.search(text):
        text = pattern.sub(lambda _: block, text, count=1)
    else:
        text = text.rstrip("\n") + "\n\n" + block
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(path, "w") as f:
        f.write(text)


def run(config: dict, device: str, parts=("op", "train", "generate"), precisions=("fp32",),
        models=None, reference="baseline") -> dict:
    """Runs the selected parts with ``config`` (FULL, QUICK or a smaller dict of the same keys);
    the part ``models`` measures ``models`` (a list of ModelSpec) against ``reference``."""
    result = {}
    if "op" in parts:
        print("op: ContextPool alone vs. self-attention", flush=True)
        result["op"] = op_benchmark(
            config["op_lengths"], config["op_tokens"], config["op_repeats"], device
        )
    if "train" in parts:
        print("train: full training step", flush=True)
        result["train"], speedups = train_benchmark(
            config["sizes"], config["train_tokens"], config["train_length"],
            config["train_repeats"], device, precisions,
        )
        result["precision_speedup"] = speedups
    if "generate" in parts:
        print("generate: beam search", flush=True)
        result["generate"], speedups = generate_benchmark(
            config["sizes"], config["gen_sentences"], config["gen_src_length"],
            config["gen_length"], config["beam"], config["gen_repeats"], device, precisions,
        )
        result["precision_speedup"] = result.get("precision_speedup", []) + speedups
    if "models" in parts:
        print(f"models: {', '.join(m.name for m in models)} against {reference}", flush=True)
        result["models"] = models_benchmark(
            models, reference, config["models_vocab"], config["train_tokens"],
            config["train_length"], config["train_repeats"], config["gen_sentences"],
            config["gen_src_length"], config["gen_length"], config["beam"], config["gen_repeats"],
            device, precisions,
        )
    result["targets"] = check_targets(result)
    return result


def model_specs(args) -> List[ModelSpec]:
    """The models of --frontier, --models and --model, the reference first, each once."""
    table = read_configurations()
    names = FRONTIER if args.frontier else []
    names = names + [n.strip() for n in (args.models or "").split(",") if n.strip()]
    custom = []
    for text in args.model:
        name, sep, spec = text.partition("=")
        fields = spec.split()
        if not sep or not name.strip() or not fields:
            raise StudyError(f"--model {text!r}: give NAME=ARCH [OPTIONS]")
        custom.append(ModelSpec(name=name.strip(), arch=fields[0],
                                options=table["common"][1] + fields[1:]))
    if not names and not custom:
        return []
    if args.reference not in names + [m.name for m in custom]:
        names = [args.reference] + names
    specs, seen = [], set()
    for spec in study_specs(dict.fromkeys(names), table) + custom:
        if spec.name in seen:
            raise StudyError(f"model '{spec.name}' given twice")
        seen.add(spec.name)
        specs.append(spec)
    reference = [s for s in specs if s.name == args.reference]
    return reference + [s for s in specs if s.name != args.reference]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer tokens, lengths and models")
    parser.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    parser.add_argument("--out", help="JSON file to write, e.g. docs/benchmarks/cpu.json")
    parser.add_argument("--name", help="section name in the results file (default: --out's stem)")
    parser.add_argument("--note", default="", help="one line on what this run measures/changed")
    parser.add_argument("--results", default=os.path.join(REPO_ROOT, "docs", "results.md"),
                        help="Markdown file to update ('' to skip)")
    parser.add_argument("--parts", help="comma list of op,train,generate,models (default: "
                        "op,train,generate; with --models / --model / --frontier: models)")
    parser.add_argument("--models", help="comma list of the study's configurations "
                        "(configs/study/configurations.txt) to measure against --reference, each "
                        "built with the options scripts/run_study.sh trains it with")
    parser.add_argument("--model", action="append", default=[], metavar="NAME=ARCH [OPTIONS]",
                        help="one more model: an architecture and fairseq-train options on top of "
                        "the study's common options, e.g. \"cp_k4=contextpool_transformer_tiny "
                        "--contextpool-max-size 4\" (repeatable)")
    parser.add_argument("--frontier", action="store_true",
                        help=f"--models {','.join(FRONTIER)}")
    parser.add_argument("--reference", default="baseline",
                        help="the model the part 'models' divides by (default: baseline, the "
                        "Transformer 3+3; added to the models if missing)")
    parser.add_argument("--threads", type=int, help="torch threads (default: torch's)")
    parser.add_argument("--precision", default="fp32",
                        help="comma list of fp32,bf16,fp16 (fp16: CUDA only); with fp32 and "
                        "another, each model's speed-up over fp32 is reported too")
    parser.add_argument("--sizes", help=f"comma list of model sizes, from {','.join(SIZES)} "
                        "(default: all; with --quick: wmt,3+3x256,tiny)")
    args = parser.parse_args(argv)
    if args.device == "cuda" and not torch.cuda.is_available():
        parser.error("--device cuda, but torch sees no GPU")
    precisions = tuple(p.strip() for p in args.precision.split(",") if p.strip())
    for precision in precisions:
        if precision not in PRECISIONS:
            parser.error(f"--precision {precision}: choose from {', '.join(PRECISIONS)}")
    if "fp16" in precisions and args.device != "cuda":
        parser.error("--precision fp16 needs --device cuda (CPU autocast to float16 is not "
                     "a training precision); on CPU use bf16")
    if args.threads:
        torch.set_num_threads(args.threads)
    try:
        models = model_specs(args)
    except StudyError as err:
        parser.error(str(err))
    parts = tuple(p.strip() for p in (args.parts or ("models" if models else "op,train,generate")).split(","))
    unknown = [p for p in parts if p not in ("op", "train", "generate", "models")]
    if unknown:
        parser.error(f"--parts {','.join(unknown)}: choose from op, train, generate, models")
    if "models" in parts and not models:
        parser.error("--parts models needs --models, --model or --frontier")
    name = args.name or (
        os.path.splitext(os.path.basename(args.out))[0] if args.out
        else f"{args.device}-{'quick' if args.quick else 'full'}"
    )
    config = dict(QUICK if args.quick else FULL)
    if args.sizes:
        config["sizes"] = [s.strip() for s in args.sizes.split(",") if s.strip()]
        unknown = [s for s in config["sizes"] if s not in SIZES]
        if unknown:
            parser.error(f"--sizes {','.join(unknown)}: choose from {', '.join(SIZES)}")
    result = dict(
        name=name,
        note=args.note,
        command=" ".join(["python"] + [shlex.quote(a) for a in [os.path.relpath(__file__, REPO_ROOT)] + sys.argv[1:]]),
        date=time.strftime("%Y-%m-%d"),
        quick=args.quick,
        machine=machine_info(args.device),
        config={k: v for k, v in config.items()},
        timer="wall time" if args.device == "cuda" else "process CPU time",
        targets_definition=TARGETS,
    )
    start = time.time()
    result["precisions"] = list(precisions)
    result.update(run(config, args.device, parts, precisions, models, args.reference))
    result["seconds"] = round(time.time() - start, 1)
    for check, ok in result["targets"].items():
        print(f"target {check}: {'met' if ok else 'NOT met'}")
    if args.out:
        os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
        with open(args.out, "w") as f:
            json.dump(result, f, indent=1)
            f.write("\n")
        print(f"wrote {args.out}")
    if args.results:
        update_results_markdown(args.results, name, markdown_section(result))
        print(f"updated {os.path.relpath(args.results)} (section benchmark:{name})")
    return result


if __name__ == "__main__":
    main()
