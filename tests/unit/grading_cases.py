"""Model answers graded by hand, the way a careful reader of Azerbaijani grades them.

Each case: the task family, the example's target (what the answer is), the reference answer
sentence of the data, a model output, and whether a careful reader counts it right. The
outputs are written from how people (and models) answer in Azerbaijani, not from the grader's
rules: restating the question, naming the wrong day of a two-word weekday, negating, hedging,
giving the working in parentheses, writing numbers in words, with a thin space or a dot, as a
time, a fraction, in another unit.

``tests/unit/test_grading_table.py`` grades them all; the grader before targets existed
(``git show c9b453f:steps/core/answers.py``) disagreed with this table on the count written
in docs/evaluation.md.
"""

from __future__ import annotations


def N(value: float, unit: str | None = None, convertible: bool = True) -> dict:  # noqa: N802
    target = {"kind": "number", "value": value} | ({"unit": unit} if unit else {})
    return target if convertible else target | {"convertible": False}


def E(kind: str, value: str, options: tuple = (), given: tuple = ()) -> dict:  # noqa: N802
    return {"kind": "entity", "type": kind, "value": value, "options": list(options),
            "given": list(given)}  # fmt: skip


def C(who: str, by: float, unit: str, options: tuple) -> dict:  # noqa: N802
    return {"kind": "comparison", "who": who, "by": by, "unit": unit, "options": list(options)}


THINK = "<think>Hesablayırıq.</think>\n\n"
COAST = E("city", "Lənkəran", ("Lənkəran", "Quba"))
COAST_REF = "Sahil şəhəri Lənkərandır."
TUE = E("weekday", "çərşənbə axşamı", given=("bazar",))
TUE_REF = "2 gün sonra çərşənbə axşamı olacaq."
FRI = E("weekday", "cümə", given=("çərşənbə",))
FRI_REF = "2 gün sonra cümə olacaq."
TALL = E("person", "Tural", ("Tural", "Nigar", "Əli"))
TALL_REF = "Ən hündür Turaldır."
APPLES = C("Nigar", 21, "dənə", ("Nigar", "Nərmin"))
APPLES_REF = "Nigarın alması 21 dənə çoxdur."
HEIGHT = C("Tural", 15, "sm", ("Tural", "Rəşad"))
HEIGHT_REF = "Tural 15 sm hündürdür."
CHANGE = N(7, "manat")
CHANGE_REF = "Qalıq 7 manatdır."

# (family, target, reference, model output, right?)
CASES: list[tuple[str, dict, str, str, bool]] = [
    # --- a city named in the question's pair, with endings, negation, hedges
    ("geography", COAST, COAST_REF, "Lənkəran", True),
    ("geography", COAST, COAST_REF, "Lənkərandır.", True),
    ("geography", COAST, COAST_REF, "Sahil şəhəri Lənkərandır.", True),
    ("geography", COAST, COAST_REF, "LƏNKƏRAN", True),
    ("geography", COAST, COAST_REF, "L\u04d9nk\u04d9ran", True),  # Cyrillic ә
    ("geography", COAST, COAST_REF, "Lənkəran, çünki Quba dənizdən uzaqdadır.", True),
    ("geography", COAST, COAST_REF, "Quba yox, Lənkəran.", True),
    ("geography", COAST, COAST_REF, "Sahil şəhəri Lənkəran deyil, Qubadır.", False),
    ("geography", COAST, COAST_REF, "Lənkəran yox, Quba.", False),
    ("geography", COAST, COAST_REF, "Lənkəran və ya Quba.", False),
    ("geography", COAST, COAST_REF, "Quba", False),
    ("geography", COAST, COAST_REF, "Bakı", False),
    ("geography", COAST, COAST_REF, "Hər ikisi.", False),
    # --- open geography questions
    ("geography", E("city", "Bakı"), "Azərbaycanın paytaxtı Bakıdır.", "Bakı şəhəri", True),
    (
        "geography",
        E("city", "Bakı"),
        "Azərbaycanın paytaxtı Bakıdır.",
        "Bakıdır, Gəncə deyil.",
        True,
    ),
    ("geography", E("city", "Bakı"), "Azərbaycanın paytaxtı Bakıdır.", "Paytaxt Gəncədir.", False),
    ("geography", E("city", "Bakı"), "Qız Qalası Bakıdadır.", "Bakıda, İçərişəhərdə.", True),
    ("geography", E("city", "Bakı"), "Qız Qalası Bakıdadır.", "Qız Qalası Şəkidədir.", False),
    (
        "geography",
        E("river", "Kür"),
        "Mingəçevir su anbarı Kür çayı üzərindədir.",
        "Kür çayı üzərində.",
        True,
    ),
    (
        "geography",
        E("river", "Kür"),
        "Mingəçevir su anbarı Kür çayı üzərindədir.",
        "Araz çayı",
        False,
    ),
    ("geography", E("fruit", "alma"), "Quba alma bağları ilə məşhurdur.", "Alma", True),
    (
        "geography",
        E("fruit", "alma"),
        "Quba alma bağları ilə məşhurdur.",
        "Quba alma bağları ilə məşhurdur.",
        True,
    ),
    ("geography", E("fruit", "alma"), "Quba alma bağları ilə məşhurdur.", "Nar", False),
    ("geography", E("city", "Quba"), "Quba alma bağları ilə məşhurdur.", "Quba", True),
    ("geography", E("city", "Quba"), "Quba alma bağları ilə məşhurdur.", "Qəbələ", False),
    ("geography", E("sea", "Xəzər"), "Bakı Xəzər dənizinin sahilindədir.", "Xəzər dənizi", True),
    ("geography", E("sea", "Xəzər"), "Bakı Xəzər dənizinin sahilindədir.", "Qara dəniz", False),
    ("geography", E("city", "Şuşa"), "Mədəniyyət paytaxtı Şuşadır.", "Şuşa şəhəri", True),
    ("geography", E("city", "Şuşa"), "Mədəniyyət paytaxtı Şuşadır.", "Şuşa, yoxsa Gəncə?", False),
    ("geography", E("city", "Naxçıvan"), "Möminə Xatın türbəsi Naxçıvandadır.", "Naxçıvanda", True),
    ("geography", E("city", "Şəki"), "Şəki halvası Şəkinin şirniyyatıdır.", "Şəki şəhərinin", True),
    # --- weekdays: two-word names, longest first; today's day is given
    ("calendar", TUE, TUE_REF, "Çərşənbə axşamı", True),
    ("calendar", TUE, TUE_REF, "Çərşənbə", False),
    ("calendar", TUE, TUE_REF, "2 gün sonra çərşənbə axşamı olacaq.", True),
    ("calendar", TUE, TUE_REF, "çərşənbə axşamı günü", True),
    ("calendar", TUE, TUE_REF, "Çərşənbə axşamıdır.", True),
    ("calendar", TUE, TUE_REF, "Bazar ertəsi", False),
    ("calendar", FRI, FRI_REF, "Cümə", True),
    ("calendar", FRI, FRI_REF, "Cümə axşamı", False),
    ("calendar", FRI, FRI_REF, "Bu gün çərşənbədir, 2 gün sonra cümə olacaq.", True),
    ("calendar", FRI, FRI_REF, "Çərşənbədən 2 gün sonra cümə gəlir.", True),
    ("calendar", FRI, FRI_REF, "Cümədir.", True),
    ("calendar", FRI, FRI_REF, "Cümə və ya şənbə", False),
    ("calendar", FRI, FRI_REF, "Cümə deyil, şənbə olacaq.", False),
    ("calendar", FRI, FRI_REF, "Çərşənbə", False),
    (
        "calendar",
        E("weekday", "şənbə", given=("cümə axşamı",)),
        "2 gün sonra şənbə olacaq.",
        "2 gün sonra şənbə günü olacaq.",
        True,
    ),
    (
        "calendar",
        E("weekday", "şənbə", given=("cümə axşamı",)),
        "2 gün sonra şənbə olacaq.",
        "Çərşənbə",
        False,
    ),
    (
        "calendar",
        E("weekday", "bazar ertəsi", given=("şənbə",)),
        "2 gün sonra bazar ertəsi olacaq.",
        "Bazar",
        False,
    ),
    (
        "calendar",
        E("weekday", "bazar ertəsi", given=("şənbə",)),
        "2 gün sonra bazar ertəsi olacaq.",
        "Bazar ertəsi",
        True,
    ),
    (
        "calendar",
        E("weekday", "bazar", given=("cümə",)),
        "2 gün sonra bazar olacaq.",
        "Bazar günü",
        True,
    ),
    (
        "calendar",
        E("weekday", "bazar", given=("cümə",)),
        "2 gün sonra bazar olacaq.",
        "Bazar ertəsi",
        False,
    ),
    (
        "calendar",
        E("weekday", "çərşənbə axşamı", given=("cümə",)),
        "3 gün əvvəl çərşənbə axşamı idi.",
        "Çərşənbə axşamı idi.",
        True,
    ),
    # --- months
    ("calendar", E("month", "may", given=("fevral",)), "3 ay sonra may olacaq.", "May ayı", True),
    ("calendar", E("month", "may", given=("fevral",)), "3 ay sonra may olacaq.", "Mayda", True),
    ("calendar", E("month", "may", given=("fevral",)), "3 ay sonra may olacaq.", "İyun", False),
    (
        "calendar",
        E("month", "may", given=("fevral",)),
        "3 ay sonra may olacaq.",
        "Aprel, ya da may",
        False,
    ),
    (
        "calendar",
        E("month", "dekabr", given=("oktyabr",)),
        "2 ay sonra dekabr olacaq.",
        "Dekabrdır.",
        True,
    ),
    (
        "calendar",
        E("month", "dekabr", given=("oktyabr",)),
        "2 ay sonra dekabr olacaq.",
        "Dekabr yox, noyabr.",
        False,
    ),
    # --- ordering: a person
    ("ordering", TALL, TALL_REF, "Tural", True),
    ("ordering", TALL, TALL_REF, "Ən hündür Turaldır.", True),
    ("ordering", TALL, TALL_REF, "Turaldır", True),
    ("ordering", TALL, TALL_REF, "Nigar", False),
    ("ordering", TALL, TALL_REF, "Tural və ya Nigar", False),
    (
        "ordering",
        TALL,
        TALL_REF,
        "Tural Nigardan hündürdür, Nigar isə Əlidən. Deməli, ən hündür Turaldır.",
        True,
    ),
    ("ordering", TALL, TALL_REF, "Nigar deyil, Tural.", True),
    ("ordering", TALL, TALL_REF, "Əlidir.", False),
    ("ordering", TALL, TALL_REF, "Ən hündür Turaldır, ən alçaq isə Əli.", True),
    (
        "ordering",
        E("person", "Nərmin", ("Nərmin", "Ülviyyə", "Əli")),
        "Ən yüngül Nərmindir.",
        "Nərmin",
        True,
    ),
    (
        "ordering",
        E("person", "Nərmin", ("Nərmin", "Ülviyyə", "Əli")),
        "Ən yüngül Nərmindir.",
        "Ülviyyə",
        False,
    ),
    # --- comparisons: who and how much
    ("comparison", APPLES, APPLES_REF, "Nigarın alması 21 dənə çoxdur.", True),
    ("comparison", APPLES, APPLES_REF, "Nərminin alması 21 dənə çoxdur.", False),
    ("comparison", APPLES, APPLES_REF, "Nigarın alması çoxdur.", False),
    ("comparison", APPLES, APPLES_REF, "Nigarın alması 12 dənə çoxdur.", False),
    ("comparison", APPLES, APPLES_REF, "Nigarın alması Nərminin almasından 21 dənə çoxdur.", True),
    ("comparison", APPLES, APPLES_REF, "Nərminin alması Nigarınkından 21 dənə azdır.", True),
    ("comparison", APPLES, APPLES_REF, "Nigarın alması 21 və ya 22 dənə çoxdur.", False),
    ("comparison", APPLES, APPLES_REF, "21 dənə", False),
    ("comparison", HEIGHT, HEIGHT_REF, "Tural Rəşaddan 15 sm hündürdür.", True),
    ("comparison", HEIGHT, HEIGHT_REF, "Rəşad 15 sm hündürdür.", False),
    ("comparison", HEIGHT, HEIGHT_REF, "Tural 15 santimetr hündürdür.", True),
    ("comparison", HEIGHT, HEIGHT_REF, "Rəşad Turaldan 15 sm alçaqdır.", True),
    ("comparison", HEIGHT, HEIGHT_REF, "Tural daha hündürdür, fərq 15 sm-dir.", True),
    ("comparison", HEIGHT, HEIGHT_REF, "Tural on beş santimetr hündürdür.", True),
    # --- which number is bigger / smaller: the subject, not the ablative
    ("comparison", N(769), "769 ədədi kiçikdir.", "769 ədədi 807-dən kiçikdir.", True),
    ("comparison", N(769), "769 ədədi kiçikdir.", "769", True),
    ("comparison", N(769), "769 ədədi kiçikdir.", "807", False),
    ("comparison", N(769), "769 ədədi kiçikdir.", "807 ədədi 769-dan böyükdür.", False),
    ("comparison", N(807), "807 ədədi böyükdür.", "807 ədədi 769-dan böyükdür.", True),
    ("comparison", N(807), "807 ədədi böyükdür.", "807-dir.", True),
    # --- money: restatements, working, words, hedges, negation, units
    ("money", CHANGE, CHANGE_REF, "Qalıq 7 manatdır.", True),
    ("money", CHANGE, CHANGE_REF, "7 manat, yəni 700 qəpik.", True),
    ("money", CHANGE, CHANGE_REF, "700 qəpik", True),
    ("money", CHANGE, CHANGE_REF, "7 AZN", True),
    ("money", CHANGE, CHANGE_REF, "Qalıq yeddi manatdır.", True),
    ("money", CHANGE, CHANGE_REF, "17 manat", False),
    ("money", CHANGE, CHANGE_REF, "7 və ya 8 manat", False),
    ("money", CHANGE, CHANGE_REF, "7-8 manat", False),
    ("money", CHANGE, CHANGE_REF, "Qalıq 7 manat deyil, 8 manatdır.", False),
    ("money", CHANGE, CHANGE_REF, "70 qəpik", False),
    ("money", CHANGE, CHANGE_REF, "Qalıq 7 manatdır, çünki 20 - 13 = 7.", True),
    ("money", CHANGE, CHANGE_REF, "20 manatdan 13 manat çıxsaq, 7 manat qalır.", True),
    ("money", N(36, "manat"), "Əli cəmi 36 manat ödədi.", "36 manat (48 − 12)", True),
    (
        "money",
        N(36, "manat"),
        "Əli cəmi 36 manat ödədi.",
        "Cəmi 36 manat ödədi (4 × 9 = 36).",
        True,
    ),
    ("money", N(36, "manat"), "Əli cəmi 36 manat ödədi.", "4 × 9 = 36", True),
    ("money", N(36, "manat"), "Əli cəmi 36 manat ödədi.", "4 × 9", False),
    ("money", N(1500, "manat"), "Cəmi 1500 manatdır.", "1 500 manat", True),
    ("money", N(1500, "manat"), "Cəmi 1500 manatdır.", "1.500 manat", True),
    ("money", N(1500, "manat"), "Cəmi 1500 manatdır.", "1\u00a0500 ₼", True),
    ("money", N(1500, "manat"), "Cəmi 1500 manatdır.", "min beş yüz manat", True),
    ("money", N(1500, "manat"), "Cəmi 1500 manatdır.", "15 000 manat", False),
    ("money", N(2.5, "manat"), "Hər uşağa 2,5 manat düşür.", "iki yarım manat", True),
    ("money", N(2.5, "manat"), "Hər uşağa 2,5 manat düşür.", "2.5 manat", True),
    ("money", N(2.5, "manat"), "Hər uşağa 2,5 manat düşür.", "25 manat", False),
    # --- clock: times, durations, working in parentheses, ranges
    ("clock", N(14, "saat"), "Dərs saat 14-də bitir.", "Dərs saat 14:00-da bitir.", True),
    ("clock", N(14, "saat"), "Dərs saat 14-də bitir.", "saat 14-də", True),
    ("clock", N(14, "saat"), "Dərs saat 14-də bitir.", "14:30-da", False),
    (
        "clock",
        N(14, "saat"),
        "Dərs saat 14-də bitir.",
        "Saat 12-də başlayır, saat 14-də bitir.",
        True,
    ),
    ("clock", N(3, "saat"), "Yol 3 saat çəkdi.", "Yol 3 saat (16-dan 19-a).", True),
    ("clock", N(3, "saat"), "Yol 3 saat çəkdi.", "16-dan 19-a qədər 3 saat.", True),
    ("clock", N(3, "saat"), "Yol 3 saat çəkdi.", "180 dəqiqə", True),
    ("clock", N(3, "saat"), "Yol 3 saat çəkdi.", "üç saat", True),
    ("clock", N(3, "saat"), "Yol 3 saat çəkdi.", "Yol 19 saat çəkdi.", False),
    (
        "clock",
        N(3, "saat"),
        "Yol 3 saat çəkdi.",
        "Qatar saat 16-da yola düşüb, 19-da çatıb.",
        False,
    ),
    (
        "clock",
        N(150, "dəqiqə"),
        "Elvin 5 gündə 150 dəqiqə kitab oxuyar.",
        "5 gündə 150 dəqiqə",
        True,
    ),
    ("clock", N(150, "dəqiqə"), "Elvin 5 gündə 150 dəqiqə kitab oxuyar.", "2,5 saat", True),
    ("clock", N(150, "dəqiqə"), "Elvin 5 gündə 150 dəqiqə kitab oxuyar.", "iki saat yarım", True),
    ("clock", N(0.5, "saat"), "Yol yarım saat çəkdi.", "1/2 saat", True),
    ("clock", N(0.5, "saat"), "Yol yarım saat çəkdi.", "30 dəqiqə", True),
    ("clock", N(0.5, "saat"), "Yol yarım saat çəkdi.", "5 saat", False),
    # --- unit conversion: the question asks for the unit
    ("units", N(28000, "metr", False), "28 kilometr 28000 metrdir.", "28 000 metr", True),
    ("units", N(28000, "metr", False), "28 kilometr 28000 metrdir.", "28.000 m", True),
    ("units", N(28000, "metr", False), "28 kilometr 28000 metrdir.", "28 km = 28000 m", True),
    (
        "units",
        N(28000, "metr", False),
        "28 kilometr 28000 metrdir.",
        "iyirmi səkkiz min metr",
        True,
    ),
    ("units", N(28000, "metr", False), "28 kilometr 28000 metrdir.", "2800 metr", False),
    ("units", N(16000, "millilitr", False), "16 litr 16000 millilitrdir.", "16 litr", False),
    ("units", N(16000, "millilitr", False), "16 litr 16000 millilitrdir.", "16 000 ml", True),
    # --- geometry
    (
        "geometry",
        N(252, "kvadrat santimetr"),
        "Sahə 252 kvadrat santimetrdir.",
        "Sahə 18 × 14 = 252 kvadrat santimetr",
        True,
    ),
    ("geometry", N(252, "kvadrat santimetr"), "Sahə 252 kvadrat santimetrdir.", "252", True),
    (
        "geometry",
        N(252, "kvadrat santimetr"),
        "Sahə 252 kvadrat santimetrdir.",
        "iki yüz əlli iki",
        True,
    ),
    ("geometry", N(64, "santimetr"), "Perimetr 64 santimetrdir.", "2 × (18 + 14) = 64 sm", True),
    ("geometry", N(64, "santimetr"), "Perimetr 64 santimetrdir.", "0,64 m", True),
    ("geometry", N(64, "santimetr"), "Perimetr 64 santimetrdir.", "64 kvadrat santimetr", False),
    ("geometry", N(64, "santimetr"), "Perimetr 64 santimetrdir.", "Perimetr 32 sm", False),
    # --- percent, averages, negative numbers
    ("percent", N(150), "600 ədədinin 25 faizi 150 edir.", "600 ədədinin 25 faizi 150 edir.", True),
    ("percent", N(150), "600 ədədinin 25 faizi 150 edir.", "Cavab: 150", True),
    ("percent", N(150), "600 ədədinin 25 faizi 150 edir.", "25%", False),
    (
        "percent",
        N(120, "manat"),
        "Endirimlə çanta 120 manata satılır.",
        "Endirim 30 manatdır, yeni qiymət isə 120 manat.",
        True,
    ),
    ("percent", N(120, "manat"), "Endirimlə çanta 120 manata satılır.", "30 manat", False),
    ("averages", N(21, "dərəcə"), "Orta temperatur 21 dərəcədir.", "iyirmi bir dərəcə", True),
    (
        "averages",
        N(21, "dərəcə"),
        "Orta temperatur 21 dərəcədir.",
        "Orta temperatur 84 / 4 = 21 dərəcədir.",
        True,
    ),
    ("averages", N(21, "dərəcə"), "Orta temperatur 21 dərəcədir.", "84 dərəcə", False),
    ("averages", N(-5, "dərəcə"), "Orta temperatur -5 dərəcədir.", "mənfi 5 dərəcə", True),
    ("averages", N(-5, "dərəcə"), "Orta temperatur -5 dərəcədir.", "−5", True),
    ("averages", N(-5, "dərəcə"), "Orta temperatur -5 dərəcədir.", "5 dərəcə", False),
    # --- counting: the asserted number among several
    (
        "groups",
        N(72, "karandaş"),
        "9 qutuda cəmi 72 karandaş var.",
        "9 qutuda cəmi 72 karandaş var.",
        True,
    ),
    ("groups", N(72, "karandaş"), "9 qutuda cəmi 72 karandaş var.", "yetmiş iki karandaş", True),
    ("groups", N(72, "karandaş"), "9 qutuda cəmi 72 karandaş var.", "9", False),
    ("groups", N(8, "alma"), "Hər qutuya 8 alma düşür.", "Hər qutuya səkkiz alma düşür.", True),
    (
        "subtraction",
        N(7, "alma"),
        "Əlinin 7 alması qaldı.",
        "Əlinin 12 alması var idi, 5-ni verdi, 7 alması qaldı.",
        True,
    ),
    ("subtraction", N(7, "alma"), "Əlinin 7 alması qaldı.", "12 - 5 = 7", True),
    ("subtraction", N(7, "alma"), "Əlinin 7 alması qaldı.", "12 - 5", False),
    ("addition", N(35, "sərnişin"), "İndi avtobusda 35 sərnişin var.", "otuz beş", True),
    (
        "addition",
        N(35, "sərnişin"),
        "İndi avtobusda 35 sərnişin var.",
        "İndi avtobusda 35 sərnişin var, əvvəl 20 idi.",
        True,
    ),
    (
        "distance",
        N(180, "km"),
        "Avtomobil 180 km yol qət etdi.",
        "Avtomobil 3 saatda 180 km yol getdi.",
        True,
    ),
    ("distance", N(180, "km"), "Avtomobil 180 km yol qət etdi.", "180 000 metr", True),
    ("distance", N(4, "saat"), "Avtobus bu yolu 4 saata qət edər.", "4 saata", True),
    ("distance", N(4, "saat"), "Avtobus bu yolu 4 saata qət edər.", "4 km", False),
    ("distance", N(4, "saat"), "Avtobus bu yolu 4 saata qət edər.", "240 dəqiqə", True),
    ("distance", N(60, "km/saat"), "Avtomobil saatda 60 km sürətlə gedirdi.", "Saatda 60 km", True),
    ("distance", N(60, "km/saat"), "Avtomobil saatda 60 km sürətlə gedirdi.", "180 km", False),
    # --- the format: no answer is never right; tags around the answer
    ("subtraction", N(7, "alma"), "Səbətdə 7 alma qaldı.", "<think>12 - 5 = 7", False),
    ("subtraction", N(7, "alma"), "Səbətdə 7 alma qaldı.", "<think>12 - 5 = 7</think>", False),
    (
        "subtraction",
        N(7, "alma"),
        "Səbətdə 7 alma qaldı.",
        f"{THINK}<answer>Səbətdə 7 alma qaldı.</answer>",
        True,
    ),
    ("subtraction", N(7, "alma"), "Səbətdə 7 alma qaldı.", f"{THINK}<answer>7", True),
    ("subtraction", N(7, "alma"), "Səbətdə 7 alma qaldı.", "Cavab: 7 alma qaldı.", True),
    (
        "subtraction",
        N(7, "alma"),
        "Səbətdə 7 alma qaldı.",
        f"{THINK}<answer>7</answer><answer>8</answer>",
        False,
    ),
    ("subtraction", N(7, "alma"), "Səbətdə 7 alma qaldı.", f"{THINK}<answer></answer>", False),
    ("calendar", FRI, FRI_REF, "<think>Çərşənbədən 2 gün sonra cümə", False),
]
