"""scripts/prepare_wmt14_en_de.sh and contextpool_mt/{download,wmt14}.py against a local
mirror of tiny archives with the real WMT14 layout, served on 127.0.0.1 (no internet)."""

import hashlib
import io
import json
import os
import random
import subprocess
import sys
import tarfile
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from contextpool_mt import download as dl
from contextpool_mt import wmt14

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCRIPT = os.path.join(REPO, "scripts", "prepare_wmt14_en_de.sh")

EN = "the a cat dog house small big red green sees likes eats man woman child tree".split()
DE = "der die das katze hund haus klein gross rot gruen sieht mag isst mann frau kind baum".split()

N_TRAIN = {"europarl": 70, "commoncrawl": 50, "news-commentary-v9": 40}
N_VALID = 12
TEST_DOCS = [("doc-a", 5), ("doc-b", 4)]
N_TEST = sum(n for _, n in TEST_DOCS)


def _pairs(seed, n):
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        idx = [rng.randrange(len(EN)) for _ in range(rng.randint(3, 10))]
        out.append((" ".join(EN[i] for i in idx), " ".join(DE[i] for i in idx)))
    return out


def _text(lines):
    return "".join(l + "\n" for l in lines).encode("utf-8")


def _sgm(kind, lang, docs):
    """A WMT14-style sgm file; the text has XML entities, as the released files may."""
    root = "srcset" if kind == "src" else "refset"
    out = [f'<{root} setid="newstest2014" srclang="any" trglang="{lang}">']
    for docid, segs in docs:
        out.append(f'<doc sysid="{kind}" docid="{docid}" genre="news" origlang="en">')
        out.append("<p>")
        for i, seg in enumerate(segs, 1):
            out.append(f'<seg id="{i}">{seg}</seg>')
        out.append("</p>")
        out.append("</doc>")
    out.append(f"</{root}>")
    return _text(out)


def _test_segments():
    pairs = _pairs(99, N_TEST)
    docs_en, docs_de, k = [], [], 0
    for docid, n in TEST_DOCS:
        en = [p[0] for p in pairs[k:k + n]]
        de = [p[1] for p in pairs[k:k + n]]
        k += n
        docs_en.append((docid, en))
        docs_de.append((docid, de))
    docs_en[0][1][0] = "AT&amp;T &quot;sees&quot; the cat &#38; dog"
    docs_de[0][1][0] = "AT&amp;T &quot;sieht&quot; die katze &#x26; hund &lt;3"
    return docs_en, docs_de


def make_tgz(path, members):
    """members: {name: bytes} or {name: ("symlink"|"hardlink", target)}."""
    with tarfile.open(path, "w:gz") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            if isinstance(data, tuple):
                info.type = tarfile.SYMTYPE if data[0] == "symlink" else tarfile.LNKTYPE
                info.linkname = data[1]
                tar.addfile(info)
            else:
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))


def build_mirror(root):
    """The five WMT14 archives with their real member paths (plus decoys), and a
    sha256sum-style file of their checksums.  Returns {file name: sha256}."""
    os.makedirs(root, exist_ok=True)
    ep, cc, nc = (_pairs(s, N_TRAIN[k]) for s, k in enumerate(N_TRAIN))
    make_tgz(os.path.join(root, "training-parallel-europarl-v7.tgz"), {
        "training/europarl-v7.de-en.en": _text(p[0] for p in ep),
        "training/europarl-v7.de-en.de": _text(p[1] for p in ep),
        "training/europarl-v7.fr-en.fr": _text(["decoy"] * 3),
    })
    make_tgz(os.path.join(root, "training-parallel-commoncrawl.tgz"), {
        "commoncrawl.de-en.en": _text(p[0] for p in cc),
        "commoncrawl.de-en.de": _text(p[1] for p in cc)[:-1],  # last line without "\n"
        "commoncrawl.de-en.annotation": _text(["x"] * len(cc)),
    })
    make_tgz(os.path.join(root, "training-parallel-nc-v9.tgz"), {
        "training/news-commentary-v9.de-en.en": _text(p[0] for p in nc),
        "training/news-commentary-v9.de-en.de": _text(p[1] for p in nc),
        "training/news-commentary-v9.cs-en.cs": _text(["decoy"]),
    })
    dev = _pairs(7, N_VALID)
    make_tgz(os.path.join(root, "dev.tgz"), {
        "dev/newstest2013.en": _text(p[0] for p in dev),
        "dev/newstest2013.de": _text(p[1] for p in dev),
        "dev/newstest2013-src.en.sgm": b"<srcset></srcset>\n",
    })
    docs_en, docs_de = _test_segments()
    make_tgz(os.path.join(root, "test-full.tgz"), {
        "test-full/newstest2014-deen-src.en.sgm": _sgm("src", "en", docs_en),
        "test-full/newstest2014-deen-ref.de.sgm": _sgm("ref", "de", docs_de),
        "test-full/newstest2014-deen-src.de.sgm": _sgm("src", "de", docs_de),
    })
    sums = {}
    for r in wmt14.RESOURCES:
        with open(os.path.join(root, r.filename), "rb") as f:
            sums[r.filename] = hashlib.sha256(f.read()).hexdigest()
    return sums


def write_sums(path, sums):
    with open(path, "w") as f:
        f.write("# tiny test archives\n")
        for name, h in sums.items():
            f.write(f"{h}  {name}\n")
    return str(path)


# --------------------------------------------------------------------------- server


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def do_GET(self):
        srv = self.server
        name = self.path.lstrip("/")
        path = os.path.join(srv.root, name)
        rng = self.headers.get("Range")
        srv.requests.append((name, rng))
        if "/" in name or not os.path.isfile(path):
            self.send_error(404)
            return
        data = open(path, "rb").read()
        start = 0
        if rng and not srv.ignore_range:
            start = int(rng.split("=")[1].split("-")[0])
            if start >= len(data):
                self.send_response(416)
                self.send_header("Content-Range", f"bytes */{len(data)}")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
        else:
            self.send_response(200)
        body = data[start:]
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        drop = srv.drop_once.pop(name, None)
        if drop is not None:  # promise the whole body, send part of it, hang up
            self.wfile.write(body[:drop])
            self.wfile.flush()
            self.close_connection = True
            return
        self.wfile.write(body)


@pytest.fixture(scope="module")
def mirror(tmp_path_factory):
    root = str(tmp_path_factory.mktemp("mirror"))
    sums = build_mirror(root)
    return root, sums


@pytest.fixture
def server(mirror):
    root, _ = mirror
    srv = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    srv.daemon_threads = True
    srv.root, srv.requests, srv.drop_once, srv.ignore_range = root, [], {}, False
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    srv.url = f"http://127.0.0.1:{srv.server_address[1]}"
    try:
        yield srv
    finally:
        srv.shutdown()
        srv.server_close()
        t.join(5)


def run_script(*args):
    env = dict(os.environ, PYTHON=sys.executable)
    env["PATH"] = os.path.dirname(sys.executable) + os.pathsep + env.get("PATH", "")
    env.pop(wmt14.CHECKSUMS_ENV, None)
    return subprocess.run(["bash", SCRIPT, *args], capture_output=True, text=True, env=env, timeout=300)


def read_lines(path):
    with open(path, encoding="utf-8", newline="\n") as f:
        return f.read().split("\n")[:-1]


# --------------------------------------------------------------------------- end to end


def test_end_to_end_from_http_mirror(tmp_path, mirror, server):
    _, sums = mirror
    sums_file = write_sums(tmp_path / "sums.txt", sums)
    out = str(tmp_path / "wmt")
    proc = run_script("--out", out, "--mirror", server.url, "--checksums", sums_file,
                      "--vocab-size", "60", "--workers", "1", "--retries", "1")
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]

    inp = os.path.join(out, "input")
    n_train = sum(N_TRAIN.values())
    assert len(read_lines(os.path.join(inp, "train.en"))) == n_train
    assert len(read_lines(os.path.join(inp, "train.de"))) == n_train
    assert len(read_lines(os.path.join(inp, "valid.de"))) == N_VALID
    test_en = read_lines(os.path.join(inp, "test.en"))
    test_de = read_lines(os.path.join(inp, "test.de"))
    assert len(test_en) == len(test_de) == N_TEST
    assert test_en[0] == 'AT&T "sees" the cat & dog'
    assert test_de[0] == 'AT&T "sieht" die katze & hund <3'
    assert "decoy" not in open(os.path.join(inp, "train.en")).read()

    # cpmt-prepare-corpus ran on it: references stay line-aligned, bin is joined
    assert read_lines(os.path.join(out, "raw", "test.de")) == test_de
    binp = os.path.join(out, "bin")
    assert open(os.path.join(binp, "dict.en.txt")).read() == open(os.path.join(binp, "dict.de.txt")).read()
    for split in ("train", "valid", "test"):
        assert os.path.isfile(os.path.join(binp, f"{split}.en-de.de.idx"))
    assert os.path.isfile(os.path.join(out, "spm", "spm.model"))
    assert not os.path.exists(os.path.join(out, "extracted"))
    for r in wmt14.RESOURCES:
        assert os.path.isfile(os.path.join(out, "downloads", r.filename))
        assert not os.path.exists(os.path.join(out, "downloads", r.filename + ".part"))
    assert f"checksum for dev.tgz taken from {sums_file}" in proc.stdout

    # Second run: nothing downloaded, extracted or rebuilt.
    n_requests = len(server.requests)
    again = run_script("--out", out, "--mirror", server.url, "--checksums", sums_file,
                       "--vocab-size", "60", "--workers", "1")
    assert again.returncode == 0, again.stderr
    assert len(server.requests) == n_requests
    assert "already assembled" in again.stdout and again.stdout.count("already complete") == 4

    # Another --vocab-size into the complete corpus: refused, nothing rebuilt; --force rebuilds
    refused = run_script("--out", out, "--mirror", server.url, "--checksums", sums_file,
                         "--vocab-size", "45", "--workers", "1")
    assert refused.returncode == 1
    assert f"{out} holds a complete prepared corpus" in refused.stderr
    assert "--vocab-size 60 -> 45" in refused.stderr and "--force" in refused.stderr
    assert json.load(open(os.path.join(out, "spm", ".complete")))["requested"] == 60
    forced = run_script("--out", out, "--mirror", server.url, "--checksums", sums_file,
                        "--vocab-size", "45", "--workers", "1", "--force")
    assert forced.returncode == 0, forced.stderr
    assert json.load(open(os.path.join(out, "spm", ".complete")))["requested"] == 45
    assert len(server.requests) == n_requests


# --------------------------------------------------------------------------- checksums


def test_published_checksums_are_the_defaults(tmp_path, mirror, server):
    sums = wmt14.resolve_checksums(None)
    assert str(sums["training-parallel-europarl-v7.tgz"]) == (
        "sha256:0224c7c710c8a063dfd893b0cc0830202d61f4c75c17eb8e31836103d27d96e7")
    assert str(sums["training-parallel-commoncrawl.tgz"]) == (
        "sha256:c7a74e2ea01ac6c920123108627e35278d4ccb5701e15428ffa34de86fa3a9e5")
    assert str(sums["training-parallel-nc-v9.tgz"]) == (
        "sha256:cb8953f292298e6877ae433c98912b927cb0766b303f4540512ddd286c748485")
    assert str(sums["test-full.tgz"]) == "md5:a8cd784e006feb32ac6f3d9ec7eb389a"
    assert str(sums["dev.tgz"]) == "md5:88ba3fc60b2278d59277122e1c7dd6e7"

    # Without an override the tiny mirror fails the real checksum of the first archive.
    out = str(tmp_path / "wmt")
    proc = run_script("--out", out, "--mirror", server.url, "--no-progress")
    assert proc.returncode == 1
    assert f"{server.url}/training-parallel-europarl-v7.tgz" in proc.stderr
    assert "0224c7c710c8a063dfd893b0cc0830202d61f4c75c17eb8e31836103d27d96e7" in proc.stderr
    assert not os.listdir(os.path.join(out, "downloads"))


def test_wrong_checksum_deletes_file_and_extracts_nothing(tmp_path, mirror, server):
    _, sums = mirror
    bad = dict(sums, **{"dev.tgz": "0" * 64})
    sums_file = write_sums(tmp_path / "sums.txt", bad)
    out = str(tmp_path / "wmt")
    proc = run_script("--out", out, "--mirror", server.url, "--checksums", sums_file, "--no-progress")
    assert proc.returncode == 1
    err = proc.stderr
    assert f"{server.url}/dev.tgz" in err and "dev.tgz" in err
    assert "0" * 64 in err and sums["dev.tgz"] in err  # both hashes
    downloads = os.path.join(out, "downloads")
    assert not os.path.exists(os.path.join(downloads, "dev.tgz"))
    assert not os.path.exists(os.path.join(downloads, "dev.tgz.part"))
    assert os.path.exists(os.path.join(downloads, "training-parallel-europarl-v7.tgz"))
    assert not os.path.exists(os.path.join(out, "extracted"))
    assert not os.path.exists(os.path.join(out, "input"))


def test_completed_file_with_wrong_hash_is_deleted(tmp_path, mirror, server):
    _, sums = mirror
    dest = tmp_path / "dev.tgz"
    dest.write_bytes(b"not the archive")
    with pytest.raises(dl.ChecksumMismatch) as e:
        dl.fetch("http://statmt.org/wmt14/dev.tgz", str(dest), dl.Checksum.parse(sums["dev.tgz"]),
                 mirror=server.url, log=lambda m: None)
    msg = str(e.value)
    assert f"{server.url}/dev.tgz" in msg and sums["dev.tgz"] in msg
    assert hashlib.sha256(b"not the archive").hexdigest() in msg
    assert not dest.exists()
    assert server.requests == []


def test_checksum_file_format(tmp_path):
    p = tmp_path / "sums"
    p.write_text("# comment\n" + "ab" * 32 + "  dev.tgz\nmd5:" + "cd" * 16 + " *test-full.tgz\n")
    got = dl.read_checksum_file(str(p))
    assert got["dev.tgz"] == dl.Checksum("sha256", "ab" * 32)
    assert got["test-full.tgz"] == dl.Checksum("md5", "cd" * 16)
    p.write_text("xyz  dev.tgz\n")
    with pytest.raises(dl.DownloadError, match=r"sums:1"):
        dl.read_checksum_file(str(p))


# --------------------------------------------------------------------------- resume


def _checksum(mirror_root, name):
    with open(os.path.join(mirror_root, name), "rb") as f:
        data = f.read()
    return data, dl.Checksum("sha256", hashlib.sha256(data).hexdigest())


def test_resume_from_part_file_uses_range(tmp_path, mirror, server):
    root, _ = mirror
    name = "training-parallel-europarl-v7.tgz"
    data, checksum = _checksum(root, name)
    dest = tmp_path / name
    half = len(data) // 2
    (tmp_path / (name + ".part")).write_bytes(data[:half])
    dl.fetch("http://statmt.org/wmt13/" + name, str(dest), checksum, mirror=server.url, log=lambda m: None)
    assert dest.read_bytes() == data
    assert not (tmp_path / (name + ".part")).exists()
    assert server.requests == [(name, f"bytes={half}-")]


def test_complete_part_file_is_finished_after_416(tmp_path, mirror, server):
    root, _ = mirror
    name = "test-full.tgz"
    data, checksum = _checksum(root, name)
    (tmp_path / (name + ".part")).write_bytes(data)  # crashed between download and rename
    dl.fetch("http://statmt.org/wmt14/" + name, str(tmp_path / name), checksum, mirror=server.url,
             log=lambda m: None)
    assert (tmp_path / name).read_bytes() == data
    assert server.requests == [(name, f"bytes={len(data)}-")]


def test_dropped_connection_is_resumed(tmp_path, mirror, server):
    root, _ = mirror
    name = "training-parallel-commoncrawl.tgz"
    data, checksum = _checksum(root, name)
    cut = len(data) // 3
    server.drop_once[name] = cut
    messages = []
    dest = tmp_path / name
    dl.fetch("http://statmt.org/wmt13/" + name, str(dest), checksum, mirror=server.url,
             retries=2, retry_wait=0, log=messages.append, progress=False)
    assert dest.read_bytes() == data
    assert server.requests == [(name, None), (name, f"bytes={cut}-")]
    assert any("interrupted" in m for m in messages)


def test_server_ignoring_range_restarts_cleanly(tmp_path, mirror, server):
    root, _ = mirror
    name = "dev.tgz"
    data, checksum = _checksum(root, name)
    server.ignore_range = True
    (tmp_path / (name + ".part")).write_bytes(b"garbage prefix")
    dl.fetch("http://statmt.org/wmt14/dev.tgz", str(tmp_path / name), checksum, mirror=server.url,
             log=lambda m: None)
    assert (tmp_path / name).read_bytes() == data


def test_gives_up_after_retries_and_keeps_part(tmp_path, mirror, server):
    root, _ = mirror
    name = "dev.tgz"
    data, checksum = _checksum(root, name)
    server.ignore_range = True  # every attempt starts again at 0 and is cut again

    class Dropper(dict):
        def pop(self, key, default=None):
            return 10 if key == name else default

    server.drop_once = Dropper()
    with pytest.raises(dl.DownloadError, match="gave up after 1 retries") as e:
        dl.fetch("http://statmt.org/wmt14/dev.tgz", str(tmp_path / name), checksum,
                 mirror=server.url, retries=1, retry_wait=0, log=lambda m: None, progress=False)
    assert "rerun to resume" in str(e.value)
    assert (tmp_path / (name + ".part")).exists() and not (tmp_path / name).exists()


# --------------------------------------------------------------------------- mirrors


@pytest.mark.parametrize("kind", ["file-url", "folder"])
def test_local_mirrors(tmp_path, mirror, kind, capsys):
    root, sums = mirror
    mirror_arg = "file://" + root if kind == "file-url" else root
    sums_file = write_sums(tmp_path / "sums.txt", sums)
    downloads = tmp_path / "dl"
    downloads.mkdir()
    # a partial copy is continued from where it stopped
    data = open(os.path.join(root, "dev.tgz"), "rb").read()
    (downloads / "dev.tgz.part").write_bytes(data[:100])
    rc = wmt14.main(["--out", str(tmp_path / "wmt"), "--download-dir", str(downloads),
                     "--mirror", mirror_arg, "--checksums", sums_file, "--download-only"])
    assert rc == 0
    log = capsys.readouterr().out
    assert "dev.tgz: resuming at byte 100" in log
    for r in wmt14.RESOURCES:
        got = open(downloads / r.filename, "rb").read()
        assert hashlib.sha256(got).hexdigest() == sums[r.filename]
    assert not os.path.exists(tmp_path / "wmt" / "input")


def test_missing_file_in_mirror(tmp_path, mirror, server):
    with pytest.raises(dl.DownloadError, match=r"HTTP 404.*/nope.tgz"):
        dl.fetch("http://statmt.org/nope.tgz", str(tmp_path / "nope.tgz"), dl.Checksum("md5", "0" * 32),
                 mirror=server.url, log=lambda m: None)


# --------------------------------------------------------------------------- extraction


@pytest.mark.parametrize("member,kind", [
    ("../evil.txt", "dotdot"),
    ("dev/../../evil.txt", "dotdot-inner"),
    ("/tmp/evil-abs.txt", "absolute"),
    ("dev/link", "symlink-out"),
    ("dev/hard", "hardlink-out"),
])
def test_unsafe_members_refused(tmp_path, member, kind):
    archive = str(tmp_path / "a.tgz")
    members = {"dev/newstest2013.en": b"ok\n"}
    if kind == "symlink-out":
        members[member] = ("symlink", "../../outside.txt")
    elif kind == "hardlink-out":
        members[member] = ("hardlink", "../outside.txt")
    else:
        members[member] = b"pwned\n"
    make_tgz(archive, members)
    dest = tmp_path / "out" / "x"
    with pytest.raises(dl.UnsafeArchive) as e:
        dl.safe_extract(archive, str(dest), ["dev/newstest2013.en"], log=lambda m: None)
    assert member in str(e.value) and archive in str(e.value)
    assert not dest.exists() and not (tmp_path / "out" / "x.tmp").exists()
    assert not (tmp_path / "evil.txt").exists() and not (tmp_path / "out" / "evil.txt").exists()


def test_safe_extract_inside_links_and_missing_member(tmp_path):
    archive = str(tmp_path / "a.tgz")
    make_tgz(archive, {"./dev/a.en": b"a\n", "dev/link": ("symlink", "a.en")})
    files = dl.safe_extract(archive, str(tmp_path / "x"), ["dev/a.en"], log=lambda m: None)
    assert files == [str(tmp_path / "x" / "dev" / "a.en")]
    with pytest.raises(dl.UnsafeArchive, match="lacks dev/b.en"):
        dl.safe_extract(archive, str(tmp_path / "y"), ["dev/b.en"], log=lambda m: None)
    assert not (tmp_path / "y").exists()


def test_pipeline_refuses_archive_with_dotdot_member(tmp_path, mirror, capsys):
    root, sums = mirror
    evil_root = tmp_path / "evil-mirror"
    evil_root.mkdir()
    for r in wmt14.RESOURCES:
        if r.filename != "dev.tgz":
            os.symlink(os.path.join(root, r.filename), evil_root / r.filename)
    make_tgz(str(evil_root / "dev.tgz"), {
        "dev/newstest2013.en": b"a\n", "dev/newstest2013.de": b"b\n", "../../evil.txt": b"pwned\n",
    })
    evil_sums = dict(sums, **{"dev.tgz": hashlib.sha256((evil_root / "dev.tgz").read_bytes()).hexdigest()})
    out = tmp_path / "wmt"
    rc = wmt14.main(["--out", str(out), "--mirror", str(evil_root), "--no-progress",
                     "--checksums", write_sums(tmp_path / "sums.txt", evil_sums)])
    assert rc == 1
    err = capsys.readouterr().err
    assert "../../evil.txt" in err and "dev.tgz" in err
    assert not (out / "input").exists()
    assert not (out / "extracted" / "newstest2013").exists()
    assert not (tmp_path / "evil.txt").exists() and not (out / "evil.txt").exists()


# --------------------------------------------------------------------------- sgm


def test_sgm_alignment_checked(tmp_path):
    src = tmp_path / "s.sgm"
    ref = tmp_path / "r.sgm"
    src.write_bytes(_sgm("src", "en", [("d1", ["a", "b"])]))
    ref.write_bytes(_sgm("ref", "de", [("d2", ["x", "y"])]))
    with pytest.raises(wmt14.Wmt14Error, match="not aligned"):
        wmt14.sgm_pair_to_text(str(src), str(ref), str(tmp_path / "o.en"), str(tmp_path / "o.de"))
    ref.write_bytes(_sgm("ref", "de", [("d1", ["x", "  "])]))
    with pytest.raises(wmt14.Wmt14Error, match=r"r.sgm:5: empty <seg>"):
        wmt14.sgm_pair_to_text(str(src), str(ref), str(tmp_path / "o.en"), str(tmp_path / "o.de"))


def test_help():
    proc = run_script("--help")
    assert proc.returncode == 0 and "--mirror" in proc.stdout and "--checksums" in proc.stdout


def test_extra_newstest_years_go_to_prepare_corpus_by_name(tmp_path, capsys):
    from contextpool_mt import wmt14

    args = wmt14.build_parser().parse_args(["--out", str(tmp_path), "--test-prefix", "newstest2015=/d/nt15",
                                            "--test-prefix", "newstest2016=/d/nt16"])
    opts = wmt14.corpus_options(args, str(tmp_path / "input"))
    assert opts.prefixes == {"train": str(tmp_path / "input" / "train"), "valid": str(tmp_path / "input" / "valid"),
                             "test": str(tmp_path / "input" / "test"),
                             "newstest2015": "/d/nt15", "newstest2016": "/d/nt16"}
    assert opts.test_sets == ("test", "newstest2015", "newstest2016")
    assert (opts.vocab_size, opts.max_len, opts.workers) == (32000, 250, args.workers)
    assert wmt14.main(["--out", str(tmp_path), "--test-prefix", "/d/nt15"]) == 1
    assert "give NAME=PREFIX" in capsys.readouterr().err
