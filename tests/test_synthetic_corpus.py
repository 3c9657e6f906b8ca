"""The synthetic EN->DE demo corpus: determinism, file layout, split hygiene, and the
grammar's phenomena rendered correctly on constructed examples."""

import hashlib
import os
import re
import subprocess
import sys
import unicodedata

import pytest

from contextpool_mt.demo import corpus as cli
from contextpool_mt.demo import grammar as syn
from contextpool_mt.demo import lexicon as lex
from contextpool_mt.demo.grammar import NP, PP, Clause
from contextpool_mt.demo.lexicon import NOUNS, ADJ, MODAL, find_verb

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCRIPT = os.path.join(os.path.dirname(sys.executable), "cpmt-make-demo-corpus")
FILES = [f"{s}.{l}" for s in ("train", "valid", "test") for l in ("en", "de")]


# -- helpers ----------------------------------------------------------------------------------

def np_(noun, det="def", number="sg", adj=None, gen=None):
    return NP(noun=NOUNS[noun], det=det, number=number, adj=ADJ[adj] if adj else None, gen=gen)


def pron(key):
    return NP(pron=key)


def render(c, mode="main", en_lead=None, de_lead=None, end="."):
    tags = set()
    de_mode = {"front": "inv"}.get(mode, mode)
    en_mode = {"front": "main"}.get(mode, mode)
    en = syn.en_clause(c, en_mode, en_lead)
    de = syn.de_clause(c, de_mode, tags, de_lead)
    return syn.render_sentence(en, de, end) + (tags,)


def clause(verb, subj=None, frame=None, **kw):
    c = Clause(verb=find_verb(verb, frame), subj=subj, **kw)
    if subj is not None:
        c.person = subj.person
    return c


def run_cli(out, *args, env_extra=None):
    env = dict(os.environ, **(env_extra or {}))
    return subprocess.run([SCRIPT, "--out", str(out), *args],
                          capture_output=True, text=True, env=env, cwd=REPO)


def digest(directory):
    h = hashlib.sha256()
    for name in FILES:
        with open(os.path.join(directory, name), "rb") as f:
            h.update(name.encode() + b"\0" + f.read())
    return h.hexdigest()


@pytest.fixture(scope="module")
def corpus():
    return syn.generate_corpus(train=2500, valid=200, test=200, seed=1)


# -- determinism ------------------------------------------------------------------------------

def test_same_seed_same_pairs_other_seed_differs():
    a = syn.generate_corpus(train=300, valid=20, test=20, seed=3)
    b = syn.generate_corpus(train=300, valid=20, test=20, seed=3)
    c = syn.generate_corpus(train=300, valid=20, test=20, seed=4)
    assert a == b
    assert a["train"] != c["train"] and a["test"] != c["test"]


def test_cli_byte_identical_across_runs_and_hash_seeds(tmp_path):
    args = ("--train", "300", "--valid", "30", "--test", "30", "--seed", "7")
    r1 = run_cli(tmp_path / "a", *args, env_extra={"PYTHONHASHSEED": "0"})
    r2 = run_cli(tmp_path / "b", *args, env_extra={"PYTHONHASHSEED": "4242"})
    r3 = run_cli(tmp_path / "c", *args[:-1], "8")
    for r in (r1, r2, r3):
        assert r.returncode == 0, r.stderr
    assert digest(tmp_path / "a") == digest(tmp_path / "b")
    assert digest(tmp_path / "a") != digest(tmp_path / "c")
    assert "train:    300 pairs" in r1.stdout and "verb_final" in r1.stdout


def test_test_and_valid_do_not_depend_on_train_size():
    small = syn.generate_corpus(train=50, valid=40, test=40, seed=2)
    big = syn.generate_corpus(train=400, valid=40, test=40, seed=2)
    assert small["test"] == big["test"] and small["valid"] == big["valid"]
    assert big["train"][:50] == small["train"]


# -- files ------------------------------------------------------------------------------------

def test_cli_files_counts_alignment_and_format(tmp_path):
    r = run_cli(tmp_path, "--train", "400", "--valid", "25", "--test", "35")
    assert r.returncode == 0, r.stderr
    assert sorted(os.listdir(tmp_path)) == sorted(FILES)          # no temporary files left
    sizes = {"train": 400, "valid": 25, "test": 35}
    for split, n in sizes.items():
        sides = {}
        for lang in ("en", "de"):
            raw = (tmp_path / f"{split}.{lang}").read_bytes()
            text = raw.decode("utf-8")
            assert text.endswith("\n") and "\r" not in text
            lines = text.split("\n")[:-1]
            assert len(lines) == n
            for line in lines:
                assert line == line.strip() and "  " not in line
                assert unicodedata.normalize("NFC", line) == line
                assert line[0].isupper() and line[-1] in ".?!"
                assert syn.MIN_WORDS <= len(line.split()) <= syn.MAX_WORDS
            sides[lang] = lines
        for en, de in zip(sides["en"], sides["de"]):
            assert en[-1] == de[-1]                                  # same sentence type


def test_tokenized_option_separates_punctuation(tmp_path):
    r = run_cli(tmp_path, "--train", "30", "--valid", "5", "--test", "5", "--tokenized")
    assert r.returncode == 0, r.stderr
    for line in (tmp_path / "train.de").read_text(encoding="utf-8").splitlines():
        assert re.search(r"\S[,.?!]", line) is None and line.endswith((" .", " ?", " !"))


def test_splits_are_disjoint_and_pairs_unique(corpus):
    for side in ("en", "de"):
        seen = [getattr(p, side) for split in corpus.values() for p in split]
        assert len(seen) == len(set(seen))
    train_en = {p.en for p in corpus["train"]}
    train_de = {p.de for p in corpus["train"]}
    for split in ("valid", "test"):
        assert not train_en & {p.en for p in corpus[split]}
        assert not train_de & {p.de for p in corpus[split]}


def test_translation_is_a_function_of_the_source():
    """Wherever two differently seeded corpora contain the same English sentence, they must
    give it the same German translation."""
    a = syn.generate_corpus(train=3000, valid=1, test=1, seed=11)["train"]
    b = syn.generate_corpus(train=3000, valid=1, test=1, seed=12)["train"]
    da = {p.en: p.de for p in a}
    shared = [(p.en, p.de) for p in b if p.en in da]
    assert len(shared) >= 5
    for en, de in shared:
        assert da[en] == de, en


# -- phenomena in the generated corpus --------------------------------------------------------

def test_every_phenomenon_occurs(corpus):
    share = syn.corpus_stats(corpus["train"])["share"]
    for tag in syn.PHENOMENA:
        assert share[tag] >= 0.01, (tag, share[tag])
    assert share["verb_final"] >= 0.2 and share["case"] >= 0.4 and share["multiword"] >= 0.3


SUBORDINATORS = {"weil", "dass", "obwohl", "wenn", "falls", "sobald", "solange", "während",
                 "bevor", "nachdem", "damit", "bis", "um"}
RELATIVE_PRONOUNS = {"der", "die", "das", "den", "dem", "denen"}


def test_subordinate_and_relative_clauses_end_with_the_verb(corpus):
    forms = syn.german_finite_forms()
    checked = 0
    for p in corpus["train"]:
        toks = syn.tokens(p.de)
        for i, t in enumerate(toks):
            starts = (t.lower() in SUBORDINATORS and t != "um") or (
                t in RELATIVE_PRONOUNS | {"um"} and i > 0 and toks[i - 1] == ",")
            if not starts or (t == "wenn" and toks[i - 1] == "selbst"):
                continue
            end = next(j for j in range(i + 1, len(toks)) if toks[j] in {",", ".", "?", "!"})
            assert toks[end - 1] in forms, (p.de, t)
            if t == "um":
                assert toks[end - 2] == "zu" or "zu" in toks[end - 1], p.de
            checked += 1
    assert checked > 500


def test_source_cues_match_target_cues(corpus):
    for p in corpus["train"]:
        en, de = p.en.lower(), p.de.lower()
        assert ("because" in en) == ("weil" in de), p
        assert ("as soon as" in en) == ("sobald" in de), p
        assert ("in order to" in en) == (", um " in de), p
        assert en.startswith(("there is", "there are")) == de.startswith("es gibt"), p
        assert (" that " in en and "dass" in de) or "dass" not in de, p


# -- constructed examples ---------------------------------------------------------------------

@pytest.mark.parametrize("noun,case,expected", [
    ("man", "nom", "der Mann"), ("man", "acc", "den Mann"), ("man", "dat", "dem Mann"),
    ("man", "gen", "des Mannes"), ("woman", "nom", "die Frau"), ("woman", "acc", "die Frau"),
    ("woman", "dat", "der Frau"), ("woman", "gen", "der Frau"), ("child", "nom", "das Kind"),
    ("child", "acc", "das Kind"), ("child", "dat", "dem Kind"), ("child", "gen", "des Kindes"),
    ("boy", "acc", "den Jungen"), ("neighbour", "dat", "dem Nachbarn"),
])
def test_definite_article_agrees_with_gender_and_case(noun, case, expected):
    assert " ".join(syn.de_np(np_(noun), case)) == expected


@pytest.mark.parametrize("noun,det,number,case,expected", [
    ("man", "indef", "sg", "nom", "ein alter Mann"),
    ("man", "indef", "sg", "acc", "einen alten Mann"),
    ("man", "indef", "sg", "dat", "einem alten Mann"),
    ("woman", "indef", "sg", "nom", "eine alte Frau"),
    ("woman", "indef", "sg", "dat", "einer alten Frau"),
    ("house", "indef", "sg", "nom", "ein altes Haus"),
    ("house", "indef", "sg", "acc", "ein altes Haus"),
    ("house", "def", "sg", "nom", "das alte Haus"),
    ("man", "def", "sg", "acc", "den alten Mann"),
    ("woman", "def", "sg", "acc", "die alte Frau"),
    ("child", "def", "pl", "nom", "die alten Kinder"),
    ("child", "def", "pl", "dat", "den alten Kindern"),
    ("child", "bare", "pl", "nom", "alte Kinder"),
    ("child", "num:two", "pl", "dat", "zwei alten Kindern"),
    ("house", "poss:our", "sg", "dat", "unserem alten Haus"),
    ("man", "no", "sg", "acc", "keinen alten Mann"),
    ("woman", "this", "sg", "nom", "diese alte Frau"),
    ("man", "every", "sg", "dat", "jedem alten Mann"),
])
def test_adjective_endings_weak_mixed_strong(noun, det, number, case, expected):
    assert " ".join(syn.de_np(np_(noun, det, number, "old"), case)) == expected


def test_strong_singular_and_attributive_stems():
    coffee = NP(noun=NOUNS["coffee"], det="bare", adj=ADJ["hot"])
    water = NP(noun=NOUNS["water"], det="bare", adj=ADJ["cold"])
    assert syn.de_np(coffee, "acc") == ["heißen", "Kaffee"]
    assert syn.de_np(water, "dat") == ["kaltem", "Wasser"]
    assert syn.de_np(np_("car", "indef", adj="expensive"), "nom") == ["ein", "teures", "Auto"]
    assert syn.de_np(np_("man", "def", adj="tired"), "acc") == ["den", "müden", "Mann"]


def test_english_article_a_an_and_plural():
    assert syn.en_np(np_("man", "indef", adj="old")) == ["an", "old", "man"]
    assert syn.en_np(np_("egg", "indef")) == ["an", "egg"]
    assert syn.en_np(np_("egg", "indef", adj="big")) == ["a", "big", "egg"]
    assert syn.en_np(np_("child", "this", "pl")) == ["these", "children"]
    assert syn.en_np(np_("city", "def", "pl")) == ["the", "cities"]
    for n in lex.NOUN_LIST + lex.COMPOUNDS:        # no "an unicorn"/"a hour" traps
        assert not n.en.startswith(("uni", "use", "eu", "hour", "hon", "one")), n.en


def test_compound_takes_head_gender_and_agrees():
    door = lex.compound("house", "Haus", NOUNS["door"])
    assert (door.de, door.gender, door.de_pl, door.en) == ("Haustür", "f", "Haustüren",
                                                          "house door")
    table = next(c for c in lex.COMPOUNDS if c.en == "kitchen table")
    assert table.de == "Küchentisch" and table.gender == "m"
    tags = set()
    assert syn.de_np(NP(noun=table, det="def", adj=ADJ["new"]), "acc", tags) == [
        "den", "neuen", "Küchentisch"]
    assert "compound" in tags
    present = next(c for c in lex.COMPOUNDS if c.en == "birthday present")
    assert present.de == "Geburtstagsgeschenk" and present.gender == "n"
    assert syn.de_np(NP(noun=present, det="def"), "gen") == ["des", "Geburtstagsgeschenks"]
    key = next(c for c in lex.COMPOUNDS if c.en == "house key")     # genitive from the head
    assert syn.de_np(NP(noun=key, det="def"), "gen") == ["des", "Hausschlüssels"]
    cat = next(c for c in lex.COMPOUNDS if c.en == "house cat")
    assert syn.de_np(NP(noun=cat, det="def", number="pl"), "dat") == ["den", "Hauskatzen"]
    assert syn.en_np(NP(noun=door, det="indef", number="sg")) == ["a", "house", "door"]


def test_genitive_attribute():
    tags = set()
    door = np_("door", gen=np_("house"))
    assert syn.de_np(door, "nom", tags) == ["die", "Tür", "des", "Hauses"]
    assert syn.en_np(door) == ["the", "door", "of", "the", "house"]
    dog = np_("dog", gen=np_("neighbour", "poss:my"))
    assert syn.de_np(dog, "acc") == ["den", "Hund", "meines", "Nachbarn"]
    assert "genitive" in tags


def test_subordinate_clause_puts_the_verb_last():
    c = clause("see", np_("man"), "acc", acc=np_("dog"))
    en, de, tags = render(c, "sub", ["because"], ["weil"])
    assert (en, de) == ("Because the man sees the dog.", "Weil der Mann den Hund sieht.")
    assert "verb_final" in tags
    c.modal = MODAL["can"]
    assert render(c, "sub", ["because"], ["weil"])[1] == "Weil der Mann den Hund sehen kann."


def test_separable_verb_prefix_at_the_end_and_rejoined():
    today = next(a for a in lex.ADVERBS if a.en == "today")
    c = clause("arrive", np_("train"), time=today)
    assert render(c)[:2] == ("The train arrives today.", "Der Zug kommt heute an.")
    assert render(c, "sub", ["because"], ["weil"])[1] == "Weil der Zug heute ankommt."
    c.modal = MODAL["want to"]
    assert render(c)[:2] == ("The train wants to arrive today.", "Der Zug will heute ankommen.")
    call = clause("call", pron("she"), acc=np_("man"))
    en, de, tags = render(call)
    assert (en, de) == ("She calls the man.", "Sie ruft den Mann an.")
    assert "separable" in tags
    zu = Clause(verb=find_verb("call"), person=2, acc=pron("he"))
    assert render(zu, "zu", ["in", "order", "to"], ["um"])[:2] == (
        "In order to call him.", "Um ihn anzurufen.")


def test_fronted_adverb_inverts_subject_and_verb():
    today = next(a for a in lex.ADVERBS if a.en == "today")
    c = clause("arrive", np_("train"))
    en, de, tags = render(c, "front", ["today"], ["heute"])
    assert (en, de) == ("Today the train arrives.", "Heute kommt der Zug an.")
    assert "v2_inversion" in tags and today.de == "heute"
    party = clause("look forward to", np_("man"), pobj=np_("party"))
    assert render(party, "front", ["today"], ["heute"])[1] == \
        "Heute freut sich der Mann auf die Party."
    me = clause("look forward to", pron("i"), pobj=np_("party"))
    assert render(me)[:2] == ("I look forward to the party.", "Ich freue mich auf die Party.")


def test_multiword_units():
    cases = [
        (clause("give up", pron("he")), "He gives up.", "Er gibt auf."),
        (clause("take part in", np_("woman"), pobj=np_("meeting")),
         "The woman takes part in the meeting.", "Die Frau nimmt am Treffen teil."),
        (clause("be afraid of", np_("boy"), pobj=np_("dog")),
         "The boy is afraid of the dog.", "Der Junge hat Angst vor dem Hund."),
        (clause("stay at home", pron("we")), "We stay at home.", "Wir bleiben zu Hause."),
        (clause("pick up", pron("she"), acc=pron("he")), "She picks him up.",
         "Sie holt ihn ab."),
        (clause("look for", pron("you"), acc=np_("key")), "You look for the key.",
         "Du suchst den Schlüssel."),
        (clause("listen to", pron("i"), dat=np_("teacher")), "I listen to the teacher.",
         "Ich höre dem Lehrer zu."),
    ]
    for c, en, de in cases:
        got_en, got_de, tags = render(c)
        assert (got_en, got_de) == (en, de)
        assert "multiword" in tags
    c = clause("swim", pron("he"), gern=True)
    assert render(c)[:2] == ("He likes to swim.", "Er schwimmt gern.")
    c = clause("sleep", pron("he"), modal=MODAL["would like to"])
    assert render(c)[:2] == ("He would like to sleep.", "Er möchte schlafen.")
    c = clause("sleep", pron("he"), modal=MODAL["will"])
    assert render(c)[:2] == ("He will sleep.", "Er wird schlafen.")   # will -> wird


def test_cases_from_roles_and_two_way_prepositions():
    help_ = clause("help", np_("child"), dat=np_("man"))
    assert render(help_)[1] == "Das Kind hilft dem Mann."
    give = clause("give", np_("woman"), dat=np_("child"), acc=np_("book", "indef"))
    assert render(give)[:2] == ("The woman gives the child a book.",
                                "Die Frau gibt dem Kind ein Buch.")
    give.to_form = True
    assert render(give)[:2] == ("The woman gives a book to the child.",
                                "Die Frau gibt dem Kind ein Buch.")
    garden = NOUNS["garden"]
    loc = clause("be", np_("dog"), "loc", pp=PP("in", "in", "dat", np_("garden")))
    go = clause("go", np_("dog"), pp=PP("to", garden.to, "acc", np_("garden")))
    assert render(loc)[:2] == ("The dog is in the garden.", "Der Hund ist im Garten.")
    assert render(go)[:2] == ("The dog goes to the garden.", "Der Hund geht in den Garten.")
    station = NOUNS["train station"]
    go.pp = PP("to", station.to, "dat", np_("train station"))
    assert render(go)[1] == "Der Hund geht zum Bahnhof."
    lie = clause("lie", np_("book"), pp=PP("on", "auf", "dat", np_("table")))
    put = clause("put", pron("i"), acc=np_("book"), pp=PP("on", "auf", "acc", np_("table")))
    assert render(lie)[1] == "Das Buch liegt auf dem Tisch."
    assert render(put)[:2] == ("I put the book on the table.",
                               "Ich lege das Buch auf den Tisch.")


def test_subject_verb_agreement():
    for key, de_form, en_form in [("i", "sehe", "see"), ("you", "siehst", "see"),
                                  ("he", "sieht", "sees"), ("we", "sehen", "see"),
                                  ("they", "sehen", "see")]:
        en, de, _ = render(clause("see", pron(key), "acc", acc=np_("dog")))
        assert de.split()[1] == de_form and en.split()[1] == en_form
    assert lex.conjugate("arbeiten")[2] == "arbeitet"
    assert lex.conjugate("öffnen")[1] == "öffnest"
    assert lex.conjugate("tanzen")[1] == "tanzt"


def test_question_imperative_relative():
    c = clause("see", np_("man"), "acc", acc=np_("dog"))
    assert render(c, "q", end="?")[:2] == ("Does the man see the dog?",
                                           "Sieht der Mann den Hund?")
    c.modal = MODAL["can"]
    assert render(c, "q", end="?")[:2] == ("Can the man see the dog?",
                                           "Kann der Mann den Hund sehen?")
    afraid = clause("be afraid of", pron("she"), pobj=np_("dog"))
    assert render(afraid, "q", end="?")[:2] == ("Is she afraid of the dog?",
                                                "Hat sie Angst vor dem Hund?")
    imp = Clause(verb=find_verb("call"), person=1, acc=np_("man"))
    assert render(imp, "imp", end="!")[:2] == ("Call the man!", "Ruf den Mann an!")
    # "the dog that the man sees" -> "der Hund, den der Mann sieht"
    rel = Clause(verb=find_verb("see"), subj=np_("man"), person=2)
    tags = set()
    de = syn.de_clause(rel, "sub", tags, [lex.RELATIVE["acc"][0]])
    assert de == ["den", "der", "Mann", "sieht"]
    helped = Clause(verb=find_verb("help"), subj=np_("child"), person=2)
    assert syn.de_clause(helped, "sub", tags, [lex.RELATIVE["dat"][0]]) == [
        "dem", "das", "Kind", "hilft"]


def test_generator_relative_clause_agrees_with_head():
    g = syn.Generator(5)
    for noun, det, number in [("man", "def", "sg"), ("woman", "def", "sg"),
                              ("child", "def", "sg"), ("dog", "def", "pl")]:
        head = np_(noun, det, number)
        for _ in range(10):
            en, de = g.relative_clause(head, set())
            slot = 3 if number == "pl" else "mfn".index(NOUNS[noun].gender)
            allowed = {lex.RELATIVE[c][slot] for c in ("nom", "acc", "dat")}
            assert de[0] in allowed
            assert de[-1] in syn.german_finite_forms()
            assert en[0] in ("who", "that")


# -- arguments and interruption ---------------------------------------------------------------

@pytest.mark.parametrize("extra,message", [
    (["--train", "0"], "--train must be between 1"),
    (["--valid", "-3"], "--valid must be between 1"),
    (["--test", "many"], "--test must be an integer"),
    (["--seed", "x"], "--seed must be an integer"),
    (["--src", "en"], "unrecognized arguments"),  # the corpus is EN-DE; the direction is chosen at preparation
])
def test_bad_arguments_are_rejected(tmp_path, capsys, extra, message):
    with pytest.raises(SystemExit) as exc:
        cli.main(["--out", str(tmp_path / "x"), *extra])
    assert exc.value.code == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "x").exists()


def test_out_must_be_a_directory(tmp_path, capsys):
    target = tmp_path / "file"
    target.write_text("x")
    with pytest.raises(SystemExit):
        cli.main(["--out", str(target)])
    assert "is not a directory" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        cli.main([])
    assert "--out" in capsys.readouterr().err


def test_generate_corpus_rejects_bad_sizes():
    with pytest.raises(ValueError, match="train size must be a positive integer"):
        syn.generate_corpus(train=0)
    with pytest.raises(ValueError, match="test size"):
        syn.generate_corpus(test=2.5)


class _Boom:
    @property
    def en(self):
        raise KeyboardInterrupt

    de = en


def test_interrupted_write_leaves_nothing_complete_looking(tmp_path):
    (tmp_path / "train.en").write_text("stale\n")       # from an earlier run
    good = syn.Pair("The dog sleeps now.", "Der Hund schläft jetzt.", ())
    corpus = {"train": [good], "valid": [good], "test": [_Boom()]}
    with pytest.raises(KeyboardInterrupt):
        cli.write_corpus(str(tmp_path), corpus)
    assert os.listdir(tmp_path) == []


