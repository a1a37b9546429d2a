"""Reading Azerbaijani answer text: casing, words with their endings, and numbers as people write
them.

:func:`read` turns a text into :class:`Token` s: words (Azerbaijani casing folded), operators,
parentheses and punctuation, and numbers in every way Azerbaijani writes them:

- digits with a decimal comma (``7,5``) or a decimal dot with other than three decimals (``7.5``),
  thousands grouped with a space, a no-break or thin space, or a dot (``28 000``, ``28.000``);
- clock times ``14:00`` (hours: ``14:30`` is 14.5), fractions ``1/2``, signs ``-5``, ``−5``,
  ``mənfi 5``;
- number words up to the millions (``yeddi``, ``on iki``, ``iki yüz otuz beş``, ``min iki yüz``),
  with an ending (``yeddidir``, ``beşə``), and ``yarım`` (a half: ``iki yarım`` is 2.5);
- the ending written onto a number (``807-dən``, ``14-də``, ``5-ci``), kept as ``suffix`` so that a
  reader can tell an ablative (``807-dən kiçik``) or an ordinal from the quantity asserted.

The Cyrillic look-alike ``ә`` (U+04D9) and the Latin ``ǝ`` (U+01DD) are read as ``ə`` (and the
other Cyrillic look-alikes as their Latin letters).
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from decimal import Decimal

_CASE = str.maketrans({"I": "ı", "İ": "i"})
# Look-alikes: the Latin ǝ (U+01DD, from U+018E) and the Cyrillic letters that look like (or, in
# the Azerbaijani Cyrillic alphabet, are) Latin ones: ә (U+04D9) ө ү һ ј і and а е о р с х у.
_LOOKALIKE = str.maketrans("ǝәөүһјіаеорсху", "əəöühjiaeopcxy")

# Case endings, copula and possessive endings that may follow a word or a number.
CASE_ENDINGS = frozenset(
    "a ə ya yə na nə ı i u ü nı ni nu nü yı yi yu yü da də ta tə nda ndə dan dən tan tən "
    "ndan ndən ın in un ün nın nin nun nün".split()
)
COPULA = frozenset("dır dir dur dür tır tir tur tür".split())
ABLATIVE = frozenset("dan dən tan tən ndan ndən".split())
LOCATIVE = frozenset("da də ta tə nda ndə".split())
GENITIVE = frozenset("ın in un ün nın nin nun nün".split())
ORDINAL = frozenset("ci cı cu cü inci ıncı uncu üncü nci ncı ncu ncü".split())
ENDINGS = (
    CASE_ENDINGS
    | COPULA
    | {case + cop for case in LOCATIVE | {"ı", "i", "u", "ü", "sı", "si"} for cop in COPULA}
    | {"sı", "si", "su", "sü", "dək", "dəki", "dakı"}
)

UNITS_WORDS = {
    "bir": 1, "iki": 2, "üç": 3, "dörd": 4, "beş": 5, "altı": 6, "yeddi": 7, "səkkiz": 8,
    "doqquz": 9, "on": 10, "iyirmi": 20, "otuz": 30, "qırx": 40, "əlli": 50, "altmış": 60,
    "yetmiş": 70, "səksən": 80, "doxsan": 90,
}  # fmt: skip
SCALE_WORDS = {"yüz": 100, "min": 1000, "milyon": 1_000_000}
# Inflected forms of number words that are other words: "üçün" (for), "ona" (to him)...
NOT_NUMBERS = frozenset("üçün ona onu onun onda ondan onlar onların birdən biri birinə".split())
# Endings a bare "on" (ten) may take without becoming a form of the pronoun "o".
_ON_ENDINGS = frozenset({""} | COPULA)
_NUMBER_ENDINGS = frozenset(
    {""} | CASE_ENDINGS | COPULA | {"sı", "si", "su", "sü"} | {"ı" + c for c in COPULA}
)

_GROUP = "[ \u00a0\u202f\u2009]"
_PATTERN = re.compile(
    r"(?:(?P<time>(?<![\d.,:])\d{1,2}:\d{2}(?![\d:]))"
    r"|(?P<frac>(?<![\d/.,])\d+/\d+(?![\d/]))"
    r"|(?P<num>(?<![\d.,])(?P<sign>(?<![\w)])[-−](?=\d))?"
    rf"(?P<int>\d{{1,3}}(?:{_GROUP}\d{{3}})+(?![\d.,]\d)|\d{{1,3}}(?:\.\d{{3}})+(?![\d,])|\d+)"
    r"(?:,(?P<comma>\d+)|\.(?P<dot>\d{1,2}(?!\d)|\d{4,}))?(?!\d)))"
    r"(?P<glued>%?(?:[-'’]?[^\W\d_]+)?)"
    r"|(?P<word>[^\W\d_]+(?:[-'’][^\W\d_]+)*|[%₼$€])"
    r"|(?P<op>[+×*÷=<>/−–-])"
    r"|(?P<open>[(\[])|(?P<close>[)\]])"
    r"|(?P<punct>[,.;:!?…])"
)


@dataclass
class Token:
    """One piece of an answer: a word, a number, an operator, a parenthesis or punctuation."""

    kind: str  # word, number, op, open, close, punct
    text: str  # as written (folded), e.g. "807-dən", "on iki"
    start: int
    value: Decimal | None = None  # numbers only
    suffix: str = ""  # the ending written onto a number or a word (after a hyphen or not)
    form: str = "digits"  # numbers: digits, time, fraction, words
    weak: bool = False  # the word "bir", which is mostly the article "a"


def fold(text: str) -> str:
    """Lowercase ``text`` the Azerbaijani way (``I`` → ``ı``, ``İ`` → ``i``) after NFC, and read
    the look-alikes ``ǝ``/``ә`` as ``ə``."""
    return unicodedata.normalize("NFC", text).translate(_CASE).lower().translate(_LOOKALIKE)


def split_ending(word: str, stem: str, endings: frozenset[str] = ENDINGS) -> str | None:
    """The ending of ``word`` after ``stem`` ("" for the bare stem), or None if ``word`` is not
    ``stem`` with one of ``endings`` (a hyphen or apostrophe before the ending is allowed)."""
    if not word.startswith(stem):
        return None
    rest = word[len(stem) :].lstrip("-'’")
    return rest if rest == "" or rest in endings else None


def _digits(match: re.Match[str]) -> Decimal:
    if match["time"]:
        hours, minutes = match["time"].split(":")
        return Decimal(hours) + Decimal(minutes) / 60
    if match["frac"]:
        top, bottom = match["frac"].split("/")
        return Decimal(top) / Decimal(bottom) if int(bottom) else Decimal(top)
    integer = re.sub(r"[ \u00a0\u202f\u2009.]", "", match["int"])
    value = Decimal(f"{integer}.{match['comma'] or match['dot'] or '0'}")
    return -value if match["sign"] else value


def _number_word(word: str) -> tuple[int, str] | None:
    """``(value, ending)`` if ``word`` is a number word (with an ending), else None."""
    if word in NOT_NUMBERS:
        return None
    for stem, value in (UNITS_WORDS | SCALE_WORDS).items():
        ending = split_ending(word, stem, _NUMBER_ENDINGS)
        if ending is not None and (stem != "on" or ending in _ON_ENDINGS):
            return value, ending
    return None


def _merge_number_words(tokens: list[Token]) -> list[Token]:
    """Runs of number words become one number token ("iki yüz otuz beş" → 235)."""
    out: list[Token] = []
    i = 0
    while i < len(tokens):
        parsed = _number_word(tokens[i].text) if tokens[i].kind == "word" else None
        if parsed is None:
            out.append(tokens[i])
            i += 1
            continue
        total, current, words, ending = 0, 0, [], ""
        while i < len(tokens) and tokens[i].kind == "word" and not ending:
            parsed = _number_word(tokens[i].text)
            if parsed is None:
                break
            value, ending = parsed
            if value == 1000 or value == 1_000_000:
                total, current = total + (current or 1) * value, 0
            elif value == 100:
                current = (current or 1) * 100
            else:
                current += value
            words.append(tokens[i].text)
            i += 1
        first = tokens[i - len(words)]
        out.append(
            Token("number", " ".join(words), first.start, Decimal(total + current), ending,
                  "words", weak=words == ["bir"])
        )  # fmt: skip
    return out


def _halves_and_signs(tokens: list[Token]) -> list[Token]:
    """``yarım`` adds a half to the number before it (``2 saat yarım``) or is ½ on its own;
    ``mənfi``/``minus`` before a number negates it."""
    out: list[Token] = []
    for token in tokens:
        if token.kind == "word" and split_ending(token.text, "yarım", _NUMBER_ENDINGS) is not None:
            before = [t for t in out[-2:] if t.kind != "punct"]
            numbered = [t for t in before if t.kind == "number"]
            if numbered and (before[-1] is numbered[-1] or before[-1].kind == "word"):
                numbered[-1].value = (numbered[-1].value or Decimal(0)) + Decimal("0.5")
                numbered[-1].weak = False
                continue
            token = Token("number", token.text, token.start, Decimal("0.5"), "", "words")
        if out and out[-1].kind == "word" and out[-1].text in ("mənfi", "minus"):
            if token.kind == "number" and token.value is not None:
                sign = out.pop()
                token.value, token.start = -token.value, sign.start
                token.text = f"{sign.text} {token.text}"
        out.append(token)
    return out


def read(text: str) -> list[Token]:
    """The tokens of ``text`` (folded), numbers read as values (see the module docstring)."""
    folded = fold(text)
    tokens: list[Token] = []
    for match in _PATTERN.finditer(folded):
        if match["time"] or match["frac"] or match["num"]:
            form = "time" if match["time"] else "fraction" if match["frac"] else "digits"
            number = Token("number", match[0], match.start(), _digits(match), "", form)
            tokens.append(number)
            glued = match["glued"] or ""
            if glued.startswith("%"):  # "40%-i": the ending belongs to the number
                tokens.append(Token("word", "%", match.start("glued")))
                glued = glued[1:]
            number.suffix = glued.lstrip("-'’")
            continue
        tokens.append(Token(match.lastgroup or "punct", match[0], match.start()))
    return _halves_and_signs(_merge_number_words(tokens))


def numbers(text: str) -> list[Decimal]:
    """Every number in ``text``, in order (digits, times, fractions and number words)."""
    return [t.value for t in read(text) if t.kind == "number" and t.value is not None]


def words(text: str) -> list[str]:
    """The folded words of ``text`` (numbers as their canonical digits), for BLEU-free
    comparisons of whole answers."""
    out = []
    for token in read(text):
        if token.kind == "number" and token.value is not None:
            out.append(format(token.value.normalize(), "f"))
        elif token.kind == "word":
            out.append(token.text)
    return out
