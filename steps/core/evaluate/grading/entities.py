"""Named things in an answer: which weekday, month, person, city… it names, in which form.

:func:`find_entities` finds the names of a vocabulary in read tokens, longest first ("cümə
axşamı" before "cümə", "bazar ertəsi" before "bazar"), each with the ending written on it
("Lənkərandır", "Qubanın", "cümədən"), whether a negator follows it in its clause ("Lənkəran
deyil", "Quba yox"), and whether it is offered as an alternative to another ("Bakı və ya Quba").
"""

from __future__ import annotations

from dataclasses import dataclass

from steps.core.evaluate.grading.az_text import (
    ABLATIVE,
    ENDINGS,
    GENITIVE,
    Token,
    fold,
    split_ending,
)

WEEKDAYS = (
    "bazar ertəsi", "çərşənbə axşamı", "çərşənbə", "cümə axşamı", "cümə", "şənbə", "bazar",
)  # fmt: skip
MONTHS = (
    "yanvar", "fevral", "mart", "aprel", "may", "iyun", "iyul", "avqust", "sentyabr", "oktyabr",
    "noyabr", "dekabr",
)  # fmt: skip
CITIES = (
    "Bakı", "Gəncə", "Sumqayıt", "Mingəçevir", "Şirvan", "Naxçıvan", "Şəki", "Lənkəran", "Yevlax",
    "Xankəndi", "Şuşa", "Quba", "Qusar", "Xaçmaz", "Şamaxı", "Qəbələ", "İsmayıllı", "Zaqatala",
    "Balakən", "Qax", "Oğuz", "Ağdam", "Füzuli", "Cəbrayıl", "Laçın", "Kəlbəcər", "Qazax",
    "Tovuz", "Ağstafa", "Şəmkir", "Goranboy", "Bərdə", "Ağdaş", "Göyçay", "Kürdəmir", "Salyan",
    "Neftçala", "Astara", "Lerik", "Masallı", "Cəlilabad", "Biləsuvar", "Saatlı", "Sabirabad",
    "İmişli", "Beyləqan", "Ordubad", "Culfa", "Şərur", "Xızı", "Siyəzən", "Abşeron", "Tbilisi",
    "İstanbul", "Ankara", "Moskva", "Tehran", "Təbriz", "Dərbənd",
)  # fmt: skip
RIVERS = ("Kür", "Araz", "Samur", "Tərtər", "Qanıx", "Qabırrı", "Volqa", "Dunay")
SEAS = ("Xəzər", "Qara", "Aralıq", "Azov", "Egey", "Mərmərə", "Baltik")
FRUITS = (
    "alma", "armud", "nar", "heyva", "üzüm", "şaftalı", "gavalı", "ərik", "gilas", "albalı",
    "limon", "portağal", "naringi", "əncir", "xurma", "feyxoa", "qoz", "fındıq",
)  # fmt: skip
PEOPLE = (
    "Əli", "Leyla", "Nigar", "Aysel", "Orxan", "Tural", "Rəşad", "Günay", "Murad", "Səbinə",
    "Fidan", "Elvin", "Nərmin", "Zaur", "Samir", "Kamran", "Ülviyyə", "İlkin", "Vüsal", "Aynur",
    "Kənan", "Lalə", "Rauf", "Elnur", "Aygün", "Cavid", "Nurlan", "Sevinc", "Fərid", "Ramin",
)  # fmt: skip
BY_TYPE = {
    "weekday": WEEKDAYS, "month": MONTHS, "city": CITIES, "river": RIVERS, "sea": SEAS,
    "fruit": FRUITS, "person": PEOPLE,
}  # fmt: skip

# Stems of comparatives: who has more ("çoxdur", "hündürdür") and the inverse ("azdır").
COMPARATIVES = (
    "çox", "artıq", "hündür", "uzun", "böyük", "ağır", "sürətli", "yaşlı", "az", "alçaq", "qısa",
    "kiçik", "yüngül", "yavaş",
)  # fmt: skip
INVERSE_COMPARATIVES = ("az", "alçaq", "qısa", "kiçik", "yüngül", "yavaş")
_NEGATORS = ("yox", "yoxdur")
_ALTERNATIVES = ("yaxud", "ya", "yoxsa")
_STOPS = ".;!?"
_BECAUSE = ("çünki", "ona görə ki")


@dataclass
class Mention:
    """One name found in an answer."""

    name: str  # folded, e.g. "cümə axşamı"
    index: int  # token index of its last word
    ending: str  # the ending on its last word ("" if bare), e.g. "dır", "dan"
    negated: bool = False
    explanation: bool = False  # in a "because" clause ("Lənkəran, çünki Quba dənizdən uzaqdır")
    alternative: bool = False  # offered as an alternative to another name ("X və ya Y")
    before_ablative: bool = False  # genitive before an ablative noun ("Nərminin almasından")


def vocabulary(kind: str, extra: list[str] | tuple[str, ...] = ()) -> list[str]:
    """The folded names of ``kind`` (plus ``extra``: the target and its options), longest first."""
    names = {fold(name) for name in (*BY_TYPE.get(kind, ()), *extra)}
    return sorted(names, key=lambda n: (-len(n.split()), -len(n), n))


def _negated(tokens: list[Token], k: int, stop: int) -> bool:
    """Whether a negator follows the name ending at ``k`` in its clause (before ``stop``, the
    next name): "Lənkəran deyil", "Quba yox", "Quba, yox,"; not "Bakıdır, Gəncə deyil"."""
    for n, token in enumerate(tokens[k + 1 : min(k + 4, stop)]):
        if token.kind == "punct" and token.text in _STOPS:
            return False
        if token.kind == "punct" and token.text == ",":
            after = tokens[k + 2 + n] if k + 2 + n < len(tokens) else None
            if after is None or after.text not in (*_NEGATORS, "deyil"):
                return False
        if token.kind == "word" and (token.text.startswith("deyil") or token.text in _NEGATORS):
            return True
        if token.kind == "word" and token.text.startswith("olma") and "olmalı" not in token.text:
            return True
    return False


def find_entities(tokens: list[Token], names: list[str]) -> list[Mention]:
    """The mentions of ``names`` (folded, longest first) in ``tokens``, in text order; a token
    belongs to at most one mention."""
    taken: set[int] = set()
    found: list[Mention] = []
    for name in names:
        parts = name.split()
        for i in range(len(tokens) - len(parts) + 1):
            span = range(i, i + len(parts))
            if taken & set(span) or any(tokens[k].kind != "word" for k in span):
                continue
            if any(tokens[i + n].text != part for n, part in enumerate(parts[:-1])):
                continue
            ending = split_ending(tokens[i + len(parts) - 1].text, parts[-1], ENDINGS)
            if ending is None:
                continue
            taken |= set(span)
            found.append(Mention(name, i + len(parts) - 1, ending))
    found.sort(key=lambda m: m.index)
    because = next((i for i, t in enumerate(tokens) if t.text in _BECAUSE), len(tokens))
    for n, mention in enumerate(found):
        stop = (
            found[n + 1].index - len(found[n + 1].name.split()) + 1
            if n + 1 < len(found)
            else len(tokens)
        )
        mention.negated = _negated(tokens, mention.index, stop)
        mention.explanation = mention.index > because
        nxt = tokens[mention.index + 1] if mention.index + 1 < len(tokens) else None
        mention.before_ablative = (
            mention.ending in GENITIVE
            and nxt is not None
            and nxt.kind == "word"
            and any(nxt.text.endswith(a) for a in ABLATIVE)
        )
        if n:
            between = [t.text for t in tokens[found[n - 1].index + 1 : mention.index]]
            joined = f" {' '.join(between)} "
            if any(f" {a} " in joined for a in _ALTERNATIVES) or " və ya " in joined:
                mention.alternative = found[n - 1].alternative = True
            if "/" in between:
                mention.alternative = found[n - 1].alternative = True
    return found
