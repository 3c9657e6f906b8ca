"""Small builders shared by the tests."""

import argparse
import logging
import os
import random
import sys
import types

import torch
from fairseq.data import Dictionary
from fairseq.models import ARCH_MODEL_REGISTRY, ARCH_CONFIG_REGISTRY

import fairseq_plugins  # noqa: F401  (registers the model)

BIN = os.path.dirname(sys.executable)  # fairseq-train & co. of the interpreter running the tests


def cli_env():
    """Environment for fairseq command-line runs: one thread, this environment's tools first."""
    env = dict(os.environ, OMP_NUM_THREADS="1")
    env["PATH"] = BIN + os.pathsep + env.get("PATH", "")
    return env


def write_reversal_corpus(root, sizes, words=tuple(f"w{i}" for i in range(30)), lengths=(2, 8),
                          seed=0):
    """root/{split}.{en,de}: random sentences over ``words``, German = English reversed.

    ``sizes``: {split: number of lines}; ``lengths``: (shortest, longest) sentence.
    """
    rng = random.Random(seed)
    for split, n in sizes.items():
        with open(root / f"{split}.en", "w") as en, open(root / f"{split}.de", "w") as de:
            for _ in range(n):
                sent = [rng.choice(words) for _ in range(rng.randint(*lengths))]
                en.write(" ".join(sent) + "\n")
                de.write(" ".join(reversed(sent)) + "\n")


def rewrite_dictionaries_as_other_pieces(data):
    """Rewrite DATA/bin's dictionaries with as many entries, all of them other pieces: the
    dictionaries of another corpus that happen to have the same size."""
    for lang in ("en", "de"):
        path = data / "bin" / f"dict.{lang}.txt"
        lines = path.read_text(encoding="utf-8").splitlines()
        path.write_text("".join(f"other{i} {line.split()[1]}\n" for i, line in enumerate(lines)),
                        encoding="utf-8")


def binarize(root, splits=("train", "valid")):
    """fairseq-preprocess of root/{split}.{en,de} into root/data-bin (joined dictionary), run
    in this process since it has imported fairseq already."""
    from fairseq import options
    from fairseq_cli import preprocess

    argv = ["--source-lang", "en", "--target-lang", "de", "--destdir", str(root / "data-bin"),
            "--joined-dictionary", "--workers", "1"]
    for split in splits:
        argv += [f"--{split}pref", str(root / split)]
    log = logging.getLogger("fairseq_cli.preprocess")
    before = list(log.handlers)
    try:
        preprocess.main(options.get_preprocessing_parser().parse_args(argv))
    finally:
        for handler in [h for h in log.handlers if h not in before]:  # its preprocess.log
            log.removeHandler(handler)
            handler.close()


def make_dictionary(num_symbols: int = 20) -> Dictionary:
    d = Dictionary()
    for i in range(num_symbols):
        d.add_symbol(f"w{i}")
    d.finalize(padding_factor=1)
    return d


def build_model(arch: str = "contextpool_transformer_tiny", dictionary=None, **overrides):
    """Builds a model of ``arch`` as fairseq-train would, with dropout off by default."""
    dictionary = dictionary or make_dictionary()
    args = argparse.Namespace(arch=arch, dropout=0.0, share_all_embeddings=True, **overrides)
    ARCH_CONFIG_REGISTRY[arch](args)
    task = types.SimpleNamespace(source_dictionary=dictionary, target_dictionary=dictionary)
    return ARCH_MODEL_REGISTRY[arch].build_model(args, task)


def random_batch(dictionary, batch_size=3, src_len=7, tgt_len=6, seed=0):
    """Left-padded source and right-padded target token batches, as fairseq makes them."""
    g = torch.Generator().manual_seed(seed)
    low, high = dictionary.nspecial, len(dictionary)
    src = torch.randint(low, high, (batch_size, src_len), generator=g)
    tgt = torch.randint(low, high, (batch_size, tgt_len), generator=g)
    src_lengths = torch.full((batch_size,), src_len)
    for b in range(1, batch_size):
        n_pad = min(b, src_len - 1)
        src[b, :n_pad] = dictionary.pad()
        src_lengths[b] = src_len - n_pad
    for b in range(1, batch_size):
        tgt[b, tgt_len - b :] = dictionary.pad()
    prev = tgt.clone()
    prev[:, 0] = dictionary.eos()
    return src, src_lengths, prev


def self_attention_inputs(model, net_input):
    """{(side, layer index): x (T x B x C)}, the input every encoder and decoder layer's
    self-attention got in one forward of ``model`` on ``net_input`` (forward pre-hooks)."""
    captured, handles = {}, []
    for side in ("encoder", "decoder"):
        for index, layer in enumerate(getattr(model, side).layers):
            def hook(module, args, kwargs, key=(side, index)):
                captured[key] = kwargs.get("query", args[0] if args else None)
            handles.append(layer.self_attn.register_forward_pre_hook(hook, with_kwargs=True))
    try:
        with torch.no_grad():
            model(**net_input)
    finally:
        for handle in handles:
            handle.remove()
    return captured
