"""Deterministic synthetic English -> German parallel corpus for the demo.

A small hand-written grammar with a mini-lexicon of real German words (about 180 noun
lemmas plus 84 regular compounds, about 140 verb entries, 50 adjectives, 60 adverbials,
13 conjunctions, 6 modals). Every English sentence has exactly one German rendering, so the
translation is a function that a small model can learn, but getting it right needs local
context: the German form of a word depends on its neighbours, and the German word order
differs from the English one. All randomness comes from one ``random.Random(seed)``; there is
no global random state, no iteration over sets, and only ``Random.random()`` is called (the
one method whose sequence Python guarantees across versions), so the same seed and sizes give
byte-identical files on any machine, Python version and ``PYTHONHASHSEED``.

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

__all__ = [
    "PHENOMENA", "Pair", "NP", "PP", "Clause", "Generator", "generate_corpus",
    "detokenize", "corpus_stats", "noun", "verb", "adjective", "adverb", "modal",
    "conjunction", "compound", "de_np", "en_np", "de_clause", "en_clause",
    "render_sentence", "german_finite_forms", "find_verb", "tokens", "NOUNS", "COMPOUNDS",
    "VERBS", "ADJECTIVES", "ADVERBS", "MODALS", "CONJUNCTIONS", "MIN_WORDS", "MAX_WORDS",
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
# Lexicon entries
# ---------------------------------------------------------------------------------------------

GENDERS = ("m", "f", "n")
CASES = ("nom", "acc", "dat", "gen")
_VOWELS = "aeiouäöüy"


@dataclass(frozen=True, eq=False)
class Noun:
    en: str                 # singular, possibly several words ("train station")
    en_pl: str | None       # None: mass noun, singular only
    de: str
    gender: str             # m, f, n
    de_pl: str | None
    cls: str                # semantic class (person, animal, food, ...)
    gen_sg: str             # genitive singular form (des Hauses)
    weak: str | None = None  # oblique singular of a weak masculine (den Jungen)
    loc: tuple[str, str] | None = None  # places: (English, German) location preposition
    to: str | None = None   # places: German destination preposition for English "to"
    comb: str | None = None  # form used as the first part of a compound
    head: str | None = None  # compounds: English head lemma
    idiom: bool = False     # lexicalised: several English words, one German word

    @property
    def key(self) -> str:
        return self.en


def _en_plural(en: str) -> str:
    *first, last = en.split()
    if last.endswith(("s", "sh", "ch", "x", "z")):
        last += "es"
    elif last.endswith("y") and last[-2] not in _VOWELS:
        last = last[:-1] + "ies"
    else:
        last += "s"
    return " ".join(first + [last])


def _gen_sg(de: str, gender: str) -> str:
    if gender == "f":
        return de
    if de.endswith(("s", "ß", "x", "z")):
        return de + "es"
    syllables = len(re.findall(f"[{_VOWELS}]+", de.lower()))
    if syllables == 1 and de[-1].lower() not in _VOWELS:
        return de + "es"
    return de + "s"


def noun(en, de, gender, de_pl, cls, *, en_pl="", weak=None, loc=None, to=None, gen=None,
         idiom=None):
    """A noun entry. de_pl None (or en_pl None) makes a singular-only mass noun."""
    if gender not in GENDERS:
        raise ValueError(f"bad gender {gender!r} for {en!r}")
    mass = de_pl is None or en_pl is None
    en_plural = None if mass else (en_pl or _en_plural(en))
    return Noun(en=en, en_pl=en_plural, de=de, gender=gender, de_pl=None if mass else de_pl,
                cls=cls, gen_sg=gen or (weak or _gen_sg(de, gender)), weak=weak,
                loc=loc, to=to, idiom=(" " in en) if idiom is None else idiom)


_IN, _AT, _ON = ("in", "in"), ("at", "an"), ("on", "auf")

NOUN_LIST = [
    # people
    noun("man", "Mann", "m", "Männer", "person", en_pl="men"),
    noun("woman", "Frau", "f", "Frauen", "person", en_pl="women"),
    noun("child", "Kind", "n", "Kinder", "person", en_pl="children"),
    noun("boy", "Junge", "m", "Jungen", "person", weak="Jungen"),
    noun("girl", "Mädchen", "n", "Mädchen", "person"),
    noun("teacher", "Lehrer", "m", "Lehrer", "person"),
    noun("doctor", "Arzt", "m", "Ärzte", "person"),
    noun("student", "Student", "m", "Studenten", "person", weak="Studenten"),
    noun("neighbour", "Nachbar", "m", "Nachbarn", "person", weak="Nachbarn"),
    noun("friend", "Freund", "m", "Freunde", "person"),
    noun("sister", "Schwester", "f", "Schwestern", "person"),
    noun("brother", "Bruder", "m", "Brüder", "person"),
    noun("mother", "Mutter", "f", "Mütter", "person"),
    noun("father", "Vater", "m", "Väter", "person"),
    noun("grandmother", "Großmutter", "f", "Großmütter", "person"),
    noun("grandfather", "Großvater", "m", "Großväter", "person"),
    noun("baker", "Bäcker", "m", "Bäcker", "person"),
    noun("cook", "Koch", "m", "Köche", "person"),
    noun("king", "König", "m", "Könige", "person"),
    noun("queen", "Königin", "f", "Königinnen", "person"),
    noun("police officer", "Polizist", "m", "Polizisten", "person", weak="Polizisten"),
    noun("farmer", "Bauer", "m", "Bauern", "person", weak="Bauern"),
    noun("colleague", "Kollege", "m", "Kollegen", "person", weak="Kollegen"),
    noun("guest", "Gast", "m", "Gäste", "person"),
    noun("driver", "Fahrer", "m", "Fahrer", "person"),
    noun("pupil", "Schüler", "m", "Schüler", "person"),
    noun("waiter", "Kellner", "m", "Kellner", "person"),
    noun("artist", "Künstler", "m", "Künstler", "person"),
    # animals
    noun("dog", "Hund", "m", "Hunde", "animal"),
    noun("cat", "Katze", "f", "Katzen", "animal"),
    noun("horse", "Pferd", "n", "Pferde", "animal"),
    noun("bird", "Vogel", "m", "Vögel", "animal"),
    noun("cow", "Kuh", "f", "Kühe", "animal"),
    noun("mouse", "Maus", "f", "Mäuse", "animal", en_pl="mice"),
    noun("frog", "Frosch", "m", "Frösche", "animal"),
    noun("lion", "Löwe", "m", "Löwen", "animal", weak="Löwen"),
    noun("bear", "Bär", "m", "Bären", "animal", weak="Bären"),
    noun("goat", "Ziege", "f", "Ziegen", "animal"),
    noun("pig", "Schwein", "n", "Schweine", "animal"),
    noun("duck", "Ente", "f", "Enten", "animal"),
    noun("monkey", "Affe", "m", "Affen", "animal", weak="Affen"),
    # food and drink
    noun("apple", "Apfel", "m", "Äpfel", "food"),
    noun("bread", "Brot", "n", None, "food"),
    noun("cake", "Kuchen", "m", "Kuchen", "food"),
    noun("cheese", "Käse", "m", None, "food"),
    noun("soup", "Suppe", "f", "Suppen", "food"),
    noun("egg", "Ei", "n", "Eier", "food"),
    noun("sausage", "Wurst", "f", "Würste", "food"),
    noun("banana", "Banane", "f", "Bananen", "food"),
    noun("orange", "Orange", "f", "Orangen", "food"),
    noun("ice cream", "Eis", "n", None, "food"),
    noun("salad", "Salat", "m", "Salate", "food"),
    noun("pizza", "Pizza", "f", "Pizzas", "food"),
    noun("chocolate", "Schokolade", "f", None, "food"),
    noun("rice", "Reis", "m", None, "food"),
    noun("water", "Wasser", "n", None, "drink"),
    noun("coffee", "Kaffee", "m", None, "drink"),
    noun("tea", "Tee", "m", None, "drink"),
    noun("milk", "Milch", "f", None, "drink"),
    noun("juice", "Saft", "m", "Säfte", "drink"),
    noun("wine", "Wein", "m", "Weine", "drink"),
    noun("beer", "Bier", "n", "Biere", "drink"),
    # portable things
    noun("key", "Schlüssel", "m", "Schlüssel", "thing"),
    noun("bag", "Tasche", "f", "Taschen", "thing"),
    noun("ball", "Ball", "m", "Bälle", "thing"),
    noun("cup", "Tasse", "f", "Tassen", "thing"),
    noun("glass", "Glas", "n", "Gläser", "thing"),
    noun("bottle", "Flasche", "f", "Flaschen", "thing"),
    noun("pen", "Stift", "m", "Stifte", "thing"),
    noun("umbrella", "Regenschirm", "m", "Regenschirme", "thing"),
    noun("picture", "Bild", "n", "Bilder", "thing"),
    noun("present", "Geschenk", "n", "Geschenke", "thing"),
    noun("ticket", "Fahrkarte", "f", "Fahrkarten", "thing"),
    noun("map", "Karte", "f", "Karten", "thing"),
    noun("flower", "Blume", "f", "Blumen", "thing"),
    noun("box", "Kiste", "f", "Kisten", "thing"),
    noun("clock", "Uhr", "f", "Uhren", "thing"),
    # clothing
    noun("coat", "Mantel", "m", "Mäntel", "clothing"),
    noun("shoe", "Schuh", "m", "Schuhe", "clothing"),
    noun("hat", "Hut", "m", "Hüte", "clothing"),
    noun("dress", "Kleid", "n", "Kleider", "clothing"),
    noun("jacket", "Jacke", "f", "Jacken", "clothing"),
    noun("sweater", "Pullover", "m", "Pullover", "clothing"),
    noun("scarf", "Schal", "m", "Schals", "clothing", en_pl="scarves"),
    # devices
    noun("light", "Licht", "n", "Lichter", "device"),
    noun("radio", "Radio", "n", "Radios", "device"),
    noun("television", "Fernseher", "m", "Fernseher", "device"),
    noun("computer", "Computer", "m", "Computer", "device"),
    noun("oven", "Ofen", "m", "Öfen", "device"),
    noun("lamp", "Lampe", "f", "Lampen", "device"),
    noun("mobile phone", "Handy", "n", "Handys", "device"),
    noun("washing machine", "Waschmaschine", "f", "Waschmaschinen", "device"),
    # texts
    noun("book", "Buch", "n", "Bücher", "text"),
    noun("letter", "Brief", "m", "Briefe", "text"),
    noun("newspaper", "Zeitung", "f", "Zeitungen", "text"),
    noun("story", "Geschichte", "f", "Geschichten", "text"),
    noun("poem", "Gedicht", "n", "Gedichte", "text"),
    noun("message", "Nachricht", "f", "Nachrichten", "text"),
    noun("email", "E-Mail", "f", "E-Mails", "text"),
    # furniture and other fixed objects
    noun("table", "Tisch", "m", "Tische", "static"),
    noun("chair", "Stuhl", "m", "Stühle", "static"),
    noun("bed", "Bett", "n", "Betten", "static"),
    noun("sofa", "Sofa", "n", "Sofas", "static"),
    noun("cupboard", "Schrank", "m", "Schränke", "static"),
    noun("tree", "Baum", "m", "Bäume", "static"),
    # parts of buildings
    noun("door", "Tür", "f", "Türen", "part"),
    noun("window", "Fenster", "n", "Fenster", "part"),
    noun("roof", "Dach", "n", "Dächer", "part"),
    noun("wall", "Wand", "f", "Wände", "part"),
    # buildings
    noun("house", "Haus", "n", "Häuser", "building", loc=_IN, to="zu"),
    noun("school", "Schule", "f", "Schulen", "building", loc=_IN, to="zu"),
    noun("church", "Kirche", "f", "Kirchen", "building", loc=_IN, to="zu"),
    noun("shop", "Laden", "m", "Läden", "building", loc=_IN, to="zu"),
    noun("library", "Bibliothek", "f", "Bibliotheken", "building", loc=_IN, to="zu"),
    noun("hospital", "Krankenhaus", "n", "Krankenhäuser", "building", loc=_IN, to="zu"),
    noun("train station", "Bahnhof", "m", "Bahnhöfe", "building", loc=_AT, to="zu"),
    noun("museum", "Museum", "n", "Museen", "building", loc=_IN, to="in"),
    noun("restaurant", "Restaurant", "n", "Restaurants", "building", loc=_IN, to="in"),
    noun("hotel", "Hotel", "n", "Hotels", "building", loc=_IN, to="in"),
    noun("bank", "Bank", "f", "Banken", "building", loc=_IN, to="zu"),
    noun("cinema", "Kino", "n", "Kinos", "building", loc=_IN, to="in"),
    noun("castle", "Schloss", "n", "Schlösser", "building", loc=_IN, to="zu"),
    noun("swimming pool", "Schwimmbad", "n", "Schwimmbäder", "building", loc=_IN, to="in"),
    noun("airport", "Flughafen", "m", "Flughäfen", "building", loc=_AT, to="zu"),
    noun("bridge", "Brücke", "f", "Brücken", "building", loc=_ON, to="zu"),
    # rooms
    noun("kitchen", "Küche", "f", "Küchen", "room", loc=_IN, to="in"),
    noun("room", "Zimmer", "n", "Zimmer", "room", loc=_IN, to="in"),
    noun("living room", "Wohnzimmer", "n", "Wohnzimmer", "room", loc=_IN, to="in"),
    noun("bedroom", "Schlafzimmer", "n", "Schlafzimmer", "room", loc=_IN, to="in"),
    noun("office", "Büro", "n", "Büros", "room", loc=_IN, to="in"),
    # open places
    noun("garden", "Garten", "m", "Gärten", "area", loc=_IN, to="in"),
    noun("city", "Stadt", "f", "Städte", "area", loc=_IN, to="in"),
    noun("village", "Dorf", "n", "Dörfer", "area", loc=_IN, to="in"),
    noun("park", "Park", "m", "Parks", "area", loc=_IN, to="in"),
    noun("forest", "Wald", "m", "Wälder", "area", loc=_IN, to="in"),
    noun("street", "Straße", "f", "Straßen", "area", loc=_ON, to="auf"),
    noun("market", "Markt", "m", "Märkte", "area", loc=("at", "auf"), to="auf"),
    noun("river", "Fluss", "m", "Flüsse", "area", loc=_AT, to="an"),
    noun("lake", "See", "m", "Seen", "area", loc=_AT, to="an"),
    noun("mountain", "Berg", "m", "Berge", "area", loc=_ON, to="auf"),
    noun("beach", "Strand", "m", "Strände", "area", loc=("on", "an"), to="an"),
    noun("island", "Insel", "f", "Inseln", "area", loc=_ON, to="auf"),
    noun("farm", "Bauernhof", "m", "Bauernhöfe", "area", loc=_ON, to="auf"),
    noun("bus stop", "Haltestelle", "f", "Haltestellen", "area", loc=_AT, to="zu"),
    # vehicles
    noun("train", "Zug", "m", "Züge", "vehicle"),
    noun("bus", "Bus", "m", "Busse", "vehicle"),
    noun("car", "Auto", "n", "Autos", "vehicle"),
    noun("bike", "Fahrrad", "n", "Fahrräder", "vehicle"),
    noun("ship", "Schiff", "n", "Schiffe", "vehicle"),
    noun("plane", "Flugzeug", "n", "Flugzeuge", "vehicle"),
    noun("taxi", "Taxi", "n", "Taxis", "vehicle"),
    noun("tram", "Straßenbahn", "f", "Straßenbahnen", "vehicle", idiom=True),
    # events
    noun("meeting", "Treffen", "n", "Treffen", "event"),
    noun("course", "Kurs", "m", "Kurse", "event"),
    noun("party", "Party", "f", "Partys", "event"),
    noun("game", "Spiel", "n", "Spiele", "event"),
    noun("concert", "Konzert", "n", "Konzerte", "event"),
    noun("trip", "Reise", "f", "Reisen", "event"),
    noun("competition", "Wettbewerb", "m", "Wettbewerbe", "event"),
    noun("wedding", "Hochzeit", "f", "Hochzeiten", "event"),
    noun("holiday", "Urlaub", "m", "Urlaube", "event"),
    noun("exam", "Prüfung", "f", "Prüfungen", "event"),
    noun("film", "Film", "m", "Filme", "event"),
    noun("summer", "Sommer", "m", None, "event"),
    noun("winter", "Winter", "m", None, "event"),
    # abstract
    noun("answer", "Antwort", "f", "Antworten", "abstract"),
    noun("truth", "Wahrheit", "f", None, "abstract"),
    noun("problem", "Problem", "n", "Probleme", "abstract"),
    noun("idea", "Idee", "f", "Ideen", "abstract"),
    noun("question", "Frage", "f", "Fragen", "abstract"),
    noun("weather", "Wetter", "n", None, "abstract"),
    noun("work", "Arbeit", "f", None, "abstract"),
    noun("money", "Geld", "n", None, "abstract"),
    noun("price", "Preis", "m", "Preise", "abstract"),
    noun("plan", "Plan", "m", "Pläne", "abstract"),
    noun("future", "Zukunft", "f", None, "abstract"),
    noun("help", "Hilfe", "f", None, "abstract"),
    noun("noise", "Lärm", "m", None, "abstract"),
]
NOUNS = {n.en: n for n in NOUN_LIST}

# English modifier, German combining form, English heads. Head gender/class/places carry over.
COMPOUND_SPECS = [
    ("house", "Haus", "door key wall roof window cat"),
    ("kitchen", "Küchen", "table door window lamp chair clock cupboard"),
    ("school", "Schul", "bag book bus garden friend"),
    ("city", "Stadt", "park map museum library bus"),
    ("water", "Wasser", "glass bottle ball"),
    ("wine", "Wein", "glass bottle shop"),
    ("coffee", "Kaffee", "cup table"),
    ("tea", "Tee", "cup glass"),
    ("birthday", "Geburtstags", "party present cake"),
    ("winter", "Winter", "coat jacket shoe holiday"),
    ("summer", "Sommer", "dress holiday hat party"),
    ("garden", "Garten", "door chair table party house"),
    ("apple", "Apfel", "cake juice tree"),
    ("children's", "Kinder", "book room bike party game"),
    ("fish", "Fisch", "soup market restaurant"),
    ("chocolate", "Schokoladen", "cake"),
    ("village", "Dorf", "school church street shop"),
    ("bus", "Bus", "ticket driver"),
    ("car", "Auto", "key door driver radio"),
    ("door", "Tür", "key"),
    ("hotel", "Hotel", "room bed"),
    ("night", "Nacht", "train bus"),
    ("milk", "Milch", "glass bottle"),
    ("flower", "Blumen", "shop garden"),
    ("football", "Fußball", "game shoe"),
    ("mountain", "Berg", "village lake"),
]


def compound(modifier_en: str, comb: str, head: Noun) -> Noun:
    """English "modifier head" -> German comb + head (lower case), with the head's gender."""
    low = str.lower
    return Noun(
        en=f"{modifier_en} {head.en}",
        en_pl=None if head.en_pl is None else f"{modifier_en} {head.en_pl}",
        de=comb + low(head.de), gender=head.gender,
        de_pl=None if head.de_pl is None else comb + low(head.de_pl), cls=head.cls,
        gen_sg=comb + low(head.gen_sg), weak=None if head.weak is None else comb + low(head.weak),
        loc=head.loc, to=head.to, comb=comb, head=head.en)


COMPOUNDS = [compound(mod, comb, NOUNS[h]) for mod, comb, heads in COMPOUND_SPECS
             for h in heads.split()]
_COMPOUND_DE = {c.de for c in COMPOUNDS}


@dataclass(frozen=True)
class Adj:
    en: str
    de: str
    stem: str               # attributive stem (teuer -> teur)
    classes: tuple[str, ...]


_ANIM = ("person", "animal")
_GOODS = ("thing", "clothing", "food", "drink", "vehicle", "device", "static", "text")
_PHYS = _GOODS + ("animal", "part", "building", "room", "area")


def adjective(en, de, classes, stem=None):
    return Adj(en, de, stem or de, tuple(classes))


ADJECTIVES = [
    adjective("big", "groß", _PHYS + ("person", "event")),
    adjective("small", "klein", _PHYS + ("person",)),
    adjective("old", "alt", _PHYS + ("person",)),
    adjective("new", "neu", _PHYS + ("person", "abstract")),
    adjective("young", "jung", _ANIM),
    adjective("good", "gut", _PHYS + ("person", "event", "abstract")),
    adjective("bad", "schlecht", _PHYS + ("person", "event", "abstract")),
    adjective("beautiful", "schön", _PHYS + ("person", "event")),
    adjective("ugly", "hässlich", _PHYS),
    adjective("red", "rot", ("thing", "clothing", "vehicle", "part", "static", "building")),
    adjective("blue", "blau", ("thing", "clothing", "vehicle", "part", "static")),
    adjective("green", "grün", ("thing", "clothing", "vehicle", "part", "static")),
    adjective("black", "schwarz", ("thing", "clothing", "vehicle", "animal", "device")),
    adjective("white", "weiß", ("thing", "clothing", "vehicle", "animal", "building")),
    adjective("yellow", "gelb", ("thing", "clothing", "vehicle", "part")),
    adjective("long", "lang", ("thing", "clothing", "event", "text", "area")),
    adjective("short", "kurz", ("clothing", "event", "text")),
    adjective("cheap", "billig", _GOODS + ("building",)),
    adjective("expensive", "teuer", _GOODS + ("building",), stem="teur"),
    adjective("dark", "dunkel", ("room", "area", "clothing", "building"), stem="dunkl"),
    adjective("warm", "warm", ("food", "drink", "clothing", "room")),
    adjective("cold", "kalt", ("food", "drink", "room", "area")),
    adjective("hot", "heiß", ("food", "drink")),
    adjective("quiet", "ruhig", ("person", "animal", "area", "room", "building")),
    adjective("loud", "laut", ("person", "animal", "device", "event")),
    adjective("happy", "glücklich", _ANIM),
    adjective("sad", "traurig", _ANIM + ("text",)),
    adjective("tired", "müde", _ANIM, stem="müd"),
    adjective("friendly", "freundlich", _ANIM),
    adjective("clean", "sauber", ("thing", "clothing", "vehicle", "part", "room", "building")),
    adjective("dirty", "schmutzig", ("thing", "clothing", "vehicle", "part", "room", "area")),
    adjective("fast", "schnell", ("vehicle", "animal")),
    adjective("slow", "langsam", ("vehicle", "animal")),
    adjective("heavy", "schwer", ("thing", "static", "device")),
    adjective("rich", "reich", ("person",)),
    adjective("poor", "arm", ("person",)),
    adjective("strong", "stark", _ANIM),
    adjective("nice", "nett", ("person",)),
    adjective("clever", "klug", _ANIM),
    adjective("funny", "lustig", _ANIM + ("text", "event")),
    adjective("empty", "leer", ("thing", "room", "area", "building")),
    adjective("full", "voll", ("thing", "room", "building", "vehicle")),
    adjective("famous", "berühmt", ("person", "building", "area", "text")),
    adjective("hungry", "hungrig", _ANIM),
    adjective("angry", "wütend", _ANIM),
    adjective("sick", "krank", _ANIM),
    adjective("fresh", "frisch", ("food", "drink")),
    adjective("delicious", "lecker", ("food", "drink")),
    adjective("difficult", "schwierig", ("abstract", "event", "text")),
    adjective("easy", "einfach", ("abstract", "event", "text")),
    adjective("interesting", "interessant", ("text", "event", "person", "abstract", "area")),
    adjective("important", "wichtig", ("text", "event", "person", "abstract")),
]
ADJ = {a.en: a for a in ADJECTIVES}
# "it is cold" -> "es ist kalt"
WEATHER_ADJ = [ADJ[a] for a in ("cold", "warm", "hot", "dark")] + [
    adjective("bright", "hell", ())]


@dataclass(frozen=True)
class Adv:
    en: str
    de: str
    kind: str               # time, sentence, freq, manner, transport
    idiom: bool = False


def adverb(en, de, kind, idiom=False):
    return Adv(en, de, kind, idiom)


ADVERBS = [
    adverb("today", "heute", "time"), adverb("tomorrow", "morgen", "time"),
    adverb("now", "jetzt", "time"), adverb("soon", "bald", "time"),
    adverb("later", "später", "time"), adverb("every day", "jeden Tag", "time"),
    adverb("every morning", "jeden Morgen", "time"),
    adverb("in the morning", "am Morgen", "time", True),
    adverb("in the evening", "am Abend", "time", True),
    adverb("at night", "in der Nacht", "time", True),
    adverb("at the weekend", "am Wochenende", "time", True),
    adverb("at the moment", "im Moment", "time", True),
    adverb("next week", "nächste Woche", "time"), adverb("next year", "nächstes Jahr", "time"),
    adverb("this evening", "heute Abend", "time", True),
    adverb("tomorrow morning", "morgen früh", "time", True),
    adverb("from time to time", "ab und zu", "time", True),
    *[adverb(f"on {e}", f"am {d}", "time", True) for e, d in (
        ("Monday", "Montag"), ("Tuesday", "Dienstag"), ("Wednesday", "Mittwoch"),
        ("Thursday", "Donnerstag"), ("Friday", "Freitag"), ("Saturday", "Samstag"),
        ("Sunday", "Sonntag"))],
    adverb("unfortunately", "leider", "sentence"),
    adverb("fortunately", "zum Glück", "sentence", True),
    adverb("of course", "natürlich", "sentence", True),
    adverb("perhaps", "vielleicht", "sentence"), adverb("probably", "wahrscheinlich", "sentence"),
    adverb("by the way", "übrigens", "sentence", True),
    adverb("at last", "endlich", "sentence", True), adverb("suddenly", "plötzlich", "sentence"),
    adverb("all of a sudden", "plötzlich", "sentence", True),
    adverb("often", "oft", "freq"), adverb("always", "immer", "freq"),
    adverb("never", "nie", "freq"), adverb("sometimes", "manchmal", "freq"),
    adverb("usually", "normalerweise", "freq"), adverb("rarely", "selten", "freq"),
    adverb("hardly ever", "fast nie", "freq", True),
    adverb("quickly", "schnell", "manner"), adverb("slowly", "langsam", "manner"),
    adverb("quietly", "leise", "manner"), adverb("loudly", "laut", "manner"),
    adverb("carefully", "vorsichtig", "manner"), adverb("happily", "fröhlich", "manner"),
    adverb("on time", "pünktlich", "manner", True), adverb("late", "spät", "manner"),
    adverb("early", "früh", "manner"), adverb("together", "zusammen", "manner"),
    adverb("alone", "allein", "manner"), adverb("again", "wieder", "manner"),
    adverb("right away", "sofort", "manner", True), adverb("in a hurry", "in Eile", "manner", True),
    adverb("by bus", "mit dem Bus", "transport", True),
    adverb("by train", "mit dem Zug", "transport", True),
    adverb("by car", "mit dem Auto", "transport", True),
    adverb("by bike", "mit dem Fahrrad", "transport", True),
    adverb("on foot", "zu Fuß", "transport", True),
]
_ADV_BY_KIND: dict[str, list[Adv]] = {}
for _a in ADVERBS:
    _ADV_BY_KIND.setdefault(_a.kind, []).append(_a)


@dataclass(frozen=True)
class Modal:
    en: tuple[str, ...]      # base form words ("want", "to")
    en3: tuple[str, ...]     # third person singular
    de: tuple[str, ...]      # six persons: ich du er wir ihr sie
    invert: bool             # English questions invert it (can he ...?) instead of do-support
    freq_ok: bool = True
    idiom: bool = False


def modal(en, de, invert=True, en3=None, freq_ok=True, idiom=False):
    return Modal(tuple(en.split()), tuple((en3 or en).split()), tuple(de.split()), invert,
                 freq_ok, idiom)


MODALS = [
    modal("can", "kann kannst kann können könnt können"),
    modal("must", "muss musst muss müssen müsst müssen"),
    modal("should", "soll sollst soll sollen sollt sollen"),
    modal("will", "werde wirst wird werden werdet werden"),
    modal("want to", "will willst will wollen wollt wollen", invert=False, en3="wants to"),
    modal("would like to", "möchte möchtest möchte möchten möchtet möchten", freq_ok=False,
          idiom=True),
]
MODAL = {" ".join(m.en): m for m in MODALS}


@dataclass(frozen=True)
class Conj:
    en: str
    de: str
    idiom: bool = False


def conjunction(en, de, idiom=None):
    return Conj(en, de, (" " in en) if idiom is None else idiom)


CONJUNCTIONS = [
    conjunction("because", "weil"), conjunction("although", "obwohl"),
    conjunction("even though", "obwohl"), conjunction("when", "wenn"),
    conjunction("if", "falls"), conjunction("as soon as", "sobald"),
    conjunction("as long as", "solange"), conjunction("while", "während"),
    conjunction("before", "bevor"), conjunction("after", "nachdem"),
    conjunction("so that", "damit"), conjunction("until", "bis"),
    conjunction("even if", "selbst wenn"),
]

# ---------------------------------------------------------------------------------------------
# Verbs
# ---------------------------------------------------------------------------------------------

_FULL = {
    "sein": ("bin", "bist", "ist", "sind", "seid", "sind"),
    "haben": ("habe", "hast", "hat", "haben", "habt", "haben"),
    "wissen": ("weiß", "weißt", "weiß", "wissen", "wisst", "wissen"),
    "werden": ("werde", "wirst", "wird", "werden", "werdet", "werden"),
    "mögen": ("mag", "magst", "mag", "mögen", "mögt", "mögen"),
}
_IMP = {"sein": "sei", "haben": "hab", "geben": "gib", "sehen": "sieh", "lesen": "lies",
        "essen": "iss", "nehmen": "nimm", "helfen": "hilf", "sprechen": "sprich",
        "vergessen": "vergiss", "treffen": "triff", "frühstücken": "frühstücke"}


def _needs_e(stem: str) -> bool:
    return stem[-1] in "td" or (stem[-1] in "mn" and stem[-2] not in _VOWELS + "lrmnh")


def conjugate(inf: str, irr: str | None = None) -> tuple[str, ...]:
    """Present tense ich, du, er, wir, ihr, sie; irr = "du-form er-form" for vowel changes."""
    if inf in _FULL:
        return _FULL[inf]
    stem = inf[:-1] if inf.endswith(("ern", "eln")) else inf[:-2]
    e = "e" if _needs_e(stem) else ""
    du = stem + e + ("t" if stem[-1] in "sßzx" else "st")
    er = stem + e + "t"
    if irr:
        du, er = irr.split()
    return (stem + "e", du, er, inf, stem + e + "t", inf)


def _imperative(base: str) -> str:
    if base in _IMP:
        return _IMP[base]
    stem = base[:-1] if base.endswith(("ern", "eln")) else base[:-2]
    return stem + "e" if _needs_e(stem) or base.endswith("ern") else stem


@dataclass(frozen=True)
class Verb:
    en: tuple[str, ...]      # base form words; the first one is inflected
    frame: str               # intr acc dat ditr prep dir put loc pred weather that
    de_base: str             # infinitive without separable prefix
    prefix: str              # separable prefix ("" if none)
    forms: tuple[str, ...]   # present tense of de_base, six persons
    imp: str                 # du-imperative of de_base
    subj: tuple[str, ...]    # subject classes / "=noun" names
    obj: tuple[str, ...]     # object classes / names (accusative, dative or prepositional)
    obj2: tuple[str, ...] = ()  # ditransitive: accusative object (obj is the dative one)
    refl: bool = False
    mid: str = ""            # idiom part before the prepositional object ("Angst")
    tail: str = ""           # idiom part at the end of the middle field ("zu Hause")
    prep: tuple[str, str] | None = None  # German preposition and its case
    idiom: bool = False
    en_split: bool = False   # English particle goes after a pronoun object (picks him up)
    imp_ok: bool = True
    motion: bool = False

    @property
    def inf(self) -> str:
        return self.prefix + self.de_base

    @property
    def name(self) -> str:
        return " ".join(self.en)


def verb(en, de, frame, subj, obj=(), *, obj2=(), irr=None, refl=False, mid="", tail="",
         prep=None, idiom=None, en_split=False, imp_ok=True, motion=False):
    """de is the infinitive, "|" after a separable prefix ("an|kommen")."""
    prefix, _, base = de.rpartition("|")
    en_words = tuple(en.split())
    if idiom is None:
        idiom = len(en_words) > 1 or bool(mid or tail or refl)
    return Verb(en_words, frame, base, prefix, conjugate(base, irr), _imperative(base),
                tuple(subj), tuple(obj), tuple(obj2), refl, mid, tail,
                None if prep is None else tuple(prep.split()), idiom, en_split,
                imp_ok and en_words[0] != "be", motion)


P = ("person",)
A = ("person", "animal")
PORT = ("thing", "clothing", "text")
BUY = ("thing", "clothing", "food", "drink", "vehicle", "device", "static")
PLACE = ("building", "room", "area")
CONCRETE = ("person", "animal", "thing", "clothing", "vehicle", "static", "part", "building",
            "area", "device", "food")
VEH = ("vehicle",)
OPENABLE = ("=door", "=window", "=bag", "=box", "=bottle", "=letter", "=cupboard", "=oven", "=shop")
ROOMS = ("room", "=garden", "=house")
EVENT = ("event",)
_SCH, _LAU, _FAH = "schläfst schläft", "läufst läuft", "fährst fährt"
_SEH, _NEH = "siehst sieht", "nimmst nimmt"

VERBS = [
    # intransitive
    verb("sleep", "schlafen", "intr", A, irr=_SCH),
    verb("laugh", "lachen", "intr", P),
    verb("work", "arbeiten", "intr", P),
    verb("sing", "singen", "intr", P + ("=bird",)),
    verb("dance", "tanzen", "intr", P),
    verb("swim", "schwimmen", "intr", A),
    verb("cry", "weinen", "intr", P),
    verb("wait", "warten", "intr", A),
    verb("cook", "kochen", "intr", P),
    verb("play", "spielen", "intr", A),
    verb("travel", "reisen", "intr", P),
    verb("bark", "bellen", "intr", ("=dog",)),
    verb("get up", "auf|stehen", "intr", P),
    verb("arrive", "an|kommen", "intr", P + VEH, motion=True),
    verb("leave", "ab|fahren", "intr", P + VEH, irr=_FAH, motion=True),
    verb("come back", "zurück|kommen", "intr", A + VEH, motion=True),
    verb("go shopping", "ein|kaufen", "intr", P),
    verb("watch TV", "fern|sehen", "intr", P, irr=_SEH),
    verb("give up", "auf|geben", "intr", P, irr="gibst gibt"),
    verb("fall asleep", "ein|schlafen", "intr", A, irr=_SCH),
    verb("wake up", "auf|wachen", "intr", A),
    verb("run away", "weg|laufen", "intr", A, irr=_LAU, motion=True),
    verb("stay at home", "bleiben", "intr", P, tail="zu Hause"),
    verb("take a walk", "gehen", "intr", P, tail="spazieren"),
    verb("go to bed", "gehen", "intr", P, tail="ins Bett"),
    verb("make a mistake", "machen", "intr", P, tail="einen Fehler"),
    verb("ride a bike", "fahren", "intr", P, irr=_FAH, tail="Rad"),
    verb("play football", "spielen", "intr", P, tail="Fußball"),
    verb("play the piano", "spielen", "intr", P, tail="Klavier"),
    verb("do homework", "machen", "intr", P, tail="Hausaufgaben"),
    verb("learn German", "lernen", "intr", P, tail="Deutsch"),
    verb("have breakfast", "frühstücken", "intr", P),
    verb("have lunch", "essen", "intr", P, irr="isst isst", tail="zu Mittag"),
    verb("take a shower", "duschen", "intr", P),
    verb("take a photo", "machen", "intr", P, tail="ein Foto"),
    verb("be late", "verspäten", "intr", P + VEH, refl=True),
    verb("hurry", "beeilen", "intr", P, refl=True),
    verb("sit down", "setzen", "intr", P, refl=True),
    # accusative object
    verb("see", "sehen", "acc", A, CONCRETE, irr=_SEH),
    verb("buy", "kaufen", "acc", P, BUY),
    verb("sell", "verkaufen", "acc", P, BUY),
    verb("read", "lesen", "acc", P, ("text",), irr="liest liest"),
    verb("write", "schreiben", "acc", P, ("=letter", "=message", "=email", "=poem", "=story")),
    verb("eat", "essen", "acc", A, ("food",), irr="isst isst"),
    verb("drink", "trinken", "acc", A, ("drink",)),
    verb("find", "finden", "acc", A, PORT + A),
    verb("need", "brauchen", "acc", P, BUY + ("=help", "=money")),
    verb("have", "haben", "acc", P, ("thing", "clothing", "vehicle", "animal", "device",
                                     "=idea", "=question", "=problem", "=plan")),
    verb("love", "lieben", "acc", P, A + ("food",) + PLACE),
    verb("visit", "besuchen", "acc", P, P + PLACE),
    verb("wash", "waschen", "acc", P, ("clothing", "vehicle", "animal", "=window"),
         irr="wäschst wäscht"),
    verb("build", "bauen", "acc", P, ("building", "static", "part")),
    verb("carry", "tragen", "acc", P, PORT + ("static",), irr="trägst trägt"),
    verb("paint", "malen", "acc", P, CONCRETE),
    verb("open", "öffnen", "acc", P, OPENABLE),
    verb("close", "schließen", "acc", P, OPENABLE),
    verb("know", "kennen", "acc", P, P + PLACE),
    verb("look for", "suchen", "acc", A, PORT + A),
    verb("switch on", "ein|schalten", "acc", P, ("device",), en_split=True),
    verb("switch off", "aus|schalten", "acc", P, ("device",), en_split=True),
    verb("call", "an|rufen", "acc", P, P),
    verb("pick up", "ab|holen", "acc", P, P, en_split=True),
    verb("clean up", "auf|räumen", "acc", P, ROOMS, en_split=True),
    verb("put on", "an|ziehen", "acc", P, ("clothing",), en_split=True),
    verb("invite", "ein|laden", "acc", P, P, irr="lädst lädt"),
    verb("get to know", "kennen|lernen", "acc", P, P + ("area",)),
    verb("find out", "heraus|finden", "acc", P, ("=answer", "=truth", "=price", "=plan"),
         en_split=True),
    verb("repair", "reparieren", "acc", P, ("device", "vehicle", "static", "part")),
    verb("forget", "vergessen", "acc", P, PORT + ("abstract",), irr="vergisst vergisst"),
    verb("clean", "putzen", "acc", P, ("part", "static", "vehicle") + ROOMS),
    verb("like", "mögen", "acc", P, A + ("food", "drink") + PLACE),
    verb("hear", "hören", "acc", A, A + ("=radio",)),
    verb("ask", "fragen", "acc", P, P),
    verb("meet", "treffen", "acc", P, P, irr="triffst trifft"),
    verb("take", "nehmen", "acc", P, PORT + ("food", "drink", "=bus", "=taxi", "=train"),
         irr=_NEH),
    verb("catch", "fangen", "acc", A, ("animal", "=ball"), irr="fängst fängt"),
    verb("feed", "füttern", "acc", P, ("animal",)),
    verb("look at", "an|sehen", "acc", A, CONCRETE + ("text",), irr=_SEH),
    # dative object
    verb("help", "helfen", "dat", P, A, irr="hilfst hilft"),
    verb("thank", "danken", "dat", P, P),
    verb("follow", "folgen", "dat", A, A),
    verb("answer", "antworten", "dat", P, P),
    verb("belong to", "gehören", "dat", PORT + ("animal", "vehicle", "building"), P),
    verb("listen to", "zu|hören", "dat", P, P),
    verb("trust", "vertrauen", "dat", P, A),
    # dative + accusative
    verb("give", "geben", "ditr", P, A, obj2=PORT + ("food", "drink"), irr="gibst gibt"),
    verb("show", "zeigen", "ditr", P, P, obj2=PORT + ("vehicle", "animal")),
    verb("bring", "bringen", "ditr", P, P, obj2=PORT + ("food", "drink")),
    verb("send", "schicken", "ditr", P, P, obj2=("text", "=present", "=picture", "=flower")),
    verb("tell", "erzählen", "ditr", P, P, obj2=("=story",)),
    verb("lend", "leihen", "ditr", P, P, obj2=PORT + ("vehicle",)),
    verb("buy", "kaufen", "ditr", P, P, obj2=BUY),
    verb("explain", "erklären", "ditr", P, P, obj2=("=answer", "=problem", "=plan",
                                                   "=question")),
    # prepositional object
    verb("wait for", "warten", "prep", A, A + VEH, prep="auf acc"),
    verb("think of", "denken", "prep", P, A + PLACE + EVENT + ("abstract",), prep="an acc"),
    verb("look forward to", "freuen", "prep", P, EVENT, refl=True, prep="auf acc"),
    verb("take care of", "kümmern", "prep", P, A + ("=garden", "=house", "=kitchen"), refl=True,
         prep="um acc"),
    verb("look after", "auf|passen", "prep", P, A + PORT, prep="auf acc"),
    verb("take part in", "teil|nehmen", "prep", P, EVENT, irr=_NEH, prep="an dat"),
    verb("be afraid of", "haben", "prep", P, A + ("=exam", "=future", "=work"), mid="Angst",
         prep="vor dat"),
    verb("be interested in", "interessieren", "prep", P, PLACE + EVENT + VEH + ("animal",),
         refl=True, prep="für acc"),
    verb("dream of", "träumen", "prep", P, A + PLACE + VEH + EVENT, prep="von dat"),
    verb("talk about", "sprechen", "prep", P, A + PLACE + EVENT + ("abstract", "text"),
         irr="sprichst spricht", prep="über acc"),
    verb("laugh at", "lachen", "prep", P, A + ("=story", "=idea", "=picture"), prep="über acc"),
    verb("ask for", "bitten", "prep", P, PORT + ("food", "drink", "=help", "=answer"),
         prep="um acc", imp_ok=False),
    verb("remember", "erinnern", "prep", P, P + PLACE + EVENT, refl=True, prep="an acc"),
    verb("believe in", "glauben", "prep", P, P + ("=future", "=idea", "=plan"), prep="an acc"),
    verb("be proud of", "sein", "prep", P, A + ("building", "vehicle", "=garden"), mid="stolz",
         prep="auf acc"),
    verb("fall in love with", "verlieben", "prep", P, P + ("area",), refl=True, prep="in acc"),
    verb("depend on", "ab|hängen", "prep", EVENT + ("=plan", "=price"),
         P + ("=weather", "=price", "=money"), prep="von dat", imp_ok=False),
    verb("get used to", "gewöhnen", "prep", P, P + PLACE + ("=weather", "=work", "=noise"),
         refl=True, prep="an acc"),
    verb("worry about", "machen", "prep", P, A + ("=future", "=money", "=work", "=exam"),
         refl=True, mid="Sorgen", prep="um acc"),
    verb("complain about", "beschweren", "prep", P,
         P + ("food", "=weather", "=price", "=hotel", "=noise"), refl=True, prep="über acc"),
    # destination ("to the X") and placement ("puts X on the Y")
    verb("go", "gehen", "dir", A, motion=True),
    verb("drive", "fahren", "dir", P + ("=bus", "=car", "=taxi", "=train"), irr=_FAH,
         motion=True),
    verb("run", "laufen", "dir", A, irr=_LAU, motion=True),
    verb("fly", "fliegen", "dir", P + ("=bird", "=plane"), motion=True),
    verb("come", "kommen", "dir", A + VEH, motion=True),
    verb("travel", "reisen", "dir", P, motion=True),
    verb("return", "zurück|kehren", "dir", P, motion=True),
    verb("put", "legen", "put", P, PORT + ("food",)),
    # location
    verb("be", "sein", "loc", CONCRETE + ("text",)),
    verb("live", "wohnen", "loc", A),
    verb("sit", "sitzen", "loc", A),
    verb("stand", "stehen", "loc", A + ("static", "vehicle")),
    verb("lie", "liegen", "loc", PORT + ("animal",)),
    verb("stay", "bleiben", "loc", P),
    # predicative adjective
    verb("be", "sein", "pred", CONCRETE + ("text", "event", "abstract")),
    verb("look", "aus|sehen", "pred", CONCRETE + ("text",), irr=_SEH, imp_ok=False),
    verb("feel", "fühlen", "pred", A, refl=True, imp_ok=False),
    verb("get", "werden", "pred", A, idiom=False, imp_ok=False),
    # weather
    verb("rain", "regnen", "weather", ()),
    verb("snow", "schneien", "weather", ()),
]

def find_verb(name: str, frame: str | None = None) -> Verb:
    """The verb entry with English base form name ("give up"), optionally of one frame."""
    for v in VERBS + THAT_VERBS:
        if v.name == name and (frame is None or v.frame == frame):
            return v
    raise KeyError(f"no verb {name!r} (frame {frame})")


# "says that ..." -> "sagt, dass ..."
THAT_VERBS = [
    verb("say", "sagen", "that", P), verb("know", "wissen", "that", P),
    verb("think", "glauben", "that", P), verb("hope", "hoffen", "that", P),
    verb("hear", "hören", "that", P), verb("notice", "merken", "that", P),
]

# ---------------------------------------------------------------------------------------------
# Noun phrases
# ---------------------------------------------------------------------------------------------

# key: (person, English subject, English object, German nom, acc, dat)
PRONOUNS = {
    "i": (0, "I", "me", "ich", "mich", "mir"),
    "you": (1, "you", "you", "du", "dich", "dir"),
    "he": (2, "he", "him", "er", "ihn", "ihm"),
    "she": (2, "she", "her", "sie", "sie", "ihr"),
    "we": (3, "we", "us", "wir", "uns", "uns"),
    "they": (5, "they", "them", "sie", "sie", "ihnen"),
    "it": (2, "it", "it", "es", "es", "ihm"),   # weather subject only
}
_PERSONAL = ["i", "you", "he", "she", "we", "they"]
REFLEXIVE = ("mich", "dich", "sich", "uns", "euch", "sich")
EN_BE = ("am", "are", "is", "are", "are", "are")
# English possessive -> German ein-word stem
POSSESSIVES = {"my": "mein", "your": "dein", "his": "sein", "her": "ihr", "our": "unser",
               "their": "ihr"}
NUMBERS = {"two": "zwei", "three": "drei", "four": "vier", "five": "fünf", "six": "sechs",
           "ten": "zehn"}

_G = {"m": 0, "f": 1, "n": 2}
DEF_ARTICLE = {"nom": ("der", "die", "das", "die"), "acc": ("den", "die", "das", "die"),
               "dat": ("dem", "der", "dem", "den"), "gen": ("des", "der", "des", "der")}
DER_END = {"nom": ("er", "e", "es", "e"), "acc": ("en", "e", "es", "e"),
           "dat": ("em", "er", "em", "en"), "gen": ("es", "er", "es", "er")}
EIN_END = {"nom": ("", "e", "", "e"), "acc": ("en", "e", "", "e"),
           "dat": ("em", "er", "em", "en"), "gen": ("es", "er", "es", "er")}
ADJ_WEAK = {"nom": ("e", "e", "e", "en"), "acc": ("en", "e", "e", "en"),
            "dat": ("en", "en", "en", "en"), "gen": ("en", "en", "en", "en")}
ADJ_MIXED = {"nom": ("er", "e", "es", "en"), "acc": ("en", "e", "es", "en"),
             "dat": ("en", "en", "en", "en"), "gen": ("en", "en", "en", "en")}
ADJ_STRONG = {"nom": ("er", "e", "es", "e"), "acc": ("en", "e", "es", "e"),
              "dat": ("em", "er", "em", "en"), "gen": ("en", "er", "en", "er")}
RELATIVE = {"nom": ("der", "die", "das", "die"), "acc": ("den", "die", "das", "die"),
            "dat": ("dem", "der", "dem", "denen")}
CONTRACTIONS = {("in", "dem"): "im", ("in", "das"): "ins", ("an", "dem"): "am",
                ("an", "das"): "ans", ("zu", "dem"): "zum", ("zu", "der"): "zur",
                ("von", "dem"): "vom", ("bei", "dem"): "beim"}


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


def de_noun_form(n: Noun, number: str, case: str) -> str:
    if number == "pl":
        if case == "dat" and not n.de_pl.endswith(("n", "s")):
            return n.de_pl + "n"
        return n.de_pl
    if case == "nom":
        return n.de
    if n.weak:
        return n.weak
    return n.gen_sg if case == "gen" else n.de


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


def _en_finite(word: str, person: int) -> str:
    if word == "be":
        return EN_BE[person]
    if person != 2:
        return word
    if word == "have":
        return "has"
    if word.endswith(("s", "sh", "ch", "x", "z", "o")):
        return word + "es"
    if word.endswith("y") and word[-2] not in _VOWELS:
        return word[:-1] + "ies"
    return word + "s"


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
