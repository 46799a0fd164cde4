"""``synthetic``: pivotrl's own parallel multilingual arithmetic word problems (the embedded default set).

Every problem is generated once (names, objects, numbers) and then written in each language from
hand-made templates, so the versions are parallel: the same people, the same things, the same numbers and
the same gold answer. Each record also carries a short worked solution in its language that shows the
arithmetic and ends with the registry's answer sentence (``get_language(lang).answer_sentence(n)``); the
English solution serves as a gold pivot reference, the others as labelled baselines.

Difficulty levels
-----------------
1. One step, addition or subtraction, every operand at most 20
   ("Tom has 3 oranges and buys 10 more. How many oranges does Tom have now?").
2. One step: addition or subtraction up to 100, multiplication, or division without remainder.
3. Two steps with small numbers ("buys 4 bags with 6 balls in each bag and gives 5 away").
4. Two steps with larger numbers (intermediate and final results up to a few thousand).

Within a level the number ranges widen over its first problems (``_RAMP``), so the first problem of each
level is very easy; every answer and every intermediate result is a non-negative integer (in fact at
least 2, which keeps plural nouns plural in every language).

Templates (``meta["template"]``)
--------------------------------
One step (levels 1-2): ``buy_more`` (a + b), ``give_away`` (a - b), ``together`` (a + b, two people);
level 2 only: ``boxes`` (a x b), ``share`` (a / b among children), ``pages_per_day`` (a x b),
``price`` (quantity x unit price).
Two steps (levels 3-4): ``bags_give_away`` (a x b - c), ``bus`` (passengers a - b + c; a train at
level 4), ``savings`` (s + a x w), ``change`` (bill - quantity x price), ``book_left`` (pages - a x b),
``bake_share`` (trays x rolls / children).

Languages: English, German, Spanish, French, Russian, Chinese, Japanese and Swahili. Numbers are always
written as digits. Plural and case agreement is handled per language (see the noun tables and the
``_en``/``_de``/``_es``/``_fr``/``_ru``/``_zh``/``_ja``/``_sw`` helpers); Russian numeral agreement goes
through :func:`ru_plural`.
"""

from __future__ import annotations

import ast
import operator
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from pivotrl.data.synthetic.grammar import _OBJECTS, _PEOPLE, Texts, _Ctx, ru_plural
from pivotrl.data.synthetic.templates import (
    _render_bags_give_away,
    _render_bake_share,
    _render_book_left,
    _render_boxes,
    _render_bus,
    _render_buy_more,
    _render_change,
    _render_give_away,
    _render_pages_per_day,
    _render_price,
    _render_savings,
    _render_share,
    _render_together,
)
from pivotrl.languages import get_language
from pivotrl.records import Problem

__all__ = ["LEVELS", "SYNTHETIC_LANGS", "generate_synthetic", "ru_plural"]

SYNTHETIC_LANGS: tuple[str, ...] = ("en", "de", "es", "fr", "ru", "zh", "ja", "sw")
LEVELS: tuple[int, ...] = (1, 2, 3, 4)

# Number of problems of a level over which its number ranges grow from "very easy" to the full range.
_RAMP = 16

# Operator signs follow each language's school arithmetic: German and Russian write "3 · 4" and "12 : 4",
# the others "3 × 4" and "12 ÷ 4".


# ----------------------------------------------------------------------------------------- sampling

Sampler = Callable[[random.Random, int, float], dict[str, int]]


def _draw(rng: random.Random, lo: int, hi_easy: int, hi_full: int, p: float) -> int:
    """An integer in [lo, hi], where hi grows from hi_easy to hi_full as p goes from 0 to 1."""
    hi = hi_easy + round(p * (hi_full - hi_easy))
    return rng.randint(lo, max(lo, hi))


def _sample_buy_more(rng: random.Random, level: int, p: float) -> dict[str, int]:
    if level == 1:
        return {"a": _draw(rng, 2, 5, 18, p), "b": _draw(rng, 2, 5, 18, p)}
    return {"a": _draw(rng, 11, 40, 70, p), "b": _draw(rng, 11, 20, 30, p)}


def _sample_give_away(rng: random.Random, level: int, p: float) -> dict[str, int]:
    if level == 1:
        a = _draw(rng, 5, 9, 20, p)
        return {"a": a, "b": rng.randint(2, a - 2)}
    a = _draw(rng, 30, 50, 99, p)
    return {"a": a, "b": rng.randint(11, a - 10)}


def _sample_together(rng: random.Random, level: int, p: float) -> dict[str, int]:
    if level == 1:
        return {"a": _draw(rng, 2, 5, 18, p), "b": _draw(rng, 2, 5, 18, p)}
    return {"a": _draw(rng, 11, 40, 60, p), "b": _draw(rng, 11, 25, 39, p)}


def _sample_boxes(rng: random.Random, level: int, p: float) -> dict[str, int]:
    return {"a": _draw(rng, 2, 4, 9, p), "b": _draw(rng, 2, 5, 12, p)}


def _sample_share(rng: random.Random, level: int, p: float) -> dict[str, int]:
    b = _draw(rng, 2, 3, 6, p)
    r = _draw(rng, 2, 5, 12, p)
    return {"a": b * r, "b": b}


def _sample_pages_per_day(rng: random.Random, level: int, p: float) -> dict[str, int]:
    return {"a": _draw(rng, 5, 10, 40, p), "b": _draw(rng, 2, 4, 9, p)}


def _sample_price(rng: random.Random, level: int, p: float) -> dict[str, int]:
    return {"q": _draw(rng, 2, 4, 9, p), "c": _draw(rng, 2, 5, 15, p)}


def _sample_bags_give_away(rng: random.Random, level: int, p: float) -> dict[str, int]:
    if level == 3:
        a, b = _draw(rng, 2, 4, 8, p), _draw(rng, 3, 6, 12, p)
        return {"a": a, "b": b, "c": rng.randint(2, 2 * a * b // 3)}  # gives away at most two thirds
    a, b = _draw(rng, 10, 15, 40, p), _draw(rng, 12, 20, 50, p)
    return {"a": a, "b": b, "c": rng.randint(10, 2 * a * b // 3)}


def _sample_bus(rng: random.Random, level: int, p: float) -> dict[str, int]:
    if level == 3:
        a = _draw(rng, 10, 20, 50, p)
        return {"a": a, "b": rng.randint(2, 2 * a // 3), "c": _draw(rng, 2, 10, 25, p)}
    a = _draw(rng, 100, 300, 900, p)
    return {"a": a, "b": rng.randint(20, 2 * a // 3), "c": _draw(rng, 20, 100, 400, p)}


def _sample_savings(rng: random.Random, level: int, p: float) -> dict[str, int]:
    if level == 3:
        return {"s": _draw(rng, 5, 20, 60, p), "a": _draw(rng, 2, 5, 15, p), "w": _draw(rng, 2, 4, 10, p)}
    return {"s": _draw(rng, 100, 300, 900, p), "a": _draw(rng, 15, 30, 90, p), "w": _draw(rng, 10, 20, 52, p)}


def _sample_change(rng: random.Random, level: int, p: float) -> dict[str, int]:
    if level == 3:
        q, c = _draw(rng, 2, 3, 6, p), _draw(rng, 2, 5, 12, p)
        bills = (10, 20, 50, 100)
    else:
        q, c = _draw(rng, 3, 6, 15, p), _draw(rng, 10, 25, 99, p)
        bills = (100, 200, 500, 1000, 2000)
    bill = next(x for x in bills if x >= q * c + 2)  # change of at least 2 dollars
    return {"q": q, "c": c, "p": bill}


def _sample_book_left(rng: random.Random, level: int, p: float) -> dict[str, int]:
    if level == 3:
        a, b = _draw(rng, 5, 10, 25, p), _draw(rng, 2, 3, 7, p)
        return {"t": a * b + _draw(rng, 2, 20, 80, p), "a": a, "b": b}
    a, b = _draw(rng, 15, 25, 60, p), _draw(rng, 5, 10, 20, p)
    return {"t": a * b + _draw(rng, 20, 100, 600, p), "a": a, "b": b}


def _sample_bake_share(rng: random.Random, level: int, p: float) -> dict[str, int]:
    if level == 3:
        a, b = _draw(rng, 2, 3, 5, p), _draw(rng, 4, 8, 12, p)
        lo, hi = 2, 8
    else:
        a, b = _draw(rng, 4, 8, 20, p), _draw(rng, 12, 16, 36, p)
        lo, hi = 3, 15
    # Children: a divisor of the number of rolls, so that every child gets a whole number (at least 2).
    # Prefer a number of children other than the number of trays: with c == a each child simply gets
    # one tray, and the second step is trivial.
    total = a * b
    options = [k for k in range(lo, hi + 1) if total % k == 0 and total // k >= 2]
    better = [k for k in options if k != a and total // k != a]
    return {"a": a, "b": b, "c": rng.choice(better or options or [a])}


@dataclass(frozen=True)
class _Template:
    name: str
    steps: int
    expression: str  # over the operand names, e.g. "a*b-c"
    operands: tuple[str, ...]  # order of meta["operands"]
    sample: Sampler
    render: Callable[[_Ctx], Texts]
    objects: tuple[str, ...] = ()  # keys of _OBJECTS the story can use; () = no object slot


_ALL_OBJECTS = tuple(_OBJECTS)
_T = {t.name: t for t in (
    _Template("buy_more", 1, "a+b", ("a", "b"), _sample_buy_more, _render_buy_more, _ALL_OBJECTS),
    _Template("give_away", 1, "a-b", ("a", "b"), _sample_give_away, _render_give_away, _ALL_OBJECTS),
    _Template("together", 1, "a+b", ("a", "b"), _sample_together, _render_together, _ALL_OBJECTS),
    _Template("boxes", 1, "a*b", ("a", "b"), _sample_boxes, _render_boxes, _ALL_OBJECTS),
    _Template("share", 1, "a/b", ("a", "b"), _sample_share, _render_share, _ALL_OBJECTS),
    _Template("pages_per_day", 1, "a*b", ("a", "b"), _sample_pages_per_day, _render_pages_per_day),
    _Template("price", 1, "q*c", ("q", "c"), _sample_price, _render_price,
              ("pencil", "book", "ball", "mango")),
    _Template("bags_give_away", 2, "a*b-c", ("a", "b", "c"), _sample_bags_give_away, _render_bags_give_away,
              ("orange", "pencil", "ball", "candy", "mango")),
    _Template("bus", 2, "a-b+c", ("a", "b", "c"), _sample_bus, _render_bus),
    _Template("savings", 2, "s+a*w", ("s", "a", "w"), _sample_savings, _render_savings),
    _Template("change", 2, "p-q*c", ("p", "q", "c"), _sample_change, _render_change,
              ("pencil", "book", "ball", "mango")),
    _Template("book_left", 2, "t-a*b", ("t", "a", "b"), _sample_book_left, _render_book_left),
    _Template("bake_share", 2, "a*b/c", ("a", "b", "c"), _sample_bake_share, _render_bake_share),
)}

# Templates per level; the first one of each list opens the level (its easiest story).
_LEVEL_TEMPLATES: dict[int, tuple[str, ...]] = {
    1: ("buy_more", "give_away", "together"),
    2: ("boxes", "buy_more", "give_away", "together", "share", "pages_per_day", "price"),
    3: ("bags_give_away", "bus", "savings", "change", "book_left", "bake_share"),
    4: ("bags_give_away", "bus", "savings", "change", "book_left", "bake_share"),
}


# ------------------------------------------------------------------------------------- evaluation

_OPS: dict[type, Callable[[Any, Any], Any]] = {
    ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul, ast.Div: operator.truediv,
}


def _evaluate(expression: str) -> int:
    """Evaluate "4*6-5" (integers and + - * / only); the result must be a whole number."""

    def ev(node: ast.AST) -> Any:
        if isinstance(node, ast.Expression):
            return ev(node.body)
        if isinstance(node, ast.Constant) and type(node.value) is int:
            return node.value
        if isinstance(node, ast.BinOp) and type(node.op) in _OPS:
            return _OPS[type(node.op)](ev(node.left), ev(node.right))
        raise ValueError(f"unsupported expression {expression!r}")

    value = ev(ast.parse(expression, mode="eval"))
    if value != int(value):
        raise ValueError(f"{expression!r} is not a whole number")
    return int(value)


def _fill(expression: str, values: dict[str, int]) -> str:
    return "".join(str(values[ch]) if ch.isalpha() else ch for ch in expression)


# -------------------------------------------------------------------------------------- generation


def _check_langs(langs: Sequence[str] | None) -> list[str]:
    if langs is None:
        return list(SYNTHETIC_LANGS)
    if isinstance(langs, str):
        langs = langs.split(",")
    codes: list[str] = []
    for item in langs:
        if not item.strip():
            continue
        code = get_language(item).code
        if code not in SYNTHETIC_LANGS:
            raise ValueError(f"the synthetic set has no language {code!r}; it has {', '.join(SYNTHETIC_LANGS)}")
        if code not in codes:
            codes.append(code)
    if not codes:
        raise ValueError("no languages given")
    return codes


def _check_levels(levels: Sequence[int]) -> list[int]:
    out: list[int] = []
    for level in levels:
        if level not in LEVELS:
            raise ValueError(f"unknown synthetic level {level!r}; levels are {', '.join(map(str, LEVELS))}")
        if level not in out:
            out.append(level)
    if not out:
        raise ValueError("no levels given")
    return out


def generate_synthetic(
    n: int = 200,
    *,
    langs: Sequence[str] | None = None,
    seed: int = 0,
    levels: Sequence[int] = LEVELS,
) -> list[Problem]:
    """Generate ``n`` parallel word problems, each written in every language of ``langs``.

    Returns ``n * len(langs)`` records ordered by problem, then language. Levels are cycled in the given
    order (problem i has level ``levels[i % len(levels)]``). The output depends only on ``seed``,
    ``levels`` and the problem index: the same seed gives the same problems, a larger ``n`` extends the
    list, and asking for fewer languages gives the same problems in those languages. The ``id``
    (``synthetic-s{seed}-{i:05d}``) is shared by the languages of a problem.
    """
    if n < 0:
        raise ValueError(f"n must be non-negative, got {n}")
    codes = _check_langs(langs)
    level_list = _check_levels(levels)
    rng = random.Random(seed)
    seen: dict[int, int] = {level: 0 for level in level_list}  # problems made so far, per level
    queues: dict[int, list[str]] = {level: [] for level in level_list}
    answer_sentences = {code: get_language(code).answer_sentence for code in codes}
    problems: list[Problem] = []
    for i in range(n):
        level = level_list[i % len(level_list)]
        k = seen[level]
        seen[level] += 1
        progress = min(1.0, k / _RAMP)
        # Templates come in shuffled rounds, so every template of the level appears once per round;
        # the first round opens with the level's easiest story.
        if not queues[level]:
            names = list(_LEVEL_TEMPLATES[level])
            if k == 0:
                rest = names[1:]
                rng.shuffle(rest)
                names = names[:1] + rest
            else:
                rng.shuffle(names)
            queues[level] = names
        template = _T[queues[level].pop(0)]
        person = rng.choice(_PEOPLE)
        friend = rng.choice([x for x in _PEOPLE if x is not person])
        obj = _OBJECTS[rng.choice(template.objects)] if template.objects else _OBJECTS["orange"]
        values = template.sample(rng, level, progress)
        expression = _fill(template.expression, values)
        answer = _evaluate(expression)
        ctx = _Ctx(level, values, person, friend, obj)
        texts = template.render(ctx)
        meta_base = {
            "level": level,
            "template": template.name,
            "steps": template.steps,
            "expression": expression,
            "operands": [values[name] for name in template.operands],
        }
        pid = f"synthetic-s{seed}-{i:05d}"
        question_en = texts["en"][0]
        for code in codes:
            question, body = texts[code]
            sep = "" if code in ("zh", "ja") else " "
            problems.append(Problem(
                id=pid,
                lang=code,
                question=question,
                answer=str(answer),
                source="synthetic",
                answer_type="number",
                question_en=question_en,
                solution=f"{body}{sep}{answer_sentences[code](answer)}",
                meta={**meta_base, "operands": list(meta_base["operands"])},
            ))
    return problems
