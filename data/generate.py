"""Generate the Azerbaijani chain-of-thought dataset shipped as ``data/nizami.jsonl``.

The generator is deterministic: the same ``--n`` and ``--seed`` always give the same bytes.
It uses only the standard library and ``random.Random(seed)``.

Every example belongs to one task family (arithmetic word problems, unit conversions,
percentages, calendar, geometry, ordering, geography facts, ...), recorded in its ``family``
field so that evaluation can report accuracy per family. Each family has several
question phrasings but one fixed pattern for the reasoning and the answer, so that a small
model can learn the pattern and show a measurable gain on held-out examples.

Every example also records what its answer *is* (``target``), so that a grader need not read
it out of the answer sentence: a number with its unit (``{"kind": "number", "value": 7,
"unit": "manat"}``), a named thing (``{"kind": "entity", "type": "weekday", "value": "cümə"}``,
with the candidates the question offers and what it states as known), or for comparisons who
and by how much (``{"kind": "comparison", "who": "Nigar", "by": 21, "unit": "dənə"}``).

Inflected word forms (genitive, ablative, copula, ...) are written out in tables instead of
being derived by suffix rules, so that vowel harmony is always right.

Usage::

    python data/generate.py --out data/nizami.jsonl --n 1120 --seed 0
"""

from __future__ import annotations

import argparse
import json
import logging
import random
from collections.abc import Callable
from pathlib import Path
from typing import NamedTuple

logger = logging.getLogger(__name__)

DEFAULT_OUT = Path(__file__).resolve().parent / "nizami.jsonl"


Target = dict[str, object]


class Item(NamedTuple):
    """One generated question with its reasoning, answer and what the answer *is* (target)."""

    question: str
    reasoning: str
    answer: str
    target: Target


def number(value: int, unit: str | None = None, convertible: bool = True) -> Target:
    """The answer is a number, with the unit or the counted thing it comes with (if any);
    ``convertible=False`` when the question asks for that unit (a unit conversion)."""
    target: Target = {"kind": "number", "value": value} | ({"unit": unit} if unit else {})
    return target if convertible else target | {"convertible": False}


def entity(
    kind: str, value: str, options: list[str] | None = None, given: list[str] | None = None
) -> Target:
    """The answer is a named thing of a type (weekday, month, person, city, river, sea, fruit).

    ``options`` are the candidates the question offers; ``given`` what the question states as
    known (today's weekday), which an answer may repeat without asserting it.
    """
    target: Target = {"kind": "entity", "type": kind, "value": value}
    return target | ({"options": options} if options else {}) | ({"given": given} if given else {})


def compared(who: str, by: int, unit: str, options: list[str]) -> Target:
    """The answer says who has more and by how much."""
    return {"kind": "comparison", "who": who, "by": by, "unit": unit, "options": options}


class Name(NamedTuple):
    """A first name with the case forms the templates need."""

    nom: str  # Əli
    gen: str  # Əlinin
    abl: str  # Əlidən
    cop: str  # Əlidir


NAMES = [
    Name("Əli", "Əlinin", "Əlidən", "Əlidir"),
    Name("Leyla", "Leylanın", "Leyladan", "Leyladır"),
    Name("Nigar", "Nigarın", "Nigardan", "Nigardır"),
    Name("Aysel", "Ayselin", "Ayseldən", "Ayseldir"),
    Name("Orxan", "Orxanın", "Orxandan", "Orxandır"),
    Name("Tural", "Turalın", "Turaldan", "Turaldır"),
    Name("Rəşad", "Rəşadın", "Rəşaddan", "Rəşaddır"),
    Name("Günay", "Günayın", "Günaydan", "Günaydır"),
    Name("Murad", "Muradın", "Muraddan", "Muraddır"),
    Name("Səbinə", "Səbinənin", "Səbinədən", "Səbinədir"),
    Name("Fidan", "Fidanın", "Fidandan", "Fidandır"),
    Name("Elvin", "Elvinin", "Elvindən", "Elvindir"),
    Name("Nərmin", "Nərminin", "Nərmindən", "Nərmindir"),
    Name("Zaur", "Zaurun", "Zaurdan", "Zaurdur"),
    Name("Samir", "Samirin", "Samirdən", "Samirdir"),
    Name("Kamran", "Kamranın", "Kamrandan", "Kamrandır"),
    Name("Ülviyyə", "Ülviyyənin", "Ülviyyədən", "Ülviyyədir"),
    Name("İlkin", "İlkinin", "İlkindən", "İlkindir"),
]

# (nominative, 3rd person possessive): "5 alma", "Əlinin 5 alması var".
THINGS = [
    ("alma", "alması"),
    ("kitab", "kitabı"),
    ("qələm", "qələmi"),
    ("dəftər", "dəftəri"),
    ("konfet", "konfeti"),
    ("marka", "markası"),
    ("oyuncaq", "oyuncağı"),
    ("karandaş", "karandaşı"),
    ("şar", "şarı"),
    ("top", "topu"),
    ("qoz", "qozu"),
    ("gül", "gülü"),
]

GIVERS = ["Anası", "Atası", "Nənəsi", "Babası", "Dostu", "Müəllimi", "Qardaşı", "Bacısı"]

# (nominative, accusative) for fruit that is eaten: "6 almanı yedilər".
FRUITS = [
    ("alma", "almanı"),
    ("armud", "armudu"),
    ("nar", "narı"),
    ("heyva", "heyvanı"),
    ("şaftalı", "şaftalını"),
    ("gavalı", "gavalını"),
]

# Things sold in a shop, nominative only.
GOODS = ["çanta", "köynək", "papaq", "şar", "kitab", "oyuncaq", "qələm", "dəftər"]

# (nominative, genitive) for priced goods: "çantanın qiyməti".
PRICED = [
    ("çanta", "çantanın"),
    ("köynək", "köynəyin"),
    ("telefon", "telefonun"),
    ("ayaqqabı", "ayaqqabının"),
    ("gödəkçə", "gödəkçənin"),
    ("saat", "saatın"),
    ("velosiped", "velosipedin"),
    ("lampa", "lampanın"),
]

CHEAP_GOODS = ["dəftər", "qələm", "kitab", "çörək", "dondurma", "şokolad", "açıqca", "albom"]

# (name, typical speed range in km/h)
VEHICLES = [
    ("Avtomobil", (50, 90)),
    ("Avtobus", (40, 70)),
    ("Qatar", (60, 100)),
    ("Motosiklet", (40, 80)),
    ("Velosipedçi", (10, 20)),
]

EVENTS = ["Dərs", "İclas", "Konsert", "Məşq", "Ekskursiya", "Tamaşa", "Seminar", "Yarış"]

DAYS = [
    # (nominative, copula, ablative)
    ("bazar ertəsi", "bazar ertəsidir", "bazar ertəsindən"),
    ("çərşənbə axşamı", "çərşənbə axşamıdır", "çərşənbə axşamından"),
    ("çərşənbə", "çərşənbədir", "çərşənbədən"),
    ("cümə axşamı", "cümə axşamıdır", "cümə axşamından"),
    ("cümə", "cümədir", "cümədən"),
    ("şənbə", "şənbədir", "şənbədən"),
    ("bazar", "bazardır", "bazardan"),
]

MONTHS = [
    # (nominative, copula, ablative)
    ("yanvar", "yanvardır", "yanvardan"),
    ("fevral", "fevraldır", "fevraldan"),
    ("mart", "martdır", "martdan"),
    ("aprel", "apreldir", "apreldən"),
    ("may", "maydır", "maydan"),
    ("iyun", "iyundur", "iyundan"),
    ("iyul", "iyuldur", "iyuldan"),
    ("avqust", "avqustdur", "avqustdan"),
    ("sentyabr", "sentyabrdır", "sentyabrdan"),
    ("oktyabr", "oktyabrdır", "oktyabrdan"),
    ("noyabr", "noyabrdır", "noyabrdan"),
    ("dekabr", "dekabrdır", "dekabrdan"),
]

# Locative suffix after an hour written in digits: "saat 9-da", "saat 12-də".
HOUR_LOCATIVE = {
    1: "də",
    2: "də",
    3: "də",
    4: "də",
    5: "də",
    6: "da",
    7: "də",
    8: "də",
    9: "da",
    10: "da",
    11: "də",
    12: "də",
    13: "də",
    14: "də",
    15: "də",
    16: "da",
    17: "də",
    18: "də",
    19: "da",
    20: "də",
    21: "də",
    22: "də",
    23: "də",
}


class Unit(NamedTuple):
    """A unit conversion from a larger unit to a smaller one."""

    big: str  # kilometr
    big_loc: str  # kilometrdə
    small: str  # metr
    small_cop: str  # metrdir
    factor: int
    amounts: tuple[int, int]


UNITS = [
    Unit("kilometr", "kilometrdə", "metr", "metrdir", 1000, (2, 30)),
    Unit("metr", "metrdə", "santimetr", "santimetrdir", 100, (2, 40)),
    Unit("saat", "saatda", "dəqiqə", "dəqiqədir", 60, (2, 12)),
    Unit("dəqiqə", "dəqiqədə", "saniyə", "saniyədir", 60, (2, 20)),
    Unit("kiloqram", "kiloqramda", "qram", "qramdır", 1000, (2, 25)),
    Unit("litr", "litrdə", "millilitr", "millilitrdir", 1000, (2, 20)),
    Unit("gün", "gündə", "saat", "saatdır", 24, (2, 10)),
    Unit("həftə", "həftədə", "gün", "gündür", 7, (2, 12)),
    Unit("ton", "tonda", "kiloqram", "kiloqramdır", 1000, (2, 15)),
    Unit("il", "ildə", "ay", "aydır", 12, (2, 10)),
]


class Relation(NamedTuple):
    """An ordering relation between people: "Əli Orxandan hündürdür"."""

    predicate: str  # hündürdür
    top_question: str  # Ən hündür kimdir?
    top_answer: str  # Ən hündür
    bottom_question: str  # Ən alçaq kimdir?
    bottom_answer: str  # Ən alçaq


RELATIONS = [
    Relation("hündürdür", "Ən hündür kimdir?", "Ən hündür", "Ən alçaq kimdir?", "Ən alçaq"),
    Relation("yaşca böyükdür", "Ən böyük kimdir?", "Ən böyük", "Ən kiçik kimdir?", "Ən kiçik"),
    Relation(
        "daha sürətli qaçır",
        "Ən sürətli kim qaçır?",
        "Ən sürətli qaçan",
        "Ən yavaş kim qaçır?",
        "Ən yavaş qaçan",
    ),
    Relation("ağırdır", "Ən ağır kimdir?", "Ən ağır", "Ən yüngül kimdir?", "Ən yüngül"),
]


def capitalize(text: str) -> str:
    """Upper-case the first letter with Azerbaijani rules (i → İ)."""
    if not text:
        return text
    first = "İ" if text[0] == "i" else text[0].upper()
    return first + text[1:]


# --------------------------------------------------------------------------- families


def addition(rng: random.Random) -> Item:
    """Addition word problems."""
    a, b = rng.randint(3, 40), rng.randint(2, 30)
    s = a + b
    form = rng.randrange(5)
    if form == 0:
        name, (nom, poss) = rng.choice(NAMES), rng.choice(THINGS)
        giver = rng.choice(GIVERS)
        q = (
            f"{name.gen} {a} {poss} var. {giver} ona daha {b} {nom} bağışladı. "
            f"İndi {name.gen} neçə {poss} var?"
        )
        r = f"Əvvəlcə {a} {nom} var idi, sonra {b} {nom} əlavə olundu. Toplayırıq: {a} + {b} = {s}."
        return Item(q, r, f"İndi {name.gen} {s} {poss} var.", number(s, nom))
    if form == 1:
        name, (nom, _) = rng.choice(NAMES), rng.choice(THINGS)
        q = f"{name.nom} səhər {a} {nom}, axşam isə {b} {nom} aldı. O, cəmi neçə {nom} aldı?"
        r = (
            f"Səhər {a} {nom}, axşam {b} {nom} alınıb. "
            f"Cəmi tapmaq üçün toplayırıq: {a} + {b} = {s}."
        )
        return Item(q, r, f"{name.nom} cəmi {s} {nom} aldı.", number(s, nom))
    if form == 2:
        q = f"Sinifdə {a} oğlan və {b} qız oxuyur. Sinifdə cəmi neçə şagird var?"
        r = f"Şagirdlərin sayı oğlanlarla qızların cəminə bərabərdir. Toplayırıq: {a} + {b} = {s}."
        return Item(q, r, f"Sinifdə cəmi {s} şagird var.", number(s, "şagird"))
    if form == 3:
        q = (
            f"Kitabxanada {a} kitab var idi. Bu gün kitabxanaya daha {b} kitab gətirildi. "
            "İndi kitabxanada neçə kitab var?"
        )
        r = f"Əvvəlcə {a} kitab var idi, sonra {b} kitab əlavə olundu. Toplayırıq: {a} + {b} = {s}."
        return Item(q, r, f"İndi kitabxanada {s} kitab var.", number(s, "kitab"))
    q = (
        f"Avtobusda {a} sərnişin var idi. Dayanacaqda daha {b} sərnişin mindi. "
        "İndi avtobusda neçə sərnişin var?"
    )
    r = (
        f"Əvvəlcə {a} sərnişin var idi, sonra {b} sərnişin əlavə olundu. "
        f"Toplayırıq: {a} + {b} = {s}."
    )
    return Item(q, r, f"İndi avtobusda {s} sərnişin var.", number(s, "sərnişin"))


def subtraction(rng: random.Random) -> Item:
    """Subtraction word problems."""
    a = rng.randint(8, 50)
    b = rng.randint(2, a - 1)
    d = a - b
    form = rng.randrange(4)
    if form == 0:
        name, (nom, poss) = rng.choice(NAMES), rng.choice(THINGS)
        q = (
            f"{name.gen} {a} {poss} var idi. O, dostuna {b} {nom} verdi. "
            f"{name.gen} neçə {poss} qaldı?"
        )
        r = (
            f"Əvvəlcə {a} {nom} var idi, {b} {nom} verildi. "
            f"Qalanı tapmaq üçün çıxırıq: {a} - {b} = {d}."
        )
        return Item(q, r, f"{name.gen} {d} {poss} qaldı.", number(d, nom))
    if form == 1:
        nom, acc = rng.choice(FRUITS)
        q = f"Səbətdə {a} {nom} var idi. Uşaqlar {b} {acc} yedilər. Səbətdə neçə {nom} qaldı?"
        r = (
            f"Əvvəlcə {a} {nom} var idi, {b} {nom} yeyildi. "
            f"Qalanı tapmaq üçün çıxırıq: {a} - {b} = {d}."
        )
        return Item(q, r, f"Səbətdə {d} {nom} qaldı.", number(d, nom))
    if form == 2:
        q = (
            f"Avtobusda {a} sərnişin var idi. Dayanacaqda {b} sərnişin düşdü. "
            "Avtobusda neçə sərnişin qaldı?"
        )
        r = (
            f"Əvvəlcə {a} sərnişin var idi, {b} sərnişin düşdü. "
            f"Qalanı tapmaq üçün çıxırıq: {a} - {b} = {d}."
        )
        return Item(q, r, f"Avtobusda {d} sərnişin qaldı.", number(d, "sərnişin"))
    good = rng.choice(GOODS)
    q = f"Mağazada {a} {good} var idi. Gün ərzində {b} {good} satıldı. Mağazada neçə {good} qaldı?"
    r = (
        f"Əvvəlcə {a} {good} var idi, {b} {good} satıldı. "
        f"Qalanı tapmaq üçün çıxırıq: {a} - {b} = {d}."
    )
    return Item(q, r, f"Mağazada {d} {good} qaldı.", number(d, good))


def money(rng: random.Random) -> Item:
    """Shopping and money problems in manat."""
    name = rng.choice(NAMES)
    form = rng.randrange(4)
    if form == 0:
        good, p, k = rng.choice(CHEAP_GOODS), rng.randint(2, 15), rng.randint(2, 9)
        t = k * p
        q = f"Bir {good} {p} manatdır. {name.nom} {k} {good} aldı. O, cəmi neçə manat ödədi?"
        r = f"Bir {good} {p} manatdır, {k} {good} alınıb. Vururuq: {k} × {p} = {t}."
        return Item(q, r, f"{name.nom} cəmi {t} manat ödədi.", number(t, "manat"))
    if form == 1:
        good = rng.choice(CHEAP_GOODS)
        paid = rng.choice([10, 20, 50, 100])
        p = rng.randint(2, paid - 1)
        c = paid - p
        q = (
            f"{name.nom} {paid} manat verib {p} manatlıq {good} aldı. "
            "Ona neçə manat qalıq qaytarılmalıdır?"
        )
        r = f"Qalığı tapmaq üçün verilən puldan alışın qiymətini çıxırıq: {paid} - {p} = {c}."
        return Item(q, r, f"Qalıq {c} manatdır.", number(c, "manat"))
    if form == 2:
        p, k = rng.randint(2, 20), rng.randint(3, 12)
        t = k * p
        q = f"{name.nom} hər gün {p} manat yığır. {k} gündə o, neçə manat yığacaq?"
        r = f"Hər gün {p} manat yığılır və {k} gün keçir. Vururuq: {k} × {p} = {t}."
        return Item(q, r, f"{name.nom} {k} gündə {t} manat yığacaq.", number(t, "manat"))
    k, e = rng.randint(2, 8), rng.randint(3, 25)
    total = k * e
    q = f"{total} manat {k} uşaq arasında bərabər bölündü. Hər uşağa neçə manat düşür?"
    r = (
        f"{total} manat {k} bərabər hissəyə bölünür. "
        f"Bir uşağın payını tapmaq üçün bölürük: {total} / {k} = {e}."
    )
    return Item(q, r, f"Hər uşağa {e} manat düşür.", number(e, "manat"))


def groups(rng: random.Random) -> Item:
    """Multiplication and division with boxes and rows."""
    nom, _ = rng.choice(THINGS)
    form = rng.randrange(3)
    k, a = rng.randint(2, 12), rng.randint(2, 15)
    t = k * a
    if form == 0:
        q = f"Hər qutuda {a} {nom} var. {k} qutuda cəmi neçə {nom} var?"
        r = f"Hər qutuda {a} {nom} var və {k} qutu götürülür. Vururuq: {k} × {a} = {t}."
        return Item(q, r, f"{k} qutuda cəmi {t} {nom} var.", number(t, nom))
    if form == 1:
        q = f"{t} {nom} {k} qutuya bərabər paylandı. Hər qutuya neçə {nom} düşür?"
        r = (
            f"{t} {nom} {k} qutuya bərabər paylanır. "
            f"Bir qutuya düşən sayı tapmaq üçün bölürük: {t} / {k} = {a}."
        )
        return Item(q, r, f"Hər qutuya {a} {nom} düşür.", number(a, nom))
    q = f"Zalda {k} sıra stul var, hər sırada {a} stul durur. Zalda cəmi neçə stul var?"
    r = f"Zalda {k} sıra, hər sırada isə {a} stul var. Vururuq: {k} × {a} = {t}."
    return Item(q, r, f"Zalda cəmi {t} stul var.", number(t, "stul"))


def distance(rng: random.Random) -> Item:
    """Speed, time and distance in km."""
    vehicle, (lo, hi) = rng.choice(VEHICLES)
    v = rng.randrange(lo, hi + 1, 5)
    t = rng.randint(2, 6)
    s = v * t
    form = rng.randrange(4)
    if form == 0:
        q = f"{vehicle} saatda {v} km sürətlə {t} saat yol getdi. O, neçə kilometr yol qət etdi?"
        r = (
            f"{vehicle} saatda {v} km gedir və {t} saat yoldadır. "
            f"Yol sürətin vaxta hasilinə bərabərdir: {v} × {t} = {s}."
        )
        return Item(q, r, f"{vehicle} {s} km yol qət etdi.", number(s, "km"))
    if form == 1:
        q = (
            f"İki şəhər arasındakı məsafə {s} km-dir. {vehicle} saatda {v} km sürətlə gedir. "
            "Bu yolu neçə saata qət edər?"
        )
        r = (
            f"Məsafə {s} km, sürət isə saatda {v} km-dir. "
            f"Vaxtı tapmaq üçün məsafəni sürətə bölürük: {s} / {v} = {t}."
        )
        return Item(q, r, f"{vehicle} bu yolu {t} saata qət edər.", number(t, "saat"))
    if form == 2:
        q = f"{vehicle} {t} saatda {s} km yol getdi. Onun sürəti saatda neçə kilometr idi?"
        r = (
            f"{vehicle} {t} saatda {s} km yol gedib. "
            f"Sürəti tapmaq üçün yolu vaxta bölürük: {s} / {t} = {v}."
        )
        return Item(q, r, f"{vehicle} saatda {v} km sürətlə gedirdi.", number(v, "km/saat"))
    name = rng.choice(NAMES)
    a, b = rng.randint(1, 12), rng.randint(1, 12)
    q = f"{name.nom} səhər {a} km, axşam isə {b} km qaçdı. O, bu gün cəmi neçə km qaçdı?"
    r = (
        f"{name.nom} səhər {a} km, axşam {b} km qaçıb. "
        f"Ümumi məsafəni tapmaq üçün toplayırıq: {a} + {b} = {a + b}."
    )
    return Item(q, r, f"{name.nom} bu gün cəmi {a + b} km qaçdı.", number(a + b, "km"))


def clock(rng: random.Random) -> Item:
    """Clock times and durations in hours and minutes."""
    form = rng.randrange(3)
    if form == 0:
        event = rng.choice(EVENTS)
        h, d = rng.randint(8, 18), rng.randint(1, 4)
        e = h + d
        q = (
            f"{event} saat {h}-{HOUR_LOCATIVE[h]} başlayır və {d} saat davam edir. "
            f"{event} saat neçədə bitir?"
        )
        r = (
            f"{event} saat {h}-{HOUR_LOCATIVE[h]} başlayır və {d} saat çəkir. "
            f"Bitmə vaxtını tapmaq üçün başlama vaxtına müddəti əlavə edirik: {h} + {d} = {e}."
        )
        return Item(q, r, f"{event} saat {e}-{HOUR_LOCATIVE[e]} bitir.", number(e, "saat"))
    if form == 1:
        vehicle = rng.choice(["Qatar", "Avtobus", "Təyyarə", "Gəmi"])
        h, d = rng.randint(5, 16), rng.randint(1, 7)
        e = h + d
        q = (
            f"{vehicle} saat {h}-{HOUR_LOCATIVE[h]} yola düşdü və saat {e}-{HOUR_LOCATIVE[e]} "
            "mənzil başına çatdı. Yol neçə saat çəkdi?"
        )
        r = (
            f"{vehicle} saat {h}-{HOUR_LOCATIVE[h]} yola düşüb, saat {e}-{HOUR_LOCATIVE[e]} çatıb. "
            f"Yolun müddətini tapmaq üçün çıxırıq: {e} - {h} = {d}."
        )
        return Item(q, r, f"Yol {d} saat çəkdi.", number(d, "saat"))
    name = rng.choice(NAMES)
    m, k = rng.choice([10, 15, 20, 25, 30, 40, 45]), rng.randint(2, 7)
    t = m * k
    q = f"{name.nom} hər gün {m} dəqiqə kitab oxuyur. {k} gündə o, cəmi neçə dəqiqə kitab oxuyar?"
    r = f"Hər gün {m} dəqiqə oxunur və {k} gün keçir. Vururuq: {k} × {m} = {t}."
    return Item(q, r, f"{name.nom} {k} gündə {t} dəqiqə kitab oxuyar.", number(t, "dəqiqə"))


def units(rng: random.Random) -> Item:
    """Unit conversions from a larger unit to a smaller one."""
    unit = rng.choice(UNITS)
    n = rng.randint(*unit.amounts)
    result = n * unit.factor
    form = rng.randrange(2)
    if form == 0:
        q = f"{n} {unit.big} neçə {unit.small_cop}?"
    else:
        q = f"{n} {unit.big_loc} neçə {unit.small} var?"
    r = (
        f"1 {unit.big} {unit.factor} {unit.small_cop}. Böyük vahidi kiçik vahidə çevirmək üçün "
        f"vururuq: {n} × {unit.factor} = {result}."
    )
    return Item(
        q,
        r,
        f"{n} {unit.big} {result} {unit.small_cop}.",
        number(result, unit.small, convertible=False),
    )


def comparison(rng: random.Random) -> Item:
    """Comparing two quantities."""
    form = rng.randrange(3)
    if form == 0:
        first, second = rng.sample(NAMES, 2)
        _, poss = rng.choice(THINGS)
        a, b = rng.sample(range(3, 60), 2)
        winner = first if a > b else second
        big, small = max(a, b), min(a, b)
        q = (
            f"{first.gen} {a} {poss}, {second.gen} isə {b} {poss} var. "
            f"Kimin {poss} çoxdur və neçə dənə?"
        )
        r = (
            f"{big} > {small}, deməli, {winner.gen} {poss} çoxdur. "
            f"Fərq: {big} - {small} = {big - small}."
        )
        return Item(
            q,
            r,
            f"{winner.gen} {poss} {big - small} dənə çoxdur.",
            compared(winner.nom, big - small, "dənə", [first.nom, second.nom]),
        )
    if form == 1:
        x, y = rng.sample(range(10, 1000), 2)
        big, small = max(x, y), min(x, y)
        if rng.random() < 0.5:
            q = f"Hansı ədəd böyükdür: {x} yoxsa {y}?"
            answer = f"{big} ədədi böyükdür."
        else:
            q = f"Hansı ədəd kiçikdir: {x} yoxsa {y}?"
            answer = f"{small} ədədi kiçikdir."
        r = (
            f"Ədədləri müqayisə edirik: {big} - {small} = {big - small}, "
            f"fərq müsbətdir. Deməli, {big} > {small}."
        )
        return Item(q, r, answer, number(big if "böyük" in answer else small))
    first, second = rng.sample(NAMES, 2)
    a, b = rng.sample(range(120, 190), 2)
    winner = first if a > b else second
    big, small = max(a, b), min(a, b)
    q = (
        f"{first.gen} boyu {a} sm, {second.gen} boyu isə {b} sm-dir. "
        "Kim daha hündürdür və nə qədər?"
    )
    r = (
        f"{big} > {small}, deməli, {winner.nom} daha hündürdür. "
        f"Fərq: {big} - {small} = {big - small}."
    )
    return Item(
        q,
        r,
        f"{winner.nom} {big - small} sm hündürdür.",
        compared(winner.nom, big - small, "sm", [first.nom, second.nom]),
    )


def percent(rng: random.Random) -> Item:
    """Percentages, discounts and price increases."""
    form = rng.randrange(4)
    if form in (0, 1):
        nom, gen = rng.choice(PRICED)
        p = rng.choice([10, 20, 25, 30, 40, 50])
        step = 100 // _gcd(p, 100)
        price = step * rng.randint(max(1, 20 // step), 400 // step)
        change = price * p // 100
        if form == 0:
            new = price - change
            q = (
                f"Bir {gen} qiyməti {price} manatdır. Mağaza {p}% endirim edir. "
                f"Endirimlə {nom} neçə manata satılır?"
            )
            r = (
                f"Endirim: {price} × {p} / 100 = {change} manat. "
                f"Yeni qiymət: {price} - {change} = {new} manat."
            )
            return Item(q, r, f"Endirimlə {nom} {new} manata satılır.", number(new, "manat"))
        new = price + change
        q = f"Bir {gen} qiyməti {price} manat idi. Qiymət {p}% artdı. Yeni qiymət neçə manatdır?"
        r = (
            f"Artım: {price} × {p} / 100 = {change} manat. "
            f"Yeni qiymət: {price} + {change} = {new} manat."
        )
        return Item(q, r, f"Yeni qiymət {new} manatdır.", number(new, "manat"))
    p = rng.choice([10, 20, 25, 50, 5, 15, 30, 40, 75])
    step = 100 // _gcd(p, 100)
    if form == 2:
        x = step * rng.randint(max(1, 20 // step), 800 // step)
        result = x * p // 100
        q = f"{x} ədədinin {p} faizi neçədir?"
        r = f"Faizi tapmaq üçün ədədi faizə vurub 100-ə bölürük: {x} × {p} / 100 = {result}."
        return Item(q, r, f"{x} ədədinin {p} faizi {result} edir.", number(result))
    total = step * rng.randint(max(1, 12 // step), 40 // step)
    result = total * p // 100
    q = f"Sinifdə {total} şagird var. Onların {p}%-i qızdır. Sinifdə neçə qız var?"
    r = f"Qızların sayı şagirdlərin {p} faizinə bərabərdir: {total} × {p} / 100 = {result}."
    return Item(q, r, f"Sinifdə {result} qız var.", number(result, "qız"))


def _gcd(a: int, b: int) -> int:
    while b:
        a, b = b, a % b
    return a


def calendar(rng: random.Random) -> Item:
    """Days of the week and months of the year."""
    form = rng.randrange(3)
    if form in (0, 1):
        start = rng.randrange(7)
        n = rng.randint(1, 6)
        sign = 1 if form == 0 else -1
        path = [DAYS[(start + sign * i) % 7][0] for i in range(1, n + 1)]
        target = path[-1]
        start_day, cop, abl = DAYS[start]
        if form == 0:
            q = f"Bu gün {cop}. {n} gün sonra həftənin hansı günü olacaq?"
            r = f"Həftədə 7 gün var. {capitalize(abl)} irəli {n} gün sayırıq: {', '.join(path)}."
            return Item(
                q,
                r,
                f"{n} gün sonra {target} olacaq.",
                entity("weekday", target, given=[start_day]),
            )
        q = f"Bu gün {cop}. {n} gün əvvəl həftənin hansı günü idi?"
        r = f"Həftədə 7 gün var. {capitalize(abl)} geri {n} gün sayırıq: {', '.join(path)}."
        return Item(
            q, r, f"{n} gün əvvəl {target} idi.", entity("weekday", target, given=[start_day])
        )
    start = rng.randrange(12)
    n = rng.randint(1, 5)
    path = [MONTHS[(start + i) % 12][0] for i in range(1, n + 1)]
    start_month, cop, abl = MONTHS[start]
    q = f"İndi {cop}. {n} ay sonra hansı ay olacaq?"
    r = f"İldə 12 ay var. {capitalize(abl)} irəli {n} ay sayırıq: {', '.join(path)}."
    return Item(
        q, r, f"{n} ay sonra {path[-1]} olacaq.", entity("month", path[-1], given=[start_month])
    )


def averages(rng: random.Random) -> Item:
    """Arithmetic mean of three or four numbers."""
    form = rng.randrange(3)
    if form == 0:
        name = rng.choice(NAMES)
        while True:
            grades = [rng.randint(2, 5) for _ in range(3)]
            if sum(grades) % 3 == 0:
                break
        a, b, c = grades
        s, m = sum(grades), sum(grades) // 3
        q = f"{name.nom} üç dərsdən {a}, {b} və {c} qiymət aldı. Onun orta qiyməti neçədir?"
        r = f"Ədədləri toplayırıq: {a} + {b} + {c} = {s}. Cəmi saya bölürük: {s} / 3 = {m}."
        return Item(q, r, f"{name.gen} orta qiyməti {m} oldu.", number(m))
    if form == 1:
        count = rng.choice([3, 4])
        while True:
            values = [rng.randint(10, 32) for _ in range(count)]
            if sum(values) % count == 0:
                break
        s, m = sum(values), sum(values) // count
        word = "Üç" if count == 3 else "Dörd"
        listed = ", ".join(map(str, values[:-1])) + f" və {values[-1]}"
        q = (
            f"{word} gün ərzində havanın temperaturu {listed} dərəcə olub. "
            "Orta temperatur neçə dərəcədir?"
        )
        r = (
            f"Ədədləri toplayırıq: {' + '.join(map(str, values))} = {s}. "
            f"Cəmi saya bölürük: {s} / {count} = {m}."
        )
        return Item(q, r, f"Orta temperatur {m} dərəcədir.", number(m, "dərəcə"))
    name = rng.choice(NAMES)
    while True:
        pages = [rng.randint(10, 40) for _ in range(4)]
        if sum(pages) % 4 == 0:
            break
    s, m = sum(pages), sum(pages) // 4
    listed = ", ".join(map(str, pages[:-1])) + f" və {pages[-1]}"
    q = f"{name.nom} dörd gündə {listed} səhifə oxudu. O, gündə orta hesabla neçə səhifə oxudu?"
    r = (
        f"Ədədləri toplayırıq: {' + '.join(map(str, pages))} = {s}. "
        f"Cəmi saya bölürük: {s} / 4 = {m}."
    )
    return Item(q, r, f"{name.nom} gündə orta hesabla {m} səhifə oxudu.", number(m, "səhifə"))


def geometry(rng: random.Random) -> Item:
    """Perimeter and area of rectangles and squares."""
    form = rng.randrange(6)
    short, full = rng.choice([("sm", "santimetr"), ("m", "metr")])
    a, b = rng.sample(range(2, 21), 2)
    a, b = max(a, b), min(a, b)
    if form == 0:
        p = 2 * (a + b)
        q = f"Düzbucaqlının uzunluğu {a} {short}, eni isə {b} {short}-dir. Onun perimetri neçədir?"
        r = (
            f"Uzunluq {a} {short}, en {b} {short}-dir. "
            f"Perimetr 2 × (uzunluq + en) düsturu ilə tapılır: 2 × ({a} + {b}) = {p}."
        )
        return Item(q, r, f"Perimetr {p} {full}dir.", number(p, full))
    if form == 1:
        s = a * b
        q = f"Düzbucaqlının uzunluğu {a} {short}, eni isə {b} {short}-dir. Onun sahəsi neçədir?"
        r = (
            f"Uzunluq {a} {short}, en {b} {short}-dir. "
            f"Sahə uzunluğun enə hasilinə bərabərdir: {a} × {b} = {s}."
        )
        return Item(q, r, f"Sahə {s} kvadrat {full}dir.", number(s, f"kvadrat {full}"))
    if form == 2:
        q = f"Kvadratın tərəfi {a} {short}-dir. Onun perimetri neçədir?"
        r = (
            f"Kvadratın tərəfi {a} {short}-dir və onun 4 bərabər tərəfi var. "
            f"Perimetr 4 × tərəf olur: 4 × {a} = {4 * a}."
        )
        return Item(q, r, f"Perimetr {4 * a} {full}dir.", number(4 * a, full))
    if form == 3:
        q = f"Kvadratın tərəfi {a} {short}-dir. Onun sahəsi neçədir?"
        r = (
            f"Kvadratın tərəfi {a} {short}-dir. "
            f"Sahə tərəfin özünə hasilinə bərabərdir: {a} × {a} = {a * a}."
        )
        return Item(q, r, f"Sahə {a * a} kvadrat {full}dir.", number(a * a, f"kvadrat {full}"))
    if form == 4:
        p = 2 * (a + b)
        q = f"Bağın uzunluğu {a} m, eni {b} m-dir. Bağın ətrafına neçə metr hasar lazımdır?"
        r = (
            f"Uzunluq {a} m, en {b} m-dir. "
            f"Hasarın uzunluğu bağın perimetrinə bərabərdir: 2 × ({a} + {b}) = {p}."
        )
        return Item(q, r, f"{p} metr hasar lazımdır.", number(p, "metr"))
    s = a * b
    q = f"Otağın uzunluğu {a} m, eni {b} m-dir. Otağın döşəməsinin sahəsi neçə kvadrat metrdir?"
    r = (
        f"Uzunluq {a} m, en {b} m-dir. "
        f"Döşəmənin sahəsi uzunluğun enə hasilinə bərabərdir: {a} × {b} = {s}."
    )
    return Item(q, r, f"Döşəmənin sahəsi {s} kvadrat metrdir.", number(s, "kvadrat metr"))


def ordering(rng: random.Random) -> Item:
    """Transitive ordering of three people."""
    rel = rng.choice(RELATIONS)
    top, mid, low = rng.sample(NAMES, 3)
    first = f"{top.nom} {mid.abl} {rel.predicate}"
    second = f"{mid.nom} {low.abl} {rel.predicate}"
    if rng.random() < 0.5:
        facts = f"{first}, {mid.nom} isə {low.abl} {rel.predicate}."
    else:
        facts = f"{second}, {top.nom} isə {mid.abl} {rel.predicate}."
    chain = f"{top.nom} > {mid.nom} > {low.nom}"
    people = sorted(person.nom for person in (top, mid, low))
    if rng.random() < 0.5:
        q = f"{facts} {rel.top_question}"
        r = f"Şərtə görə sıra belədir: {chain}. Sıranın başında {top.nom} durur."
        return Item(q, r, f"{rel.top_answer} {top.cop}.", entity("person", top.nom, people))
    q = f"{facts} {rel.bottom_question}"
    r = f"Şərtə görə sıra belədir: {chain}. Sıranın sonunda {low.nom} durur."
    return Item(q, r, f"{rel.bottom_answer} {low.cop}.", entity("person", low.nom, people))


# Geography facts: (question phrasings, reasoning, answer). Checked by hand.
# The target is one for all phrasings, or a list with one per phrasing.
GEOGRAPHY_FACTS: list[tuple[list[str], str, str, Target | list[Target]]] = [
    (
        [
            "Azərbaycanın paytaxtı hansı şəhərdir?",
            "Azərbaycan Respublikasının paytaxtının adı nədir?",
        ],
        "Azərbaycanın paytaxtı Xəzər dənizinin sahilində, Abşeron yarımadasında yerləşən Bakıdır.",
        "Azərbaycanın paytaxtı Bakıdır.",
        entity("city", "Bakı"),
    ),
    (
        [
            "Qız Qalası hansı şəhərdə yerləşir?",
            "Qız Qalasını görmək üçün hansı şəhərə getmək lazımdır?",
        ],
        "Qız Qalası Bakının qədim hissəsi olan İçərişəhərdə yerləşir.",
        "Qız Qalası Bakıdadır.",
        entity("city", "Bakı"),
    ),
    (
        ["Şirvanşahlar Sarayı hansı şəhərdədir?", "Şirvanşahlar Sarayı hansı şəhərdə yerləşir?"],
        "Şirvanşahlar Sarayı Bakıda, İçərişəhərin ərazisində yerləşir.",
        "Şirvanşahlar Sarayı Bakıdadır.",
        entity("city", "Bakı"),
    ),
    (
        [
            "Nizami Gəncəvi hansı şəhərdə doğulub?",
            "Böyük şair Nizami Gəncəvinin vətəni hansı şəhərdir?",
        ],
        "Nizami Gəncəvi XII əsrdə Gəncədə doğulub, təxəllüsü də bu şəhərin adından gəlir.",
        "Nizami Gəncəvi Gəncədə doğulub.",
        entity("city", "Gəncə"),
    ),
    (
        [
            "Nizami Gəncəvinin məqbərəsi hansı şəhərin yaxınlığındadır?",
            "Nizami məqbərəsini ziyarət etmək üçün hansı şəhərə getmək lazımdır?",
        ],
        "Nizami Gəncəvinin məqbərəsi Gəncə şəhərinin kənarında yerləşir.",
        "Nizami məqbərəsi Gəncədədir.",
        entity("city", "Gəncə"),
    ),
    (
        [
            "Şəki Xan Sarayı hansı şəhərdə yerləşir?",
            "Şəki Xan Sarayını görmək üçün hara getmək lazımdır?",
        ],
        "Şəki Xan Sarayı XVIII əsrdə tikilib və Şəki şəhərində yerləşir.",
        "Şəki Xan Sarayı Şəkidədir.",
        entity("city", "Şəki"),
    ),
    (
        [
            "Şəki halvası hansı şəhərin məşhur şirniyyatıdır?",
            "Şəki halvası ilə tanınan şəhər hansıdır?",
        ],
        "Adından da göründüyü kimi, Şəki halvası Şəki şəhərinin məşhur şirniyyatıdır.",
        "Şəki halvası Şəkinin şirniyyatıdır.",
        entity("city", "Şəki"),
    ),
    (
        [
            "Möminə Xatın türbəsi hansı şəhərdədir?",
            "Memar Əcəmi Naxçıvaninin tikdiyi Möminə Xatın türbəsi harada yerləşir?",
        ],
        "Möminə Xatın türbəsi XII əsrdə memar Əcəmi Naxçıvani tərəfindən Naxçıvanda tikilib.",
        "Möminə Xatın türbəsi Naxçıvandadır.",
        entity("city", "Naxçıvan"),
    ),
    (
        [
            "Naxçıvan Muxtar Respublikasının paytaxtı hansı şəhərdir?",
            "Naxçıvan Muxtar Respublikasının mərkəzi hansı şəhərdir?",
        ],
        "Naxçıvan Muxtar Respublikasının paytaxtı eyniadlı Naxçıvan şəhəridir.",
        "Paytaxt Naxçıvan şəhəridir.",
        entity("city", "Naxçıvan"),
    ),
    (
        [
            "Mingəçevir su anbarı hansı çayın üzərində yaradılıb?",
            "Mingəçevir şəhərinin yanındakı su anbarı hansı çay üzərindədir?",
        ],
        "Mingəçevir su anbarı Azərbaycanın ən böyük çayı olan Kür çayı üzərində yaradılıb.",
        "Mingəçevir su anbarı Kür çayı üzərindədir.",
        entity("river", "Kür"),
    ),
    (
        ["Cıdır düzü hansı şəhərin yanında yerləşir?", "Cıdır düzü hansı şəhərdədir?"],
        "Cıdır düzü Qarabağda, Şuşa şəhərinin kənarında yerləşir.",
        "Cıdır düzü Şuşadadır.",
        entity("city", "Şuşa"),
    ),
    (
        [
            "2021-ci ildə Azərbaycanın mədəniyyət paytaxtı hansı şəhər elan edilib?",
            "Azərbaycanın mədəniyyət paytaxtı hansı şəhərdir?",
        ],
        "2021-ci ildə Qarabağdakı Şuşa şəhəri Azərbaycanın mədəniyyət paytaxtı elan edilib.",
        "Mədəniyyət paytaxtı Şuşadır.",
        entity("city", "Şuşa"),
    ),
    (
        [
            "Qırmızı Qəsəbə hansı şəhərin qarşısında yerləşir?",
            "Qırmızı Qəsəbə hansı şəhərə yaxındır?",
        ],
        "Qırmızı Qəsəbə Qudyalçayın sahilində, Quba şəhərinin qarşısında yerləşir.",
        "Qırmızı Qəsəbə Qubanın yanındadır.",
        entity("city", "Quba"),
    ),
    (
        [
            "Azərbaycanın şimalında alma bağları ilə məşhur olan şəhər hansıdır?",
            "Quba şəhəri hansı meyvənin bağları ilə məşhurdur?",
        ],
        "Quba Böyük Qafqazın ətəyində yerləşir və alma bağları ilə məşhurdur.",
        "Quba alma bağları ilə məşhurdur.",
        [entity("city", "Quba"), entity("fruit", "alma")],
    ),
    (
        [
            "Azərbaycanın cənubunda, çay plantasiyaları ilə tanınan sahil şəhəri hansıdır?",
            "Çayı və sitrus meyvələri ilə tanınan cənub şəhəri hansıdır?",
        ],
        (
            "Lənkəran Azərbaycanın cənubunda, Xəzər sahilində yerləşir "
            "və çay plantasiyaları ilə tanınır."
        ),
        "Bu şəhər Lənkərandır.",
        entity("city", "Lənkəran"),
    ),
    (
        [
            "Bakının şimal-qərbində, Xəzər sahilində yerləşən sənaye şəhəri hansıdır?",
            "Bakıya yaxın olan böyük sənaye şəhəri hansıdır?",
        ],
        "Sumqayıt Bakının şimal-qərbində, Xəzər dənizinin sahilində yerləşən sənaye şəhəridir.",
        "Bu şəhər Sumqayıtdır.",
        entity("city", "Sumqayıt"),
    ),
    (
        [
            "Tufandağ dağ-xizək kurortu hansı şəhərin yaxınlığındadır?",
            "Tufandağ kurortunda istirahət etmək üçün hansı şəhərə getmək lazımdır?",
        ],
        "Tufandağ kurortu Böyük Qafqaz dağlarında, Qəbələ şəhərinin yaxınlığında yerləşir.",
        "Tufandağ kurortu Qəbələdədir.",
        entity("city", "Qəbələ"),
    ),
    (
        [
            "Qafqaz Albaniyasının qədim paytaxtı hansı şəhər olub?",
            "Hansı Azərbaycan şəhəri Qafqaz Albaniyasının paytaxtı olub?",
        ],
        "Qəbələ uzun əsrlər boyu Qafqaz Albaniyasının paytaxtı olub.",
        "Qafqaz Albaniyasının paytaxtı Qəbələ olub.",
        entity("city", "Qəbələ"),
    ),
    (
        [
            "Orta əsrlərdə Şirvanşahlar dövlətinin paytaxtı olan şəhər hansıdır?",
            "Şirvanşahların qədim paytaxtı hansı şəhər olub?",
        ],
        "Orta əsrlərdə Şirvanşahlar dövlətinin paytaxtı uzun müddət Şamaxı olub.",
        "Şirvanşahların paytaxtı Şamaxı olub.",
        entity("city", "Şamaxı"),
    ),
    (
        [
            "Bakı hansı dənizin sahilində yerləşir?",
            "Azərbaycanın paytaxtı hansı dənizin sahilindədir?",
        ],
        "Bakı Abşeron yarımadasında, Xəzər dənizinin qərb sahilində yerləşir.",
        "Bakı Xəzər dənizinin sahilindədir.",
        entity("sea", "Xəzər"),
    ),
]

# (nominative, copula) of towns on the Caspian coast and of towns far from it.
COASTAL_TOWNS = [("Bakı", "Bakıdır"), ("Sumqayıt", "Sumqayıtdır"), ("Lənkəran", "Lənkərandır")]
INLAND_TOWNS = [
    ("Şəki", "Şəkidir"),
    ("Gəncə", "Gəncədir"),
    ("Quba", "Qubadır"),
    ("Naxçıvan", "Naxçıvandır"),
    ("Şamaxı", "Şamaxıdır"),
    ("Qəbələ", "Qəbələdir"),
    ("Şuşa", "Şuşadır"),
    ("Mingəçevir", "Mingəçevirdir"),
]


def geography_pool() -> list[Item]:
    """Return every geography question (a finite pool; the family samples from it)."""
    pool = []
    for questions, r, a, target in GEOGRAPHY_FACTS:
        per_question = target if isinstance(target, list) else [target] * len(questions)
        pool += [Item(q, r, a, t) for q, t in zip(questions, per_question, strict=True)]
    for coastal, coastal_cop in COASTAL_TOWNS:
        for inland, _ in INLAND_TOWNS:
            for left, right in ((coastal, inland), (inland, coastal)):
                q = f"Hansı şəhər Xəzər dənizinin sahilində yerləşir: {left} yoxsa {right}?"
                r = (
                    f"{coastal} Xəzər dənizinin sahilindədir, {inland} isə dənizdən uzaqda "
                    f"yerləşir. Deməli, düzgün cavab {coastal} şəhəridir."
                )
                target = entity("city", coastal, options=[left, right])
                pool.append(Item(q, r, f"Sahil şəhəri {coastal_cop}.", target))
    return pool


Family = Callable[[random.Random], Item]

GEOGRAPHY = "geography"  # the family drawn from the finite pool of :func:`geography_pool`

FAMILIES: dict[str, Family] = {
    "addition": addition,
    "subtraction": subtraction,
    "money": money,
    "groups": groups,
    "distance": distance,
    "clock": clock,
    "units": units,
    "comparison": comparison,
    "percent": percent,
    "calendar": calendar,
    "averages": averages,
    "geometry": geometry,
    "ordering": ordering,
}


def generate(n: int, seed: int) -> list[dict[str, object]]:
    """Generate ``n`` unique examples, deterministically for a given ``seed``.

    Args:
        n: Number of examples; split evenly over the task families (geography included).
        seed: Seed for ``random.Random``.

    Returns:
        Records with keys ``id``, ``family`` (the task family's name: a key of
        :data:`FAMILIES` or :data:`GEOGRAPHY`), ``question``, ``reasoning``, ``answer`` and
        ``target`` (what the answer is: :func:`number`, :func:`entity` or :func:`compared`).

    Raises:
        ValueError: If ``n`` is not positive or a family cannot produce enough unique questions.
    """
    if n < 1:
        raise ValueError(f"n must be positive, got {n}")
    rng = random.Random(seed)
    family_count = len(FAMILIES) + 1  # + geography
    quotas = [n // family_count + (1 if i < n % family_count else 0) for i in range(family_count)]
    seen: set[str] = set()
    items: list[tuple[str, Item]] = []

    for (name, family), quota in zip(FAMILIES.items(), quotas[:-1], strict=True):
        made, attempts = 0, 0
        while made < quota:
            attempts += 1
            if attempts > 200 * quota + 1000:
                raise ValueError(f"family {name!r} cannot make {quota} unique questions")
            item = family(rng)
            if item.question in seen:
                continue
            seen.add(item.question)
            items.append((name, item))
            made += 1

    pool = [item for item in geography_pool() if item.question not in seen]
    if len(pool) < quotas[-1]:
        raise ValueError(f"{GEOGRAPHY} has {len(pool)} questions, {quotas[-1]} needed")
    items.extend((GEOGRAPHY, item) for item in rng.sample(pool, quotas[-1]))

    rng.shuffle(items)
    return [
        {
            "id": f"az-{i:04d}",
            "family": family,
            "question": it.question,
            "reasoning": it.reasoning,
            "answer": it.answer,
            "target": it.target,
        }
        for i, (family, it) in enumerate(items, start=1)
    ]


def write_jsonl(records: list[dict[str, object]], out: Path) -> None:
    """Write records as UTF-8 JSON lines (non-ASCII letters kept as they are)."""
    out.parent.mkdir(parents=True, exist_ok=True)
    with out.open("w", encoding="utf-8", newline="\n") as f:
        for record in records:
            f.write(json.dumps(record, ensure_ascii=False) + "\n")


def main(argv: list[str] | None = None) -> None:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="output JSONL path")
    parser.add_argument("--n", type=int, default=1120, help="number of examples")
    parser.add_argument("--seed", type=int, default=0, help="random seed")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    records = generate(args.n, args.seed)
    write_jsonl(records, args.out)
    logger.info("wrote %d examples to %s", len(records), args.out)


if __name__ == "__main__":
    main()
