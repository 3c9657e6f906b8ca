"""Mini-lexicon of the deterministic synthetic English -> German demo corpus.

Real German words (about 180 noun lemmas plus 84 regular compounds, about 140 verb entries,
50 adjectives, 60 adverbials, 13 conjunctions, 6 modals) with their morphology: noun genders,
plurals, genitive singular and weak masculine forms, compound combining forms, verb frames
and present-tense conjugation, imperatives, attributive adjective stems, and the pronoun,
article, adjective-ending and relative-pronoun tables. The sentence structures built from
these words, and the corpus generation, are in ``grammar.py``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = [
    "noun", "verb", "adjective", "adverb", "modal", "conjunction", "compound", "find_verb",
    "NOUNS", "COMPOUNDS", "VERBS", "ADJECTIVES", "ADVERBS", "MODALS", "CONJUNCTIONS",
]

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
# Pronouns, determiners and inflection
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
