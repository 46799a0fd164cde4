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
                       question_en: string, answer_type: string, prompt_source: string>
"""

from __future__ import annotations

import json
import math
import shutil
import stat
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from pivotrl.languages import get_language
from pivotrl.pivot.train_set import TrainExample
from pivotrl.prompts import STYLES, native_prompt
from pivotrl.records import Problem
from pivotrl.rewards.verl import ENV_CONFIG, ENV_URL

__all__ = ["COLUMNS", "EXTRA_INFO_FIELDS", "VERL_VERSION", "export_verl", "parquet_schema"]

VERL_VERSION = "0.5.0"
COLUMNS = ("data_source", "prompt", "ability", "reward_model", "extra_info")
EXTRA_INFO_FIELDS = ("split", "index", "problem_id", "lang", "reference", "question_en", "answer_type",
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


@dataclass(frozen=True)
class _Batch:
    """verl batch sizes for one algorithm, already satisfying verl 0.5.0's checks for the export's GPUs."""

    rollout_n: int
    train_batch_size: int
    ppo_mini_batch_size: int
    steps_per_epoch: int


def export_verl(examples: list[TrainExample], out_dir: str | Path, *, held_out: list[TrainExample] | None = None,
                data_source: str = "pivotrl", prompt_style: str = "instruction", reward: str | Path = "hybrid",
                reward_url: str | None = None, model: str = "Qwen/Qwen2.5-7B-Instruct", n_gpus: int = 8,
                nnodes: int = 1, critic_model: str | None = None, rollout_n: int = 8,
                train_batch_size: int = 256, ppo_mini_batch_size: int = 64, max_prompt_length: int = 1024,
                max_response_length: int = 1024, rollout_tp: int = 2, gpu_memory_utilization: float = 0.6,
                actor_lr: float = 1e-6, critic_lr: float = 1e-5, kl_loss_coef: float = 0.001,
                total_epochs: int = 15, test_freq: int = 5, save_freq: int = -1,
                logger: Sequence[str] = ("console",), project_name: str = "pivotrl",
                experiment_name: str | None = None, problems: Iterable[Problem] | None = None,
                data_source_by_lang: bool = False) -> dict[str, Any]:
    """Write ``train.parquet`` (+ ``test.parquet``), ``reward.py``, ``run_grpo.sh``, ``run_ppo.sh`` and a README.

    ``examples`` (and ``held_out``) are :class:`~pivotrl.pivot.train_set.TrainExample` rows, e.g. from
    :func:`~pivotrl.pivot.train_set.build_train_set`; each becomes one row whose prompt is
    :func:`pivotrl.prompts.native_prompt` of the target-language question (``prompt_style``). Multiple-choice
    examples need their options, which a ``TrainExample`` does not carry: pass ``problems`` (e.g.
    ``load_problems(task, langs)``), matched by (problem id, language).

    ``reward`` is a reward preset name or a YAML file (copied into the export); ``reward_url`` a running
    ``pivotrl reward serve`` (``http://host:port``). Both become defaults in ``reward.py`` and the scripts,
    which the environment variables PIVOTRL_REWARD_CONFIG / PIVOTRL_REWARD_URL override.

    The batch sizes are fitted to the data and to ``n_gpus * nnodes`` GPUs so that verl's checks pass
    (``train_batch_size * rollout.n`` divisible by the GPU count, ``ppo_mini_batch_size`` dividing the batch);
    the summary records what was used. Without ``held_out`` verl still needs ``data.val_files``: the scripts
    then point it at ``train.parquet`` and switch validation off.

    Returns a summary dict (rows per split, rows per language, paths, verl version, batch sizes), also
    written as ``export.json``. Raises ValueError on bad input (no examples, empty reference or question,
    unknown language, duplicate rows, train/held-out overlap, a reward spec that is neither preset nor file,
    too few rows for the GPUs) and TypeError when an example is not a TrainExample.
    """
    from pivotrl.rewards.compose import PRESETS, load_reward_config

    train_rows = _check_examples(examples, "examples")
    test_rows = None if held_out is None else _check_examples(held_out, "held_out")
    if test_rows is not None:
        leaked = sorted({e.id for e in train_rows} & {e.id for e in test_rows})
        if leaked:
            raise ValueError(f"{len(leaked)} problem ids are both in examples and held_out (e.g. {leaked[0]!r}); "
                             "training and evaluation must stay apart by problem id")
    if prompt_style not in STYLES:
        raise ValueError(f"unknown prompt_style {prompt_style!r}; expected one of {', '.join(STYLES)}")
    if not isinstance(data_source, str) or not data_source.strip():
        raise ValueError("data_source must be a non-empty string")
    for name, value in (("n_gpus", n_gpus), ("nnodes", nnodes), ("rollout_n", rollout_n),
                        ("train_batch_size", train_batch_size), ("ppo_mini_batch_size", ppo_mini_batch_size),
                        ("max_prompt_length", max_prompt_length), ("max_response_length", max_response_length),
                        ("rollout_tp", rollout_tp), ("total_epochs", total_epochs)):
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise ValueError(f"{name} must be a positive integer, got {value!r}")
    if rollout_n < 2:
        raise ValueError("GRPO needs rollout_n >= 2 samples per prompt (its advantage is relative to the group)")
    if n_gpus % rollout_tp:
        raise ValueError(f"rollout_tp={rollout_tp} must divide n_gpus={n_gpus} (vLLM tensor parallelism per node)")
    if not 0 < gpu_memory_utilization <= 1:
        raise ValueError(f"gpu_memory_utilization must be in (0, 1], got {gpu_memory_utilization}")
    logger = [logger] if isinstance(logger, str) else list(logger)
    if not logger or not all(isinstance(x, str) and x.strip() and "," not in x for x in logger):
        raise ValueError(f"logger must name at least one verl logger (console, wandb, tensorboard, ...): {logger!r}")
    url = _check_url(reward_url)
    experiment_name = experiment_name or f"{data_source}-{Path(str(reward)).stem}"
    script_values = [("model", model), ("critic_model", critic_model or model), ("project_name", project_name),
                     ("experiment_name", experiment_name), ("reward_url", url or "-"), *(("logger", x) for x in logger)]
    for name, value in script_values:
        _word(value, name)  # they go into the launch scripts

    if not isinstance(reward, str | Path) or not str(reward).strip():
        raise ValueError(f"reward must be a preset name ({', '.join(PRESETS)}) or a YAML file, got {reward!r}")
    reward_path = None if isinstance(reward, str) and reward in PRESETS else Path(reward)
    try:
        reward_config = load_reward_config(reward_path if reward_path is not None else reward)
    except (ValueError, TypeError) as exc:
        raise ValueError(f"reward: {exc}") from None

    choices = _choices_by_key(problems)
    world = n_gpus * nnodes
    grpo = _batch_sizes(len(train_rows), train_batch_size, ppo_mini_batch_size, rollout_n, world, "GRPO")
    ppo = _batch_sizes(len(train_rows), train_batch_size, ppo_mini_batch_size, 1, world, "PPO")

    splits = {"train": train_rows} if test_rows is None else {"train": train_rows, "test": test_rows}
    written: dict[str, list[dict[str, Any]]] = {}
    for split, rows in splits.items():
        written[split] = [_row(e, i, split, prompt_style, data_source, data_source_by_lang, choices)
                          for i, e in enumerate(rows)]

    out = Path(out_dir).expanduser().resolve()  # every check passed: only now is anything written
    out.mkdir(parents=True, exist_ok=True)
    paths = {"train": out / "train.parquet", "reward": out / "reward.py", "run_grpo": out / "run_grpo.sh",
             "run_ppo": out / "run_ppo.sh", "readme": out / "README.md", "summary": out / "export.json"}
    _write_parquet(written["train"], paths["train"])
    if "test" in written:
        paths["test"] = out / "test.parquet"
        _write_parquet(written["test"], paths["test"])
    elif (out / "test.parquet").exists() and paths["summary"].exists():
        (out / "test.parquet").unlink()  # a previous export's held-out split must not pose as this one's

    reward_file: str | None = None
    if reward_path is not None:
        paths["reward_config"] = out / "reward.yaml"
        if reward_path.resolve() != paths["reward_config"]:
            shutil.copyfile(reward_path, paths["reward_config"])
        reward_file = paths["reward_config"].name
    reward_spec = reward_file or str(reward)

    settings = {
        "model": model, "critic_model": critic_model or model, "n_gpus": n_gpus, "nnodes": nnodes,
        "rollout_tp": rollout_tp, "gpu_memory_utilization": gpu_memory_utilization,
        "max_prompt_length": max_prompt_length, "max_response_length": max_response_length,
        "actor_lr": actor_lr, "critic_lr": critic_lr, "kl_loss_coef": kl_loss_coef, "total_epochs": total_epochs,
        "test_freq": test_freq if "test" in written else -1, "save_freq": save_freq,
        "val_before_train": "test" in written, "logger": logger, "project_name": project_name,
        "experiment_name": experiment_name,
    }
    paths["reward"].write_text(_reward_module(reward_spec, reward_file is not None, url), encoding="utf-8")
    for name, algo, batch in (("run_grpo", "grpo", grpo), ("run_ppo", "gae", ppo)):
        paths[name].write_text(_script(algo, batch, settings, reward_spec, reward_file is not None, url,
                                       has_test="test" in written), encoding="utf-8")
        mode = paths[name].stat().st_mode
        paths[name].chmod(mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)

    max_chars = max(len(r["prompt"][0]["content"]) for rows in written.values() for r in rows)
    summary: dict[str, Any] = {
        "verl_version": VERL_VERSION,
        "out_dir": str(out),
        "paths": {k: str(v) for k, v in paths.items()},
        "rows": {split: len(rows) for split, rows in written.items()},
        "by_lang": {split: dict(sorted(Counter(r["extra_info"]["lang"] for r in rows).items()))
                    for split, rows in written.items()},
        "by_source": {split: dict(Counter(r["extra_info"]["prompt_source"] for r in rows))
                      for split, rows in written.items()},
        "problems": {split: len({r["extra_info"]["problem_id"] for r in rows}) for split, rows in written.items()},
        "data_source": sorted({r["data_source"] for rows in written.values() for r in rows}),
        "prompt_style": prompt_style,
        "max_prompt_chars": max_chars,
        "reward": {"config": reward_spec, "name": reward_config.name, "url": url,
                   "env": {"config": ENV_CONFIG, "url": ENV_URL}, "reward_manager": "batch"},
        "grpo": {**_batch_dict(grpo), "adv_estimator": "grpo"},
        "ppo": {**_batch_dict(ppo), "adv_estimator": "gae"},
        **settings,
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    paths["readme"].write_text(_readme(summary), encoding="utf-8")
    paths["summary"].write_text(json.dumps(summary, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return summary


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
                       "question_en": e.question_en, "answer_type": e.answer_type,
                       "prompt_source": e.prompt_source},
    }


def _write_parquet(rows: list[dict[str, Any]], path: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pa.Table.from_pylist(rows, schema=parquet_schema())
    tmp = path.with_name(path.name + ".tmp")
    pq.write_table(table, tmp)
    tmp.replace(path)


def _batch_sizes(n_rows: int, train_batch_size: int, mini_batch_size: int, n: int, world: int,
                 algo: str) -> _Batch:
    """Batch sizes verl 0.5.0 accepts: ``train_batch_size * n`` divisible by the GPU count (ray_trainer), the
    normalised ``ppo_mini_batch_size * n // world`` positive (fsdp_workers), the train loader not empty (it
    drops the last partial batch) and, for even updates, the mini batch dividing the train batch."""
    step = world // math.gcd(n, world)
    size = min(train_batch_size, n_rows) // step * step
    if size == 0:
        raise ValueError(f"{algo}: {n_rows} training rows are too few for {world} GPUs with {n} sample(s) per "
                         f"prompt: verl needs train_batch_size * rollout.n divisible by {world}, i.e. a batch of "
                         f"at least {step} prompts; export more examples or use fewer GPUs")
    fitting = [m for m in range(step, min(mini_batch_size, size) + 1, step) if size % m == 0]
    mini = max(fitting) if fitting else step
    return _Batch(rollout_n=n, train_batch_size=size, ppo_mini_batch_size=mini, steps_per_epoch=n_rows // size)


def _batch_dict(b: _Batch) -> dict[str, int]:
    return {"rollout_n": b.rollout_n, "train_batch_size": b.train_batch_size,
            "ppo_mini_batch_size": b.ppo_mini_batch_size, "steps_per_epoch": b.steps_per_epoch}


# --------------------------------------------------------------------------------------------- reward.py

_REWARD_TEMPLATE = '''"""pivotrl's PB-RLSVR reward for verl {verl_version}: custom_reward_function.path points here.

Generated by pivotrl.train.verl_export. verl loads it with importlib (verl/trainer/ppo/reward.py) and calls
``compute_score`` once per response (reward_model.reward_manager=naive) or once per batch
(reward_model.reward_manager=batch, what the launch scripts use). It re-exports
pivotrl.rewards.verl.compute_score, so pivotrl must be importable in the Python that runs verl's TaskRunner
(install it on every Ray node).

Defaults from the export, used unless the environment already sets them (an empty {env_url}
switches the reward server off):

* {env_config} = {config_doc}
* {env_url} = {url_doc}
"""

import os

_HERE = os.path.dirname(os.path.abspath(__file__))
REWARD_CONFIG = {config!r}  # a preset name, or a YAML file name relative to this folder
REWARD_CONFIG_IS_FILE = {is_file!r}
REWARD_URL = {url!r}  # a running `pivotrl reward serve`, or None to score in this process

_config = os.path.join(_HERE, REWARD_CONFIG) if REWARD_CONFIG_IS_FILE else REWARD_CONFIG
if {env_config!r} not in os.environ:
    os.environ[{env_config!r}] = _config
if REWARD_URL and {env_url!r} not in os.environ:
    os.environ[{env_url!r}] = REWARD_URL

try:
    from pivotrl.rewards.verl import compute_score
except ImportError as exc:  # pragma: no cover - depends on the cluster's environment
    raise ImportError(f"the PB-RLSVR reward needs pivotrl in this Python ({{exc}}); install pivotrl on every "
                      "Ray node (pip install pivotrl[rewards]) or ship it with the job's runtime_env") from exc

__all__ = ["compute_score"]
'''


def _reward_module(spec: str, is_file: bool, url: str | None) -> str:
    return _REWARD_TEMPLATE.format(
        verl_version=VERL_VERSION, env_config=ENV_CONFIG, env_url=ENV_URL, config=spec, is_file=is_file, url=url,
        config_doc=f"<this folder>/{spec}" if is_file else spec,
        url_doc=url or "(unset: the reward is built in verl's reward process)")


# ---------------------------------------------------------------------------------------------- scripts

_SERVER_SNIPPET = r'''
# Optional: START_REWARD_SERVER=1 starts `pivotrl reward serve` on this node before training (at
# PIVOTRL_REWARD_URL, or http://127.0.0.1:$REWARD_PORT when none is set) and stops it afterwards. A loopback
# URL only works when verl's TaskRunner runs on this node (single node). Otherwise start the server yourself
# before the job, on a node every Ray node can reach:
#   pivotrl reward serve --reward "$PIVOTRL_REWARD_CONFIG" --host 0.0.0.0 --port 8000
# and set PIVOTRL_REWARD_URL=http://<that node>:8000 (re-export, or set it where Ray's workers start).
START_REWARD_SERVER="${START_REWARD_SERVER:-0}"
if [[ "$START_REWARD_SERVER" == "1" && -z "${PIVOTRL_REWARD_URL:-}" ]]; then
    export PIVOTRL_REWARD_URL="http://127.0.0.1:${REWARD_PORT:-8000}"
fi
if [[ "$START_REWARD_SERVER" == "1" ]]; then
    base="${PIVOTRL_REWARD_URL%/}"; base="${base%/score}"; base="${base%/get_reward}"
    hostport="${base#*://}"; hostport="${hostport%%/*}"
    host="${hostport%:*}"; port="${hostport##*:}"
    [[ "$hostport" == *:* ]] || port=80
    case "$host" in
        127.*|localhost|"[::1]") bind=127.0.0.1 ;;
        *) bind=0.0.0.0 ;;
    esac
    pivotrl reward serve --reward "$PIVOTRL_REWARD_CONFIG" --host "$bind" --port "$port" &
    REWARD_SERVER_PID=$!
    trap 'kill "$REWARD_SERVER_PID" 2>/dev/null || true' EXIT
    for _ in $(seq 1 "${REWARD_SERVER_WAIT:-300}"); do
        if python3 -c 'import sys, urllib.request; urllib.request.urlopen(sys.argv[1] + "/health", timeout=2)' \
            "$base" 2>/dev/null; then
            break
        fi
        kill -0 "$REWARD_SERVER_PID" 2>/dev/null || { echo "pivotrl reward serve exited" >&2; exit 1; }
        sleep 1
    done
    python3 -c 'import sys, urllib.request; urllib.request.urlopen(sys.argv[1] + "/health", timeout=5)' "$base" \
        || { echo "reward server at $base did not answer" >&2; exit 1; }
fi
'''


_UNSAFE = set('"$`\\}\n\r')


def _word(value: Any, name: str) -> str:
    """A value for a double-quoted shell default (``"${X:-value}"``); refuses characters bash would expand."""
    text = str(value)
    if not text or _UNSAFE & set(text):
        raise ValueError(f"{name} {text!r} cannot go into a launch script (empty, or has one of: \" $ ` \\ }} newline)")
    return text


def _script(algo: str, batch: _Batch, s: dict[str, Any], reward_spec: str, reward_is_file: bool,
            url: str | None, *, has_test: bool) -> str:
    grpo = algo == "grpo"
    title = "GRPO (algorithm.adv_estimator=grpo, no critic)" if grpo else \
        "PPO with GAE (algorithm.adv_estimator=gae, with a critic)"
    config_default = f'$EXPORT_DIR/{reward_spec}' if reward_is_file else reward_spec
    experiment = _word(s["experiment_name"] + ("-grpo" if grpo else "-ppo"), "experiment_name")
    lines: list[str | None] = [
        "#!/usr/bin/env bash",
        f"# PB-RLSVR {title},",
        f"# on verl {VERL_VERSION}; generated by pivotrl.train.verl_export.",
        f"# Written against verl=={VERL_VERSION}: every key below exists in its flattened default config",
        "# (verl/trainer/config/_generated_ppo_trainer.yaml); other verl versions may rename keys.",
        "#",
        "# Run it on the Ray head node (ray.init() joins a running cluster, else starts a local one):",
        f"#   bash {'run_grpo.sh' if grpo else 'run_ppo.sh'} [extra Hydra overrides, e.g. trainer.total_epochs=3]",
        "# Every setting below can be overridden with an environment variable of the same name.",
        "# The data and reward paths must be readable at the same path on every Ray node (shared storage).",
        "set -euo pipefail",
        "",
        'EXPORT_DIR="${EXPORT_DIR:-$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)}"',
        'TRAIN_FILES="${TRAIN_FILES:-$EXPORT_DIR/train.parquet}"',
        ('VAL_FILES="${VAL_FILES:-$EXPORT_DIR/test.parquet}"' if has_test else
         '# no held-out split was exported: verl needs val_files anyway, so validation is switched off\n'
         'VAL_FILES="${VAL_FILES:-$EXPORT_DIR/train.parquet}"'),
        'REWARD_FN="${REWARD_FN:-$EXPORT_DIR/reward.py}"',
        "",
        f'MODEL="${{MODEL:-{_word(s["model"], "model")}}}"',
    ]
    if not grpo:
        lines.append(f'CRITIC_MODEL="${{CRITIC_MODEL:-{_word(s["critic_model"], "critic_model")}}}"')
    lines += [
        f'N_GPUS_PER_NODE="${{N_GPUS_PER_NODE:-{s["n_gpus"]}}}"',
        f'NNODES="${{NNODES:-{s["nnodes"]}}}"',
        f"# fitted to {batch.train_batch_size} prompts x {batch.rollout_n} sample(s) on "
        f"{s['n_gpus'] * s['nnodes']} GPUs; keep TRAIN_BATCH_SIZE * ROLLOUT_N divisible by the GPU count",
        f'TRAIN_BATCH_SIZE="${{TRAIN_BATCH_SIZE:-{batch.train_batch_size}}}"',
        f'PPO_MINI_BATCH_SIZE="${{PPO_MINI_BATCH_SIZE:-{batch.ppo_mini_batch_size}}}"',
        f'ROLLOUT_N="${{ROLLOUT_N:-{batch.rollout_n}}}"' if grpo else None,
        f'MAX_PROMPT_LENGTH="${{MAX_PROMPT_LENGTH:-{s["max_prompt_length"]}}}"',
        f'MAX_RESPONSE_LENGTH="${{MAX_RESPONSE_LENGTH:-{s["max_response_length"]}}}"',
        'MAX_TOKEN_LEN_PER_GPU="${MAX_TOKEN_LEN_PER_GPU:-$(( (MAX_PROMPT_LENGTH + MAX_RESPONSE_LENGTH) * 4 ))}"',
        f'ROLLOUT_TP="${{ROLLOUT_TP:-{s["rollout_tp"]}}}"',
        f'GPU_MEMORY_UTILIZATION="${{GPU_MEMORY_UTILIZATION:-{s["gpu_memory_utilization"]}}}"',
        f'ACTOR_LR="${{ACTOR_LR:-{s["actor_lr"]}}}"',
    ]
    if grpo:
        lines.append(f'KL_LOSS_COEF="${{KL_LOSS_COEF:-{s["kl_loss_coef"]}}}"')
    else:
        lines.append(f'CRITIC_LR="${{CRITIC_LR:-{s["critic_lr"]}}}"')
    lines += [
        f'TOTAL_EPOCHS="${{TOTAL_EPOCHS:-{s["total_epochs"]}}}"',
        f'TEST_FREQ="${{TEST_FREQ:-{s["test_freq"]}}}"',
        f'VAL_BEFORE_TRAIN="${{VAL_BEFORE_TRAIN:-{str(s["val_before_train"])}}}"',
        f'SAVE_FREQ="${{SAVE_FREQ:-{s["save_freq"]}}}"',
        f'LOGGER="${{LOGGER:-[{",".join(s["logger"])}]}}"',
        f'PROJECT_NAME="${{PROJECT_NAME:-{_word(s["project_name"], "project_name")}}}"',
        f'EXPERIMENT_NAME="${{EXPERIMENT_NAME:-{experiment}}}"',
        'CHECKPOINT_DIR="${CHECKPOINT_DIR:-$EXPORT_DIR/checkpoints/$EXPERIMENT_NAME}"',
        "",
        "# The reward (reward.py reads these; it falls back to the same defaults when Ray workers lack them).",
        f'export {ENV_CONFIG}="${{{ENV_CONFIG}:-{config_default}}}"',
    ]
    if url:
        lines.append(f'export {ENV_URL}="${{{ENV_URL}-{url}}}"')
    else:
        lines.append(f"# set {ENV_URL}=http://host:port to score through `pivotrl reward serve` (one encoder per node)")
    lines.append(_SERVER_SNIPPET)
    args = [
        f"algorithm.adv_estimator={algo}",
        'data.train_files="$TRAIN_FILES"',
        'data.val_files="$VAL_FILES"',
        "data.prompt_key=prompt",
        'data.train_batch_size="$TRAIN_BATCH_SIZE"',
        'data.max_prompt_length="$MAX_PROMPT_LENGTH"',
        'data.max_response_length="$MAX_RESPONSE_LENGTH"',
        "data.filter_overlong_prompts=True",
        "data.truncation=error",
        'actor_rollout_ref.model.path="$MODEL"',
        "actor_rollout_ref.model.use_remove_padding=True",
        "actor_rollout_ref.model.enable_gradient_checkpointing=True",
        'actor_rollout_ref.actor.optim.lr="$ACTOR_LR"',
        'actor_rollout_ref.actor.ppo_mini_batch_size="$PPO_MINI_BATCH_SIZE"',
        "actor_rollout_ref.actor.use_dynamic_bsz=True",
        'actor_rollout_ref.actor.ppo_max_token_len_per_gpu="$MAX_TOKEN_LEN_PER_GPU"',
    ]
    if grpo:
        args += ["actor_rollout_ref.actor.use_kl_loss=True",
                 'actor_rollout_ref.actor.kl_loss_coef="$KL_LOSS_COEF"',
                 "actor_rollout_ref.actor.kl_loss_type=low_var_kl",
                 "actor_rollout_ref.actor.entropy_coeff=0"]
    else:
        args += ["actor_rollout_ref.actor.use_kl_loss=False"]
    args += [
        "actor_rollout_ref.actor.fsdp_config.param_offload=False",
        "actor_rollout_ref.actor.fsdp_config.optimizer_offload=False",
        "actor_rollout_ref.rollout.name=vllm",
        'actor_rollout_ref.rollout.n="$ROLLOUT_N"' if grpo else "actor_rollout_ref.rollout.n=1",
        'actor_rollout_ref.rollout.tensor_model_parallel_size="$ROLLOUT_TP"',
        'actor_rollout_ref.rollout.gpu_memory_utilization="$GPU_MEMORY_UTILIZATION"',
        "actor_rollout_ref.ref.fsdp_config.param_offload=True",
    ]
    if not grpo:
        args += [
            'critic.model.path="$CRITIC_MODEL"',
            'critic.optim.lr="$CRITIC_LR"',
            "critic.model.use_remove_padding=True",
            "critic.model.enable_gradient_checkpointing=True",
            'critic.ppo_max_token_len_per_gpu="$(( MAX_TOKEN_LEN_PER_GPU * 2 ))"',
            "critic.model.fsdp_config.param_offload=False",
            "critic.model.fsdp_config.optimizer_offload=False",
        ]
    args += [
        "algorithm.use_kl_in_reward=False",
        "reward_model.reward_manager=batch",
        'custom_reward_function.path="$REWARD_FN"',
        "custom_reward_function.name=compute_score",
        "trainer.critic_warmup=0",
        'trainer.logger="$LOGGER"',
        'trainer.project_name="$PROJECT_NAME"',
        'trainer.experiment_name="$EXPERIMENT_NAME"',
        'trainer.n_gpus_per_node="$N_GPUS_PER_NODE"',
        'trainer.nnodes="$NNODES"',
        'trainer.save_freq="$SAVE_FREQ"',
        'trainer.test_freq="$TEST_FREQ"',
        'trainer.val_before_train="$VAL_BEFORE_TRAIN"',
        'trainer.total_epochs="$TOTAL_EPOCHS"',
        'trainer.default_local_dir="$CHECKPOINT_DIR"',
    ]
    body = "python3 -m verl.trainer.main_ppo \\\n" + "".join(f"    {a} \\\n" for a in args) + '    "$@"\n'
    return "\n".join(line for line in lines if line is not None) + "\n" + body


# ----------------------------------------------------------------------------------------------- README


def _readme(s: dict[str, Any]) -> str:
    rows = ", ".join(f"{split}: {n} rows" for split, n in s["rows"].items())
    langs = "\n".join(f"| {split} | " + ", ".join(f"{lang} {n}" for lang, n in by.items()) + " |"
                      for split, by in s["by_lang"].items())
    has_test = "test" in s["rows"]
    url = s["reward"]["url"]
    g, p = s["grpo"], s["ppo"]
    serve_spec = "reward.yaml" if s["paths"].get("reward_config") else s["reward"]["config"]
    test_line = ("* `test.parquet` - the held-out examples (validation: `data.val_files`)." if has_test else
                 "* no `test.parquet`: no held-out examples were given, so the scripts pass `train.parquet` as "
                 "`data.val_files` (verl requires one) and switch validation off.")
    config_line = ("\n* `reward.yaml` - the reward config (a copy of the YAML file given to the export)."
                   if s["paths"].get("reward_config") else "")
    return f"""# PB-RLSVR training data for verl {s['verl_version']}

Exported by `pivotrl.train.verl_export.export_verl` on {s['created']}: the policy answers reasoning problems
asked in a target language and is rewarded for meaning the same as an English pivot reference
(pivot-based RL with semantically verifiable rewards). {rows}.

| split | rows per language |
|---|---|
{langs}

## Files

* `train.parquet` - the training rows (`data.train_files`).
{test_line}
* `reward.py` - the reward (`custom_reward_function.path`, `custom_reward_function.name=compute_score`): it
  re-exports `pivotrl.rewards.verl.compute_score` and sets `{s['reward']['env']['config']}` /
  `{s['reward']['env']['url']}` defaults unless the environment sets them.{config_line}
* `run_grpo.sh` - GRPO: `algorithm.adv_estimator=grpo`, {g['rollout_n']} samples per prompt, KL loss, no critic.
* `run_ppo.sh` - PPO: `algorithm.adv_estimator=gae` with a critic (`critic.model.path`), one sample per prompt.
* `export.json` - the export summary (row counts, languages, batch sizes, settings).

## verl version

Written against **verl {s['verl_version']}** (`pip install verl=={s['verl_version']}` plus vLLM, on GPU nodes).
The row layout is verl's documented RL data format ("Prepare Data for Post-Training",
`examples/data_preprocess/gsm8k.py`); the script keys were checked against verl {s['verl_version']}'s
`verl/trainer/config/_generated_ppo_trainer.yaml`. Other versions may rename keys: check
`python3 -m verl.trainer.main_ppo --cfg job` before a long run.

## Row layout

| column | type | value |
|---|---|---|
| `data_source` | string | {', '.join(f'`{d}`' for d in s['data_source'])} (verl groups validation metrics by it) |
| `prompt` | list of {{role, content}} | one user message: the target-language question and the native \
step-by-step instruction (`{s['prompt_style']}` style); verl applies the tokenizer's chat template |
| `ability` | string | `math` |
| `reward_model` | {{style, ground_truth}} | `rule`, the English reference's final answer as a string |
| `extra_info` | struct | `split`, `index`, `problem_id`, `lang`, `reference` (the English pivot \
reference), `question_en`, `answer_type`, `prompt_source` |

The longest prompt has {s['max_prompt_chars']} characters; `data.max_prompt_length={s['max_prompt_length']}` tokens,
and `data.filter_overlong_prompts=True` drops longer ones.

## Running on a Ray cluster

1. On every node: the same Python environment with verl {s['verl_version']}, vLLM and **pivotrl**
   (`reward.py` imports it in verl's TaskRunner, which Ray may place on any node), and this folder at the same
   path (shared storage), or set `EXPORT_DIR`/`TRAIN_FILES`/`VAL_FILES`/`REWARD_FN` to where it is.
2. Start Ray: `ray start --head --port=6379` on the head node, `ray start --address=<head>:6379` on the others
   (a single machine needs nothing: verl starts a local Ray).
3. On the head node: `bash run_grpo.sh` (or `bash run_ppo.sh`). Extra Hydra overrides go after the script
   name, e.g. `bash run_grpo.sh trainer.total_epochs=3 trainer.logger='[console,wandb]'`; the variables at
   the top of the scripts (`MODEL`, `N_GPUS_PER_NODE`, `NNODES`, `TRAIN_BATCH_SIZE`, ...) can be set in the
   environment instead. With `ray job submit` use
   `ray job submit --address=http://<head>:8265 --runtime-env-json='{{"env_vars": {{...}}}}' -- bash run_grpo.sh`.

Defaults: model `{s['model']}`, {s['n_gpus']} GPUs per node x {s['nnodes']} node(s), vLLM rollout with tensor
parallel size {s['rollout_tp']}. Batch sizes were fitted to the data and GPUs so verl's checks pass
(`train_batch_size * rollout.n` divisible by the GPU count; the mini batch divides the batch):
GRPO `train_batch_size={g['train_batch_size']}`, `ppo_mini_batch_size={g['ppo_mini_batch_size']}`
({g['steps_per_epoch']} step(s) per epoch); PPO `train_batch_size={p['train_batch_size']}`,
`ppo_mini_batch_size={p['ppo_mini_batch_size']}` ({p['steps_per_epoch']} step(s) per epoch).
Change them together with the GPU count.

## The reward and the reward server

verl calls `compute_score` through its batch reward manager (`reward_model.reward_manager=batch`), so the
embedding similarity encodes a whole batch at once. Reward: `{s['reward']['config']}`.

* Without a reward URL the reward is built inside verl's reward process (on CPU there, once per process).
* With `{s['reward']['env']['url']}` set, `compute_score` sends the batch to a running `pivotrl reward serve`,
  which holds the encoder once (it can use a GPU of its own) and batches requests from every caller.
  {'This export defaults to `' + url + '`.' if url else 'This export has no default URL.'} Start the server
  before the job on a node every Ray node reaches:

      pivotrl reward serve --reward {serve_spec} --host 0.0.0.0 --port 8000
      curl http://<that node>:8000/health

  and point the job at it (`export {s['reward']['env']['url']}=http://<that node>:8000`), or let the script
  start it on the head node with `START_REWARD_SERVER=1 bash run_grpo.sh`.

Ray workers on other nodes do not see the launching shell's environment: `reward.py` therefore carries the
export's defaults. To change them for a multi-node run, re-export, set the variables where `ray start` runs,
or pass them in the job's `runtime_env` `env_vars`. An empty `{s['reward']['env']['url']}` switches the server
off.
"""
