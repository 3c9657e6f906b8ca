"""Write the synthetic English->German demo corpus: DIR/{train,valid,test}.{en,de}.

    cpmt-make-demo-corpus --out DIR [--train 20000] [--valid 500]
        [--test 500] [--seed 1] [--tokenized]

One sentence per line, UTF-8, the .en and .de files of a split aligned line by line. No
sentence occurs twice anywhere, so valid and test are disjoint from train. The same seed and
sizes give byte-identical files on any machine (test and valid do not depend on --train).
Files are written under temporary names and renamed at the end; the six target files are
removed first, so an interrupted run never leaves a complete-looking mix of old and new files.
The grammar and its phenomena are described in contextpool_mt/demo/ (lexicon.py, grammar.py).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time

from contextpool_mt.demo import grammar

SPLITS = ("train", "valid", "test")
LANGS = ("en", "de")
MAX_PAIRS = 2_000_000


def _count(name: str, minimum: int):
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"--{name} must be an integer, got {text!r}")
        if value < minimum or value > MAX_PAIRS:
            raise argparse.ArgumentTypeError(
                f"--{name} must be between {minimum} and {MAX_PAIRS}, got {value}")
        return value
    return parse


def _seed(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"--seed must be an integer, got {text!r}")
    if value < 0:
        raise argparse.ArgumentTypeError(f"--seed must be >= 0, got {value}")
    return value


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        description="Write a deterministic synthetic English->German parallel corpus "
                    "(DIR/{train,valid,test}.{en,de}).")
    p.add_argument("--out", required=True, help="output directory (created if missing)")
    p.add_argument("--train", type=_count("train", 1), default=20000, help="train pairs")
    p.add_argument("--valid", type=_count("valid", 1), default=500, help="valid pairs")
    p.add_argument("--test", type=_count("test", 1), default=500, help="test pairs")
    p.add_argument("--seed", type=_seed, default=1, help="random seed (default 1)")
    p.add_argument("--tokenized", action="store_true",
                   help="separate punctuation by spaces (default: natural text)")
    return p


def parse_args(argv=None) -> argparse.Namespace:
    parser = build_parser()
    args = parser.parse_args(argv)
    if os.path.exists(args.out) and not os.path.isdir(args.out):
        parser.error(f"--out {args.out} exists and is not a directory")
    return args


def output_paths(out_dir: str) -> list[str]:
    return [os.path.join(out_dir, f"{s}.{l}") for s in SPLITS for l in LANGS]


def remove_outputs(out_dir: str) -> None:
    """Removes the six corpus files, so that no stale mix of old and new files remains."""
    for path in output_paths(out_dir):
        if os.path.lexists(path):
            os.remove(path)


def write_corpus(out_dir: str, corpus: dict, tokenized: bool = False) -> list[str]:
    """Writes every file under a temporary name, then renames them all; returns the paths."""
    os.makedirs(out_dir, exist_ok=True)
    finals = output_paths(out_dir)
    remove_outputs(out_dir)
    temps: dict[str, str] = {}
    umask = os.umask(0)
    os.umask(umask)
    try:
        for split in SPLITS:
            for lang in LANGS:
                fd, tmp = tempfile.mkstemp(prefix=f".{split}.{lang}.", suffix=".tmp",
                                           dir=out_dir)
                temps[os.path.join(out_dir, f"{split}.{lang}")] = tmp
                os.chmod(tmp, 0o666 & ~umask)    # mkstemp makes it private
                with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as f:
                    for pair in corpus[split]:
                        text = getattr(pair, lang)
                        if tokenized:
                            text = " ".join(grammar.tokens(text))
                        f.write(text + "\n")
        # train last: a run killed between renames lacks train files
        for final in sorted(temps, key=lambda p: os.path.basename(p).startswith("train")):
            os.replace(temps[final], final)
    finally:
        for tmp in temps.values():
            if os.path.exists(tmp):
                os.remove(tmp)
    return finals


def summary(corpus: dict, args: argparse.Namespace, seconds: float) -> str:
    src, tgt = LANGS
    lines = [f"synthetic {src}-{tgt} corpus in {args.out} (seed {args.seed}, "
             f"{seconds:.1f} s)"]
    for split in SPLITS:
        st = grammar.corpus_stats(corpus[split])
        lines.append(
            f"  {split:5s}: {st['pairs']:6d} pairs; {src} {st[src + '_tokens']:7d} tokens "
            f"{st[src + '_types']:5d} types; {tgt} {st[tgt + '_tokens']:7d} tokens "
            f"{st[tgt + '_types']:5d} types; {st[src + '_words']:.1f}/{st[tgt + '_words']:.1f} "
            f"words per sentence")
    st = grammar.corpus_stats(corpus["train"])
    lines.append("  share of train pairs per phenomenon:")
    for tag, share in sorted(st["share"].items(), key=lambda kv: -kv[1]):
        lines.append(f"    {tag:16s} {100 * share:5.1f}%  {grammar.PHENOMENA[tag]}")
    return "\n".join(lines)


def main(argv=None) -> int:
    args = parse_args(argv)
    start = time.perf_counter()
    if os.path.isdir(args.out):
        remove_outputs(args.out)
    corpus = grammar.generate_corpus(train=args.train, valid=args.valid, test=args.test,
                                     seed=args.seed)
    write_corpus(args.out, corpus, tokenized=args.tokenized)
    print(summary(corpus, args, time.perf_counter() - start))
    return 0


if __name__ == "__main__":
    sys.exit(main())
