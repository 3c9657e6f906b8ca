"""cpmt-prepare-corpus and contextpool_mt/corpus.py on a tiny corpus."""

import json
import os
import random
import subprocess
import sys

import pytest

from contextpool_mt import corpus

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCRIPT = os.path.join(os.path.dirname(sys.executable), "cpmt-prepare-corpus")

EN = "the a cat dog house small big red green sees likes eats man woman child tree".split()
DE = "der die das katze hund haus klein gross rot gruen sieht mag isst mann frau kind baum".split()

# Train lines that the cleaner must drop (with --max-len 30 --ratio 1.5 --dedup) or normalise.
SPECIAL_TRAIN = [
    ("", "der hund"),  # empty source -> dropped
    ("  \t ", "die katze"),  # whitespace only -> empty -> dropped
    (" ".join(["cat"] * 31), " ".join(["katze"] * 31)),  # 31 tokens > --max-len 30
    ("dog", "der hund sieht die katze"),  # ratio 5 > 1.5
    ("the\u00a0big\tdog\u2028sees", "der  grosse\u3000hund sieht"),  # odd whitespace, kept
]


def _pair(rng, n):
    idx = [rng.randrange(len(EN)) for _ in range(n)]
    return " ".join(EN[i] for i in idx), " ".join(DE[i] for i in idx)


def write_corpus(root, n_train=200, n_valid=15, n_test=15, seed=0, names=("train", "valid", "test")):
    rng = random.Random(seed)
    os.makedirs(root, exist_ok=True)
    for split, n in zip(names, (n_train, n_valid, n_test)):
        pairs = [_pair(rng, rng.randint(3, 12)) for _ in range(n)]
        if split == names[0]:
            pairs = pairs + SPECIAL_TRAIN + [pairs[0]]  # last: an exact duplicate
        with open(os.path.join(root, f"{split}.en"), "w", encoding="utf-8", newline="\n") as f:
            f.writelines(p[0] + "\n" for p in pairs)
        # The German side uses CRLF endings: they must count as plain line ends.
        with open(os.path.join(root, f"{split}.de"), "w", encoding="utf-8", newline="\r\n") as f:
            f.writelines(p[1] + "\n" for p in pairs)
    return root


def run_script(*args, env_extra=None):
    env = dict(os.environ)
    env["PYTHON"] = sys.executable
    env["PATH"] = os.path.dirname(sys.executable) + os.pathsep + env.get("PATH", "")
    env.update(env_extra or {})
    return subprocess.run(
        [SCRIPT, *args], capture_output=True, text=True, env=env, timeout=300
    )


def lines(path):
    with open(path, encoding="utf-8", newline="\n") as f:
        return f.read().split("\n")[:-1]


BASE_OPTS = ["--src", "en", "--tgt", "de", "--vocab-size", "60", "--workers", "1",
             "--max-len", "30", "--ratio", "1.5", "--dedup"]


# --------------------------------------------------------------------------- end to end


def test_end_to_end_and_rerun_skips(tmp_path):
    inp = write_corpus(str(tmp_path / "in"))
    out = str(tmp_path / "data")
    proc = run_script("--input", inp, "--out", out, *BASE_OPTS)
    assert proc.returncode == 0, proc.stdout + proc.stderr

    # raw: valid/test kept line for line; train cleaned
    for split, n in (("valid", 15), ("test", 15)):
        for lang in ("en", "de"):
            assert len(lines(os.path.join(out, "raw", f"{split}.{lang}"))) == n
    assert lines(os.path.join(out, "raw", "test.de")) == [
        " ".join(l.split()) for l in lines(os.path.join(inp, "test.de"))
    ]
    stats = json.load(open(os.path.join(out, "raw", "stats.json")))
    assert stats["train"]["lines"] == 200 + len(SPECIAL_TRAIN) + 1
    assert stats["train"]["dropped"] == {
        "empty": 2, "longer than 30 tokens": 1, "length ratio above 1.5": 1, "duplicate pair": 1,
    }
    train_en = lines(os.path.join(out, "raw", "train.en"))
    train_de = lines(os.path.join(out, "raw", "train.de"))
    assert len(train_en) == len(train_de) == stats["train"]["kept"] == 201
    assert "the big dog sees" in train_en and "der grosse hund sieht" in train_de
    assert not any("\r" in l or "\t" in l or "  " in l for l in train_en + train_de)

    # spm
    import sentencepiece as spm

    sp = spm.SentencePieceProcessor(model_file=os.path.join(out, "spm", "spm.model"))
    assert 20 < sp.get_piece_size() <= 60
    assert len(lines(os.path.join(out, "spm", "spm.vocab"))) == sp.get_piece_size()
    enc = lines(os.path.join(out, "spm_encoded", "test.de"))
    assert len(enc) == 15 and sp.decode(enc[0].split()) == lines(os.path.join(out, "raw", "test.de"))[0]

    # bin: every split, joined dictionary, readable by fairseq
    binp = os.path.join(out, "bin")
    for split in ("train", "valid", "test"):
        for lang in ("en", "de"):
            for ext in ("bin", "idx"):
                assert os.path.isfile(os.path.join(binp, f"{split}.en-de.{lang}.{ext}"))
    assert open(os.path.join(binp, "dict.en.txt")).read() == open(os.path.join(binp, "dict.de.txt")).read()
    from fairseq.data import Dictionary, data_utils

    d = Dictionary.load(os.path.join(binp, "dict.de.txt"))
    ds = data_utils.load_indexed_dataset(os.path.join(binp, "test.en-de.de"), d)
    assert len(ds) == 15
    assert len(ds[0]) == len(enc[0].split()) + 1  # + </s>

    for step in corpus.STEPS:
        assert os.path.isfile(os.path.join(out, step, corpus.MARKER))
    assert not [n for n in os.listdir(out) if n.endswith(".tmp")]

    again = run_script("--input", inp, "--out", out, *BASE_OPTS)
    assert again.returncode == 0, again.stderr
    assert again.stdout.count("already complete") == 4
    assert "fairseq_cli.preprocess" not in again.stdout


# --------------------------------------------------------------------------- bad input


def _drop_file(d):
    os.remove(os.path.join(d, "valid.de"))
    return "valid.de", ["--valid-prefix"]


def _count_mismatch(d):
    p = os.path.join(d, "train.de")
    with open(p, encoding="utf-8", newline="") as f:
        body = f.readlines()
    with open(p, "w", encoding="utf-8", newline="") as f:
        f.writelines(body[:-1])
    n = len(body)
    return "train.de", [f"has {n} lines", f"has {n - 1}", "train.en"]


def _replace_line(d, name, lineno, raw: bytes):
    p = os.path.join(d, name)
    with open(p, "rb") as f:
        body = f.read().split(b"\n")
    body[lineno - 1] = raw
    with open(p, "wb") as f:
        f.write(b"\n".join(body))


def _bad_utf8_train(d):
    _replace_line(d, "train.en", 7, b"caf\xe9 au lait")
    return "train.en:7", ["not valid UTF-8", "--bad-utf8 drop"]


def _bad_utf8_test(d):
    _replace_line(d, "test.de", 3, b"stra\xdfe\r")
    return "test.de:3", ["not valid UTF-8"]


def _empty_valid(d):
    _replace_line(d, "valid.en", 5, b"")
    return "valid.en:5", ["empty line"]


def _blank_test(d):
    _replace_line(d, "test.de", 2, b" \t\xc2\xa0\r")  # spaces, tab, no-break space
    return "test.de:2", ["empty line"]


@pytest.mark.parametrize(
    "breaker", [_drop_file, _count_mismatch, _bad_utf8_train, _bad_utf8_test, _empty_valid, _blank_test],
    ids=["missing-file", "line-count-mismatch", "bad-utf8-train", "bad-utf8-test", "empty-valid-line", "blank-test-line"],
)
def test_bad_input_fails_clearly(tmp_path, breaker):
    inp = write_corpus(str(tmp_path / "in"), n_train=40)
    where, needles = breaker(inp)
    out = str(tmp_path / "data")
    proc = run_script("--input", inp, "--out", out, *BASE_OPTS)
    assert proc.returncode != 0
    err = proc.stderr
    assert "error:" in err and os.path.join(inp, where) in err, err
    for needle in needles:
        assert needle in err, err
    assert "Traceback" not in err
    # nothing left that could pass for complete output
    assert not os.path.exists(os.path.join(out, "raw"))
    assert not os.path.exists(out) or set(os.listdir(out)) <= {".lock"}


def test_bad_utf8_drop_for_train(tmp_path, capsys):
    inp = write_corpus(str(tmp_path / "in"), n_train=40)
    _replace_line(inp, "train.de", 4, b"gro\xdf")
    out = str(tmp_path / "data")
    rc = corpus.main(["--input", inp, "--out", out, *BASE_OPTS, "--bad-utf8", "drop", "--stop-after", "raw"])
    assert rc == 0
    stats = json.load(open(os.path.join(out, "raw", "stats.json")))
    assert stats["train"]["dropped"]["not valid UTF-8"] == 1


# --------------------------------------------------------------------------- resumption


def test_interrupted_step_is_redone_not_trusted(tmp_path, monkeypatch, capsys):
    inp = write_corpus(str(tmp_path / "in"), n_train=60)
    out = str(tmp_path / "data")
    args = ["--input", inp, "--out", out, *BASE_OPTS, "--stop-after", "spm_encoded"]

    import sentencepiece as spm

    real_encode = spm.SentencePieceProcessor.encode
    calls = {"n": 0}

    def dying_encode(self, *a, **k):
        calls["n"] += 1
        if calls["n"] == 3:  # after some encoded files were written
            raise KeyboardInterrupt
        return real_encode(self, *a, **k)

    monkeypatch.setattr(spm.SentencePieceProcessor, "encode", dying_encode)
    assert corpus.main(args) == 130
    assert os.path.isfile(os.path.join(out, "spm", corpus.MARKER))
    assert not os.path.exists(os.path.join(out, "spm_encoded", corpus.MARKER))
    assert not os.path.exists(os.path.join(out, ".spm_encoded.tmp"))

    monkeypatch.setattr(spm.SentencePieceProcessor, "encode", real_encode)
    capsys.readouterr()
    assert corpus.main(args) == 0
    log = capsys.readouterr().out
    assert "raw: already complete" in log and "spm: already complete" in log
    assert "step 3/4 spm_encoded" in log
    assert len(lines(os.path.join(out, "spm_encoded", "train.en"))) == 60 + 1  # + the kept odd-whitespace pair

    # A marker-less step folder (as after a crash between rename and marker) is redone,
    # and so is every step after it.
    os.remove(os.path.join(out, "spm", corpus.MARKER))
    capsys.readouterr()
    assert corpus.main(args) == 0
    log = capsys.readouterr().out
    assert "raw: already complete" in log
    assert "removing incomplete or outdated output" in log
    assert "step 2/4 spm" in log and "step 3/4 spm_encoded" in log


def test_changed_options_redo_later_steps(tmp_path, capsys):
    inp = write_corpus(str(tmp_path / "in"), n_train=60)
    out = str(tmp_path / "data")
    base = ["--input", inp, "--out", out, *BASE_OPTS, "--stop-after", "spm"]
    assert corpus.main(base) == 0
    capsys.readouterr()
    assert corpus.main(base + ["--vocab-size", "45", "--spm-model-type", "bpe"]) == 0
    log = capsys.readouterr().out
    assert "raw: already complete" in log and "step 2/4 spm" in log and "bpe" in log
    marker = json.load(open(os.path.join(out, "spm", corpus.MARKER)))
    assert marker["model_type"] == "bpe" and marker["requested"] == 45


def snapshot(folder):
    """{relative path: bytes} of every file under ``folder`` but the lock."""
    return {os.path.relpath(os.path.join(d, n), folder): open(os.path.join(d, n), "rb").read()
            for d, _, names in os.walk(folder) for n in names if n != ".lock"}


def test_a_complete_corpus_is_not_rebuilt_from_other_options_or_inputs(tmp_path, capsys):
    """Runs trained on a prepared corpus depend on its SentencePiece model and dictionary:
    preparing into it with another --vocab-size or other input files stops, names the folder
    and what differs, and changes nothing; --force rebuilds it."""
    inp = write_corpus(str(tmp_path / "in"), n_train=60)
    out = str(tmp_path / "data")
    base = ["--input", inp, "--out", out, *BASE_OPTS]
    assert corpus.main(base) == 0
    built = snapshot(out)
    capsys.readouterr()

    assert corpus.main(base + ["--vocab-size", "45"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert f"{out} holds a complete prepared corpus built from other inputs or options" in err
    assert "(--vocab-size 60 -> 45)" in err
    assert "use another --out, or pass --force to rebuild it" in err
    assert snapshot(out) == built

    other = write_corpus(str(tmp_path / "other"), n_train=70, seed=1)
    assert corpus.main(["--input", other, "--out", out, *BASE_OPTS]) == 1
    err = capsys.readouterr().err
    assert f"input train.en was {os.path.join(inp, 'train.en')}, now {os.path.join(other, 'train.en')}" in err
    with open(os.path.join(inp, "train.en"), "a", encoding="utf-8") as f:  # same path, changed
        f.write("the cat\n")
    with open(os.path.join(inp, "train.de"), "a", encoding="utf-8") as f:
        f.write("die katze\n")
    assert corpus.main(base) == 1
    assert f"input {os.path.join(inp, 'train.en')} changed since" in capsys.readouterr().err
    assert snapshot(out) == built

    # a corpus whose markers predate the recipe they now keep: refused all the same
    marker_path = os.path.join(out, "raw", corpus.MARKER)
    marker = json.load(open(marker_path))
    del marker["recipe"]
    corpus.write_marker(os.path.join(out, "raw"), marker)
    assert corpus.main(base) == 1
    assert "(the raw step differs)" in capsys.readouterr().err

    assert corpus.main(base + ["--vocab-size", "45", "--force", "--stop-after", "spm"]) == 0
    assert json.load(open(os.path.join(out, "spm", corpus.MARKER)))["requested"] == 45


def test_sentencepiece_trains_with_spm_threads_not_workers(tmp_path, monkeypatch, capsys):
    """SentencePiece's unigram trainer builds another vocabulary with another thread count (on
    Multi30k 1 and 2 threads differ in 39 pieces, docs/results.md), so --workers, a speed setting
    whose default is the machine's core count, must not reach it: SentencePiece trains with
    --spm-threads (default 1 on every machine), which is part of the recipe."""
    import sentencepiece as spm

    real_train = spm.SentencePieceTrainer.train
    threads = []

    def spy(**kwargs):
        threads.append(kwargs["num_threads"])
        return real_train(**kwargs)

    monkeypatch.setattr(spm.SentencePieceTrainer, "train", spy)
    inp = write_corpus(str(tmp_path / "in"), n_train=60)
    out = str(tmp_path / "data")
    base = ["--input", inp, "--out", out, *BASE_OPTS]
    assert corpus.main(base + ["--workers", "3"]) == 0
    assert threads and set(threads) == {1}
    assert json.load(open(os.path.join(out, "spm", corpus.MARKER)))["recipe"]["threads"] == 1
    capsys.readouterr()
    assert corpus.main(base + ["--workers", "2"]) == 0  # other workers: the same corpus, reused
    assert "spm: already complete" in capsys.readouterr().out
    assert corpus.main(base + ["--spm-threads", "2"]) == 1
    assert "(--spm-threads 1 -> 2)" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        corpus.main(base + ["--spm-threads", "0"])
    assert "--spm-threads: must be 1 or more, got 0" in capsys.readouterr().err


def test_a_corpus_prepared_before_spm_threads_were_recorded_is_kept(tmp_path, capsys):
    """Its markers' recipes have no thread count (it trained with --workers threads): preparing
    into it again with the same options keeps every step as it is, and says so; --force rebuilds."""
    inp = write_corpus(str(tmp_path / "in"), n_train=60)
    out = str(tmp_path / "data")
    base = ["--input", inp, "--out", out, *BASE_OPTS]
    assert corpus.main(base) == 0
    parser = corpus.build_parser()
    opts = corpus.options_from_args(parser.parse_args(base), parser)
    for step, recipe in corpus.recipes(opts, spm_threads_recorded=False).items():  # as the old code wrote them
        marker = corpus.read_marker(os.path.join(out, step))
        corpus.write_marker(os.path.join(out, step), dict(marker, recipe=recipe, fingerprint=corpus._fingerprint(recipe)))
    built = snapshot(out)
    capsys.readouterr()
    assert corpus.main(base) == 0
    log = capsys.readouterr().out
    assert "was trained before the SentencePiece thread count was recorded" in log
    assert all(f"{step}: already complete" in log for step in corpus.STEPS)
    assert snapshot(out) == built
    assert corpus.main(base + ["--vocab-size", "45"]) == 1  # other options: refused as before
    assert corpus.main(base + ["--force", "--stop-after", "spm"]) == 0
    assert json.load(open(os.path.join(out, "spm", corpus.MARKER)))["recipe"]["threads"] == 1


def test_small_corpus_vocab_fallback_and_too_small_vocab(tmp_path, capsys):
    inp = write_corpus(str(tmp_path / "in"), n_train=30)
    out = str(tmp_path / "data")
    base = ["--input", inp, "--out", out, *BASE_OPTS, "--stop-after", "spm"]
    assert corpus.main(base + ["--vocab-size", "5000"]) == 0
    log = capsys.readouterr().out
    assert "too small for --vocab-size 5000" in log and "hard_vocab_limit=false" in log
    marker = json.load(open(os.path.join(out, "spm", corpus.MARKER)))
    assert marker["hard_vocab_limit"] is False and marker["pieces"] < 5000

    assert corpus.main(base + ["--vocab-size", "8"]) == 1
    err = capsys.readouterr().err
    assert "--vocab-size 8 is too small" in err
    assert not os.path.exists(os.path.join(out, "spm", corpus.MARKER))
    assert os.path.exists(os.path.join(out, "raw", corpus.MARKER))


def test_custom_prefixes_multi30k_style(tmp_path):
    d = str(tmp_path / "m30k")
    write_corpus(d, n_train=30, names=("train", "val", "test_2016_flickr"))
    out = str(tmp_path / "data")
    rc = corpus.main(["--input", d, "--valid-prefix", os.path.join(d, "val"),
                      "--test-prefix", os.path.join(d, "test_2016_flickr"), "--out", out,
                      *BASE_OPTS, "--stop-after", "raw"])
    assert rc == 0
    assert len(lines(os.path.join(out, "raw", "valid.en"))) == 15
    assert len(lines(os.path.join(out, "raw", "test.de"))) == 15


def test_named_extra_test_sets_share_the_spm_model_and_dictionary(tmp_path):
    d = str(tmp_path / "in")
    write_corpus(d, n_train=60)
    write_corpus(os.path.join(d, "more"), n_train=1, n_valid=11, n_test=9, seed=3,
                 names=("unused", "newstest2016", "newstest2015"))
    out = str(tmp_path / "data")
    rc = corpus.main(["--input", d, "--out", out, *BASE_OPTS,
                      "--test-prefix", os.path.join(d, "more", "newstest2016"),  # the main one
                      "--test-prefix", "newstest2015=" + os.path.join(d, "more", "newstest2015")])
    assert rc == 0
    # the main test set is the unnamed prefix; the named one keeps its name and every line
    assert len(lines(os.path.join(out, "raw", "test.en"))) == 11
    assert len(lines(os.path.join(out, "raw", "newstest2015.de"))) == 9
    stats = json.load(open(os.path.join(out, "raw", "stats.json"), encoding="utf-8"))
    assert set(stats) == {"train", "valid", "test", "newstest2015"}
    import sentencepiece as spm
    sp = spm.SentencePieceProcessor(model_file=os.path.join(out, "spm", "spm.model"))
    for lang in ("en", "de"):
        encoded = lines(os.path.join(out, "spm_encoded", f"newstest2015.{lang}"))
        raw = lines(os.path.join(out, "raw", f"newstest2015.{lang}"))
        assert encoded == [" ".join(sp.encode(line, out_type=str)) for line in raw]
        for ext in ("bin", "idx"):
            assert os.path.isfile(os.path.join(out, "bin", f"newstest2015.en-de.{lang}.{ext}"))
    assert not any(name.startswith("test1") for name in os.listdir(os.path.join(out, "bin")))
    marker = json.load(open(os.path.join(out, "bin", corpus.MARKER), encoding="utf-8"))
    assert marker["test_sets"] == ["test", "newstest2015"]


@pytest.mark.parametrize("flags, message", [
    (["--test-prefix", "a", "--test-prefix", "b"], "name the extra test sets"),
    (["--test-prefix", "valid=x"], "NAME must be"),
    (["--test-prefix", "test1=x"], "NAME must be"),
    (["--test-prefix", "y=a", "--test-prefix", "y=b"], "given twice"),
])
def test_bad_test_set_names_are_refused(tmp_path, capsys, flags, message):
    with pytest.raises(SystemExit):
        corpus.main(["--input", str(tmp_path), "--out", str(tmp_path / "o"), *BASE_OPTS, *flags])
    assert message in capsys.readouterr().err


# --------------------------------------------------------------------------- units


def test_normalise_line():
    assert corpus.normalise_line("  a\tb\u00a0c\u2009d  ") == "a b c d"
    assert corpus.normalise_line("\ufeffx\x00y\x7fz\u2028w") == "x y z w"
    assert corpus.normalise_line("Cafe\u0301") == "Caf\u00e9"  # NFC
    assert corpus.normalise_line("\ufb01 \u00b2") == "\ufb01 \u00b2"  # no NFKC folding of text


def test_count_lines(tmp_path):
    p = tmp_path / "f"
    p.write_bytes(b"a\r\nb\nc")
    assert corpus.count_lines(str(p)) == 3
    p.write_bytes("a\u2028b\n".encode("utf-8"))
    assert corpus.count_lines(str(p)) == 1
    p.write_bytes(b"")
    assert corpus.count_lines(str(p)) == 0


def test_help():
    proc = run_script("--help")
    assert proc.returncode == 0 and "--vocab-size" in proc.stdout and "--test-prefix" in proc.stdout


def test_every_normalisation_is_counted_per_kind_and_split(tmp_path):
    inp = write_corpus(str(tmp_path / "in"))
    # valid gets its own odd lines: a tab, U+0085, U+2028, a decomposed e-acute, a BOM
    valid_en = lines(os.path.join(inp, "valid.en"))
    valid_en[0] = "the\tcat\u0085sees"
    valid_en[1] = "\ufeffthe dog\u2028eats"
    valid_en[2] = "the cafe\u0301  man"
    with open(os.path.join(inp, "valid.en"), "w", encoding="utf-8", newline="\n") as f:
        f.writelines(l + "\n" for l in valid_en)
    out = str(tmp_path / "data")
    proc = run_script("--input", inp, "--out", out, *BASE_OPTS)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    stats = json.load(open(os.path.join(out, "raw", "stats.json")))
    assert stats["valid"]["normalised_lines"] == {
        "control characters (tab, U+0085, ...) -> space": 1,
        "U+FEFF (byte-order mark) removed": 1,
        "other Unicode whitespace (no-break space, U+2028, ...) -> space": 1,
        "NFC recomposition": 1,
        "spaces collapsed or trimmed": 1,
    }
    # train: the tab-only line, the no-break/tab/U+2028 line (en) and U+3000 + double space (de)
    train = stats["train"]["normalised_lines"]
    assert train["control characters (tab, U+0085, ...) -> space"] == 2
    assert train["other Unicode whitespace (no-break space, U+2028, ...) -> space"] == 2
    assert stats["test"]["normalised_lines"] == {}
    assert "valid: lines normalised (either side, before cleaning): NFC recomposition: 1" in proc.stdout
    assert lines(os.path.join(out, "raw", "valid.en"))[:3] == [
        "the cat sees", "the dog eats", "the caf\u00e9 man"]
