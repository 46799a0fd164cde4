"""The synthetic set's grammar: nouns with their forms and agreement per language, people, the context a
template is rendered in, and the operator signs of each language's school arithmetic."""

from __future__ import annotations

from dataclasses import dataclass

# ------------------------------------------------------------------------------------------ grammar


def ru_plural(n: int, one: str, few: str, many: str) -> str:
    """Pick the Russian form that agrees with the number ``n``.

    ``one`` for 1, 21, 31, 101 ... (not 11), ``few`` for 2-4, 22-24 ... (not 12-14), ``many`` for the rest
    (0, 5-20, 25-30, 111 ...). For a noun after a numeral in the nominative these are the nominative
    singular, the genitive singular and the genitive plural: 1 яблоко, 2 яблока, 5 яблок, 21 яблоко.
    """
    n = abs(n)
    if n % 10 == 1 and n % 100 != 11:
        return one
    if 2 <= n % 10 <= 4 and not 12 <= n % 100 <= 14:
        return few
    return many


@dataclass(frozen=True)
class _Noun:
    """A countable noun in every language.

    en: (singular, plural)
    de: (singular, plural, dative plural, gender "m"/"f"/"n")
    es: (singular, plural, gender "m"/"f")
    fr: (singular, plural, gender "m"/"f")
    ru: (nominative sg, accusative sg, genitive sg, genitive pl, gender "m"/"f"/"n")
    zh: (noun, measure word)
    ja: (noun, counter)
    sw: (singular, plural, noun class of the plural: "ma", "vi", "mi", "n" or "wa";
         subject prefix of the singular, used for "kila X ...-nagharimu")
    """

    en: tuple[str, str]
    de: tuple[str, str, str, str]
    es: tuple[str, str, str]
    fr: tuple[str, str, str]
    ru: tuple[str, str, str, str, str]
    zh: tuple[str, str]
    ja: tuple[str, str]
    sw: tuple[str, str, str, str]


# Swahili agreement for plural nouns, by class: the "how many" word, the object prefix of a verb
# ("ana-ya-gawa" = he/she shares them) and the word for "all".
_SW_NGAPI = {"ma": "mangapi", "vi": "vingapi", "mi": "mingapi", "n": "ngapi", "wa": "wangapi"}
_SW_OBJECT = {"ma": "ya", "vi": "vi", "mi": "i", "n": "zi", "wa": "wa"}

_OBJECTS: dict[str, _Noun] = {
    "orange": _Noun(
        en=("orange", "oranges"),
        de=("Orange", "Orangen", "Orangen", "f"),
        es=("naranja", "naranjas", "f"),
        fr=("orange", "oranges", "f"),
        ru=("апельсин", "апельсин", "апельсина", "апельсинов", "m"),
        zh=("橙子", "个"),
        ja=("オレンジ", "個"),
        sw=("chungwa", "machungwa", "ma", "li"),
    ),
    "pencil": _Noun(
        en=("pencil", "pencils"),
        de=("Bleistift", "Bleistifte", "Bleistiften", "m"),
        es=("lápiz", "lápices", "m"),
        fr=("crayon", "crayons", "m"),
        ru=("карандаш", "карандаш", "карандаша", "карандашей", "m"),
        zh=("铅笔", "支"),
        ja=("鉛筆", "本"),
        sw=("penseli", "penseli", "n", "i"),
    ),
    "book": _Noun(
        en=("book", "books"),
        de=("Buch", "Bücher", "Büchern", "n"),
        es=("libro", "libros", "m"),
        fr=("livre", "livres", "m"),
        ru=("книга", "книгу", "книги", "книг", "f"),
        zh=("书", "本"),
        ja=("本", "冊"),
        sw=("kitabu", "vitabu", "vi", "ki"),
    ),
    "ball": _Noun(
        en=("ball", "balls"),
        de=("Ball", "Bälle", "Bällen", "m"),
        es=("pelota", "pelotas", "f"),
        fr=("balle", "balles", "f"),  # a small ball (tennis ball); "ballon" is a football-sized one
        ru=("мяч", "мяч", "мяча", "мячей", "m"),
        zh=("球", "个"),
        ja=("ボール", "個"),
        sw=("mpira", "mipira", "mi", "u"),
    ),
    "candy": _Noun(
        en=("candy", "candies"),
        de=("Bonbon", "Bonbons", "Bonbons", "n"),
        es=("caramelo", "caramelos", "m"),
        fr=("bonbon", "bonbons", "m"),
        ru=("конфета", "конфету", "конфеты", "конфет", "f"),
        zh=("糖果", "颗"),
        ja=("あめ", "個"),
        sw=("pipi", "pipi", "n", "i"),
    ),
    "egg": _Noun(
        en=("egg", "eggs"),
        de=("Ei", "Eier", "Eiern", "n"),
        es=("huevo", "huevos", "m"),
        fr=("œuf", "œufs", "m"),
        ru=("яйцо", "яйцо", "яйца", "яиц", "n"),
        zh=("鸡蛋", "个"),
        ja=("卵", "個"),
        sw=("yai", "mayai", "ma", "li"),
    ),
    "mango": _Noun(
        en=("mango", "mangoes"),
        de=("Mango", "Mangos", "Mangos", "f"),
        es=("mango", "mangos", "m"),
        fr=("mangue", "mangues", "f"),
        ru=("манго", "манго", "манго", "манго", "n"),  # indeclinable
        zh=("芒果", "个"),
        ja=("マンゴー", "個"),
        sw=("embe", "maembe", "ma", "li"),
    ),
}

# Nouns fixed by a template.
_DOLLAR = _Noun(
    en=("dollar", "dollars"),
    # German currency units stay singular after a number: "5 Dollar", "mit 20 Dollar".
    de=("Dollar", "Dollar", "Dollar", "m"),
    es=("dólar", "dólares", "m"),
    fr=("dollar", "dollars", "m"),
    ru=("доллар", "доллар", "доллара", "долларов", "m"),
    zh=("美元", ""),
    ja=("ドル", ""),
    sw=("dola", "dola", "n", "i"),
)
_PAGE = _Noun(
    en=("page", "pages"),
    de=("Seite", "Seiten", "Seiten", "f"),
    es=("página", "páginas", "f"),
    fr=("page", "pages", "f"),
    ru=("страница", "страницу", "страницы", "страниц", "f"),
    zh=("页", ""),
    ja=("ページ", ""),
    sw=("ukurasa", "kurasa", "n", "u"),
)
_DAY = _Noun(
    en=("day", "days"),
    de=("Tag", "Tage", "Tagen", "m"),
    es=("día", "días", "m"),
    fr=("jour", "jours", "m"),
    ru=("день", "день", "дня", "дней", "m"),
    zh=("天", ""),
    ja=("日", ""),
    sw=("siku", "siku", "n", "i"),
)
_WEEK = _Noun(
    en=("week", "weeks"),
    de=("Woche", "Wochen", "Wochen", "f"),
    es=("semana", "semanas", "f"),
    fr=("semaine", "semaines", "f"),
    ru=("неделя", "неделю", "недели", "недель", "f"),
    zh=("周", ""),
    ja=("週間", ""),
    sw=("wiki", "wiki", "n", "i"),
)
_PASSENGER = _Noun(
    en=("person", "people"),
    de=("Fahrgast", "Fahrgäste", "Fahrgästen", "m"),
    es=("pasajero", "pasajeros", "m"),
    fr=("passager", "passagers", "m"),
    # Only used in nominative frames ("едут 25 пассажиров"): the animate accusative is never needed.
    ru=("пассажир", "пассажира", "пассажира", "пассажиров", "m"),
    zh=("乘客", "名"),
    ja=("乗客", "人"),
    # "abiria" looks like an N-class noun but, being a person, takes the wa- agreement: "abiria wangapi".
    sw=("abiria", "abiria", "wa", "a"),
)
_BOX = _Noun(
    en=("box", "boxes"),
    de=("Kiste", "Kisten", "Kisten", "f"),
    es=("caja", "cajas", "f"),
    fr=("boîte", "boîtes", "f"),
    ru=("коробка", "коробку", "коробки", "коробок", "f"),
    zh=("箱", ""),
    ja=("箱", "個"),
    sw=("sanduku", "masanduku", "ma", "li"),
)
_BAG = _Noun(
    en=("bag", "bags"),
    de=("Tüte", "Tüten", "Tüten", "f"),
    es=("bolsa", "bolsas", "f"),
    fr=("sac", "sacs", "m"),
    ru=("пакет", "пакет", "пакета", "пакетов", "m"),
    zh=("袋", ""),
    ja=("袋", "袋"),
    sw=("mfuko", "mifuko", "mi", "u"),
)
_TRAY = _Noun(
    en=("tray", "trays"),
    de=("Blech", "Bleche", "Blechen", "n"),
    es=("bandeja", "bandejas", "f"),
    fr=("plaque", "plaques", "f"),
    ru=("противень", "противень", "противня", "противней", "m"),
    zh=("盘", ""),
    ja=("天板", "枚"),
    sw=("sinia", "sinia", "n", "i"),
)
_ROLL = _Noun(
    en=("bread roll", "bread rolls"),
    de=("Brötchen", "Brötchen", "Brötchen", "n"),
    es=("panecillo", "panecillos", "m"),
    fr=("petit pain", "petits pains", "m"),
    ru=("булочка", "булочку", "булочки", "булочек", "f"),
    zh=("面包", "个"),
    ja=("パン", "個"),
    sw=("mkate", "mikate", "mi", "u"),
)


def _en(n: int, noun: _Noun) -> str:
    return f"{n} {noun.en[0] if n == 1 else noun.en[1]}"


def _de(n: int, noun: _Noun, case: str = "nom") -> str:
    """German count phrase; ``case="dat"`` gives the dative plural ("mit je 6 Büchern")."""
    if n == 1:
        return f"{n} {noun.de[0]}"
    return f"{n} {noun.de[2] if case == 'dat' else noun.de[1]}"


def _es(n: int, noun: _Noun) -> str:
    return f"{n} {noun.es[0] if n == 1 else noun.es[1]}"


def _fr(n: int, noun: _Noun) -> str:
    return f"{n} {noun.fr[0] if n == 1 else noun.fr[1]}"


def _ru(n: int, noun: _Noun, case: str = "nom") -> str:
    """Russian "number + noun" in the case the verb frame asks for.

    nom: "у Тома 21 апельсин / 2 апельсина / 5 апельсинов";
    acc: as nom, but a feminine noun after 1, 21 ... takes the accusative singular ("читает 21 страницу");
         all nouns used in accusative frames are inanimate;
    gen: after 1, 21 ... the genitive singular, otherwise the genitive plural ("в течение 2 дней").
    """
    nom_sg, acc_sg, gen_sg, gen_pl, _ = noun.ru
    if case == "gen":
        form = ru_plural(n, gen_sg, gen_pl, gen_pl)
    else:
        form = ru_plural(n, acc_sg if case == "acc" else nom_sg, gen_sg, gen_pl)
    return f"{n} {form}"


def _de_fr_of(word: str) -> str:
    """French "de" before a noun, elided before a vowel: "de crayons", "d'oranges", "d'œufs"."""
    return f"d'{word}" if word[0].lower() in "aeiouyéèêàâîôûœh" else f"de {word}"


def _zh(n: int, noun: _Noun) -> str:
    word, measure = noun.zh
    return f"{n}{measure}{word}"


def _sw(n: int, noun: _Noun) -> str:
    """Swahili puts the number after the noun: "machungwa 5", "vitabu 3"."""
    return f"{noun.sw[0] if n == 1 else noun.sw[1]} {n}"


def _sw_ngapi(noun: _Noun) -> str:
    return f"{noun.sw[1]} {_SW_NGAPI[noun.sw[2]]}"


# ------------------------------------------------------------------------------------------- people


@dataclass(frozen=True)
class _Person:
    en: str
    gender: str  # "m" or "f": pronouns (he/er/il/он/他), Spanish and French plural agreement
    ru: tuple[str, str, str]  # nominative, genitive ("у Тома"), dative ("Тому")
    zh: str
    ja: str
    es: str | None = None  # when the Spanish spelling differs (María)

    def name(self, lang: str) -> str:
        if lang == "ru":
            return self.ru[0]
        if lang == "zh":
            return self.zh
        if lang == "ja":
            return self.ja
        if lang == "es" and self.es:
            return self.es
        return self.en


_PEOPLE: tuple[_Person, ...] = (
    _Person("Tom", "m", ("Том", "Тома", "Тому"), "汤姆", "トム"),
    _Person("Anna", "f", ("Анна", "Анны", "Анне"), "安娜", "アンナ"),
    _Person("Ali", "m", ("Али", "Али", "Али"), "阿里", "アリ"),  # indeclinable in Russian
    _Person("Maria", "f", ("Мария", "Марии", "Марии"), "玛丽亚", "マリア", es="María"),
    _Person("David", "m", ("Давид", "Давида", "Давиду"), "大卫", "デイビッド"),
    _Person("Amina", "f", ("Амина", "Амины", "Амине"), "阿米娜", "アミナ"),
    # A man's name in -a still declines like a feminine noun in Russian: у Джумы, Джуме.
    _Person("Juma", "m", ("Джума", "Джумы", "Джуме"), "朱马", "ジュマ"),
    _Person("Lisa", "f", ("Лиза", "Лизы", "Лизе"), "丽莎", "リサ"),
    _Person("Sam", "m", ("Сэм", "Сэма", "Сэму"), "山姆", "サム"),
)


# ------------------------------------------------------------------------------------------ context


@dataclass(frozen=True)
class _Ctx:
    """One generated problem before it is written in any language."""

    level: int
    values: dict[str, int]
    person: _Person
    friend: _Person
    obj: _Noun

    def __getattr__(self, key: str) -> int:  # c.a, c.b ... read the sampled numbers
        values = object.__getattribute__(self, "values")
        if key in values:
            return values[key]
        raise AttributeError(key)


Texts = dict[str, tuple[str, str]]  # lang -> (question, solution without the answer sentence)


def _pron(p: _Person) -> dict[str, str]:
    """Pronouns of a person, by language: he/she and friends."""
    m = p.gender == "m"
    return {
        "en": "he" if m else "she",
        "de": "er" if m else "sie",
        "de_dat": "ihm" if m else "ihr",
        "fr": "il" if m else "elle",
        "ru": "он" if m else "она",
        "ru_gen": "него" if m else "неё",  # after a preposition: у него / у неё
        "ru_dat": "ему" if m else "ей",
        "zh": "他" if m else "她",
    }


def _cap(s: str) -> str:
    return s[:1].upper() + s[1:]


