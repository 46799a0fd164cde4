"""Stage 1 of the pipeline: reasoning problems in many languages, as :class:`~pivotrl.records.Problem` records.

``load_problems("mgsm", langs=["de", "zh"])`` is the one entry point; it knows the sets below and also takes
a path to your own JSON Lines / CSV / Parquet file.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from pivotrl.data.errors import DataError, DataFormatError
from pivotrl.data.files import SUFFIXES, load_file
from pivotrl.data.locate import ENV_VAR, find_local, resolve_data_dir
from pivotrl.data.splits import SPLITS, select_split, split_of
from pivotrl.languages import parse_langs
from pivotrl.records import Problem

__all__ = [
    "PROBLEM_SETS", "DataError", "DataFormatError", "ENV_VAR", "Problem", "ProblemSet", "SPLITS",
    "load_problems", "local_source", "resolve_data_dir", "split_of",
]


@dataclass(frozen=True)
class ProblemSet:
    name: str
    description: str
    langs: tuple[str, ...]
    answer_type: str
    hub_id: str | None  # where users with internet get it
    folder: str | None  # sub-folder of the data folder holding the local files
    pattern: str | None  # glob that marks the local files


def _sets() -> dict[str, ProblemSet]:
    from pivotrl.data import gsm8k, mgsm, mmlu_prox, msvamp
    from pivotrl.data.synthetic import SYNTHETIC_LANGS

    return {s.name: s for s in [
        ProblemSet("synthetic", "pivotrl's own parallel arithmetic word problems, levels 1-4 (embedded default)",
                   SYNTHETIC_LANGS, "number", None, None, None),
        ProblemSet("mgsm", "MGSM: 250 GSM8K test problems, human-translated", mgsm.LANGS, "number",
                   mgsm.HUB_ID, "mgsm", "mgsm_*.tsv"),
        ProblemSet("msvamp", "MSVAMP: 1000 SVAMP problems (1-2 steps), parallel", msvamp.LANGS, "number",
                   msvamp.HUB_ID, "msvamp", "test_*.json"),
        ProblemSet("gsm8k", "GSM8K: English, with gold worked solutions (--subset train|test)", gsm8k.LANGS,
                   "number", gsm8k.HUB_ID, "gsm8k", "*.jsonl"),
        ProblemSet("mmlu_prox", "MMLU-ProX: 10-option multiple choice, 11,829 questions per language",
                   mmlu_prox.LANGS, "choice", mmlu_prox.HUB_IDS["mmlu_prox"], "mmlu_prox", "*/*.parquet"),
        ProblemSet("mmlu_prox_lite", "MMLU-ProX Lite: 658 questions per language", mmlu_prox.LANGS, "choice",
                   mmlu_prox.HUB_IDS["mmlu_prox_lite"], "mmlu_prox_lite", "*/*.parquet"),
    ]}


PROBLEM_SETS: dict[str, ProblemSet] = _sets()


def local_source(name: str, data_dir: Path | None) -> Path | None:
    """The local folder a set would be read from, or None (embedded, or hub)."""
    ps = PROBLEM_SETS[name]
    if ps.pattern is None:
        return None
    return find_local(data_dir, ps.folder or name, ps.pattern)


def load_problems(
    name: str,
    langs: str | list[str] | None = None,
    *,
    split: str | None = "all",
    n: int | None = None,
    data_dir: str | Path | None = None,
    subset: str | None = None,
    seed: int = 0,
    held_out: float = 0.2,
    synthetic_size: int = 500,
    columns: dict[str, str] | None = None,
    answer_type: str = "number",
    levels: list[int] | None = None,
) -> list[Problem]:
    """Load a problem set (or a file) in the given languages.

    ``split`` is ``"all"``, ``"train"`` or ``"held-out"`` (a deterministic split by problem id, ``held_out``
    of the problems held out); ``n`` keeps the first n problems, the same ones in every language. ``subset``
    picks GSM8K's ``train``/``test`` file or MMLU-ProX's ``test``/``validation`` split. The data folder
    comes from ``data_dir`` or $PIVOTRL_DATA_DIR; without one, the sets are fetched from the hub.
    ``levels`` keeps only those difficulty levels of the synthetic set (before ``n`` is applied).
    """
    if levels and name != "synthetic":
        raise DataError(f"levels only applies to the synthetic set, not {name!r}")
    if n is not None and n < 1:
        raise DataError(f"n must be at least 1, got {n}")
    if name not in PROBLEM_SETS:
        path = Path(name)
        if path.suffix.lower() in SUFFIXES or path.exists() or path.is_symlink():  # load_file says what is wrong
            lang_list = parse_langs(langs)
            if len(lang_list) > 1:
                raise DataError("a file's language comes from its 'lang' column or one --lang value")
            problems = load_file(path, lang=lang_list[0] if lang_list else None, columns=columns,
                                 answer_type=answer_type)
            return _take(select_split(problems, split, held_out, seed), n)
        known = ", ".join(PROBLEM_SETS)
        raise DataError(f"unknown problem set {name!r}: expected one of {known}, or a path to a "
                        f"{'/'.join(s.lstrip('.') for s in SUFFIXES)} file")
    ps = PROBLEM_SETS[name]
    lang_list = parse_langs(langs, default=ps.langs)
    missing = [code for code in lang_list if code not in ps.langs]
    if missing:
        raise DataError(f"{name} has no language {', '.join(missing)}; it has {', '.join(ps.langs)}")
    folder = resolve_data_dir(data_dir)
    if name == "synthetic":
        from pivotrl.data.synthetic import generate_synthetic

        problems = generate_synthetic(synthetic_size, langs=lang_list, seed=seed)
        if levels:
            wanted = {int(x) for x in levels}
            problems = [p for p in problems if int(p.meta.get("level", 0)) in wanted]
    elif name == "mgsm":
        from pivotrl.data.mgsm import load_mgsm

        problems = load_mgsm(lang_list, folder)
    elif name == "msvamp":
        from pivotrl.data.msvamp import load_msvamp

        problems = load_msvamp(lang_list, folder)
    elif name == "gsm8k":
        from pivotrl.data.gsm8k import load_gsm8k

        problems = load_gsm8k(lang_list, folder, part=subset or "train")
    else:
        from pivotrl.data.mmlu_prox import load_mmlu_prox

        problems = load_mmlu_prox(lang_list, folder, source=name, split=subset or "test")
    return _take(select_split(problems, split, held_out, seed), n)


def _take(problems: list[Problem], n: int | None) -> list[Problem]:
    """The first n problem ids (in order of appearance), with every language of each."""
    if n is None:
        return problems
    keep: dict[str, None] = {}
    for p in problems:
        if p.id not in keep:
            if len(keep) == n:
                continue
            keep[p.id] = None
    return [p for p in problems if p.id in keep]
