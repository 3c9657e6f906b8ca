"""Deterministic synthetic English -> German parallel corpus for the demo: the grammar.

A small hand-written grammar over the mini-lexicon of real German words in ``lexicon.py``.
Every English sentence has exactly one German rendering, so the translation is a function that
a small model can learn, but getting it right needs local context: the German form of a word
depends on its neighbours, and the German word order differs from the English one. All
randomness comes from one ``random.Random(seed)``; there is no global random state, no
iteration over sets, and only ``Random.random()`` is called (the one method whose sequence
Python guarantees across versions), so the same seed and sizes give byte-identical files on any
machine, Python version and ``PYTHONHASHSEED``.

Text is properly cased (sentence-initial capital, German nouns capitalised) and punctuated
(``.``, ``?``, ``!`` and German commas before every subordinate clause). Sentences have 4 to
25 words on both sides. The phenomena, with the tag each sentence carries in the summary:

``multiword``  multi-word units translated as a whole: phrasal verbs and idioms
    ("give up" -> "aufgeben", "take part in" -> "teilnehmen an" + dative, "look forward to"
    -> "sich freuen auf", "be afraid of" -> "Angst haben vor", "stay at home" -> "zu Hause
    bleiben", "would like to" -> "möchte"), multi-word conjunctions ("as soon as" ->
    "sobald", "even though" -> "obwohl", "in order to" -> "um ... zu"), adverbials ("of
    course" -> "natürlich", "this evening" -> "heute Abend", "on foot" -> "zu Fuß"),
    "there is/are" -> "es gibt" + accusative, lexicalised nouns ("train station" ->
    "Bahnhof", "bus stop" -> "Haltestelle").
``case``  German articles, pronouns and nouns marked for case, chosen by the syntactic
    role: subject nominative, direct object accusative, objects of dative verbs ("help" ->
    "helfen") and indirect objects dative, prepositions governing accusative (für, ohne,
    um, auf as in "warten auf") or dative (mit, von, zu, vor), two-way prepositions
    (location "in the garden" -> "im Garten" (dative) versus destination "to the garden"
    -> "in den Garten" (accusative); "lies on the table" -> "auf dem Tisch" versus "puts
    ... on the table" -> "auf den Tisch"), weak masculine nouns ("den Jungen"), dative
    plural -n ("mit den Kindern"), English a/an. Also subject-verb agreement in person and
    number ("ich sehe", "du siehst", "er sieht").
``adj_agreement``  attributive adjectives with the weak (after der/dieser/jeder), mixed
    (after ein/kein/mein...) or strong (no article, numerals) ending for the noun's gender,
    number and case ("ein alter Mann", "einen alten Mann", "das kleine Haus", "zwei kleine
    Häuser", "heißen Kaffee"); predicative adjectives stay bare ("der Mann ist alt").
``verb_final``  subordinate clauses (weil, dass, obwohl, sobald, ...) and relative clauses
    put the finite verb last ("because the man sees the dog" -> "weil der Mann den Hund
    sieht"); separable verbs rejoin ("weil der Zug heute ankommt"); a modal comes after the
    infinitive ("weil er heute ankommen will").
``v2_inversion``  verb-second main clauses: a fronted time or sentence adverb or a fronted
    subordinate clause makes the subject follow the verb ("Today the train arrives." ->
    "Heute kommt der Zug an.", "Because it rains, I stay at home." -> "Weil es regnet,
    bleibe ich zu Hause."), also after "so" -> ", deshalb" and "and then" -> "und dann".
``separable``  separable-prefix verbs: prefix at the end of a main clause ("the train
    arrives today" -> "der Zug kommt heute an", "she calls the man" -> "sie ruft den Mann
    an"), joined in verb-final clauses and infinitives, "zu" inside ("um ihn anzurufen").
``verb_bracket``  modal + infinitive at the end ("can", "must", "should", "will" ->
    "wird" (future), "wants to" -> "will", "would like to" -> "möchte").
``compound``  English noun-noun compounds become one German word formed from the modifier's
    combining form and the head, with the head's gender ("house door" -> "Haustür" (f),
    "birthday present" -> "Geburtstagsgeschenk", "kitchen table" -> "Küchentisch").
``genitive``  "the door of the house" -> "die Tür des Hauses", "the dog of my neighbour"
    -> "der Hund meines Nachbarn".
``relative_clause``  relative pronoun agreeing with the head noun's gender and number and
    taking its case from the relative clause ("the man who sees the dog" -> "der Mann, der
    den Hund sieht", "the dog that the man sees" -> "der Hund, den der Mann sieht", "the
    man that the child helps" -> "der Mann, dem das Kind hilft"); object relatives are
    extraposed after the verb bracket.
``question``  yes/no questions: English do-support or inversion, German verb-first ("Does the
    man see the dog?" -> "Sieht der Mann den Hund?").
``imperative``  "Please call the man!" -> "Bitte ruf den Mann an!"
``um_zu``  "in order to" + verb phrase -> ", um ... zu" + infinitive at the end.
``contraction``  preposition + article: in dem -> im, in das -> ins, an dem -> am, zu dem
    -> zum, zu der -> zur, von dem -> vom, bei dem -> beim.
``pronoun_object``  object pronouns, which move next to the German verb ("she calls him"
    -> "sie ruft ihn an"; English phrasal verbs split: "picks him up" -> "holt ihn ab").
``reflexive``  reflexive verbs with a pronoun agreeing with the subject ("I look forward to
    the party" -> "ich freue mich auf die Party").

Word order inside the German clause (the "middle field") is fixed: object pronouns,
reflexive pronoun, time adverb, frequency adverb or "gern", dative object, accusative object,
with/for-phrase, manner adverb, idiom part and prepositional object, location or
destination, predicative adjective, idiom tail; then the verb bracket.

Use ``generate_corpus`` for whole splits (test, then valid, then train are drawn from one
stream; all pairs are distinct on both sides, so the splits are disjoint and test/valid do
not depend on the train size) and the ``render_*`` helpers for single constructions.
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass
from typing import NamedTuple

from contextpool_mt.demo.lexicon import (
    A, ADJ_MIXED, ADJ_STRONG, ADJ_WEAK, ADJECTIVES, COMPOUNDS, CONJUNCTIONS, CONTRACTIONS,
    DEF_ARTICLE, DER_END, EIN_END, EN_BE, MODAL, MODALS, NOUN_LIST, NUMBERS, PLACE, PORT,
    POSSESSIVES, PRONOUNS, REFLEXIVE, RELATIVE, THAT_VERBS, VEH, VERBS, WEATHER_ADJ, P, Adj,
    Adv, Modal, Noun, Verb, _ADV_BY_KIND, _G, _PERSONAL, _en_finite, de_noun_form)

__all__ = [
    "PHENOMENA", "Pair", "NP", "PP", "Clause", "Generator", "generate_corpus",
    "detokenize", "corpus_stats", "de_np", "en_np", "de_clause", "en_clause",
    "render_sentence", "german_finite_forms", "tokens", "MIN_WORDS", "MAX_WORDS",
]

MIN_WORDS, MAX_WORDS = 4, 25

PHENOMENA = {
    "multiword": "multi-word unit translated as a whole (idiom, phrasal verb, fixed phrase)",
    "case": "case marking (accusative/dative/genitive articles, pronouns, nouns)",
    "adj_agreement": "attributive adjective ending (gender/case/number, weak/mixed/strong)",
    "verb_final": "verb-final subordinate or relative clause",
    "v2_inversion": "verb-second inversion after a fronted element",
    "separable": "separable-prefix verb",
    "verb_bracket": "modal verb + clause-final infinitive",
    "compound": "noun compound (house door -> Haustür)",
    "genitive": "genitive attribute (the X of the Y -> das X des Y)",
    "relative_clause": "relative clause (pronoun agrees with the head noun)",
    "question": "yes/no question (do-support / verb-first)",
    "imperative": "imperative",
    "um_zu": "in order to -> um ... zu",
    "contraction": "preposition + article contraction (im, zum, ...)",
    "pronoun_object": "object pronoun placed next to the verb",
    "reflexive": "reflexive verb (sich freuen, ...)",
}

# ---------------------------------------------------------------------------------------------
# Noun phrases
# ---------------------------------------------------------------------------------------------

@dataclass
class NP:
    """A noun phrase. det: def, indef, bare, this, every, no, poss:<en>, num:<en>."""
    noun: Noun | None = None
    number: str = "sg"
    det: str = "def"
    adj: Adj | None = None
    pron: str | None = None
    gen: "NP | None" = None

    @property
    def person(self) -> int:
        if self.pron:
            return PRONOUNS[self.pron][0]
        return 2 if self.number == "sg" else 5


@dataclass
class PP:
    en: str                  # English preposition (may be several words)
    de: str                  # German preposition
    case: str
    np: NP


def _slot(np: NP) -> int:
    return 3 if np.number == "pl" else _G[np.noun.gender]


def _determiner(np: NP, case: str) -> tuple[str | None, dict]:
    """German determiner token (None if there is none) and the adjective declension it takes."""
    det, slot = np.det, _slot(np)
    if det == "def":
        return DEF_ARTICLE[case][slot], ADJ_WEAK
    if det in ("this", "every"):
        return ("dies" if det == "this" else "jed") + DER_END[case][slot], ADJ_WEAK
    if det in ("indef", "no") or det.startswith("poss:"):
        stem = {"indef": "ein", "no": "kein"}.get(det) or POSSESSIVES[det[5:]]
        return stem + EIN_END[case][slot], ADJ_MIXED
    if det.startswith("num:"):
        return NUMBERS[det[4:]], ADJ_STRONG
    if det == "bare":
        return None, ADJ_STRONG
    raise ValueError(f"unknown determiner {det!r}")


def de_np(np: NP, case: str, tags: set | None = None) -> list[str]:
    """German tokens of a noun phrase in a case (nom, acc, dat, gen)."""
    tags = set() if tags is None else tags
    if np.pron:
        _, _, _, nom, acc, dat = PRONOUNS[np.pron]
        if case != "nom":
            tags.add("case")
        return [{"nom": nom, "acc": acc, "dat": dat}[case]]
    n = np.noun
    det, decl = _determiner(np, case)
    out = [] if det is None else [det]
    if det is not None and det != _determiner(np, "nom")[0]:
        tags.add("case")
    if np.adj:
        out.append(np.adj.stem + decl[case][_slot(np)])
        tags.add("adj_agreement")
    form = de_noun_form(n, np.number, case)
    if form != de_noun_form(n, np.number, "nom"):
        tags.add("case")
    out.append(form)
    if n.comb:
        tags.add("compound")
    if n.idiom:
        tags.add("multiword")
    if np.gen:
        out += de_np(np.gen, "gen", tags)
        tags.add("genitive")
    return out


def en_np(np: NP, role: str = "subj") -> list[str]:
    """English tokens; role subj or obj only matters for pronouns."""
    if np.pron:
        p = PRONOUNS[np.pron]
        return [p[1] if role == "subj" else p[2]]
    n = np.noun
    words = (n.en if np.number == "sg" else n.en_pl).split()
    if np.adj:
        words = [np.adj.en] + words
    det = np.det
    if det == "def":
        head = ["the"]
    elif det == "indef":
        head = ["an" if words[0][0] in "aeiou" else "a"]
    elif det == "this":
        head = ["this" if np.number == "sg" else "these"]
    elif det == "every":
        head = ["every"]
    elif det == "no":
        head = ["no"]
    elif det.startswith("poss:"):
        head = [det[5:]]
    elif det.startswith("num:"):
        head = [det[4:]]
    else:
        head = []
    out = head + words
    if np.gen:
        out += ["of"] + en_np(np.gen, "obj")
    return out


def de_pp(pp: PP, tags: set) -> list[str]:
    body = de_np(pp.np, pp.case, tags)
    if pp.np.noun is not None and pp.np.det == "def" and (pp.de, body[0]) in CONTRACTIONS:
        tags.add("contraction")
        return [CONTRACTIONS[(pp.de, body[0])]] + body[1:]
    return pp.de.split() + body


def en_pp(pp: PP) -> list[str]:
    return pp.en.split() + en_np(pp.np, "obj")


# ---------------------------------------------------------------------------------------------
# Clauses
# ---------------------------------------------------------------------------------------------

@dataclass
class Clause:
    verb: Verb
    person: int = 2
    subj: NP | None = None
    modal: Modal | None = None
    gern: bool = False       # "likes to VERB" -> "VERB gern"
    acc: NP | None = None
    dat: NP | None = None
    pobj: NP | None = None
    to_form: bool = False    # English "gives the book to the child"
    pred: Adj | None = None
    pp: PP | None = None     # location / destination / placement
    withpp: PP | None = None
    manner: Adv | None = None
    time: Adv | None = None
    freq: Adv | None = None


def _is_pron(np: NP | None) -> bool:
    return np is not None and np.pron is not None


def de_clause(c: Clause, mode: str, tags: set, lead: list[str] | None = None) -> list[str]:
    """German clause. mode: main (subject-verb), inv (verb-subject after a fronted element),
    q (verb-first question), imp (imperative), sub (verb-final; lead holds the conjunction
    or relative pronoun), zu (infinitive clause without subject)."""
    v, p = c.verb, c.person
    if mode == "imp":
        fin = v.imp
    elif c.modal:
        fin = c.modal.de[p]
    else:
        fin = v.forms[p]
    if mode == "zu":
        right = [v.prefix + "zu" + v.de_base] if v.prefix else ["zu", v.de_base]
    elif mode == "sub":
        right = [v.inf, fin] if c.modal else [v.prefix + fin]
    else:
        right = [v.inf] if c.modal else ([v.prefix] if v.prefix else [])
    if c.modal:
        tags.add("verb_bracket")
        if c.modal.idiom:
            tags.add("multiword")
    if v.prefix:
        tags.add("separable")
    if v.idiom:
        tags.add("multiword")
    front: list[str] = []       # object pronouns and the reflexive pronoun
    for role, case in (("acc", "acc"), ("dat", "dat")):
        np = getattr(c, role)
        if _is_pron(np):
            front += de_np(np, case, tags)
            tags.add("pronoun_object")
    if v.refl:
        front.append(REFLEXIVE[p])
        tags.add("reflexive")
    mid: list[str] = []
    if c.time:
        mid += c.time.de.split()
    if c.freq:
        mid += c.freq.de.split()
    if c.gern:
        mid.append("gern")
        tags.add("multiword")
    for role in ("dat", "acc"):
        np = getattr(c, role)
        if np is not None and not np.pron:
            mid += de_np(np, role, tags)
    if c.withpp:
        mid += de_pp(c.withpp, tags)
    if c.manner:
        mid += c.manner.de.split()
    if v.mid:
        mid.append(v.mid)
    if c.pobj is not None:
        mid += de_pp(PP("", v.prep[0], v.prep[1], c.pobj), tags)
    if c.pp:
        mid += de_pp(c.pp, tags)
    if c.pred:
        mid.append(c.pred.de)
    if v.tail:
        mid += v.tail.split()
    for a in (c.time, c.freq, c.manner):
        if a is not None and a.idiom:
            tags.add("multiword")
    subj = de_np(c.subj, "nom", tags) if c.subj is not None else []
    out = list(lead or [])
    if mode == "main":
        out += subj + [fin] + front + mid + right
    elif mode in ("inv", "q"):
        # pronouns come before a noun subject: "Heute freut sich der Mann", "Sieht ihn der Mann?"
        if c.subj is not None and c.subj.pron is None:
            out += [fin] + front + subj + mid + right
        else:
            out += [fin] + subj + front + mid + right
        tags.add("question" if mode == "q" else "v2_inversion")
    elif mode == "imp":
        out += [fin] + front + mid + right
        tags.add("imperative")
    elif mode == "sub":
        out += subj + front + mid + right
        tags.add("verb_final")
    elif mode == "zu":
        out += front + mid + right
        tags.add("um_zu")
    else:
        raise ValueError(f"unknown clause mode {mode!r}")
    return out


def en_clause(c: Clause, mode: str, lead: list[str] | None = None) -> list[str]:
    """English clause; modes as in de_clause (inv and sub are plain subject-verb order)."""
    v, p = c.verb, c.person
    words = list(v.en)
    subj = en_np(c.subj, "subj") if c.subj is not None else []
    aux: list[str] = []
    if mode in ("zu", "imp"):
        vwords = words
    elif mode == "q":
        if c.modal and c.modal.invert:
            aux, vwords = [c.modal.en[0]], list(c.modal.en[1:]) + words
        elif c.modal or c.gern or words[0] != "be":
            aux = [_en_finite("do", p)]
            vwords = (list(c.modal.en) if c.modal else ["like", "to"] if c.gern else []) + words
        else:
            aux, vwords = [EN_BE[p]], words[1:]
    else:
        if c.modal:
            pre = list(c.modal.en3 if p == 2 else c.modal.en)
        elif c.gern:
            pre = [_en_finite("like", p), "to"]
        else:
            pre, words = [], [_en_finite(words[0], p)] + words[1:]
        vwords = pre + words
        if c.freq:
            fw = c.freq.en.split()
            if c.modal and c.modal.invert:
                vwords = vwords[:1] + fw + vwords[1:]
            elif not c.modal and not c.gern and v.en[0] == "be":
                vwords = vwords[:1] + fw + vwords[1:]
            else:
                vwords = fw + vwords
    objs: list[str] = []
    acc_done = False
    if v.en_split and _is_pron(c.acc):
        # "picks him up": the particle follows a pronoun object
        n_particle = 1
        vwords = vwords[:-n_particle] + en_np(c.acc, "obj") + vwords[-n_particle:]
        acc_done = True
    if c.dat is not None and c.acc is not None:       # ditransitive
        if c.to_form:
            objs += en_np(c.acc, "obj") + ["to"] + en_np(c.dat, "obj")
        else:
            objs += en_np(c.dat, "obj") + en_np(c.acc, "obj")
    elif c.dat is not None:
        objs += en_np(c.dat, "obj")
    elif c.acc is not None and not acc_done:
        objs += en_np(c.acc, "obj")
    if c.pobj is not None:
        objs += en_np(c.pobj, "obj")
    if c.pred:
        objs.append(c.pred.en)
    if c.pp:
        objs += en_pp(c.pp)
    if c.withpp:
        objs += en_pp(c.withpp)
    if c.manner:
        objs += c.manner.en.split()
    if c.time:
        objs += c.time.en.split()
    out = list(lead or [])
    if mode == "q":
        out += aux + subj + vwords + objs
    else:
        out += subj + vwords + objs
    return out


# ---------------------------------------------------------------------------------------------
# Sentences
# ---------------------------------------------------------------------------------------------

class Pair(NamedTuple):
    en: str
    de: str
    tags: tuple[str, ...]


_PUNCT = {",", ".", "?", "!"}


def detokenize(tokens: list[str], tokenized: bool = False) -> str:
    if tokenized:
        return " ".join(tokens)
    out = ""
    for t in tokens:
        out += t if (t in _PUNCT or not out) else " " + t
    return out


def _cap(tokens: list[str]) -> list[str]:
    return [tokens[0][:1].upper() + tokens[0][1:]] + tokens[1:] if tokens else tokens


def render_sentence(en: list[str], de: list[str], end: str = ".") -> tuple[str, str]:
    """Capitalise, add the final punctuation mark and detokenize both sides."""
    return detokenize(_cap(en) + [end]), detokenize(_cap(de) + [end])


def _word_count(tokens: list[str]) -> int:
    return sum(len(t.split()) for t in tokens if t not in _PUNCT)


class Generator:
    """Draws sentence pairs from the grammar with its own random.Random(seed)."""

    P_PRON_SUBJ = 0.35
    P_PRON_OBJ = 0.15
    P_ADJ = 0.25
    P_PLURAL = 0.3
    P_COMPOUND = 0.25
    P_GENITIVE = 0.12

    KINDS = (("simple", 24), ("subordinate", 16), ("that", 6), ("coord", 7), ("purpose", 5),
             ("question", 9), ("imperative", 5), ("relative", 9), ("copula", 12),
             ("there", 4), ("weather", 3))
    FRAMES = {"intr": 3.0, "acc": 6.0, "dat": 1.2, "ditr": 1.5, "prep": 3.0, "dir": 2.0,
              "put": 0.6, "loc": 1.5, "pred": 1.5, "weather": 0.3}
    GENERAL_PREPS = (("on", "auf"), ("under", "unter"), ("next to", "neben"),
                     ("behind", "hinter"), ("in front of", "vor"))
    WITH_PREPS = (("with", "mit", "dat"), ("for", "für", "acc"), ("without", "ohne", "acc"))
    OWNED = ("part", "animal", "thing", "vehicle", "clothing", "static")

    def __init__(self, seed: int = 1):
        self.rng = random.Random(seed)
        self._pools: dict[tuple, tuple[list[Noun], list[Noun], frozenset]] = {}
        self._verbs_by_frame: dict[str, list[Verb]] = {}
        self._gaps: dict[str, tuple[bool, bool]] = {}
        for v in VERBS:
            self._verbs_by_frame.setdefault(v.frame, []).append(v)

    # -- small helpers: only rng.random() is used, the one method whose sequence Python
    # guarantees across versions for a given seed --------------------------------------------
    def chance(self, p: float) -> bool:
        return self.rng.random() < p

    def choice(self, seq):
        return seq[int(self.rng.random() * len(seq))]

    def weighted(self, items):
        """items: (value, weight) pairs."""
        x = self.rng.random() * sum(w for _, w in items)
        for value, w in items:
            x -= w
            if x < 0:
                return value
        return items[-1][0]

    def pool(self, spec: tuple[str, ...]):
        """(base nouns, compounds, set of both) matching the classes and =names in spec."""
        if spec not in self._pools:
            names = {s[1:] for s in spec if s.startswith("=")}
            base = [n for n in NOUN_LIST if n.cls in spec or n.en in names]
            heads = {n.en for n in base}
            comps = [c for c in COMPOUNDS if c.head in heads or c.en in names]
            self._pools[spec] = (base, comps, frozenset(base) | frozenset(comps))
        return self._pools[spec]

    def fits(self, n: Noun, spec: tuple[str, ...]) -> bool:
        return n in self.pool(spec)[2]

    def pick_noun(self, spec) -> Noun:
        base, comps, _ = self.pool(spec)
        share = min(self.P_COMPOUND, 0.6 * len(comps) / (len(comps) + len(base)))
        if comps and self.chance(share):
            return self.choice(comps)
        return self.choice(base)

    # -- noun phrases -------------------------------------------------------------------------
    def np(self, spec, role: str, *, pron: bool = True, adj: bool = True, gen: bool = True,
           avoid: NP | None = None, head: Noun | None = None) -> NP:
        """A noun phrase for a role (subj or obj); avoid: a 1st/2nd person pronoun that must
        not be repeated (no "I see me")."""
        if pron and "person" in spec and self.chance(
                self.P_PRON_SUBJ if role == "subj" else self.P_PRON_OBJ):
            keys = [k for k in _PERSONAL if avoid is None or not avoid.pron
                    or avoid.person in (2, 5) or PRONOUNS[k][0] != avoid.person]
            return NP(pron=self.choice(keys))
        n = head or self.pick_noun(spec)
        number = "pl" if n.en_pl is not None and self.chance(self.P_PLURAL) else "sg"
        if number == "sg" and n.en_pl is None:
            dets = [("def", 50), ("poss", 15), ("this", 7), ("bare", 18)]
        elif number == "sg":
            dets = [("def", 50), ("indef", 18), ("poss", 15), ("this", 7)]
            if role in ("subj", "obj"):
                dets.append(("every", 3) if role == "subj" else ("no", 4))
        else:
            dets = [("def", 45), ("bare", 20), ("num", 15), ("poss", 12), ("this", 8)]
            if role == "obj":
                dets.append(("no", 4))
        det = self.weighted(dets)
        if det == "poss":
            det = "poss:" + self.choice(list(POSSESSIVES))
        elif det == "num":
            det = "num:" + self.choice(list(NUMBERS))
        a = None
        if adj and self.chance(self.P_ADJ):
            fitting = [x for x in ADJECTIVES if n.cls in x.classes]
            a = self.choice(fitting) if fitting else None
        g = None
        if gen and n.cls in self.OWNED and det in ("def", "indef") and self.chance(
                0.35 if n.cls == "part" else self.P_GENITIVE):
            # "the door of the house" -> "die Tür des Hauses"
            owner_spec = ("building", "vehicle", "room") if n.cls == "part" else P
            g = self.np(owner_spec, "obj", pron=False, adj=self.chance(0.3), gen=False)
            if g.det not in ("def", "this") and not g.det.startswith("poss:"):
                g.det = "def"
            det = "def"
        return NP(noun=n, number=number, det=det, adj=a, gen=g)

    def place_pp(self) -> PP:
        """Location: "in the garden" -> "im Garten", "at the lake" -> "am See"."""
        if self.chance(0.25):
            return self.general_pp("dat")
        n = self.pick_noun(PLACE)
        return PP(n.loc[0], n.loc[1], "dat",
                  self.np(PLACE, "pp", pron=False, head=n, gen=False))

    def general_pp(self, case: str) -> PP:
        """on/under/next to/behind/in front of + dative (location) or accusative (placement)."""
        en, de = self.choice(self.GENERAL_PREPS)
        if en == "on":
            spec = ("=table", "=chair", "=bed", "=sofa", "=cupboard")
        elif en == "under":
            spec = ("static", "=car", "=bus")
        else:
            spec = ("static", "building", "vehicle")
        return PP(en, de, case, self.np(spec, "pp", pron=False, gen=False))

    def dest_pp(self) -> PP:
        """Destination: "to the garden" -> "in den Garten", "to the station" -> "zum Bahnhof"."""
        n = self.pick_noun(PLACE)
        np = self.np(PLACE, "pp", pron=False, head=n, gen=False)
        return PP("to", n.to, "dat" if n.to == "zu" else "acc", np)

    # -- clauses ------------------------------------------------------------------------------
    def pick_verb(self, frames, subj_noun: Noun | None = None,
                  obj_noun: Noun | None = None, need=None) -> Verb:
        items = [(f, w) for f, w in self.FRAMES.items() if f in frames]
        for _ in range(500):
            f = self.weighted(items)
            cands = [v for v in self._verbs_by_frame[f]
                     if (subj_noun is None or self.fits(subj_noun, v.subj))
                     and (obj_noun is None or (v.obj and self.fits(obj_noun, v.obj)))
                     and (need is None or need(v))]
            if cands:
                return self.choice(cands)
        raise RuntimeError(f"no verb fits frames={frames}")

    def clause(self, frames=tuple(FRAMES), *, subj: NP | None = None, verb: Verb | None = None,
               modal: bool = True, adverbs: bool = True, person: int | None = None,
               no_subject: bool = False, subj_cls: str = "person", imperative: bool = False,
               avoid: NP | None = None) -> Clause:
        """A random clause. no_subject: relative (subject gap), zu-infinitive or imperative
        clause; then person and subj_cls stand in for the missing subject."""
        v = verb or self.pick_verb(frames)
        c = Clause(verb=v)
        if v.frame == "weather" or (v.frame == "pred" and not v.subj):
            c.subj = NP(pron="it")
        elif not no_subject:
            c.subj = subj or self.np(v.subj, "subj")
        if c.subj is not None:
            c.person = c.subj.person
            subj_cls = c.subj.noun.cls if c.subj.noun is not None else "person"
        else:
            c.person = 1 if person is None else person
        weather = c.subj is not None and c.subj.pron == "it"
        if avoid is None:
            avoid = NP(pron="you") if imperative else c.subj
        f = v.frame
        if f == "acc":
            c.acc = self.np(v.obj, "obj", avoid=avoid)
        elif f == "dat":
            c.dat = self.np(v.obj, "obj", avoid=avoid)
        elif f == "ditr":
            c.dat = self.np(v.obj, "obj", avoid=avoid, gen=False)
            c.acc = self.np(v.obj2, "obj", pron=False)
            c.to_form = self.chance(0.4)
        elif f == "prep":
            c.pobj = self.np(v.obj, "obj", avoid=avoid)
        elif f == "dir":
            c.pp = self.dest_pp()
        elif f == "put":
            c.acc = self.np(v.obj, "obj", pron=False, gen=False)
            c.pp = self.general_pp("acc")
        elif f == "loc":
            if subj_cls in ("thing", "clothing", "text") or self.chance(0.3):
                c.pp = self.general_pp("dat")
            else:
                c.pp = self.place_pp()
        elif f == "pred":
            if weather:
                c.pred = self.choice(WEATHER_ADJ)
            else:
                c.pred = self.choice([a for a in ADJECTIVES if subj_cls in a.classes])
        if modal and not imperative and self.chance(0.15):
            if weather:
                c.modal = MODAL["will"]
            elif subj_cls in ("person", "animal"):
                c.modal = self.choice(MODALS)
            else:                   # no wanting or liking for things
                c.modal = self.choice(MODALS[:4])
        elif (modal and not imperative and not weather and not no_subject
              and f in ("intr", "acc", "dir", "prep") and v.en[0] != "be"
              and subj_cls == "person" and self.chance(0.05)):
            c.gern = True          # "likes to swim" -> "schwimmt gern"
        if not adverbs:
            return c
        if self.chance(0.3):
            c.time = self.choice(_ADV_BY_KIND["time"])
        elif not c.gern and not weather and (c.modal is None or c.modal.freq_ok) \
                and not imperative and self.chance(0.15):
            c.freq = self.choice(_ADV_BY_KIND["freq"])
        if f not in ("pred", "loc", "weather") and v.en[0] != "be" and self.chance(0.15):
            kinds = _ADV_BY_KIND["manner"] + (_ADV_BY_KIND["transport"] if v.motion else [])
            c.manner = self.choice(kinds)
        if f in ("intr", "acc", "dat", "ditr") and not v.tail and c.pp is None \
                and self.chance(0.12):
            c.pp = self.place_pp()
        if f in ("intr", "acc", "dir") and subj_cls == "person" and not imperative \
                and self.chance(0.07):
            en, de, case = self.choice(self.WITH_PREPS)
            c.withpp = PP(en, de, case, self.np(A, "obj", avoid=avoid, gen=False))
        return c

    # -- sentence kinds -----------------------------------------------------------------------
    def pair(self) -> Pair:
        while True:
            kind = self.weighted(self.KINDS)
            tags: set = set()
            en, de, end = getattr(self, "s_" + kind)(tags)
            if not (MIN_WORDS <= _word_count(en) <= MAX_WORDS
                    and MIN_WORDS <= _word_count(de) <= MAX_WORDS):
                continue
            en_s, de_s = render_sentence(en, de, end)
            return Pair(en_s, de_s, tuple(sorted(tags)))

    def _front(self, c: Clause, tags: set):
        """Maybe move a time adverb or put a sentence adverb in front (-> inversion)."""
        front = None
        if c.time is not None and self.chance(0.35):
            front, c.time = c.time, None
            en_front, de_front = front.en.split(), front.de.split()
        elif c.subj is None or c.subj.pron != "it":
            if self.chance(0.1):
                front = self.choice(_ADV_BY_KIND["sentence"])
                en_front, de_front = front.en.split() + [","], front.de.split()
        if front is None:
            return None
        if front.idiom:
            tags.add("multiword")
        return en_front, de_front

    def s_simple(self, tags):
        c = self.clause()
        front = self._front(c, tags)
        if front is None:
            return en_clause(c, "main"), de_clause(c, "main", tags), "."
        return en_clause(c, "main", front[0]), de_clause(c, "inv", tags, front[1]), "."

    def s_weather(self, tags):
        c = self.clause(("weather",))
        if c.time is not None and self.chance(0.4):
            t, c.time = c.time, None
            if t.idiom:
                tags.add("multiword")
            return (en_clause(c, "main", t.en.split()),
                    de_clause(c, "inv", tags, t.de.split()), ".")
        return en_clause(c, "main"), de_clause(c, "main", tags), "."

    def s_copula(self, tags):
        c = self.clause(("loc", "pred"))
        return en_clause(c, "main"), de_clause(c, "main", tags), "."

    def s_there(self, tags):
        """"There is a dog in the garden." -> "Es gibt einen Hund im Garten.\""""
        spec = self.choice((A, PORT + ("food", "vehicle", "static"), PLACE))
        np = self.np(spec, "obj", pron=False, gen=False)
        if np.det in ("def", "this") or np.det.startswith("poss:"):
            np.det = "indef" if np.number == "sg" and np.noun.en_pl else "bare"
        tags.add("multiword")
        en = ["there", "is" if np.number == "sg" else "are"] + en_np(np, "obj")
        de_obj = de_np(np, "acc", tags)
        pp = self.place_pp() if self.chance(0.6) else None
        if pp is not None:
            en += en_pp(pp)
        t = self.choice(_ADV_BY_KIND["time"]) if self.chance(0.3) else None
        if t is not None and self.chance(0.5):
            de = t.de.split() + ["gibt", "es"] + de_obj
            en = t.en.split() + en
            tags.add("v2_inversion")
        else:
            de = ["es", "gibt"] + (t.de.split() if t else []) + de_obj
            if t is not None:
                en += t.en.split()
        if pp is not None:
            de += de_pp(pp, tags)
        if t is not None and t.idiom:
            tags.add("multiword")
        return en, de, "."

    def s_subordinate(self, tags):
        conj = self.choice(CONJUNCTIONS)
        main = self.clause()
        sub = self.clause()
        if conj.idiom:
            tags.add("multiword")
        en_sub = en_clause(sub, "sub", conj.en.split())
        de_sub = de_clause(sub, "sub", tags, conj.de.split())
        if self.chance(0.45):        # subordinate clause first: inversion in the main clause
            en = en_sub + [","] + en_clause(main, "main")
            de = de_sub + [","] + de_clause(main, "inv", tags)
        else:
            en = en_clause(main, "main") + en_sub
            de = de_clause(main, "main", tags) + [","] + de_sub
        return en, de, "."

    def s_that(self, tags):
        """"The woman says that ..." -> "Die Frau sagt, dass ..." (verb last)."""
        tv = self.choice(THAT_VERBS)
        subj = self.np(P, "subj", gen=False)
        main = Clause(verb=tv, person=subj.person, subj=subj)
        sub = self.clause()
        en = en_clause(main, "main") + en_clause(sub, "sub", ["that"])
        de = de_clause(main, "main", tags) + [","] + de_clause(sub, "sub", tags, ["dass"])
        return en, de, "."

    def s_coord(self, tags):
        """but -> ", aber" and and -> "und" keep verb-second; so -> ", deshalb" and
        and then -> "und dann" invert."""
        kind = self.choice(("but", "and", "so", "and then"))
        a = self.clause(adverbs=self.chance(0.5))
        b = self.clause()
        en, de = en_clause(a, "main"), de_clause(a, "main", tags)
        en_link, de_link, mode = {
            "but": ([",", "but"], [",", "aber"], "main"),
            "and": (["and"], ["und"], "main"),
            "so": ([",", "so"], [",", "deshalb"], "inv"),
            "and then": (["and", "then"], ["und", "dann"], "inv")}[kind]
        return en + en_link + en_clause(b, "main"), de + de_link + de_clause(b, mode, tags), "."

    def s_purpose(self, tags):
        """"He goes to the city in order to buy a car." -> "..., um ein Auto zu kaufen.\""""
        while True:
            main = self.clause(("acc", "intr", "dir"), modal=False)
            if main.subj.pron or main.subj.noun.cls == "person":
                break
        zu_verb = self.pick_verb(("acc", "intr", "dat", "ditr", "prep", "dir"),
                                 need=lambda v: v.en[0] != "be" and "person" in v.subj)
        zu = self.clause(verb=zu_verb, no_subject=True, person=main.person, modal=False,
                         adverbs=False, avoid=main.subj)
        tags.add("multiword")
        en = en_clause(main, "main") + en_clause(zu, "zu", ["in", "order", "to"])
        de = de_clause(main, "main", tags) + [",", "um"] + de_clause(zu, "zu", tags)
        return en, de, "."

    def s_question(self, tags):
        c = self.clause(tuple(f for f in self.FRAMES if f != "weather"))
        c.freq = None
        return en_clause(c, "q"), de_clause(c, "q", tags), "?"

    def s_imperative(self, tags):
        v = self.pick_verb(("acc", "dat", "ditr", "prep", "intr", "dir", "put"),
                           need=lambda v: v.imp_ok and "person" in v.subj)
        c = self.clause(verb=v, no_subject=True, person=1, imperative=True)
        en, de = en_clause(c, "imp"), de_clause(c, "imp", tags)
        if self.chance(0.4):
            en, de = ["please"] + en, ["bitte"] + de
        return en, de, "!"

    def s_relative(self, tags):
        tags.add("relative_clause")
        if self.chance(0.5):
            # on the subject: "The man who sees the dog sleeps." -> "Der Mann, der ..., schläft."
            head = self.pick_noun(self.choice((P, ("animal",), PORT + VEH)))
            main_v = self.pick_verb(("intr", "acc", "dat", "prep", "dir", "loc", "pred"),
                                    subj_noun=head)
            subj = self.np(P, "subj", pron=False, gen=False, head=head)
            en_rel, de_rel = self.relative_clause(subj, tags)  # people/animals/things: never None
            main = self.clause(verb=main_v, subj=subj, adverbs=self.chance(0.5))
            main.subj = None            # rendered here; main.person keeps the agreement
            en = en_np(subj) + en_rel + en_clause(main, "main")
            de = de_np(subj, "nom", tags) + [","] + de_rel + [","] + de_clause(main, "main", tags)
            return en, de, "."
        # on the object, extraposed in German: "Er ruft den Mann an, der im Garten schläft."
        while True:
            main = self.clause(("acc", "dat", "prep"), adverbs=False)
            role = "acc" if main.acc is not None else "dat" if main.dat is not None else "pobj"
            obj = getattr(main, role)
            if obj.pron or obj.gen:
                obj = self.np(main.verb.obj, "obj", pron=False, gen=False)
                setattr(main, role, obj)
            rel = self.relative_clause(obj, tags)
            if rel is not None:
                break
        en_rel, de_rel = rel
        en = en_clause(main, "main") + en_rel
        de = de_clause(main, "main", tags) + [","] + de_rel
        return en, de, "."

    def relative_clause(self, head: NP, tags: set) -> tuple[list[str], list[str]] | None:
        """(English, German) tokens of a relative clause about head (a noun NP): subject gap
        ("who sees the dog" -> "der den Hund sieht") or object gap ("that the man sees" ->
        "den der Mann sieht", "that the child helps" -> "dem das Kind hilft"); None if no
        verb fits the head noun."""
        n, slot = head.noun, _slot(head)
        if n.en not in self._gaps:
            self._gaps[n.en] = (
                any(self.fits(n, v.subj) for f in ("intr", "acc", "dat", "prep", "loc")
                    for v in self._verbs_by_frame[f]),
                any(v.obj and self.fits(n, v.obj) for f in ("acc", "dat")
                    for v in self._verbs_by_frame[f]))
        subj_gap, obj_gap = self._gaps[n.en]
        if not (subj_gap or obj_gap):
            return None
        if subj_gap and (not obj_gap or self.chance(0.55)):
            v = self.pick_verb(("intr", "acc", "dat", "prep", "loc"), subj_noun=n)
            c = self.clause(verb=v, no_subject=True, person=head.person, subj_cls=n.cls,
                            modal=self.chance(0.5), adverbs=self.chance(0.6),
                            avoid=NP(pron="he"))
            en_rel = ["who" if n.cls == "person" else "that"]
            de_rel = [RELATIVE["nom"][slot]]
        else:
            v = self.pick_verb(("acc", "dat"), obj_noun=n)
            c = self.clause(verb=v, modal=self.chance(0.5), adverbs=self.chance(0.6))
            gap = "acc" if v.frame == "acc" else "dat"
            setattr(c, gap, None)
            en_rel = ["that"]
            de_rel = [RELATIVE[gap][slot]]
        c.withpp = None
        tags.add("verb_final")
        return en_clause(c, "sub", en_rel), de_clause(c, "sub", tags, de_rel)


# ---------------------------------------------------------------------------------------------
# Corpus
# ---------------------------------------------------------------------------------------------

SPLIT_ORDER = ("test", "valid", "train")


def generate_corpus(train: int = 20000, valid: int = 500, test: int = 500, seed: int = 1,
                    max_attempts_factor: int = 50) -> dict[str, list[Pair]]:
    """Splits of distinct pairs (no English or German sentence occurs twice anywhere).

    test, then valid, then train are drawn from one random.Random(seed) stream, so test and
    valid do not change with the train size."""
    sizes = {"train": train, "valid": valid, "test": test}
    for name, n in sizes.items():
        if not isinstance(n, int) or isinstance(n, bool) or n < 1:
            raise ValueError(f"{name} size must be a positive integer, got {n!r}")
    gen = Generator(seed)
    seen_en: set[str] = set()
    seen_de: set[str] = set()
    out: dict[str, list[Pair]] = {}
    for split in SPLIT_ORDER:
        pairs: list[Pair] = []
        attempts, limit = 0, max_attempts_factor * sizes[split] + 1000
        while len(pairs) < sizes[split]:
            attempts += 1
            if attempts > limit:
                raise RuntimeError(f"could not draw {sizes[split]} distinct pairs for {split}")
            p = gen.pair()
            if p.en in seen_en or p.de in seen_de:
                continue
            seen_en.add(p.en)
            seen_de.add(p.de)
            pairs.append(p)
        out[split] = pairs
    return {s: out[s] for s in ("train", "valid", "test")}


_TOKEN_RE = re.compile(r"[^\s,.?!]+|[,.?!]")


def tokens(sentence: str) -> list[str]:
    return _TOKEN_RE.findall(sentence)


def corpus_stats(pairs: list[Pair]) -> dict:
    """Token/type counts per side, mean words per sentence and the share of pairs carrying
    each phenomenon tag."""
    en_types, de_types = set(), set()
    en_tok = de_tok = 0
    counts = {t: 0 for t in PHENOMENA}
    for p in pairs:
        et, dt = tokens(p.en), tokens(p.de)
        en_tok += len(et)
        de_tok += len(dt)
        en_types.update(et)
        de_types.update(dt)
        for t in p.tags:
            counts[t] += 1
    n = max(1, len(pairs))
    return {"pairs": len(pairs), "en_tokens": en_tok, "de_tokens": de_tok,
            "en_types": len(en_types), "de_types": len(de_types),
            "en_words": sum(len(p.en.split()) for p in pairs) / n,
            "de_words": sum(len(p.de.split()) for p in pairs) / n,
            "share": {t: counts[t] / n for t in PHENOMENA}}


def german_finite_forms() -> set[str]:
    """Every form that can end a German verb-final clause or zu-infinitive clause."""
    forms: set[str] = set()
    for v in VERBS + THAT_VERBS:
        forms.update(v.prefix + f for f in v.forms)
        forms.add(v.inf)
        forms.add(v.prefix + "zu" + v.de_base if v.prefix else v.de_base)
    for m in MODALS:
        forms.update(m.de)
    return forms
