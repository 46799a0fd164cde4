"""Keep tasks/ identical to lm-eval's own mgsm_native_cot_{lang} tasks except for where the data comes from.

Run with the bench venv:  .venv/bin/python check_tasks.py          (check; exit 1 on any difference)
                          .venv/bin/python check_tasks.py --write  (regenerate tasks/mgsm_local_native_cot_*.yaml)

--write copies each language's settings (doc_to_text, doc_to_target, filter_list, generation_kwargs) from the
installed lm-eval's tasks/mgsm/native_cot/mgsm_native_cot_{lang}.yaml into tasks/, pointing the task at
local_cot_base (custom_dataset) instead of cot_yaml (hub). The check resolves both sides' includes with
lm-eval's own yaml loader and compares every key; only task, tag, dataset_path, dataset_name,
dataset_kwargs and custom_dataset may differ.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import yaml

HERE = Path(__file__).resolve().parent
TASKS = HERE / "tasks"
ALLOWED_TO_DIFFER = {"task", "tag", "dataset_path", "dataset_name", "dataset_kwargs", "custom_dataset"}


def lm_eval_native_cot_dir() -> Path:
    import lm_eval

    return Path(lm_eval.__file__).resolve().parent / "tasks" / "mgsm" / "native_cot"


def languages() -> list[str]:
    prefix = "mgsm_native_cot_"
    return sorted(p.stem[len(prefix):] for p in lm_eval_native_cot_dir().glob(prefix + "*.yaml"))


def write(lang: str) -> Path:
    src = yaml.safe_load((lm_eval_native_cot_dir() / f"mgsm_native_cot_{lang}.yaml").read_text(encoding="utf-8"))
    assert src.get("include") == "cot_yaml", src.get("include")
    cfg: dict = {"task": f"mgsm_local_native_cot_{lang}", "include": "local_cot_base",
                 "dataset_kwargs": {"lang": src["dataset_name"]}}
    for key, value in src.items():
        if key not in ("task", "include", "dataset_name"):
            cfg[key] = value
    out = TASKS / f"mgsm_local_native_cot_{lang}.yaml"
    header = (f"# lm-eval 0.4.13's mgsm_native_cot_{lang}, reading the local mgsm_{lang}.tsv (see utils.py).\n"
              "# Written by check_tasks.py --write from the installed lm-eval; do not edit by hand.\n")
    out.write_text(header + yaml.safe_dump(cfg, allow_unicode=True, sort_keys=False, width=1000), encoding="utf-8")
    return out


def check(lang: str) -> list[str]:
    from lm_eval.tasks._yaml_loader import load_yaml

    theirs = load_yaml(lm_eval_native_cot_dir() / f"mgsm_native_cot_{lang}.yaml", resolve_func=False)
    ours_path = TASKS / f"mgsm_local_native_cot_{lang}.yaml"
    if not ours_path.is_file():
        return [f"{lang}: {ours_path.name} is missing"]
    ours = load_yaml(ours_path, resolve_func=False)
    problems = []
    for key in sorted(set(theirs) | set(ours)):
        if key in ALLOWED_TO_DIFFER:
            continue
        if theirs.get(key, "<absent>") != ours.get(key, "<absent>"):
            a, b = theirs.get(key, "<absent>"), ours.get(key, "<absent>")
            problems.append(f"{lang}: {key}: lm-eval {a!r} != ours {b!r}")
    if ours.get("dataset_kwargs") != {"lang": theirs.get("dataset_name")}:
        problems.append(f"{lang}: dataset_kwargs {ours.get('dataset_kwargs')!r} "
                        f"does not name {theirs.get('dataset_name')!r}")
    if ours.get("task") != f"mgsm_local_native_cot_{lang}":
        problems.append(f"{lang}: task is {ours.get('task')!r}")
    return problems


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--write", action="store_true", help="regenerate the per-language yaml files first")
    args = parser.parse_args()
    langs = languages()
    if args.write:
        for lang in langs:
            print(f"wrote {write(lang).relative_to(HERE)}")
    problems = [p for lang in langs for p in check(lang)]
    ours = {p.stem for p in TASKS.glob("mgsm_local_native_cot_*.yaml")}
    extra = sorted(ours - {f"mgsm_local_native_cot_{x}" for x in langs})
    problems += [f"{name}.yaml has no lm-eval counterpart" for name in extra]
    for p in problems:
        print("DIFFERENCE", p)
    verdict = f"{len(problems)} differences" if problems else "all identical to lm-eval apart from the data source"
    print(f"check_tasks.py: {len(langs)} languages ({' '.join(langs)}), {verdict}")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
