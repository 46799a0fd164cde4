"""Export a PB-RLSVR training set for verl: parquet data, the reward module and launch scripts for Ray.

pivotrl does not run verl (it needs GPUs); it writes everything a verl job needs into one folder::

    train.parquet   one row per (problem, language): the native-language prompt, the English pivot reference
    test.parquet    the same for held-out examples (only when ``held_out`` is given)
    reward.py       ``custom_reward_function.path``: re-exports :func:`pivotrl.rewards.verl.compute_score`
    reward.yaml     a copy of the reward config, when ``reward`` is a YAML file
    run_grpo.sh     GRPO (``algorithm.adv_estimator=grpo``, no critic, ``rollout.n`` samples per prompt)
    run_ppo.sh      PPO with GAE (``algorithm.adv_estimator=gae``, with a critic)
    README.md       what is there and how to run it on a Ray cluster
    export.json     the summary :func:`export_verl` returns

Written against **verl 0.5.0**. The row layout follows verl's "Prepare Data for Post-Training" page
(``docs/preparation/prepare_data.rst``) and ``examples/data_preprocess/gsm8k.py``: ``data_source``, ``prompt``
(chat messages; ``RLHFDataset`` applies the tokenizer's chat template), ``ability``, ``reward_model``
(``style``, ``ground_truth``) and ``extra_info`` (free-form; the reward manager hands it to the reward
function). Every launch-script key was checked against verl 0.5.0's flattened default config
(``verl/trainer/config/_generated_ppo_trainer.yaml``), the batch-size rules against
``verl/trainer/ppo/ray_trainer.py`` (``_validate_config``) and ``verl/workers/fsdp_workers.py``, and the reward
loading against ``verl/trainer/ppo/reward.py`` (``get_custom_reward_fn`` loads the file with
``importlib.util.spec_from_file_location``) and ``verl/workers/reward_manager/batch.py``.

Rows (all non-null, one schema for every split)::

    data_source: string                    "pivotrl" (or "pivotrl/<lang>" with data_source_by_lang=True)
    prompt: list<struct<role: string, content: string>>   [{"role": "user", "content": <native prompt>}]
    ability: string                        "math"
    reward_model: struct<style: string, ground_truth: string>   style "rule", the reference's final answer
    extra_info: struct<split: string, index: int64, problem_id: string, lang: string, reference: string,
                       question: string, question_en: string, answer_type: string, prompt_source: string>
                                           (question: the target-language question the prompt asks)
"""

from __future__ import annotations

import json
import shutil
import stat
from collections import Counter
from collections.abc import Iterable
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from pivotrl.languages import get_language
from pivotrl.pivot.train_set import TrainExample
from pivotrl.prompts import STYLES, native_prompt
from pivotrl.records import Problem
from pivotrl.rewards.verl import ENV_CONFIG, ENV_URL
from pivotrl.run_folder import write_output, writing
from pivotrl.train.verl_launch import VERL_VERSION, VerlLaunch, batch_sizes, launch_script, readme, \
    reward_module, script_word

__all__ = ["COLUMNS", "EXTRA_INFO_FIELDS", "VERL_VERSION", "VerlLaunch", "export_verl", "parquet_schema"]

COLUMNS = ("data_source", "prompt", "ability", "reward_model", "extra_info")
EXTRA_INFO_FIELDS = ("split", "index", "problem_id", "lang", "reference", "question", "question_en", "answer_type",
                     "prompt_source")
ABILITY = "math"
REWARD_STYLE = "rule"


def parquet_schema() -> Any:
    """The Arrow schema of ``train.parquet`` and ``test.parquet`` (every field non-nullable)."""
    import pyarrow as pa

    message = pa.struct([pa.field("role", pa.string(), nullable=False),
                         pa.field("content", pa.string(), nullable=False)])
    reward_model = pa.struct([pa.field("style", pa.string(), nullable=False),
                              pa.field("ground_truth", pa.string(), nullable=False)])
    extra_types = {"index": pa.int64()}
    extra_info = pa.struct([pa.field(name, extra_types.get(name, pa.string()), nullable=False)
                            for name in EXTRA_INFO_FIELDS])
    return pa.schema([
        pa.field("data_source", pa.string(), nullable=False),
        pa.field("prompt", pa.list_(pa.field("item", message, nullable=False)), nullable=False),
        pa.field("ability", pa.string(), nullable=False),
        pa.field("reward_model", reward_model, nullable=False),
        pa.field("extra_info", extra_info, nullable=False),
    ])


def export_verl(examples: list[TrainExample], out_dir: str | Path, *, held_out: list[TrainExample] | None = None,
                launch: VerlLaunch | None = None, reward: str | Path = "hybrid", reward_url: str | None = None,
                data_source: str = "pivotrl", prompt_style: str = "instruction",
                problems: Iterable[Problem] | None = None, data_source_by_lang: bool = False) -> dict[str, Any]:
    """Write ``train.parquet`` (+ ``test.parquet``), ``reward.py``, ``run_grpo.sh``, ``run_ppo.sh`` and a README.

    ``examples`` (and ``held_out``) are :class:`~pivotrl.pivot.train_set.TrainExample` rows, e.g. from
    :func:`~pivotrl.pivot.train_set.build_train_set`; each becomes one row whose prompt is
    :func:`pivotrl.prompts.native_prompt` of the target-language question (``prompt_style``). Multiple-choice
    examples need their options, which a ``TrainExample`` does not carry: pass ``problems`` (e.g.
    ``load_problems(task, langs)``), matched by (problem id, language).

    ``reward`` is a reward preset name or a YAML file (copied into the export); ``reward_url`` a running
    ``pivotrl reward serve`` (``http://host:port``). Both become defaults in ``reward.py`` and the scripts,
    which the environment variables PIVOTRL_REWARD_CONFIG / PIVOTRL_REWARD_URL override.

    ``launch`` holds the job's settings (policy, GPUs, batch sizes, lengths, learning rates, logging; see
    :class:`~pivotrl.train.verl_launch.VerlLaunch`). The batch sizes are fitted to the data and to
    ``n_gpus * nnodes`` GPUs so that verl's checks pass (``train_batch_size * rollout.n`` divisible by the GPU
    count, ``ppo_mini_batch_size`` dividing the batch);
    the summary records what was used. Without ``held_out`` verl still needs ``data.val_files``: the scripts
    then point it at ``train.parquet`` and switch validation off.

    Returns a summary dict (rows per split, rows per language, paths, verl version, batch sizes), also
    written as ``export.json``. Raises ValueError on bad input (no examples, empty reference or question,
    unknown language, duplicate rows, train/held-out overlap, a reward spec that is neither preset nor file,
    too few rows for the GPUs) and TypeError when an example is not a TrainExample.
    """
    train_rows, test_rows = _check_splits(examples, held_out)
    if prompt_style not in STYLES:
        raise ValueError(f"unknown prompt_style {prompt_style!r}; expected one of {', '.join(STYLES)}")
    if not isinstance(data_source, str) or not data_source.strip():
        raise ValueError("data_source must be a non-empty string")
    launch = VerlLaunch() if launch is None else launch
    if not isinstance(launch, VerlLaunch):
        raise TypeError(f"launch must be a VerlLaunch, got {type(launch).__name__}")
    launch.check()
    url = _check_url(reward_url)
    if url is not None:
        script_word(url, "reward_url")  # it goes into the launch scripts
    experiment_name = launch.experiment_name or f"{data_source}-{Path(str(reward)).stem}"
    settings = launch.script_settings(experiment_name, has_test=test_rows is not None)
    reward_path, reward_config = _reward_source(reward)

    choices = _choices_by_key(problems)
    world = launch.n_gpus * launch.nnodes
    grpo = batch_sizes(len(train_rows), launch.train_batch_size, launch.ppo_mini_batch_size, launch.rollout_n, world,
                       "GRPO")
    ppo = batch_sizes(len(train_rows), launch.train_batch_size, launch.ppo_mini_batch_size, 1, world, "PPO")

    splits = {"train": train_rows} if test_rows is None else {"train": train_rows, "test": test_rows}
    written: dict[str, list[dict[str, Any]]] = {}
    for split, rows in splits.items():
        written[split] = [_row(e, i, split, prompt_style, data_source, data_source_by_lang, choices)
                          for i, e in enumerate(rows)]

    out = Path(out_dir).expanduser().resolve()  # every check passed: only now is anything written
    out.mkdir(parents=True, exist_ok=True)
    paths = {"train": out / "train.parquet", "reward": out / "reward.py", "run_grpo": out / "run_grpo.sh",
             "run_ppo": out / "run_ppo.sh", "readme": out / "README.md", "summary": out / "export.json"}
    _write_splits(written, out, paths)
    reward_spec = _write_reward(reward, reward_path, url, out, paths)
    for name, algo, batch in (("run_grpo", "grpo", grpo), ("run_ppo", "gae", ppo)):
        write_output(paths[name], launch_script(algo, batch, settings, reward_spec, reward_path is not None, url,
                                                has_test="test" in written))
        mode = paths[name].stat().st_mode
        paths[name].chmod(mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)

    summary: dict[str, Any] = {
        "verl_version": VERL_VERSION,
        "out_dir": str(out),
        "paths": {k: str(v) for k, v in paths.items()},
        **_data_summary(written),
        "prompt_style": prompt_style,
        "reward": {"config": reward_spec, "name": reward_config.name, "url": url,
                   "env": {"config": ENV_CONFIG, "url": ENV_URL}, "reward_manager": "batch"},
        "grpo": {**asdict(grpo), "adv_estimator": "grpo"},
        "ppo": {**asdict(ppo), "adv_estimator": "gae"},
        **settings,
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    write_output(paths["readme"], readme(summary))
    write_output(paths["summary"], json.dumps(summary, indent=2, ensure_ascii=False) + "\n")
    return summary


def _check_splits(examples: list[TrainExample], held_out: list[TrainExample] | None
                  ) -> tuple[list[TrainExample], list[TrainExample] | None]:
    """The training and held-out examples, checked, and apart by problem id."""
    train_rows = _check_examples(examples, "examples")
    test_rows = None if held_out is None else _check_examples(held_out, "held_out")
    if test_rows is not None:
        leaked = sorted({e.id for e in train_rows} & {e.id for e in test_rows})
        if leaked:
            raise ValueError(f"{len(leaked)} problem ids are both in examples and held_out (e.g. {leaked[0]!r}); "
                             "training and evaluation must stay apart by problem id")
    return train_rows, test_rows


def _reward_source(reward: Any) -> tuple[Path | None, Any]:
    """(the reward's YAML file, None for a preset; its loaded config), or ValueError."""
    from pivotrl.rewards.compose import PRESETS, load_reward_config

    if not isinstance(reward, str | Path) or not str(reward).strip():
        raise ValueError(f"reward must be a preset name ({', '.join(PRESETS)}) or a YAML file, got {reward!r}")
    reward_path = None if isinstance(reward, str) and reward in PRESETS else Path(reward)
    try:
        return reward_path, load_reward_config(reward_path if reward_path is not None else reward)
    except (ValueError, TypeError) as exc:
        raise ValueError(f"reward: {exc}") from None


def _write_splits(written: dict[str, list[dict[str, Any]]], out: Path, paths: dict[str, Path]) -> None:
    _write_parquet(written["train"], paths["train"])
    if "test" in written:
        paths["test"] = out / "test.parquet"
        _write_parquet(written["test"], paths["test"])
    elif (out / "test.parquet").exists() and paths["summary"].exists():
        (out / "test.parquet").unlink()  # a previous export's held-out split must not pose as this one's


def _write_reward(reward: Any, reward_path: Path | None, url: str | None, out: Path, paths: dict[str, Path]) -> str:
    """``reward.py`` (and the reward's YAML copied beside it); returns the reward spec the scripts name."""
    reward_file: str | None = None
    if reward_path is not None:
        paths["reward_config"] = out / "reward.yaml"
        if reward_path.resolve() != paths["reward_config"]:
            with writing(paths["reward_config"]):
                shutil.copyfile(reward_path, paths["reward_config"])
        reward_file = paths["reward_config"].name
    reward_spec = reward_file or str(reward)
    write_output(paths["reward"], reward_module(reward_spec, reward_file is not None, url))
    return reward_spec


def _data_summary(written: dict[str, list[dict[str, Any]]]) -> dict[str, Any]:
    """Rows, languages, prompt sources and problems per split, as ``export.json`` records them."""
    return {
        "rows": {split: len(rows) for split, rows in written.items()},
        "by_lang": {split: dict(sorted(Counter(r["extra_info"]["lang"] for r in rows).items()))
                    for split, rows in written.items()},
        "by_source": {split: dict(Counter(r["extra_info"]["prompt_source"] for r in rows))
                      for split, rows in written.items()},
        "problems": {split: len({r["extra_info"]["problem_id"] for r in rows}) for split, rows in written.items()},
        "data_source": sorted({r["data_source"] for rows in written.values() for r in rows}),
        "max_prompt_chars": max(len(r["prompt"][0]["content"]) for rows in written.values() for r in rows),
    }


# ------------------------------------------------------------------------------------------ checks and rows


def _check_examples(examples: Any, name: str) -> list[TrainExample]:
    if examples is None or isinstance(examples, str | bytes) or not isinstance(examples, Iterable):
        raise ValueError(f"{name} must be a list of TrainExample, got {type(examples).__name__}")
    rows = list(examples)
    if not rows:
        raise ValueError(f"{name} is empty: nothing to export (build it with pivotrl.pivot.build_train_set; "
                         "pass held_out=None for no test split)")
    seen: set[tuple[str, str]] = set()
    for i, e in enumerate(rows):
        where = f"{name}[{i}]"
        if not isinstance(e, TrainExample):
            raise TypeError(f"{where} is a {type(e).__name__}, not a pivotrl.pivot.train_set.TrainExample")
        for field in ("id", "lang", "question", "reference"):
            value = getattr(e, field)
            if not isinstance(value, str) or not value.strip():
                raise ValueError(f"{where} ({e.id!r}, {e.lang!r}) has no {field} (a non-empty string is needed)")
        for field in ("question_en", "reference_answer", "answer_type", "prompt_source"):
            if not isinstance(getattr(e, field), str):
                raise ValueError(f"{where} ({e.id!r}, {e.lang!r}): {field} must be a string, "
                                 f"got {type(getattr(e, field)).__name__}")
        if e.answer_type not in ("number", "choice"):
            raise ValueError(f"{where}: answer_type must be 'number' or 'choice', got {e.answer_type!r}")
        try:
            get_language(e.lang)
        except KeyError as exc:
            raise ValueError(f"{where}: {exc}") from None
        key = (e.id, e.lang)
        if key in seen:
            raise ValueError(f"{where}: problem {e.id!r} in language {e.lang!r} appears twice")
        seen.add(key)
    return rows


def _check_url(url: str | None) -> str | None:
    if url is None:
        return None
    parts = urlsplit(str(url).strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"reward_url must look like http://host:port (a `pivotrl reward serve`), got {url!r}")
    try:
        parts.port  # noqa: B018 - raises ValueError for a malformed port
    except ValueError as exc:
        raise ValueError(f"reward_url {url!r}: {exc}") from None
    return str(url).strip().rstrip("/")


def _choices_by_key(problems: Iterable[Problem] | None) -> dict[tuple[str, str], tuple[str, ...]]:
    if problems is None:
        return {}
    return {(p.id, p.lang): tuple(p.choices) for p in problems if p.choices}


def _row(e: TrainExample, index: int, split: str, style: str, data_source: str, by_lang: bool,
         choices: dict[tuple[str, str], tuple[str, ...]]) -> dict[str, Any]:
    options = choices.get((e.id, e.lang))
    if e.answer_type == "choice" and not options:
        raise ValueError(f"{e.id!r} ({e.lang}) is multiple choice but its options are unknown: pass "
                         "problems=load_problems(task, langs) so the prompt can list them")
    task = e.prompt_source.split(":", 1)[-1] or "pivotrl"
    problem = Problem(id=e.id, lang=e.lang, question=e.question, answer=e.reference_answer, source=task,
                      answer_type=e.answer_type, question_en=e.question_en, choices=options)
    return {
        "data_source": f"{data_source}/{e.lang}" if by_lang else data_source,
        "prompt": [{"role": "user", "content": native_prompt(problem, style)}],
        "ability": ABILITY,
        "reward_model": {"style": REWARD_STYLE, "ground_truth": e.reference_answer},
        "extra_info": {"split": split, "index": index, "problem_id": e.id, "lang": e.lang, "reference": e.reference,
                       "question": e.question, "question_en": e.question_en, "answer_type": e.answer_type,
                       "prompt_source": e.prompt_source},
    }


def _write_parquet(rows: list[dict[str, Any]], path: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pa.Table.from_pylist(rows, schema=parquet_schema())
    tmp = path.with_name(path.name + ".tmp")
    with writing(tmp):
        pq.write_table(table, tmp)
    tmp.replace(path)


