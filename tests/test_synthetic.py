"""Tests of the synthetic problem set (pivotrl.data.synthetic)."""

from __future__ import annotations

import ast
import operator
import re
from collections import defaultdict
from fractions import Fraction

import pytest

from pivotrl.data.synthetic import LEVELS, SYNTHETIC_LANGS, generate_synthetic, ru_plural
from pivotrl.languages import get_language
from pivotrl.records import Problem

N = 120  # 30 problems per level: every template of every level appears several times


@pytest.fixture(scope="module")
def problems() -> list[Problem]:
    return generate_synthetic(N, seed=7)


def _by_id(problems: list[Problem]) -> dict[str, list[Problem]]:
    groups: dict[str, list[Problem]] = defaultdict(list)
    for p in problems:
        groups[p.id].append(p)
    return groups


_BINOPS = {ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul, ast.Div: operator.truediv}


def _safe_eval(expression: str) -> Fraction:
    """Integers with + - * / only; exact arithmetic with fractions."""

    def ev(node: ast.AST) -> Fraction:
        if isinstance(node, ast.Expression):
            return ev(node.body)
        if isinstance(node, ast.Constant) and type(node.value) is int:
            return Fraction(node.value)
        if isinstance(node, ast.BinOp) and type(node.op) in _BINOPS:
            return _BINOPS[type(node.op)](ev(node.left), ev(node.right))
        raise ValueError(f"unexpected node {ast.dump(node)} in {expression!r}")

    return ev(ast.parse(expression, mode="eval"))


def _intermediates(expression: str) -> list[Fraction]:
    """Value of every sub-expression (every binary operation) of the expression."""
    values: list[Fraction] = []

    def walk(node: ast.AST) -> None:
        for child in ast.iter_child_nodes(node):
            walk(child)
        if isinstance(node, ast.BinOp):
            values.append(_safe_eval(ast.unparse(node)))

    walk(ast.parse(expression, mode="eval"))
    return values


# ------------------------------------------------------------------------------------------- shape


def test_size_order_and_languages(problems):
    assert len(problems) == N * len(SYNTHETIC_LANGS)
    groups = _by_id(problems)
    assert len(groups) == N
    # ordered by problem, then language (in the order asked for)
    for i, (pid, group) in enumerate(groups.items()):
        assert pid == f"synthetic-s7-{i:05d}"
        assert [p.lang for p in group] == list(SYNTHETIC_LANGS)
    assert [p.id for p in problems] == [pid for pid in groups for _ in SYNTHETIC_LANGS]


def test_required_languages_present():
    assert {"en", "de", "es", "fr", "ru", "zh", "ja", "sw"} <= set(SYNTHETIC_LANGS)
    for code in SYNTHETIC_LANGS:
        assert get_language(code).code == code


def test_records_fields(problems):
    for p in problems:
        assert p.source == "synthetic"
        assert p.answer_type == "number"
        assert p.choices is None
        assert p.meta["steps"] in (1, 2)
        assert p.meta["level"] in LEVELS
        assert isinstance(p.meta["template"], str) and p.meta["template"]
        assert Problem.from_dict(p.to_dict()) == p


def test_shared_fields_across_languages(problems):
    for pid, group in _by_id(problems).items():
        en = next(p for p in group if p.lang == "en")
        for p in group:
            assert p.answer == en.answer
            assert p.meta == en.meta
            assert p.question_en == en.question
        assert len({p.question for p in group}) == len(group), f"{pid}: two languages share a question"


def test_meta_is_not_shared_between_records(problems):
    a, b = problems[0], problems[1]
    assert a.meta == b.meta and a.meta is not b.meta
    assert a.meta["operands"] is not b.meta["operands"]


# ----------------------------------------------------------------------------------- determinism


def test_same_seed_same_output():
    assert generate_synthetic(40, seed=3) == generate_synthetic(40, seed=3)


def test_different_seed_different_output():
    a = generate_synthetic(40, seed=3)
    b = generate_synthetic(40, seed=4)
    assert [p.question for p in a] != [p.question for p in b]
    assert {p.id for p in a}.isdisjoint({p.id for p in b})


def test_prefix_and_language_subset_stable():
    full = generate_synthetic(40, seed=5)
    short = generate_synthetic(10, seed=5)
    assert full[: len(short)] == short
    zh_de = generate_synthetic(10, seed=5, langs=["zh", "de"])
    expected = []
    for i in range(0, len(short), len(SYNTHETIC_LANGS)):
        group = {p.lang: p for p in short[i:i + len(SYNTHETIC_LANGS)]}
        expected += [group["zh"], group["de"]]
    assert zh_de == expected


def test_global_random_untouched():
    import random

    random.seed(123)
    expected = random.random()
    random.seed(123)
    generate_synthetic(20, seed=1)
    assert random.random() == expected


def test_ids_unique_per_problem(problems):
    ids = [p.id for p in problems if p.lang == "en"]
    assert len(ids) == len(set(ids)) == N


# --------------------------------------------------------------------------------------- answers


def test_answers_match_expression(problems):
    for p in problems:
        value = _safe_eval(p.meta["expression"])
        assert value.denominator == 1, p.meta["expression"]
        assert str(int(value)) == p.answer, (p.id, p.meta["expression"], p.answer)


def test_answers_and_intermediates_non_negative_integers(problems):
    for p in problems:
        assert re.fullmatch(r"\d+", p.answer), p.answer
        for value in _intermediates(p.meta["expression"]):
            assert value.denominator == 1 and value >= 0, (p.meta["expression"], value)


def test_operands_listed_in_expression(problems):
    for p in problems:
        numbers = [int(x) for x in re.findall(r"\d+", p.meta["expression"])]
        assert sorted(numbers) == sorted(p.meta["operands"])
        assert all(isinstance(x, int) and x >= 0 for x in p.meta["operands"])


def test_steps_match_expression(problems):
    for p in problems:
        n_ops = len(re.findall(r"[-+*/]", p.meta["expression"]))
        assert p.meta["steps"] == n_ops


# ---------------------------------------------------------------------------------------- levels


def test_every_level_present_and_cycled(problems):
    en = [p for p in problems if p.lang == "en"]
    assert {p.meta["level"] for p in en} == set(LEVELS)
    assert [p.meta["level"] for p in en[:8]] == [1, 2, 3, 4, 1, 2, 3, 4]


def test_level_one_is_small_add_or_sub(problems):
    for p in problems:
        if p.meta["level"] == 1:
            assert all(x <= 20 for x in p.meta["operands"]), p.meta
            assert p.meta["steps"] == 1
            assert re.fullmatch(r"\d+[-+]\d+", p.meta["expression"]), p.meta["expression"]


def test_level_two_is_one_step(problems):
    for p in problems:
        if p.meta["level"] == 2:
            assert p.meta["steps"] == 1
            if re.search(r"[-+]", p.meta["expression"]):
                assert all(x <= 100 for x in p.meta["operands"])
                assert int(p.answer) <= 100


def test_levels_three_and_four_are_two_steps(problems):
    for p in problems:
        if p.meta["level"] in (3, 4):
            assert p.meta["steps"] == 2


def test_level_four_uses_larger_numbers(problems):
    def biggest(level):
        return max(max(p.meta["operands"]) for p in problems if p.meta["level"] == level)

    assert biggest(4) > biggest(3)
    assert biggest(4) >= 100


def test_first_problems_very_easy():
    for level in LEVELS:
        first = generate_synthetic(1, seed=11, levels=[level], langs=["en"])[0]
        assert first.meta["level"] == level
        assert int(first.answer) <= {1: 10, 2: 60, 3: 60, 4: 2000}[level], first.meta


def test_level_selection():
    ps = generate_synthetic(12, seed=2, levels=[3], langs=["en"])
    assert {p.meta["level"] for p in ps} == {3}
    ps = generate_synthetic(12, seed=2, levels=[2, 4], langs=["en"])
    assert [p.meta["level"] for p in ps[:4]] == [2, 4, 2, 4]


def test_many_templates(problems):
    templates = {p.meta["template"] for p in problems}
    assert len(templates) >= 8
    for level in LEVELS:
        per_level = {p.meta["template"] for p in problems if p.meta["level"] == level}
        assert len(per_level) >= 3, (level, per_level)


# ---------------------------------------------------------------------------------------- texts


def test_solution_ends_with_answer_sentence(problems):
    for p in problems:
        sentence = get_language(p.lang).answer_sentence(p.answer)
        assert p.solution.endswith(sentence), (p.lang, p.solution)
        body = p.solution[: -len(sentence)]
        assert p.answer in re.findall(r"\d+", body), (p.lang, p.solution)


def test_solution_shows_arithmetic(problems):
    for p in problems:
        assert re.search(r"\d+ [-+×÷·:] \d+ = \d+", p.solution), p.solution


def test_question_contains_every_operand(problems):
    for p in problems:
        numbers = set(re.findall(r"\d+", p.question))
        for x in p.meta["operands"]:
            assert str(x) in numbers, (p.lang, x, p.question)


def test_questions_end_with_question_mark(problems):
    for p in problems:
        if p.lang in ("zh", "ja"):
            assert p.question.endswith("？"), p.question
        elif p.lang == "fr":
            assert p.question.endswith(" ?"), p.question
        else:
            assert p.question.endswith("?") and not p.question.endswith(" ?"), p.question
        if p.lang == "es":
            assert "¿" in p.question


def test_no_placeholders_or_double_spaces(problems):
    for p in problems:
        for text in (p.question, p.solution, p.question_en):
            assert "{" not in text and "}" not in text, text
            assert "  " not in text, text
            assert text == text.strip(), text
            assert "None" not in text, text


def test_english_question_is_english(problems):
    for p in problems:
        assert re.fullmatch(r"[A-Za-z0-9 ,.?'-]+", p.question_en), p.question_en


def test_cjk_questions_use_localized_script(problems):
    for p in problems:
        if p.lang in ("zh", "ja"):
            assert not re.search(r"[A-Za-z]", p.question), p.question
        if p.lang == "ru":
            assert not re.search(r"[A-Za-z]", p.question + p.solution), p.question


def test_same_names_across_languages(problems):
    for group in _by_id(problems).values():
        en = next(p for p in group if p.lang == "en")
        latin_names = set(re.findall(r"\b(Tom|Anna|Ali|Maria|David|Amina|Juma|Lisa|Sam)\b", en.question))
        for p in group:
            if p.lang in ("de", "fr", "sw"):
                assert set(re.findall(r"\b(Tom|Anna|Ali|Maria|David|Amina|Juma|Lisa|Sam)\b", p.question)) \
                    == latin_names


# ------------------------------------------------------------------------------------- grammar


@pytest.mark.parametrize(
    ("n", "form"),
    [(0, "яблок"), (1, "яблоко"), (2, "яблока"), (4, "яблока"), (5, "яблок"), (11, "яблок"),
     (12, "яблок"), (14, "яблок"), (21, "яблоко"), (22, "яблока"), (25, "яблок"), (101, "яблоко"),
     (111, "яблок"), (112, "яблок"), (122, "яблока"), (1001, "яблоко")],
)
def test_ru_plural(n, form):
    assert ru_plural(n, "яблоко", "яблока", "яблок") == form


def test_russian_agreement_in_texts():
    ps = generate_synthetic(400, seed=0, langs=["ru"])
    text = " ".join(p.question + " " + p.solution for p in ps)
    # In nominative/accusative frames numbers ending in 2-4 (not 12-14) take the genitive singular,
    # 1, 21 ... (not 11) the singular, the rest the genitive plural. After "в течение" (genitive)
    # everything but 1, 21 ... takes the genitive plural, so those matches are checked separately.
    for m in re.finditer(r"(в течение )?(\d+) (пассажир\w*|доллар\w*|страниц\w*|книг\w*|апельсин\w*|"
                         r"дн\w+|дня|день|недел\w+)", text):
        n, word = int(m.group(2)), m.group(3)
        if m.group(1):
            assert word == ru_plural(n, "дня", "дней", "дней"), m.group(0)
            continue
        few_forms = {"пассажира", "доллара", "страницы", "книги", "апельсина", "дня", "недели"}
        many_forms = {"пассажиров", "долларов", "страниц", "книг", "апельсинов", "дней", "недель"}
        one_forms = {"пассажир", "доллар", "страница", "страницу", "книга", "книгу", "апельсин", "день",
                     "неделя", "неделю"}
        expected = ru_plural(n, "one", "few", "many")
        if word in few_forms | many_forms | one_forms:
            got = "few" if word in few_forms else "many" if word in many_forms else "one"
            assert got == expected, m.group(0)


def test_english_plural_agreement(problems):
    for p in problems:
        if p.lang != "en":
            continue
        for m in re.finditer(r"\b(\d+) (oranges?|pencils?|books?|balls?|cand(?:y|ies)|eggs?|mango(?:es)?|"
                             r"dollars?|pages?|days?|weeks?|boxes|box|bags?|trays?)\b", p.question + p.solution):
            singular = m.group(1) == "1"
            assert singular == (m.group(2) in {"orange", "pencil", "book", "ball", "candy", "egg", "mango",
                                               "dollar", "page", "day", "week", "box", "bag", "tray"}), m.group(0)


def test_french_elision(problems):
    for p in problems:
        if p.lang == "fr":
            assert not re.search(r"\bde [aeiouœ]", p.question + p.solution), p.question
            assert not re.search(r"\bque [aeiouœ]", p.question + p.solution), p.question


# ---------------------------------------------------------------------------------------- errors


def test_language_selection_and_errors():
    ps = generate_synthetic(3, seed=0, langs=["German", "zh"])
    assert [p.lang for p in ps[:2]] == ["de", "zh"]
    with pytest.raises(ValueError):
        generate_synthetic(3, langs=["ko"])  # a known language the set does not have
    with pytest.raises(KeyError):
        generate_synthetic(3, langs=["xx"])
    with pytest.raises(ValueError):
        generate_synthetic(3, levels=[5])
    with pytest.raises(ValueError):
        generate_synthetic(-1)
    assert generate_synthetic(0) == []
