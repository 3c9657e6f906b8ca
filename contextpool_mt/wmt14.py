"""WMT14 English-German, the standard set-up (Vaswani et al. 2017 and most papers since).

Train: Europarl v7 + Common Crawl + News Commentary v9 (about 4.5M pairs);
valid: newstest2013 (3000 lines); test: newstest2014, the "full" version (3003 lines,
``test-full.tgz``, what ``sacrebleu -t wmt14/full -l en-de`` scores against).
This is not fairseq's ``prepare-wmt14en2de.sh`` default, which trains on WMT17 data.

Run ``scripts/prepare_wmt14_en_de.sh --help`` (or ``cpmt-prepare-wmt14 --help``).  Steps, each skipped when already complete:

1. download the five archives to ``--download-dir`` (default ``DATA_DIR/downloads``),
   resumable, each checked against its published checksum (see ``RESOURCES``);
2. extract only the needed members, after every checksum passed, refusing unsafe members,
   into ``DATA_DIR/extracted/<archive>/``;
3. assemble ``DATA_DIR/input/{train,valid,test}.{en,de}``: train is the three corpora
   concatenated (Europarl, Common Crawl, News Commentary, in that order), valid is
   ``dev/newstest2013.{en,de}``, test is the ``<seg>`` text of
   ``test-full/newstest2014-deen-{src.en,ref.de}.sgm`` with XML entities unescaped;
4. prepare DATA_DIR/input as ``cpmt-prepare-corpus --input DATA_DIR/input --src en --tgt de --out DATA_DIR`` would (:func:`contextpool_mt.corpus.prepare`, in this process).

Checksums can be replaced for testing or for a re-packaged mirror with ``--checksums FILE``
or the ``CONTEXTPOOL_CHECKSUMS`` environment variable naming such a file
(``sha256sum``-style lines ``<hex>  <file name>``); the published values stay the defaults.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import shutil
import sys
from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence, Tuple

from contextpool_mt import corpus
from contextpool_mt import download as dl

PROG = "prepare_wmt14_en_de"
CHECKSUMS_ENV = "CONTEXTPOOL_CHECKSUMS"
ASSEMBLY_VERSION = 1


@dataclass(frozen=True)
class Resource:
    key: str
    url: str
    checksum: str  # "<algo>:<hex>"
    size: int  # bytes, where published (informational; 0 when unknown)
    members: Tuple[str, ...]

    @property
    def filename(self) -> str:
        return self.url.rsplit("/", 1)[-1]


# Where each checksum comes from:
# * the three training archives: sha256 (and size) from tensorflow/datasets,
#   tensorflow_datasets/url_checksums/wmt14_translate.txt (same values in wmt13_translate.txt
#   and wmt_t2t_translate.txt), keyed there by the http://www.statmt.org/... spelling of the
#   same URLs.  The News Commentary v9 value also appears in other public code.
# * dev.tgz and test-full.tgz: no public sha256 could be found (TFDS takes newstest2013/2014
#   from the WMT19 dev.tgz instead), so the published md5 is checked:
#   - test-full.tgz: md5 a8cd784e006feb32ac6f3d9ec7eb389a from sacrebleu (2.4.3,
#     sacrebleu/dataset/__init__.py, DATASETS["wmt14/full"]);
#   - dev.tgz: md5 88ba3fc60b2278d59277122e1c7dd6e7 from awslabs/sockeye,
#     sockeye_contrib/autopilot/models.py, RAW_FILES["wmt14_dev"].
#   Once a sha256 is known, put it here (or in a --checksums file) as "sha256:<hex>".
RESOURCES: Tuple[Resource, ...] = (
    Resource(
        key="europarl",
        url="http://statmt.org/wmt13/training-parallel-europarl-v7.tgz",
        checksum="sha256:0224c7c710c8a063dfd893b0cc0830202d61f4c75c17eb8e31836103d27d96e7",
        size=657632379,
        members=("training/europarl-v7.de-en.en", "training/europarl-v7.de-en.de"),
    ),
    Resource(
        key="commoncrawl",
        url="http://statmt.org/wmt13/training-parallel-commoncrawl.tgz",
        checksum="sha256:c7a74e2ea01ac6c920123108627e35278d4ccb5701e15428ffa34de86fa3a9e5",
        size=918311367,
        members=("commoncrawl.de-en.en", "commoncrawl.de-en.de"),
    ),
    Resource(
        key="news-commentary-v9",
        url="http://statmt.org/wmt14/training-parallel-nc-v9.tgz",
        checksum="sha256:cb8953f292298e6877ae433c98912b927cb0766b303f4540512ddd286c748485",
        size=80418416,
        members=("training/news-commentary-v9.de-en.en", "training/news-commentary-v9.de-en.de"),
    ),
    Resource(
        key="newstest2013",
        url="http://statmt.org/wmt14/dev.tgz",
        checksum="md5:88ba3fc60b2278d59277122e1c7dd6e7",
        size=0,
        members=("dev/newstest2013.en", "dev/newstest2013.de"),
    ),
    Resource(
        key="newstest2014",
        url="http://statmt.org/wmt14/test-full.tgz",
        checksum="md5:a8cd784e006feb32ac6f3d9ec7eb389a",
        size=0,
        members=("test-full/newstest2014-deen-src.en.sgm", "test-full/newstest2014-deen-ref.de.sgm"),
    ),
)
TRAIN_KEYS = ("europarl", "commoncrawl", "news-commentary-v9")


class Wmt14Error(Exception):
    pass


def log(message: str) -> None:
    print(f"[{PROG}] {message}", flush=True)


# --------------------------------------------------------------------------- checksums


def resolve_checksums(override_file: Optional[str]) -> Dict[str, dl.Checksum]:
    """{file name: Checksum}: the published defaults, replaced where the file says so."""
    sums = {r.filename: dl.Checksum.parse(r.checksum) for r in RESOURCES}
    if not override_file:
        return sums
    overrides = dl.read_checksum_file(override_file)
    for name, checksum in sorted(overrides.items()):
        if name in sums:
            log(f"checksum for {name} taken from {override_file}: {checksum}")
            sums[name] = checksum
        else:
            log(f"warning: {override_file} names {name}, which is not one of the WMT14 files; ignored")
    return sums


# --------------------------------------------------------------------------- sgm

_ENTITY = re.compile(r"&(amp|lt|gt|quot|apos|#[0-9]+|#[xX][0-9a-fA-F]+);")
_NAMED = {"amp": "&", "lt": "<", "gt": ">", "quot": '"', "apos": "'"}
_SEG = re.compile(r"<seg\b([^>]*)>(.*?)</seg>", re.IGNORECASE)
_ATTR_ID = re.compile(r"\bid\s*=\s*\"?([^\"\s>]+)", re.IGNORECASE)
_DOCID = re.compile(r"<doc\b[^>]*\bdocid\s*=\s*\"([^\"]*)\"", re.IGNORECASE)


def unescape_xml(text: str) -> str:
    def repl(m: "re.Match[str]") -> str:
        ent = m.group(1)
        if ent[0] == "#":
            try:
                cp = int(ent[2:], 16) if ent[1] in "xX" else int(ent[1:])
                return chr(cp)
            except (ValueError, OverflowError):
                return m.group(0)
        return _NAMED[ent]

    return _ENTITY.sub(repl, text)


def read_sgm(path: str) -> List[Tuple[Tuple[str, str], str]]:
    """[((docid, seg id), text)] of the ``<seg>`` elements of a WMT sgm file."""
    segs: List[Tuple[Tuple[str, str], str]] = []
    docid = ""
    with open(path, "rb") as f:
        for lineno, raw in enumerate(f, 1):
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError as e:
                raise Wmt14Error(f"{path}:{lineno}: not valid UTF-8 (byte 0x{raw[e.start]:02x})") from None
            m = _DOCID.search(line)
            if m:
                docid = m.group(1)
            if "<seg" not in line.lower():
                continue
            m = _SEG.search(line)
            if not m:
                raise Wmt14Error(f"{path}:{lineno}: a <seg> that does not close on the same line")
            idm = _ATTR_ID.search(m.group(1))
            text = " ".join(unescape_xml(m.group(2)).split())
            if not text:
                raise Wmt14Error(f"{path}:{lineno}: empty <seg>; the test set must have text on every segment")
            segs.append(((docid, idm.group(1) if idm else str(len(segs) + 1)), text))
    if not segs:
        raise Wmt14Error(f"{path}: no <seg> elements found; is it a WMT sgm file?")
    return segs


def sgm_pair_to_text(src_sgm: str, ref_sgm: str, out_src: str, out_ref: str) -> int:
    src, ref = read_sgm(src_sgm), read_sgm(ref_sgm)
    if len(src) != len(ref):
        raise Wmt14Error(f"{src_sgm} has {len(src)} segments, {ref_sgm} has {len(ref)}")
    for i, ((ks, _), (kr, _)) in enumerate(zip(src, ref)):
        if ks != kr:
            raise Wmt14Error(
                f"segment {i + 1} is (doc {ks[0]!r}, seg {ks[1]}) in {src_sgm} but "
                f"(doc {kr[0]!r}, seg {kr[1]}) in {ref_sgm}: the files are not aligned"
            )
    for path, segs in ((out_src, src), (out_ref, ref)):
        with open(path, "w", encoding="utf-8", newline="\n") as f:
            f.writelines(text + "\n" for _, text in segs)
    return len(src)


# --------------------------------------------------------------------------- assembly




def _append(dst, path: str) -> None:
    last = b"\n"
    with open(path, "rb") as f:
        while True:
            block = f.read(dl.CHUNK)
            if not block:
                break
            dst.write(block)
            last = block[-1:]
    if last != b"\n":
        dst.write(b"\n")


def _marker(path: str) -> Optional[dict]:
    try:
        with open(os.path.join(path, ".complete"), encoding="utf-8") as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def _write_marker(path: str, info: dict) -> None:
    target = os.path.join(path, ".complete")
    with open(target + ".tmp", "w", encoding="utf-8") as f:
        json.dump(info, f, indent=2, sort_keys=True)
        f.write("\n")
    os.replace(target + ".tmp", target)


def extract_all(data_dir: str, archives: Dict[str, str], sums: Dict[str, dl.Checksum]) -> Dict[str, str]:
    """Extracts each resource's members; returns {key: extraction folder}."""
    folders = {}
    for r in RESOURCES:
        folder = os.path.join(data_dir, "extracted", r.key)
        want = {"checksum": str(sums[r.filename]), "members": list(r.members)}
        marker = _marker(folder)
        if marker is not None and all(marker.get(k) == v for k, v in want.items()):
            log(f"{r.filename}: already extracted in {folder}")
        else:
            log(f"{r.filename}: extracting {', '.join(r.members)}")
            try:
                dl.safe_extract(archives[r.key], folder, r.members, log=log)
            except dl.UnsafeArchive as e:
                raise Wmt14Error(str(e)) from None
            _write_marker(folder, want)
        folders[r.key] = folder
    return folders


def assemble_input(data_dir: str, folders: Dict[str, str], fingerprint: str) -> str:
    final = os.path.join(data_dir, "input")
    tmp = os.path.join(data_dir, ".input.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    os.makedirs(tmp)
    res = {r.key: r for r in RESOURCES}
    counts: Dict[str, int] = {}
    # train: the three corpora, each checked for equal line counts, concatenated.
    with open(os.path.join(tmp, "train.en"), "wb") as fen, open(os.path.join(tmp, "train.de"), "wb") as fde:
        for key in TRAIN_KEYS:
            en, de = (os.path.join(folders[key], m) for m in res[key].members)
            n_en, n_de = corpus.count_lines(en), corpus.count_lines(de)
            if n_en != n_de:
                raise Wmt14Error(f"{en} has {n_en} lines but {de} has {n_de}; the archive is damaged")
            _append(fen, en)
            _append(fde, de)
            counts[key] = n_en
            log(f"  train += {key}: {n_en} pairs")
    # valid: newstest2013 plain text.
    en, de = (os.path.join(folders["newstest2013"], m) for m in res["newstest2013"].members)
    shutil.copyfile(en, os.path.join(tmp, "valid.en"))
    shutil.copyfile(de, os.path.join(tmp, "valid.de"))
    counts["newstest2013"] = corpus.count_lines(en)
    log(f"  valid = newstest2013: {counts['newstest2013']} lines")
    # test: newstest2014 (full) from sgm.
    src_sgm, ref_sgm = (os.path.join(folders["newstest2014"], m) for m in res["newstest2014"].members)
    counts["newstest2014"] = sgm_pair_to_text(
        src_sgm, ref_sgm, os.path.join(tmp, "test.en"), os.path.join(tmp, "test.de")
    )
    log(f"  test = newstest2014 (full): {counts['newstest2014']} segments")
    shutil.rmtree(final, ignore_errors=True)
    os.replace(tmp, final)
    _write_marker(final, {"fingerprint": fingerprint, "counts": counts})
    return final


# --------------------------------------------------------------------------- driver


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        description=(
            "Download WMT14 EN-DE (Europarl v7 + Common Crawl + News Commentary v9; "
            "newstest2013 valid; newstest2014 full test), check every archive's published "
            "checksum, extract safely, and prepare it as cpmt-prepare-corpus does. Each step is "
            "skipped when already complete; downloads resume."
        ),
        epilog=(
            "Output: DATA_DIR/downloads (archives, unless --download-dir), DATA_DIR/input/"
            "{train,valid,test}.{en,de}, then cpmt-prepare-corpus's DATA_DIR/{raw,spm,"
            f"spm_encoded,bin}}. Checksums: --checksums FILE or ${CHECKSUMS_ENV}=FILE with "
            "'<hex>  <file name>' lines replace the published ones (for tests and mirrors)."
        ),
    )
    p.add_argument("--out", required=True, metavar="DATA_DIR", help="output folder")
    p.add_argument("--download-dir", metavar="DIR", help="where the archives go (default DATA_DIR/downloads)")
    p.add_argument("--mirror", metavar="URL_OR_DIR", help="fetch the same file names from this http(s):// or file:// URL or local folder instead of statmt.org")
    p.add_argument("--checksums", metavar="FILE", default=os.environ.get(CHECKSUMS_ENV) or None, help=f"'<hex>  <file name>' lines that replace the published checksums (default ${CHECKSUMS_ENV})")
    p.add_argument("--retries", type=int, default=5, help="retries (with resume) per download after a dropped connection (default 5)")
    p.add_argument("--retry-wait", type=float, default=2.0, help=argparse.SUPPRESS)
    p.add_argument("--download-only", action="store_true", help="stop after the downloads are verified")
    p.add_argument("--keep-extracted", action="store_true", help="keep DATA_DIR/extracted after DATA_DIR/input is assembled")
    p.add_argument("--no-progress", action="store_true", help="no download progress lines")
    corpus.add_processing_options(p)  # handed on to corpus preparation
    p.add_argument("--force", action="store_true",
                   help="redo the corpus steps (raw, spm, spm_encoded, bin) even if complete, and rebuild "
                        "a complete corpus in --out made with other options (without it that is "
                        "refused); the downloads and DATA_DIR/input are kept")
    p.add_argument("--test-prefix", metavar="NAME=P", action="append", default=[],
                   help="another test set beside newstest2014, from plain-text P.en and P.de you have "
                        "(e.g. newstest2015=DIR/newstest2015 from `sacrebleu -t wmt15 -l en-de --echo "
                        "src/ref`); repeat for more years; each is scored on its own by cpmt-evaluate")
    return p


def corpus_options(args: argparse.Namespace, input_dir: str) -> "corpus.Options":
    """Corpus preparation of the assembled DATA_DIR/input (newstest2014 is its test set)."""
    prefixes = {split: os.path.join(input_dir, split) for split in corpus.SPLITS}
    prefixes.update(corpus.named_test_prefixes(args.test_prefix))
    return corpus.Options(src="en", tgt="de", out=args.out, prefixes=prefixes, force=args.force,
                          **corpus.processing_options(args))


def run(args: argparse.Namespace) -> int:
    for extra in args.test_prefix:
        if "=" not in extra:
            raise Wmt14Error(f"--test-prefix {extra}: give NAME=PREFIX (newstest2014 stays the main "
                             "test set; e.g. --test-prefix newstest2015=DIR/newstest2015)")
    try:
        corpus.named_test_prefixes(args.test_prefix)
    except ValueError as err:
        raise Wmt14Error(str(err)) from None
    data_dir = args.out
    download_dir = args.download_dir or os.path.join(data_dir, "downloads")
    os.makedirs(data_dir, exist_ok=True)
    sums = resolve_checksums(args.checksums)
    fingerprint = hashlib.sha256(
        json.dumps({"sums": {k: str(v) for k, v in sums.items()}, "v": ASSEMBLY_VERSION}, sort_keys=True).encode()
    ).hexdigest()
    input_dir = os.path.join(data_dir, "input")
    marker = _marker(input_dir)
    input_done = marker is not None and marker.get("fingerprint") == fingerprint

    if input_done and not args.download_only:
        log(f"input: already assembled in {input_dir}, skipping downloads and extraction")
    else:
        log(f"downloading {len(RESOURCES)} archives to {download_dir}" + (f" from mirror {args.mirror}" if args.mirror else ""))
        archives = {}
        for r in RESOURCES:
            archives[r.key] = dl.fetch(
                r.url, os.path.join(download_dir, r.filename), sums[r.filename],
                mirror=args.mirror, retries=args.retries, retry_wait=args.retry_wait,
                progress=not args.no_progress, log=log,
            )
        if args.download_only:
            log("downloads complete and verified (--download-only)")
            return 0
        if not input_done:
            folders = extract_all(data_dir, archives, sums)
            log(f"assembling {input_dir}")
            assemble_input(data_dir, folders, fingerprint)
            if not args.keep_extracted:
                shutil.rmtree(os.path.join(data_dir, "extracted"), ignore_errors=True)

    log(f"preparing the corpus from {input_dir}")
    corpus.prepare(corpus_options(args, input_dir))
    return 0


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return run(args)
    except (Wmt14Error, corpus.CorpusError, dl.DownloadError, dl.UnsafeArchive) as e:
        print(f"[{PROG}] error: {e}", file=sys.stderr, flush=True)
        return 1
    except KeyboardInterrupt:
        print(f"[{PROG}] interrupted; rerun to resume", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
