"""The language registry: everything pivotrl needs to know to ask, answer and check in a language.

Covers the union of MGSM's 11 and MMLU-ProX's 29 languages. For each language it records the native
wording used in prompts ("Question:", "Step-by-Step Answer:", a step-by-step instruction) and in answers
("The answer is N."), the codes other tools use (NLLB-200 for translation, langid.py for language
identification) and how numbers are written (decimal and grouping separators, native digits).

The wording for the eleven MGSM languages follows the conventions of the human-translated MGSM exemplars
(``mgsm/exemplars.json``) and lm-evaluation-harness's native chain-of-thought prompts; where the two differ
(German "Die Antwort ist" vs "Die Antwort lautet"), every form is accepted when reading an answer and the
first is the one pivotrl writes. The other eighteen were written for pivotrl and have not been reviewed by a
native speaker yet (``reviewed=False``); corrections are welcome.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Language:
    code: str  # ISO 639-1 code, the key everywhere in pivotrl
    name: str  # English name
    script: str  # ISO 15924 script of the usual writing
    question_label: str  # "Question:"
    answer_label: str  # "Step-by-Step Answer:" (the MGSM native-CoT answer heading)
    instruction: str  # asks for step-by-step reasoning ending in the answer sentence; "N" stands for the number
    # Answer sentences; "{}" marks the answer. The first is canonical (what pivotrl writes), all are accepted
    # when reading a response. Only the part before "{}" is needed to find the answer.
    answer_templates: tuple[str, ...]
    nllb: str  # NLLB-200 / FLORES-200 code, e.g. "deu_Latn"
    lid: str | None  # label of the language-ID model (langid.py); None when it does not know the language
    decimal_sep: str = "."
    group_sep: str = ","
    # Indian numbering groups the digits before the last three in pairs (1,14,200).
    indian_grouping: bool = False
    # The first native digit (zero) when the script has its own digits, e.g. "০" for Bengali.
    native_zero: str | None = None
    reviewed: bool = False  # True: wording checked against human-translated material (the MGSM exemplars)
    aliases: tuple[str, ...] = field(default=())  # other names users and data sets use ("German", "deu")

    @property
    def answer_template(self) -> str:
        return self.answer_templates[0]

    @property
    def answer_prefixes(self) -> tuple[str, ...]:
        return tuple(t.split("{}")[0].strip() for t in self.answer_templates)

    def answer_sentence(self, answer: object) -> str:
        """The canonical answer sentence, e.g. ``Die Antwort lautet 18.``."""
        return self.answer_template.format(answer)


def _lang(*args, **kwargs) -> Language:
    return Language(*args, **kwargs)


_REGISTRY: list[Language] = [
    # --- the MGSM languages (wording checked against the MGSM exemplars) ---
    _lang("en", "English", "Latn", "Question:", "Step-by-Step Answer:",
          'Solve the problem step by step, then finish with "The answer is N.", where N is the final number.',
          ("The answer is {}.",), "eng_Latn", "en", reviewed=True, aliases=("english", "eng")),
    _lang("de", "German", "Latn", "Frage:", "Schritt-für-Schritt-Antwort:",
          "Löse die Aufgabe Schritt für Schritt und schließe mit „Die Antwort lautet N.“ ab, "
          "wobei N die Endzahl ist.",
          ("Die Antwort lautet {}.", "Die Antwort ist {}."), "deu_Latn", "de",
          decimal_sep=",", group_sep=".", reviewed=True, aliases=("german", "deu", "ger")),
    _lang("es", "Spanish", "Latn", "Pregunta:", "Respuesta paso a paso:",
          "Resuelve el problema paso a paso y termina con «La respuesta es N.», donde N es el número final.",
          ("La respuesta es {}.",), "spa_Latn", "es",
          decimal_sep=",", group_sep=".", reviewed=True, aliases=("spanish", "spa")),
    _lang("fr", "French", "Latn", "Question :", "Réponse étape par étape :",
          "Résous le problème étape par étape, puis termine par « La réponse est N. », "
          "où N est le nombre final.",
          ("La réponse est {}.",), "fra_Latn", "fr",
          decimal_sep=",", group_sep="\u202f", reviewed=True, aliases=("french", "fra", "fre")),
    _lang("ru", "Russian", "Cyrl", "Задача:", "Пошаговое решение:",
          "Реши задачу шаг за шагом и закончи фразой «Ответ — N.», где N — итоговое число.",
          ("Ответ — {}.", "Ответ: {}.", "Ответ - {}."), "rus_Cyrl", "ru",
          decimal_sep=",", group_sep="\u00a0", reviewed=True, aliases=("russian", "rus")),
    _lang("zh", "Chinese", "Hans", "问题：", "逐步解答：",
          "请逐步解答这道题，最后用“答案是 N。”结尾，其中 N 是最终的数字。",
          ("答案是 {}。", "答案是{}。", "答案：{}。"), "zho_Hans", "zh",
          reviewed=True, aliases=("chinese", "zho", "chi", "zh-cn")),
    _lang("ja", "Japanese", "Jpan", "問題：", "ステップごとの答え：",
          "段階的に考えて問題を解き、最後に「答えはNです。」と書いてください。Nは最終的な数です。",
          ("答えは{}です。",), "jpn_Jpan", "ja",  # not "答え：": it is the tail of the answer label
          reviewed=True, aliases=("japanese", "jpn")),
    _lang("th", "Thai", "Thai", "โจทย์:", "คำตอบทีละขั้นตอน:",
          'จงแก้โจทย์นี้ทีละขั้นตอน แล้วปิดท้ายด้วย "คำตอบคือ N" โดยที่ N คือตัวเลขคำตอบสุดท้าย',
          ("คำตอบคือ {}",), "tha_Thai", "th",
          native_zero="๐", reviewed=True, aliases=("thai", "tha")),
    _lang("sw", "Swahili", "Latn", "Swali:", "Jibu la Hatua kwa Hatua:",
          'Tatua swali hili hatua kwa hatua, kisha malizia kwa "Jibu ni N.", ambapo N ni namba ya mwisho.',
          ("Jibu ni {}.",), "swh_Latn", "sw",
          reviewed=True, aliases=("swahili", "swa", "swh")),
    _lang("bn", "Bengali", "Beng", "প্রশ্ন:", "ধাপে ধাপে উত্তর:",
          'ধাপে ধাপে সমস্যাটির সমাধান করো, তারপর "উত্তর হল N।" লিখে শেষ করো, যেখানে N হল চূড়ান্ত সংখ্যা।',
          ("উত্তর হল {}।", "উত্তর হলো {}।", "উত্তর: {}।"), "ben_Beng", "bn",
          indian_grouping=True, native_zero="০", reviewed=True, aliases=("bengali", "bangla", "ben")),
    _lang("te", "Telugu", "Telu", "ప్రశ్న:", "దశలవారీగా సమాధానం:",
          'సమస్యను దశలవారీగా పరిష్కరించి, చివరగా "సమాధానం N." అని ముగించండి, ఇక్కడ N తుది సంఖ్య.',
          ("సమాధానం {}.",), "tel_Telu", "te",
          indian_grouping=True, native_zero="౦", reviewed=True, aliases=("telugu", "tel")),
    # --- the other MMLU-ProX languages (written for pivotrl, not yet reviewed by native speakers) ---
    _lang("af", "Afrikaans", "Latn", "Vraag:", "Stap-vir-stap-antwoord:",
          'Los die probleem stap vir stap op en sluit af met "Die antwoord is N.", waar N die finale getal is.',
          ("Die antwoord is {}.",), "afr_Latn", "af",
          decimal_sep=",", group_sep=" ", aliases=("afrikaans", "afr")),
    _lang("ar", "Arabic", "Arab", "سؤال:", "الإجابة خطوة بخطوة:",
          'حُلّ المسألة خطوة بخطوة، ثم اختم بعبارة "الإجابة هي N." حيث N هو العدد النهائي.',
          ("الإجابة هي {}.", "الجواب هو {}."), "arb_Arab", "ar",
          native_zero="٠", aliases=("arabic", "ara", "arb")),
    _lang("cs", "Czech", "Latn", "Otázka:", "Odpověď krok za krokem:",
          "Vyřeš úlohu krok za krokem a zakonči ji větou „Odpověď je N.“, kde N je výsledné číslo.",
          ("Odpověď je {}.",), "ces_Latn", "cs",
          decimal_sep=",", group_sep="\u00a0", aliases=("czech", "ces", "cze")),
    _lang("hi", "Hindi", "Deva", "प्रश्न:", "चरण-दर-चरण उत्तर:",
          'समस्या को चरण-दर-चरण हल करें, फिर "उत्तर N है।" लिखकर समाप्त करें, जहाँ N अंतिम संख्या है।',
          ("उत्तर {} है।", "उत्तर है {}।"), "hin_Deva", "hi",
          indian_grouping=True, native_zero="०", aliases=("hindi", "hin")),
    _lang("hu", "Hungarian", "Latn", "Kérdés:", "Lépésről lépésre adott válasz:",
          "Oldd meg a feladatot lépésről lépésre, és fejezd be így: „A válasz N.”, ahol N a végeredmény.",
          ("A válasz {}.",), "hun_Latn", "hu",
          decimal_sep=",", group_sep="\u00a0", aliases=("hungarian", "hun")),
    _lang("id", "Indonesian", "Latn", "Pertanyaan:", "Jawaban langkah demi langkah:",
          'Selesaikan soal ini langkah demi langkah, lalu akhiri dengan "Jawabannya adalah N.", '
          "dengan N sebagai angka akhir.",
          ("Jawabannya adalah {}.", "Jawaban: {}."), "ind_Latn", "id",
          decimal_sep=",", group_sep=".", aliases=("indonesian", "ind")),
    _lang("it", "Italian", "Latn", "Domanda:", "Risposta passo dopo passo:",
          'Risolvi il problema passo dopo passo e concludi con "La risposta è N.", dove N è il numero finale.',
          ("La risposta è {}.",), "ita_Latn", "it",
          decimal_sep=",", group_sep=".", aliases=("italian", "ita")),
    _lang("ko", "Korean", "Kore", "질문:", "단계별 풀이:",
          '문제를 단계별로 풀고 마지막에 "답은 N입니다."로 끝내세요. 여기서 N은 최종 숫자입니다.',
          ("답은 {}입니다.", "정답은 {}입니다."), "kor_Hang", "ko",
          aliases=("korean", "kor")),
    _lang("mr", "Marathi", "Deva", "प्रश्न:", "टप्प्याटप्प्याने उत्तर:",
          'प्रश्न टप्प्याटप्प्याने सोडवा आणि शेवटी "उत्तर N आहे." असे लिहा, जिथे N ही अंतिम संख्या आहे.',
          ("उत्तर {} आहे.",), "mar_Deva", "mr",
          indian_grouping=True, native_zero="०", aliases=("marathi", "mar")),
    _lang("ne", "Nepali", "Deva", "प्रश्न:", "चरणबद्ध उत्तर:",
          'समस्यालाई चरणबद्ध रूपमा हल गर्नुहोस् र "उत्तर N हो।" लेखेर अन्त्य गर्नुहोस्, '
          "जहाँ N अन्तिम सङ्ख्या हो।",
          ("उत्तर {} हो।",), "npi_Deva", "ne",
          indian_grouping=True, native_zero="०", aliases=("nepali", "nep", "npi")),
    _lang("pt", "Portuguese", "Latn", "Pergunta:", "Resposta passo a passo:",
          'Resolva o problema passo a passo e termine com "A resposta é N.", onde N é o número final.',
          ("A resposta é {}.",), "por_Latn", "pt",
          decimal_sep=",", group_sep=".", aliases=("portuguese", "por")),
    _lang("sr", "Serbian", "Cyrl", "Питање:", "Одговор корак по корак:",
          "Реши задатак корак по корак и заврши реченицом „Одговор је N.“, где је N коначан број.",
          ("Одговор је {}.", "Odgovor je {}."), "srp_Cyrl", "sr",
          decimal_sep=",", group_sep=".", aliases=("serbian", "srp")),
    _lang("uk", "Ukrainian", "Cyrl", "Задача:", "Покрокове розв'язання:",
          "Розв'яжи задачу крок за кроком і заверши фразою «Відповідь — N.», де N — остаточне число.",
          ("Відповідь — {}.", "Відповідь: {}."), "ukr_Cyrl", "uk",
          decimal_sep=",", group_sep="\u00a0", aliases=("ukrainian", "ukr")),
    _lang("ur", "Urdu", "Arab", "سوال:", "مرحلہ وار جواب:",
          'مسئلے کو مرحلہ وار حل کریں، پھر "جواب N ہے۔" لکھ کر ختم کریں، جہاں N آخری عدد ہے۔',
          ("جواب {} ہے۔",), "urd_Arab", "ur",
          indian_grouping=True, native_zero="۰", aliases=("urdu", "urd")),
    _lang("vi", "Vietnamese", "Latn", "Câu hỏi:", "Trả lời từng bước:",
          'Hãy giải bài toán từng bước, rồi kết thúc bằng "Câu trả lời là N.", trong đó N là con số cuối cùng.',
          ("Câu trả lời là {}.", "Đáp án là {}."), "vie_Latn", "vi",
          decimal_sep=",", group_sep=".", aliases=("vietnamese", "vie")),
    _lang("wo", "Wolof", "Latn", "Laaj:", "Tontu ci anam yu toftaloo:",
          'Saafaral jafe-jafe bi ci anam yu toftaloo, te jeexal ak "Tontu bi mooy N.", fu N di limu mujj gi.',
          ("Tontu bi mooy {}.",), "wol_Latn", None,
          decimal_sep=",", group_sep=" ", aliases=("wolof", "wol")),
    _lang("yo", "Yoruba", "Latn", "Ìbéèrè:", "Ìdáhùn ní ìgbésẹ̀-ìgbésẹ̀:",
          'Yanjú ìṣòro náà ní ìgbésẹ̀-ìgbésẹ̀, lẹ́yìn náà parí pẹ̀lú "Ìdáhùn náà ni N.", '
          "níbi tí N jẹ́ nọ́mbà ìkẹyìn.",
          ("Ìdáhùn náà ni {}.", "Ìdáhùn náà jẹ́ {}."), "yor_Latn", "yo",
          aliases=("yoruba", "yor")),
    _lang("zu", "Zulu", "Latn", "Umbuzo:", "Impendulo ngesinyathelo ngesinyathelo:",
          'Xazulula inkinga isinyathelo ngesinyathelo, bese uqeda ngokuthi "Impendulo ithi N.", '
          "lapho u-N eyinombolo yokugcina.",
          ("Impendulo ithi {}.", "Impendulo ngu-{}."), "zul_Latn", "zu",
          decimal_sep=",", group_sep=" ", aliases=("zulu", "zul")),
]

LANGUAGES: dict[str, Language] = {lang.code: lang for lang in _REGISTRY}
_BY_ALIAS: dict[str, Language] = {}
for _l in _REGISTRY:
    for _key in (_l.code, _l.name.lower(), *_l.aliases, _l.nllb.lower()):
        _BY_ALIAS[_key.lower()] = _l

MGSM_LANGS: tuple[str, ...] = ("bn", "de", "en", "es", "fr", "ja", "ru", "sw", "te", "th", "zh")
MSVAMP_LANGS: tuple[str, ...] = ("bn", "de", "en", "es", "fr", "ja", "ru", "sw", "th", "zh")
MMLU_PROX_LANGS: tuple[str, ...] = (
    "af", "ar", "bn", "cs", "de", "en", "es", "fr", "hi", "hu", "id", "it", "ja", "ko", "mr",
    "ne", "pt", "ru", "sr", "sw", "te", "th", "uk", "ur", "vi", "wo", "yo", "zh", "zu",
)


class UnknownLanguageError(KeyError):
    def __str__(self) -> str:  # KeyError quotes its message; we want it readable
        return str(self.args[0])


def get_language(code_or_name: str) -> Language:
    """Look a language up by ISO code, English name or NLLB code (case-insensitive)."""
    lang = _BY_ALIAS.get(code_or_name.strip().lower())
    if lang is None:
        known = ", ".join(sorted(LANGUAGES))
        raise UnknownLanguageError(f"unknown language {code_or_name!r}; known codes: {known}")
    return lang


def parse_langs(spec: str | list[str] | tuple[str, ...] | None, default: tuple[str, ...] = ()) -> list[str]:
    """Turn "de,zh, sw" (or a list) into validated ISO codes, keeping order and dropping repeats."""
    if spec is None or spec == "" or spec == []:
        return list(default)
    items = spec.split(",") if isinstance(spec, str) else list(spec)
    codes: list[str] = []
    for item in items:
        if not item.strip():
            continue
        code = get_language(item).code
        if code not in codes:
            codes.append(code)
    return codes
