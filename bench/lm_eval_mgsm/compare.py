"""Compare `pivotrl eval` with lm-evaluation-harness on MGSM native CoT, item by item, and their cost.

    python3 bench/lm_eval_mgsm/compare.py --lm-eval out/lm_eval_bs4 --pivotrl out/pivotrl_bs4 [--check]

Inputs
  --lm-eval DIR   lm-eval's --output_path: the per-task samples_mgsm_local_native_cot_{lang}_*.jsonl (also
                  accepted: samples_mgsm_native_cot_{lang}_*.jsonl from a hub run) and timing.json.
  --pivotrl DIR   a `pivotrl eval` run folder: generations.jsonl and timing.json.
Items are matched by (language, line index of mgsm_{lang}.tsv): lm-eval's doc_id, pivotrl's id mgsm-{i:03d}.

Outputs (markdown): the summary on stdout and in OUT/summary.md, every disagreement in OUT/disagreements.md,
and the same numbers as JSON in OUT/comparison.json (OUT: --out-dir, default bench/lm_eval_mgsm/out).

Agreement of an extraction: both sides denote the same number, or neither found one. lm-eval's filtered
string is read as a number after removing "," and "$" and trailing "."; "[invalid]" (its fallback) and a
string that is still not a number (".." or "1.1.2", which the flexible regex can match) mean "none".
pivotrl's strict/flexible are canonical numbers ("1080", "-3", "2.5") or null.
Accuracy is each tool's own verdict: lm-eval's exact_match per filter, pivotrl's correct_strict /
correct_flexible. Standard library only: runs with any Python 3.9+.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from fractions import Fraction
from pathlib import Path

HERE = Path(__file__).resolve().parent
INVALID = "[invalid]"
SAMPLES_RE = re.compile(r"^samples_mgsm_(?:local_)?native_cot_([a-z]{2})_(.+)\.jsonl$")
ID_RE = re.compile(r"^mgsm-(\d+)$")

# lm-eval 0.4.13's strict-match phrases (tasks/mgsm/native_cot/*.yaml) and what must follow the number.
# bn's strict regex is the English phrase in lm-eval.
LM_EVAL_STRICT = {
    "bn": ("The answer is", ""), "de": ("Die Antwort lautet", ""), "en": ("The answer is", ""),
    "es": ("La respuesta es", ""), "fr": ("La réponse est", ""), "ja": ("答えは", "です。"),
    "ru": ("Ответ —", ""), "sw": ("Jibu ni", ""), "te": ("సమాధానం", ""), "th": ("คำตอบคือ", ""),
    "zh": ("答案是", "。"),
}
# Answer sentences other than lm-eval's that a model plausibly writes (used only to name a category).
ALTERNATE_PHRASES = {
    "bn": ["উত্তর হল", "উত্তর হলো", "উত্তর"], "de": ["Die Antwort ist", "Antwort:"],
    "en": ["The final answer is", "Answer:"], "es": ["La respuesta final es", "Respuesta:"],
    "fr": ["La réponse finale est", "Réponse :"], "ja": ["答え：", "答え:"],
    "ru": ["Ответ:", "Ответ -", "Ответ –"], "sw": ["Jibu:"], "te": ["సమాధానం:"], "th": ["คำตอบ:"],
    "zh": ["答案：", "答案:", "答案为"],
}
ENGLISH_PHRASE = "The answer is"


# ----------------------------------------------------------------------------------------- numbers


def lm_eval_number(filtered: str | None) -> tuple[Fraction | None, str]:
    """(value, status) of an lm-eval filtered answer: status is 'number', 'invalid' (its fallback: nothing
    matched) or 'not-a-number' (the regex matched something that is not a number once normalised)."""
    if filtered is None or filtered.strip() == INVALID:
        return None, "invalid"
    text = filtered.strip().replace(",", "").replace("$", "").rstrip(".")
    value = parse_plain_number(text)
    return (value, "number") if value is not None else (None, "not-a-number")


def parse_plain_number(text: str | None) -> Fraction | None:
    if text is None:
        return None
    text = text.strip()
    if not re.fullmatch(r"[-+]?(\d+(\.\d*)?|\.\d+)(/\d+)?", text):
        return None
    try:
        if "/" in text:
            return Fraction(text)
        return Fraction(Decimal(text))
    except (InvalidOperation, ValueError, ZeroDivisionError):
        return None


def fmt_value(value: Fraction | None) -> str:
    if value is None:
        return "none"
    if value.denominator == 1:
        return str(value.numerator)
    return str(Decimal(value.numerator) / Decimal(value.denominator))


# ----------------------------------------------------------------------------------------- loading


@dataclass
class Item:
    lang: str
    index: int
    prompt: str
    response: str
    gold: str
    strict_raw: str | None  # lm-eval: filtered string; pivotrl: canonical number or None
    flexible_raw: str | None
    strict: Fraction | None
    flexible: Fraction | None
    correct_strict: bool
    correct_flexible: bool
    extra: dict = field(default_factory=dict)


def find_samples(folder: Path) -> dict[str, Path]:
    """Newest samples file per language under an lm-eval output folder."""
    found: dict[str, tuple[str, Path]] = {}
    for path in folder.rglob("samples_*.jsonl"):
        m = SAMPLES_RE.match(path.name)
        if not m:
            continue
        lang, stamp = m.group(1), m.group(2)
        if lang not in found or stamp > found[lang][0]:
            found[lang] = (stamp, path)
    return {lang: p for lang, (_, p) in sorted(found.items())}


def load_lm_eval(folder: Path) -> dict[tuple[str, int], Item]:
    files = find_samples(folder)
    if not files:
        raise SystemExit(f"compare.py: no samples_mgsm_*native_cot_*.jsonl under {folder} "
                         "(run lm_eval with --log_samples)")
    items: dict[tuple[str, int], Item] = {}
    for lang, path in files.items():
        rows: dict[int, dict[str, dict]] = defaultdict(dict)
        with open(path, encoding="utf-8") as f:
            for line in f:
                if line.strip():
                    row = json.loads(line)
                    rows[int(row["doc_id"])][row.get("filter", "none")] = row
        for doc_id, by_filter in sorted(rows.items()):
            if "strict-match" not in by_filter or "flexible-extract" not in by_filter:
                raise SystemExit(f"compare.py: {path}: doc {doc_id} lacks a strict-match or flexible-extract row "
                                 f"(filters: {sorted(by_filter)})")
            strict_row, flex_row = by_filter["strict-match"], by_filter["flexible-extract"]
            args = strict_row["arguments"]
            first = args["gen_args_0"] if isinstance(args, dict) else args[0]
            prompt = first["arg_0"] if isinstance(first, dict) else first[0]
            gen_kwargs = first.get("arg_1") if isinstance(first, dict) else first[1]
            response = strict_row["resps"][0][0]
            if flex_row["resps"][0][0] != response:
                raise SystemExit(f"compare.py: {path}: doc {doc_id}: the two filter rows hold different responses")
            s_raw, f_raw = _first(strict_row["filtered_resps"]), _first(flex_row["filtered_resps"])
            items[(lang, doc_id)] = Item(
                lang=lang, index=doc_id, prompt=prompt, response=response, gold=str(strict_row["target"]),
                strict_raw=s_raw, flexible_raw=f_raw,
                strict=lm_eval_number(s_raw)[0], flexible=lm_eval_number(f_raw)[0],
                correct_strict=float(strict_row["exact_match"]) == 1.0,
                correct_flexible=float(flex_row["exact_match"]) == 1.0,
                extra={"doc": strict_row["doc"], "gen_kwargs": gen_kwargs, "file": str(path)},
            )
    return items


def _first(filtered) -> str | None:
    while isinstance(filtered, list):
        if not filtered:
            return None
        filtered = filtered[0]
    return filtered


def load_pivotrl(folder: Path) -> dict[tuple[str, int], Item]:
    path = folder / "generations.jsonl" if folder.is_dir() else folder
    if not path.is_file():
        raise SystemExit(f"compare.py: no {path}")
    items: dict[tuple[str, int], Item] = {}
    with open(path, encoding="utf-8") as f:
        for lineno, line in enumerate(f, start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError:
                print(f"compare.py: {path}:{lineno}: unreadable line skipped (a run killed mid-write?)",
                      file=sys.stderr)
                continue
            if int(row.get("sample", 0)) != 0:
                continue
            m = ID_RE.match(str(row["id"]))
            if not m:
                continue
            key = (row["lang"], int(m.group(1)))
            items[key] = Item(
                lang=row["lang"], index=key[1], prompt=row["prompt"], response=row["response"], gold=str(row["gold"]),
                strict_raw=row.get("strict"), flexible_raw=row.get("flexible"),
                strict=parse_plain_number(row.get("strict")), flexible=parse_plain_number(row.get("flexible")),
                correct_strict=bool(row["correct_strict"]), correct_flexible=bool(row["correct_flexible"]),
                extra={k: row[k] for k in ("n_tokens", "detected_lang") if k in row},
            )
    return items


def check_against_data(items: dict[tuple[str, int], Item], data_dir: Path | None) -> list[str]:
    """lm-eval's docs must be line doc_id of mgsm_{lang}.tsv; say so when they are not."""
    if data_dir is None:
        return []
    folder = data_dir / "mgsm" if (data_dir / "mgsm").is_dir() else data_dir
    problems = []
    cache: dict[str, list[str]] = {}
    for (lang, i), item in items.items():
        if lang not in cache:
            tsv = folder / f"mgsm_{lang}.tsv"
            if not tsv.is_file():
                continue
            cache[lang] = [ln.split("\t")[0] for ln in tsv.read_text(encoding="utf-8").splitlines()]
        doc = item.extra.get("doc") or {}
        if i >= len(cache[lang]) or doc.get("question") != cache[lang][i]:
            problems.append(f"{lang} doc {i}: lm-eval's question is not line {i} of mgsm_{lang}.tsv")
    return problems


# ----------------------------------------------------------------------------------------- categories
# A category is "label" or "label — detail": the summary counts labels, disagreements.md shows both.

SEP = " — "


def same(a: Fraction | None, b: Fraction | None) -> bool:
    return a == b


def has_foreign_digits(text: str) -> bool:
    return any(ch.isdigit() and not ch.isascii() for ch in text)


def generation_category(lm: Item, pv: Item) -> str | None:
    if lm.prompt != pv.prompt:
        return "different prompt"
    a, b = lm.response.strip(), pv.response.strip()
    if a == b:
        return None
    if b.startswith(a):
        return "different generation: pivotrl's goes on past lm-eval's end (stop strings / EOS / token budget)"
    if a.startswith(b):
        return "different generation: pivotrl's ends before lm-eval's (stop strings / EOS / token budget)"
    k = next((j for j, (x, y) in enumerate(zip(a, b)) if x != y), min(len(a), len(b)))
    return f"different generation{SEP}first difference at character {k} of {len(a)}"


def strict_category(lang: str, lm: Item, pv: Item) -> str:
    text = lm.response
    phrase, tail = LM_EVAL_STRICT.get(lang, (ENGLISH_PHRASE, ""))
    if lm.strict is None and pv.strict is not None:
        if lm_eval_number(lm.strict_raw)[1] == "not-a-number":
            return f"lm-eval's strict match is not a number{SEP}'{lm.strict_raw}'; pivotrl reads {pv.strict_raw}"
        if tail and phrase in text and not re.search(re.escape(phrase) + r"\s?-?[0-9.,]+" + re.escape(tail), text):
            return f"lm-eval's strict regex needs '{tail}' right after the number ({lang}); pivotrl does not"
        if phrase in text:
            return (f"pivotrl reads the number after '{phrase}' in a form lm-eval's [0-9.,] regex does not"
                    f"{SEP}spacing, currency sign, native or full-width digits")
        if phrase.lower() in text.lower():
            return f"pivotrl matches '{phrase}' ignoring case; lm-eval's regex is case-sensitive"
        if re.search(r"\s+".join(map(re.escape, phrase.split())), text, flags=re.IGNORECASE):
            return f"pivotrl matches '{phrase}' with other spacing; lm-eval needs single spaces"
        if lang not in ("en", "bn") and ENGLISH_PHRASE.lower() in text.lower():
            return f"pivotrl accepts the English phrase '{ENGLISH_PHRASE}'"
        if lang == "bn":
            return "lm-eval's bn strict regex is English ('The answer is'); pivotrl accepts a Bengali phrase"
        for alt in ALTERNATE_PHRASES.get(lang, []):
            if alt.lower() in text.lower():
                return f"pivotrl accepts the alternate phrase '{alt}'"
        return (f"pivotrl found an answer phrase lm-eval's strict regex does not accept"
                f"{SEP}pivotrl reads {pv.strict_raw}")
    if lm.strict is not None and pv.strict is None:
        return f"pivotrl rejects lm-eval's strict match{SEP}'{lm.strict_raw}'"
    return number_category(lm.strict_raw, pv.strict_raw, text)


def flexible_category(lm: Item, pv: Item) -> str:
    text = lm.response
    raw = lm.flexible_raw
    if lm_eval_number(raw)[1] == "not-a-number":
        if raw is not None and not any(ch.isdigit() for ch in raw):
            return f"lm-eval flexible regex matched punctuation only{SEP}'{raw}'; pivotrl reads {pv.flexible_raw}"
        return f"lm-eval flexible regex matched a non-number{SEP}'{raw}'; pivotrl reads {pv.flexible_raw}"
    if lm.flexible is None and pv.flexible is not None:
        if has_foreign_digits(text):
            return (f"pivotrl reads native or full-width digits; lm-eval's regex only [0-9]"
                    f"{SEP}pivotrl reads {pv.flexible_raw}")
        return f"pivotrl found a number lm-eval's flexible regex does not{SEP}pivotrl reads {pv.flexible_raw}"
    if lm.flexible is not None and pv.flexible is None:
        return f"pivotrl rejects lm-eval's flexible match{SEP}'{raw}'"
    return number_category(raw, pv.flexible_raw, text)


def number_category(lm_raw: str | None, pv_raw: str | None, text: str) -> str:
    """Both sides found a number, different ones."""
    lm_raw = (lm_raw or "").strip()
    detail = f"{SEP}lm-eval '{lm_raw}' (read as {fmt_value(lm_eval_number(lm_raw)[0])}) vs pivotrl {pv_raw}"
    pv_value = parse_plain_number(pv_raw)
    digits_lm = re.sub(r"\D", "", lm_raw).lstrip("0")
    digits_pv = re.sub(r"\D", "", pv_raw or "").lstrip("0")
    if re.search(r"\d[.,]\d", lm_raw) and digits_lm == digits_pv:
        return "number formatting: lm-eval string vs pivotrl numeric (separators read differently)" + detail
    if pv_value is not None and pv_value.denominator != 1 and re.search(r"\d\s?/\s?\d", text):
        return "pivotrl reads a fraction a/b; lm-eval a plain number" + detail
    if re.search(r"\d[ \u00a0\u202f]\d{3}(?!\d)", text) and digits_pv.startswith(digits_lm):
        return "pivotrl reads space-grouped thousands; lm-eval's regex stops at the space" + detail
    if has_foreign_digits(text):
        return "pivotrl reads native or full-width digits; lm-eval's regex only [0-9]" + detail
    if pv_raw and pv_raw.startswith("-") != lm_raw.startswith("-") and digits_lm == digits_pv:
        return "sign read differently (a dash before the number)" + detail
    return "different number chosen" + detail


def scoring_category(lm: Item, pv: Item, which: str) -> str:
    lm_raw = lm.strict_raw if which == "strict" else lm.flexible_raw
    pv_raw = pv.strict_raw if which == "strict" else pv.flexible_raw
    return (f"{which}: scoring: same number, different verdict (lm-eval's exact_match compares strings with ASCII "
            f"punctuation removed; pivotrl compares values){SEP}lm-eval '{lm_raw}' vs gold '{lm.gold}', "
            f"pivotrl {pv_raw} vs gold {pv.gold}")


def label_of(category: str) -> str:
    return category.split(SEP)[0]


# ----------------------------------------------------------------------------------------- comparison


@dataclass
class LangStats:
    compared: int = 0
    same_prompt: int = 0
    same_generation: int = 0
    strict_agree: int = 0
    flexible_agree: int = 0
    lm_strict_correct: int = 0
    lm_flexible_correct: int = 0
    pv_strict_correct: int = 0
    pv_flexible_correct: int = 0
    gold_mismatch: int = 0


def compare(lm_items, pv_items):
    keys = sorted(set(lm_items) & set(pv_items))
    stats: dict[str, LangStats] = defaultdict(LangStats)
    disagreements = []
    different_generations = []
    for key in keys:
        lm, pv = lm_items[key], pv_items[key]
        s = stats[key[0]]
        s.compared += 1
        s.same_prompt += lm.prompt == pv.prompt
        s.same_generation += lm.response.strip() == pv.response.strip()
        s.lm_strict_correct += lm.correct_strict
        s.lm_flexible_correct += lm.correct_flexible
        s.pv_strict_correct += pv.correct_strict
        s.pv_flexible_correct += pv.correct_flexible
        s.gold_mismatch += parse_plain_number(lm.gold) != parse_plain_number(pv.gold)
        strict_ok = same(lm.strict, pv.strict)
        flex_ok = same(lm.flexible, pv.flexible)
        s.strict_agree += strict_ok
        s.flexible_agree += flex_ok
        strict_verdict_differs = lm.correct_strict != pv.correct_strict
        flex_verdict_differs = lm.correct_flexible != pv.correct_flexible
        gen_cat = generation_category(lm, pv)
        if strict_ok and flex_ok and not strict_verdict_differs and not flex_verdict_differs:
            if gen_cat:
                different_generations.append((key, gen_cat))
            continue
        cats = []
        if gen_cat:
            # Different input or output text: the extraction comparison says nothing about the extractors.
            cats.append(gen_cat)
        else:
            if not strict_ok:
                cats.append("strict: " + strict_category(key[0], lm, pv))
            elif strict_verdict_differs:
                cats.append(scoring_category(lm, pv, "strict"))
            if not flex_ok:
                cats.append("flexible: " + flexible_category(lm, pv))
            elif flex_verdict_differs:
                cats.append(scoring_category(lm, pv, "flexible"))
        disagreements.append({"key": key, "lm": lm, "pv": pv, "strict_agree": strict_ok, "flexible_agree": flex_ok,
                              "categories": cats})
    only_lm = sorted(set(lm_items) - set(pv_items))
    only_pv = sorted(set(pv_items) - set(lm_items))
    return keys, dict(sorted(stats.items())), disagreements, different_generations, only_lm, only_pv


# ----------------------------------------------------------------------------------------- timing


def load_timing(folder: Path) -> dict | None:
    path = folder / "timing.json"
    if not path.is_file():
        return None
    return json.loads(path.read_text(encoding="utf-8"))


def run_accuracy(items: dict) -> tuple[float | None, float | None]:
    if not items:
        return None, None
    vals = list(items.values())
    return (sum(i.correct_strict for i in vals) / len(vals), sum(i.correct_flexible for i in vals) / len(vals))


# ----------------------------------------------------------------------------------------- markdown


def pct(num: int | float, den: int | float) -> str:
    return f"{100.0 * num / den:.1f}%" if den else "n/a"


def acc(x: float | None) -> str:
    return f"{100.0 * x:.1f}" if x is not None else "n/a"


def md_table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def fence(text: str) -> str:
    ticks = "```"
    while ticks in text:
        ticks += "`"
    return f"{ticks}text\n{text}\n{ticks}"


def summary_markdown(args, keys, stats, disagreements, diff_gens, only_lm, only_pv, lm_items, pv_items,
                     lm_timing, pv_timing, data_problems) -> tuple[str, dict]:
    out = ["# pivotrl eval vs lm-evaluation-harness: MGSM native CoT", ""]
    out.append(f"lm-eval run: `{args.lm_eval}`; pivotrl run: `{args.pivotrl}`. Items are matched by (language, "
               "line of mgsm_{lang}.tsv).")
    if only_lm or only_pv:
        out.append(f"Not compared: {len(only_lm)} items only in lm-eval's run, {len(only_pv)} only in pivotrl's.")
    if data_problems:
        out.append(f"**Data check failed** for {len(data_problems)} lm-eval docs, e.g. {data_problems[0]}.")
    out.append("")

    total = LangStats()
    rows = []
    for s in stats.values():
        for f in total.__dataclass_fields__:
            setattr(total, f, getattr(total, f) + getattr(s, f))
    per = list(stats.items()) + ([("all", total)] if len(stats) > 1 else [])
    for lang, s in per:
        n = s.compared
        lm_s, lm_f = s.lm_strict_correct / n if n else 0, s.lm_flexible_correct / n if n else 0
        pv_s, pv_f = s.pv_strict_correct / n if n else 0, s.pv_flexible_correct / n if n else 0
        rows.append([f"**{lang}**" if lang == "all" else lang, n, pct(s.same_prompt, n), pct(s.same_generation, n),
                     pct(s.strict_agree, n), pct(s.flexible_agree, n),
                     acc(lm_s), acc(pv_s), f"{100 * (pv_s - lm_s):+.1f}",
                     acc(lm_f), acc(pv_f), f"{100 * (pv_f - lm_f):+.1f}"])
    out.append("## Item by item")
    out.append("")
    out.append(md_table(["lang", "items", "same prompt", "same generation", "strict agree", "flexible agree",
                         "strict acc lm-eval", "strict acc pivotrl", "Δ pts", "flex acc lm-eval",
                         "flex acc pivotrl", "Δ pts"], rows))
    out.append("")
    if total.gold_mismatch:
        out.append(f"**Gold answers differ** on {total.gold_mismatch} items (lm-eval target vs pivotrl gold).")
        out.append("")

    cat_counts = Counter(label_of(c) for d in disagreements for c in d["categories"])
    listing = args.out_dir / "disagreements.md"
    out.append(f"## Disagreements: {len(disagreements)} items (every one listed in `{listing}`)")
    out.append("")
    if cat_counts:
        out.append(md_table(["category", "items"], [[c, n] for c, n in cat_counts.most_common()]))
        out.append("")
    if diff_gens:
        shown = ", ".join(f"{k[0]}:{k[1]}" for k, _ in diff_gens[:20]) + (" ..." if len(diff_gens) > 20 else "")
        out.append(f"Generations differ but both extractions agree on {len(diff_gens)} more items ({shown}).")
        out.append("")

    # criteria
    n = total.compared
    checks = []
    if n:
        checks.append(("strict extraction agreement >= 98%", total.strict_agree / n >= 0.98,
                       pct(total.strict_agree, n)))
        checks.append(("flexible extraction agreement >= 98%", total.flexible_agree / n >= 0.98,
                       pct(total.flexible_agree, n)))
        gaps = [100.0 * abs(getattr(st, f"pv_{k}_correct") - getattr(st, f"lm_{k}_correct")) / st.compared
                for st in stats.values() if st.compared for k in ("strict", "flexible")]
        worst = max(gaps)
        checks.append(("per-language accuracy within 1 point (strict and flexible)", worst <= 1.0 + 1e-9,
                       f"largest gap {worst:.1f} pts"))
        uncategorised = [d for d in disagreements if not d["categories"]]
        checks.append(("every disagreement has a category", not uncategorised, f"{len(uncategorised)} without"))

    # timing
    out.append("## Cost")
    out.append("")
    trows = []
    lm_acc, pv_acc = run_accuracy(lm_items), run_accuracy(pv_items)
    speed = None
    for tool, t, (sa, fa) in (("lm-eval (hf)", lm_timing, lm_acc), ("pivotrl", pv_timing, pv_acc)):
        if t is None:
            trows.append([tool, "?", "n/a", "n/a", "n/a", "n/a", acc(sa), acc(fa)])
            continue
        rate = t["items"] / t["wall_s"] if t.get("wall_s") else None
        trows.append([tool, t.get("batch_size", "?"), t.get("items", "?"), f"{t['wall_s']:.1f}",
                      f"{t['peak_rss_mb']:.0f}", f"{rate:.3f}" if rate else "n/a", acc(sa), acc(fa)])
    if lm_timing and pv_timing and lm_timing.get("wall_s") and pv_timing.get("wall_s"):
        lm_rate = lm_timing["items"] / lm_timing["wall_s"]
        pv_rate = pv_timing["items"] / pv_timing["wall_s"]
        speed = pv_rate / lm_rate
    out.append(md_table(["tool", "batch size", "items", "wall s", "peak RSS MB", "items/s", "strict acc",
                         "flexible acc"], trows))
    out.append("")
    if speed is not None:
        same_items = lm_timing["items"] == pv_timing["items"]
        out.append(f"Speed ratio lm-eval / pivotrl ({'wall time' if same_items else 'time per item'}): "
                   f"**{speed:.2f}×** (pivotrl is {speed:.2f} times as fast).")
        checks.append(("pivotrl >= 2x faster than lm-eval's HF backend", speed >= 2.0, f"{speed:.2f}×"))
        for tool, t in (("lm-eval", lm_timing), ("pivotrl", pv_timing)):
            before = t.get("loadavg_1m_before")
            if before is not None and t.get("cpus") and before > 0.5 * t["cpus"]:
                out.append(f"Warning: the machine was busy when the {tool} run started (1-min load {before} on "
                           f"{t['cpus']} CPUs); its timing is not trustworthy.")
        if lm_timing.get("batch_size") != pv_timing.get("batch_size"):
            out.append(f"Note: different batch sizes ({lm_timing.get('batch_size')} vs {pv_timing.get('batch_size')}).")
    else:
        out.append("Speed ratio: n/a (a timing.json is missing).")
    out.append("")

    if checks:
        out.append("## Targets")
        out.append("")
        out.append(md_table(["target", "met", "value"], [[c, "yes" if ok else "**no**", v] for c, ok, v in checks]))
        out.append("")

    data = {
        "lm_eval_dir": str(args.lm_eval), "pivotrl_dir": str(args.pivotrl), "compared": len(keys),
        "only_lm_eval": [f"{k[0]}:{k[1]}" for k in only_lm], "only_pivotrl": [f"{k[0]}:{k[1]}" for k in only_pv],
        "per_lang": {lang: vars(s) for lang, s in per},
        "disagreements": [{"lang": d["key"][0], "index": d["key"][1], "categories": d["categories"]}
                          for d in disagreements],
        "timing": {"lm_eval": lm_timing, "pivotrl": pv_timing, "speed_ratio": speed},
        "targets": [{"target": c, "met": ok, "value": v} for c, ok, v in checks],
    }
    return "\n".join(out), data


def disagreements_markdown(disagreements, diff_gens, lm_items, pv_items) -> str:
    out = ["# Every disagreement between lm-eval and pivotrl", ""]
    if not disagreements:
        out.append("None: every compared item has the same strict and flexible extraction and the same verdicts.")
    for d in disagreements:
        lang, i = d["key"]
        lm, pv = d["lm"], d["pv"]
        out.append(f"## {lang} mgsm-{i:03d} (gold {lm.gold})")
        out.append("")
        for c in d["categories"]:
            out.append(f"- {c}")
        out.append("")
        rows = []
        for which in ("strict", "flexible"):
            lm_raw, lm_val, lm_ok = getattr(lm, f"{which}_raw"), getattr(lm, which), getattr(lm, f"correct_{which}")
            pv_raw, pv_ok = getattr(pv, f"{which}_raw"), getattr(pv, f"correct_{which}")
            rows.append([which, f"`{lm_raw}` → {fmt_value(lm_val)} ({'right' if lm_ok else 'wrong'})",
                         f"`{pv_raw}` ({'right' if pv_ok else 'wrong'})",
                         "yes" if d[f"{which}_agree"] else "**no**"])
        out.append(md_table(["", "lm-eval", "pivotrl", "agree"], rows))
        out.append("")
        if lm.prompt != pv.prompt:
            out.append("Prompts differ. lm-eval:")
            out.append(fence(lm.prompt))
            out.append("pivotrl:")
            out.append(fence(pv.prompt))
        if lm.response.strip() == pv.response.strip():
            out.append("Generation (identical):")
            out.append(fence(lm.response))
        else:
            out.append("lm-eval generation:")
            out.append(fence(lm.response))
            out.append("pivotrl generation:")
            out.append(fence(pv.response))
        out.append("")
    if diff_gens:
        out.append("# Different generations with agreeing extractions")
        out.append("")
        for (lang, i), cat in diff_gens:
            lm, pv = lm_items[(lang, i)], pv_items[(lang, i)]
            a, b = lm.response.strip(), pv.response.strip()
            k = next((j for j, (x, y) in enumerate(zip(a, b)) if x != y), min(len(a), len(b)))
            out.append(f"- {lang} mgsm-{i:03d}: {cat}; first difference at character {k}: "
                       f"lm-eval `{a[k:k + 40]!r}` vs pivotrl `{b[k:k + 40]!r}`")
        out.append("")
    return "\n".join(out)


def default_data_dir() -> Path | None:
    import os

    value = os.environ.get("PIVOTRL_DATA_DIR")
    path = Path(value) if value else HERE.parents[1].parent / "shared" / "data"
    return path if path.is_dir() else None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lm-eval", type=Path, default=HERE / "out" / "lm_eval_bs8", help="lm-eval output folder")
    parser.add_argument("--pivotrl", type=Path, default=HERE / "out" / "pivotrl_bs8", help="pivotrl run folder")
    parser.add_argument("--out-dir", type=Path, default=HERE / "out", help="where summary.md etc. go")
    parser.add_argument("--data-dir", type=Path, default=None,
                        help="check lm-eval's docs against the TSV files (default $PIVOTRL_DATA_DIR or ../shared/data)")
    parser.add_argument("--check", action="store_true", help="exit 1 when a target is missed")
    args = parser.parse_args(argv)

    lm_items = load_lm_eval(args.lm_eval)
    pv_items = load_pivotrl(args.pivotrl)
    data_problems = check_against_data(lm_items, args.data_dir or default_data_dir())
    keys, stats, disagreements, diff_gens, only_lm, only_pv = compare(lm_items, pv_items)
    if not keys:
        print("compare.py: no item is in both runs (check languages and -n / --limit)", file=sys.stderr)
    summary, data = summary_markdown(args, keys, stats, disagreements, diff_gens, only_lm, only_pv, lm_items,
                                     pv_items, load_timing(args.lm_eval), load_timing(args.pivotrl), data_problems)
    args.out_dir.mkdir(parents=True, exist_ok=True)
    (args.out_dir / "summary.md").write_text(summary + "\n", encoding="utf-8")
    (args.out_dir / "disagreements.md").write_text(
        disagreements_markdown(disagreements, diff_gens, lm_items, pv_items) + "\n", encoding="utf-8")
    (args.out_dir / "comparison.json").write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n",
                                                  encoding="utf-8")
    print(summary)
    if args.check and (not keys or not all(t["met"] for t in data["targets"]) or data_problems):
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
