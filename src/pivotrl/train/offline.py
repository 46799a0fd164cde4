"""The offline algorithms (``dpo``, ``rft``): rounds of sample -> score -> select -> train.

Each round samples ``samples_per_prompt`` answers per training prompt from the policy as the previous round
left it (pivotrl's continuous engine, large batches), scores them with the recipe's reward (the same composed
reward GRPO optimises, against the same English pivot references or gold answers), keeps what separates them,
and trains on that through TRL:

* ``dpo``: per prompt, the best-scored answer (chosen) against the worst (rejected) when their rewards differ by
  ``pair_margin`` or more (MAPO's recipe with pivotrl's reward in place of its alignment score and gold check);
* ``rft``: per prompt, the best-scored answer as a fine-tuning target when it scores ``min_reward`` or more.

An answer cut at the sampling budget is never chosen, rejected or fine-tuned on: it lost its final answer, and
ranking it would teach length rather than reasoning (docs/TRAINING.md, "The sampling budget").

The round folder ``<output_dir>/round-N/``, written as it goes so that a killed run resumes where it stopped:

* ``samples.jsonl`` - one line per prompt with its answers, their rewards and components, appended and
  fsync'ed after each batch; a resumed round samples only the prompts not in it (nothing is sampled twice).
  With ``samples_from``, round 1 takes another run's first-round answers instead and scores them with this
  run's reward (each line then names its source, ``scored_from``, and its own ``score_seconds``): two rewards
  compared on the very same answers, the sampling paid once;
* ``selection.json`` - per language: prompts, answers, cut share, mean reward, pairs or targets kept and why the
  others were not; ``train.jsonl`` - the pairs or targets TRL trains on;
* ``trainer/checkpoint-N/`` - TRL checkpoints of the round's training (resumed from the newest whole one);
* ``adapter/`` (LoRA) or ``model/`` (full fine-tuning) - the round's trained weights; ``done.json`` - the round
  is finished (its steps, counts, and the seconds of the process that finished it: a resumed round's earlier
  sampling time is in ``samples.jsonl``, ``sample_seconds`` per prompt).

The next round's policy is the base model with every finished round's adapter merged in, in order; the DPO
reference of a round is the policy at its start (its LoRA starts at zero, and TRL computes the reference
log-probabilities with the adapter disabled, once, before the round trains).
"""

from __future__ import annotations

import json
import logging
import os
import random
import time
import zlib
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pivotrl.train.algorithms import OFFLINE_FIELDS
from pivotrl.train.config import TrainConfig, trl_args

log = logging.getLogger(__name__)

__all__ = ["SharedSamplesError", "build_offline_trainer", "default_min_reward", "nothing_kept", "policy_after",
           "preference_pair", "read_samples", "round_rows", "run_rounds", "sample_round", "score_shared_samples",
           "select_round", "selection_log", "sft_target"]

# Prompts per engine call: each call's answers are scored and appended together, so a kill loses at most one
# call's sampling; 8 prompts in flight x 4 answers is 32 rows, where the decoder's matrix products run near full
# speed on 2 cores (docs/BENCHMARKS.md, the generation table).
_PROMPTS_PER_CALL = 16
_PROMPTS_IN_FLIGHT = 8
# What two runs must share for one to score the other's first-round answers as its own: the policy and how it
# was asked and sampled. The reward, its references or labels, the threshold and the training may differ.
SHARED_SAMPLING_FIELDS = ("model", "dtype", "task", "langs", "levels", "prompt_style", "seed", "packed_rollouts",
                          "samples_per_prompt", "prompts_per_round", "sample_temperature", "sample_max_new_tokens")


class SharedSamplesError(ValueError):
    """``samples_from`` names answers this run cannot take as its own; the message says which and why."""


def _score_records(records: list[dict[str, Any]], rows: dict[tuple[str, str], dict[str, Any]], reward: Any,
                   round_no: int) -> list[dict[str, Any]]:
    """Score prompts' answers with ``reward`` against each row's reference: one sampling line per prompt."""
    texts = [a["text"] for r in records for a in r["answers"]]
    columns: dict[str, list[Any]] = {"reference": [], "reference_answer": [], "lang": [], "answer_type": []}
    for r in records:
        row = rows[_key(r)]
        for _ in r["answers"]:
            for name, values in columns.items():
                values.append(row[name])
    scored = iter(reward.score(texts, **columns))
    out = []
    for r in records:
        answers = []
        for a in r["answers"]:
            s = next(scored)
            answers.append({"text": a["text"], "tokens": a["tokens"], "cut": a["cut"], "reward": round(s.total, 6),
                            "components": {c: round(v, 6) for c, v in s.components.items()}})
        out.append({"problem_id": r["problem_id"], "lang": r["lang"], "round": round_no,
                    "sample_seconds": r.get("sample_seconds", 0.0), "answers": answers})
    return out


def _append_records(f: Any, new: list[dict[str, Any]], records: list[dict[str, Any]]) -> None:
    """One line per prompt, on disk (fsync'ed) before the next batch starts: a kill loses at most that batch."""
    for record in new:
        f.write(json.dumps(record, ensure_ascii=False) + "\n")
        records.append(record)
    f.flush()
    os.fsync(f.fileno())


def shared_samples_path(source: str | Path) -> Path:
    """A run folder's first-round answers, or the samples file itself."""
    path = Path(source)
    return path / "round-1" / "samples.jsonl" if path.is_dir() else path


def check_shared_samples(config: TrainConfig, source: Path, rows: Sequence[dict[str, Any]] | None = None
                         ) -> dict[tuple[str, str], dict[str, Any]]:
    """Another run's first-round answers by prompt, refused unless that run sampled as this one would (the same
    policy, seed, prompts and sampling fields, read from the recipe.yaml of its run folder) and, given ``rows``,
    answered every one of them."""
    from pivotrl.train.config import load_train_config

    if not source.is_file():
        raise SharedSamplesError(f"samples_from: {source} does not exist; give a run folder with a finished "
                                 "round-1/samples.jsonl, or that file")
    recipe = source.parent.parent / "recipe.yaml"
    if not recipe.is_file():
        raise SharedSamplesError(f"samples_from: {recipe} is missing, so nothing says how {source} was sampled; "
                                 "give the samples of a pivotrl run folder")
    theirs = load_train_config(recipe)

    def value(c: TrainConfig, name: str) -> Any:
        return c.offline(name) if name in OFFLINE_FIELDS else getattr(c, name)

    differ = [f"{name} ({value(theirs, name)!r} there, {value(config, name)!r} here)"
              for name in SHARED_SAMPLING_FIELDS if value(theirs, name) != value(config, name)]
    if differ:
        raise SharedSamplesError(f"samples_from: {recipe} sampled differently from this run: {'; '.join(differ)}; "
                                 "its answers are not the ones this run would sample")
    answered = {_key(r): r for r in read_samples(source, repair=False)}
    missing = [k for k in map(_key, rows or []) if k not in answered]
    if missing:
        raise SharedSamplesError(f"samples_from: {source} has no answers for {len(missing)} of this run's "
                                 f"{len(rows or [])} prompts (first: {missing[0][0]} in {missing[0][1]}); let that "
                                 "run finish sampling, or sample here without samples_from")
    return answered


def score_shared_samples(config: TrainConfig, rows: Sequence[dict[str, Any]], reward: Any, path: Path,
                         round_no: int, progress: bool = True) -> list[dict[str, Any]]:
    """Round ``round_no``'s answers taken from ``config.samples_from`` and scored with this run's reward,
    appended to ``path`` batch by batch (a killed run resumes); every prompt of ``rows`` must be there."""
    from tqdm.auto import tqdm

    source = shared_samples_path(config.samples_from)
    theirs = check_shared_samples(config, source, rows)
    records = read_samples(path)
    done = {_key(r) for r in records}
    pending = [theirs[_key(r)] for r in rows if _key(r) not in done]
    by_key = {_key(r): r for r in rows}
    bar = tqdm(total=len(rows), initial=len(rows) - len(pending), desc=f"round {round_no}: scoring shared samples",
               unit="prompt", disable=not progress)
    with path.open("a", encoding="utf-8") as f:
        for start in range(0, len(pending), _PROMPTS_PER_CALL):
            batch = pending[start:start + _PROMPTS_PER_CALL]
            started = time.perf_counter()
            scored = _score_records(batch, by_key, reward, round_no)
            seconds = time.perf_counter() - started
            for record in scored:
                record["scored_from"] = str(source)
                record["score_seconds"] = round(seconds / len(batch), 3)
            _append_records(f, scored, records)
            bar.update(len(batch))
    bar.close()
    return records


def default_min_reward(reward_config: Any) -> float:
    """RFT's default threshold for a reward: its answer-agreement credit when it has one (the target's final
    answer agrees with the reference, in the asked language when the reward is gated), else 3/4 of its top."""
    weight = float(reward_config.weights.get("answer_agreement", 0.0))
    if weight > 0:
        return weight
    return 0.75 * reward_config.total_range()[1]


def round_rows(rows: Sequence[dict[str, Any]], per_round: int | None, round_no: int, seed: int
               ) -> list[dict[str, Any]]:
    """The training rows a round samples: all of them, or the round's slice of ``per_round`` rows of one seeded
    order, each round taking the next slice (cycling), so that rounds see different prompts."""
    if per_round is None or per_round >= len(rows):
        return list(rows)
    order = list(range(len(rows)))
    random.Random(seed).shuffle(order)
    start = (round_no - 1) * per_round
    return [rows[order[(start + i) % len(rows)]] for i in range(per_round)]


def _key(row: dict[str, Any]) -> tuple[str, str]:
    return str(row["problem_id"]), str(row["lang"])


def read_samples(path: Path, repair: bool = True) -> list[dict[str, Any]]:
    """The lines of a round's ``samples.jsonl``; a last line torn by a kill is cut off the file (its prompts are
    sampled again: they were never recorded). ``repair=False`` reads another run's file, which may be being
    written right now: an unfinished last line is left out, and the file is left alone."""
    if not path.is_file():
        return []
    data = path.read_bytes()
    records, good = [], 0
    for line in data.splitlines(keepends=True):
        try:
            records.append(json.loads(line))
        except ValueError:
            break
        good += len(line)
    if good < len(data) and repair:
        log.warning("%s: dropping a line torn by a kill (%d bytes); its prompts are sampled again", path,
                    len(data) - good)
        with path.open("r+b") as f:
            f.truncate(good)
    return records


def _prompt_ids(rows: Sequence[dict[str, Any]], tokenizer: Any) -> list[list[int]]:
    from pivotrl.train.rollouts import render_prompts

    prompts = [r["prompt"] for r in rows]
    if not getattr(tokenizer, "chat_template", None):  # a base model without a chat template: the plain text
        prompts = [p[0]["content"] if isinstance(p, list) else p for p in prompts]
    return render_prompts(prompts, tokenizer)


def sample_round(model: Any, tokenizer: Any, rows: Sequence[dict[str, Any]], reward: Any, config: TrainConfig,
                 path: Path, round_no: int, progress: bool = True) -> list[dict[str, Any]]:
    """Sample and score ``samples_per_prompt`` answers for every row not yet in ``path``, appending one line per
    prompt after each engine call; returns every record of the round (earlier ones included)."""
    from tqdm.auto import tqdm

    from pivotrl.generation import GenerationConfig, generate_ids

    records = read_samples(path)
    done = {_key(r) for r in records}
    pending = [r for r in rows if _key(r) not in done]
    by_key = {_key(r): r for r in rows}
    k = config.offline("samples_per_prompt")
    bar = tqdm(total=len(rows), initial=len(rows) - len(pending), desc=f"round {round_no}: sampling", unit="prompt",
               disable=not progress)
    with path.open("a", encoding="utf-8") as f:
        for start in range(0, len(pending), _PROMPTS_PER_CALL):
            batch = pending[start:start + _PROMPTS_PER_CALL]
            # a seed per call, from the run's seed and the call's first prompt: a resumed round samples the
            # prompts it had left exactly as the killed one would have
            seed = zlib.crc32(f"{config.seed}/{round_no}/{_key(batch[0])}".encode())
            settings = GenerationConfig(max_new_tokens=config.offline("sample_max_new_tokens"), do_sample=True,
                                        temperature=config.offline("sample_temperature"), num_samples=k,
                                        batch_size=_PROMPTS_IN_FLIGHT, seed=seed)
            started = time.perf_counter()
            sampled = generate_ids((model, tokenizer), _prompt_ids(batch, tokenizer), settings)
            seconds = time.perf_counter() - started
            per_prompt = round(seconds / len(batch), 3)
            raw = [{"problem_id": row["problem_id"], "lang": row["lang"], "sample_seconds": per_prompt,
                    "answers": [{"text": tokenizer.decode(s.ids, skip_special_tokens=True), "tokens": len(s.ids),
                                 "cut": s.cut} for s in per]}
                   for row, per in zip(batch, sampled, strict=True)]
            _append_records(f, _score_records(raw, by_key, reward, round_no), records)
            bar.update(len(batch))
    bar.close()
    return records


def _ranked(record: dict[str, Any]) -> list[dict[str, Any]]:
    """A prompt's whole (not cut) answers, best reward first (ties keep sampling order)."""
    return sorted((a for a in record["answers"] if not a["cut"]), key=lambda a: -a["reward"])


def preference_pair(record: dict[str, Any], margin: float, min_reward: float | None) -> tuple[
        tuple[dict[str, Any], dict[str, Any]] | None, str]:
    """``((chosen, rejected), "kept")`` for one prompt's answers, or ``(None, why)``: the best whole answer
    against the worst, kept when the best beats the worst by ``margin`` or more (and by something) and, with
    ``min_reward``, scores at least that."""
    ranked = _ranked(record)
    if len(ranked) < 2:
        return None, "cut" if record["answers"] else "empty"  # fewer than two whole answers
    best, worst = ranked[0], ranked[-1]
    gap = best["reward"] - worst["reward"]
    if gap <= 0:
        return None, "no spread"
    if gap < margin:
        return None, "below margin"
    if min_reward is not None and best["reward"] < min_reward:
        return None, "below min_reward"
    return (best, worst), "kept"


def sft_target(record: dict[str, Any], min_reward: float) -> tuple[dict[str, Any] | None, str]:
    """``(best whole answer, "kept")`` when it scores ``min_reward`` or more, else ``(None, why)``."""
    ranked = _ranked(record)
    if not ranked:
        return None, "cut" if record["answers"] else "empty"
    if ranked[0]["reward"] < min_reward:
        return None, "below min_reward"
    return ranked[0], "kept"


def select_round(config: TrainConfig, records: Sequence[dict[str, Any]], rows: Sequence[dict[str, Any]],
                 min_reward: float | None) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """TRL's training rows from a round's scored samples (DPO pairs or SFT targets, conversational) and the
    per-language counts behind them."""
    by_key = {_key(r): r for r in rows}
    train: list[dict[str, Any]] = []
    stats: dict[str, dict[str, Any]] = defaultdict(lambda: defaultdict(float))
    for record in records:
        row = by_key[(str(record["problem_id"]), str(record["lang"]))]
        s = stats[record["lang"]]
        s["prompts"] += 1
        for a in record["answers"]:
            s["answers"] += 1
            s["cut answers"] += a["cut"]
            s["reward_sum"] += a["reward"]
            s["tokens_sum"] += a["tokens"]
        if config.algorithm == "dpo":
            pair, why = preference_pair(record, config.offline("pair_margin"), min_reward)
            if pair is not None:
                train.append({"prompt": row["prompt"], "chosen": [{"role": "assistant", "content": pair[0]["text"]}],
                              "rejected": [{"role": "assistant", "content": pair[1]["text"]}]})
                s["margin_sum"] += pair[0]["reward"] - pair[1]["reward"]
        else:
            target, why = sft_target(record, min_reward if min_reward is not None else 0.0)
            if target is not None:
                completion = [{"role": "assistant", "content": target["text"]}]
                train.append({"prompt": row["prompt"], "completion": completion})
                s["target_reward_sum"] += target["reward"]
        s[why] += 1
    summary: dict[str, Any] = {}
    for code, s in sorted(stats.items()):
        kept = int(s["kept"])
        entry = {"prompts": int(s["prompts"]), "answers": int(s["answers"]), "kept": kept,
                 "cut_share": round(s["cut answers"] / max(1, s["answers"]), 3),
                 "mean_reward": round(s["reward_sum"] / max(1, s["answers"]), 4),
                 "mean_tokens": round(s["tokens_sum"] / max(1, s["answers"]), 1),
                 "skipped": {why: int(n) for why, n in s.items()
                             if why in ("cut", "empty", "no spread", "below margin", "below min_reward")}}
        if config.algorithm == "dpo":
            entry["mean_margin"] = round(s["margin_sum"] / kept, 4) if kept else None
        else:
            entry["mean_target_reward"] = round(s["target_reward_sum"] / kept, 4) if kept else None
        summary[code] = entry
    return train, summary


def nothing_kept(selection: dict[str, Any], algorithm: str) -> list[str]:
    """One line per language of a round's selection where nothing was kept, saying why."""
    what = "pairs" if algorithm == "dpo" else "targets"
    return [f"no {what} in {code}: {s['prompts']} prompts, " + ", ".join(f"{n} {why}" for why, n in
                                                                         s["skipped"].items())
            for code, s in selection.items() if not s["kept"]]


def selection_log(selection: dict[str, Any], records: Sequence[dict[str, Any]]) -> dict[str, float]:
    """The round's sampling in the keys GRPO logs at each step (``reward``, ``rewards/<component>/mean``,
    ``reward_by_lang``, ``completions/cut_by_lang``, ``completions/length_by_lang``), so the report's training
    curve and per-language table read an offline run as they read GRPO's; plus pairs or targets kept."""
    answers = [a for r in records for a in r["answers"]]
    logged: dict[str, float] = {}
    if answers:
        logged["reward"] = sum(a["reward"] for a in answers) / len(answers)
        for name in answers[0]["components"]:
            logged[f"rewards/{name}/mean"] = sum(a["components"].get(name, 0.0) for a in answers) / len(answers)
    for code, s in selection.items():
        logged[f"reward_by_lang/{code}"] = s["mean_reward"]
        logged[f"completions/cut_by_lang/{code}"] = s["cut_share"]
        logged[f"completions/length_by_lang/{code}"] = s["mean_tokens"]
        logged[f"kept_by_lang/{code}"] = s["kept"]
    logged["kept"] = sum(s["kept"] for s in selection.values())
    return logged


def _write_json(path: Path, data: Any) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(data, indent=2, ensure_ascii=False, default=str) + "\n", encoding="utf-8")
    os.replace(tmp, path)


def _append_log(path: Path, entry: dict[str, Any]) -> None:
    with path.open("a", encoding="utf-8") as f:
        f.write(json.dumps(entry, ensure_ascii=False) + "\n")
        f.flush()
        os.fsync(f.fileno())


def _logged_before(entry: dict[str, Any], round_no: int, resumed_at: int) -> bool:
    """Whether a log line stays when round ``round_no`` (re)starts with its trainer at step ``resumed_at`` of
    the run: earlier rounds' lines, this round's sampling line (its samples are kept, so it would be the same)
    and its training lines up to the checkpoint; its later training lines and its evaluation are redone."""
    logged_round = entry.get("round")
    if not isinstance(logged_round, int) or logged_round < round_no:
        return True
    if logged_round > round_no:
        return False
    return entry.get("phase") == "sampling" or (entry.get("phase") == "training"
                                                and int(entry.get("step", 0)) <= resumed_at)


def _sampling_logged(path: Path, round_no: int) -> bool:
    if not path.is_file():
        return False
    return any(e.get("round") == round_no and e.get("phase") == "sampling"
               for e in (json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()))


def _round_done(round_dir: Path) -> dict[str, Any] | None:
    try:
        return json.loads((round_dir / "done.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def policy_after(config: TrainConfig, out: Path, rounds_done: int) -> Any:
    """The policy after ``rounds_done`` rounds: the base model with the adapter of each of those rounds that
    trained merged in, in order (LoRA), or the newest of their saved models (full fine-tuning)."""
    from pivotrl.models import load_model

    folders = [out / f"round-{r}" for r in range(1, rounds_done + 1)]
    if config.lora is None:
        saved = [f / "model" for f in folders if (f / "model").is_dir()]
        return load_model(str(saved[-1]) if saved else config.model, dtype=config.dtype)
    loaded = load_model(config.model, dtype=config.dtype)
    adapters = [f / "adapter" for f in folders if (f / "adapter").is_dir()]
    if adapters:
        from peft import PeftModel

        model = loaded.model
        for adapter in adapters:
            model = PeftModel.from_pretrained(model, str(adapter)).merge_and_unload()
        loaded.model = model
    return loaded


def build_offline_trainer(config: TrainConfig, model: Any, tokenizer: Any, rows: list[dict[str, Any]],
                          output_dir: Path, callbacks: list[Any] | None = None) -> Any:
    """TRL's DPOTrainer or SFTTrainer over a round's pairs or targets, with the recipe's LoRA."""
    from datasets import Dataset

    from pivotrl.train.algorithms import trl_classes

    peft_config = None
    if config.lora is not None:
        from peft import LoraConfig

        peft_config = LoraConfig(**{"task_type": "CAUSAL_LM", **config.lora})
    if not getattr(tokenizer, "chat_template", None):  # a base model without a chat template: plain text
        rows = [{k: v[0]["content"] if isinstance(v, list) else v for k, v in r.items()} for r in rows]
    args = trl_args(config, output_dir=output_dir)
    if args.use_cpu:  # TRL's fused LM head projects only the labelled positions (pivotrl.train.update)
        from pivotrl.train.update import score_only_completion_tokens

        score_only_completion_tokens()
    trainer_class = trl_classes(config.algorithm)[1]
    return trainer_class(model=model, args=args, processing_class=tokenizer, train_dataset=Dataset.from_list(rows),
                         peft_config=peft_config, callbacks=callbacks or [])


def run_rounds(config: TrainConfig, rows: list[dict[str, Any]], out: Path, *, progress: bool, evaluate: Any
               ) -> dict[str, Any]:
    """Every round of an offline run (each skipped when its ``done.json`` exists, resumed where it stopped
    otherwise), the final model in ``<out>/final``; returns the run's summary. ``evaluate`` is
    :func:`pivotrl.evaluation.evaluate_loaded` or None (no held-out evaluation after each round)."""
    from transformers.trainer_callback import ProgressCallback

    from pivotrl.train.config import build_run_reward
    from pivotrl.train.callbacks import LogFile, MultilingualEval, RewardProgress
    from pivotrl.train.checkpoints import checkpoint_step, cut_log, last_checkpoint, save_model_folder

    reward = build_run_reward(config)
    min_reward = config.offline("min_reward")
    if min_reward is None and config.algorithm == "rft":
        min_reward = default_min_reward(reward.config)
    rounds = config.offline("rounds")
    if config.samples_from and _round_done(out / "round-1") is None:  # before the policy loads
        check_shared_samples(config, shared_samples_path(config.samples_from),
                             round_rows(rows, config.offline("prompts_per_round"), 1, config.seed))
    steps = 0
    report: list[dict[str, Any]] = []
    started = time.perf_counter()
    loaded = None
    for round_no in range(1, rounds + 1):
        round_dir = out / f"round-{round_no}"
        done = _round_done(round_dir)
        if done is not None:
            steps += done["steps"]
            report.append(done)
            loaded = None  # a later round loads the policy with this round merged in
            continue
        round_dir.mkdir(parents=True, exist_ok=True)
        resumed_at = steps + checkpoint_step(last_checkpoint(round_dir / "trainer"))
        cut_log(out / "log.jsonl", lambda e, r=round_no, at=resumed_at: _logged_before(e, r, at))
        if loaded is None:
            loaded = policy_after(config, out, round_no - 1)
        model, tokenizer = loaded.model, loaded.tokenizer
        if tokenizer.pad_token is None:
            tokenizer.pad_token = tokenizer.eos_token
        sample_started = time.perf_counter()
        these = round_rows(rows, config.offline("prompts_per_round"), round_no, config.seed)
        if round_no == 1 and config.samples_from:  # another run's answers, scored with this run's reward
            records = score_shared_samples(config, these, reward, round_dir / "samples.jsonl", round_no, progress)
        else:
            records = sample_round(model, tokenizer, these, reward, config, round_dir / "samples.jsonl", round_no,
                                   progress)
        sample_seconds = time.perf_counter() - sample_started
        train_rows, selection = select_round(config, records, these, min_reward)
        _write_json(round_dir / "selection.json", selection)
        with (round_dir / "train.jsonl").open("w", encoding="utf-8") as f:
            for r in train_rows:
                f.write(json.dumps(r, ensure_ascii=False) + "\n")
        for message in nothing_kept(selection, config.algorithm):
            log.warning("round %d: %s", round_no, message)
        if not _sampling_logged(out / "log.jsonl", round_no):  # a resumed round kept its line (same samples)
            _append_log(out / "log.jsonl", {"step": steps, "round": round_no, "phase": "sampling",
                                            **selection_log(selection, records),
                                            "sample_seconds": round(sample_seconds, 1)})
        train_started = time.perf_counter()
        round_steps = 0
        if train_rows:
            trainer = build_offline_trainer(config, model, tokenizer, train_rows, round_dir / "trainer",
                                            callbacks=[LogFile(out / "log.jsonl", step_offset=steps,
                                                               extra={"round": round_no, "phase": "training"})])
            trainer.remove_callback(ProgressCallback)
            if progress:
                trainer.add_callback(RewardProgress())
            last = last_checkpoint(round_dir / "trainer")
            trainer.train(resume_from_checkpoint=str(last) if last is not None else None)
            round_steps = trainer.state.global_step
            model = trainer.model
            if config.lora is not None:
                model.save_pretrained(round_dir / "adapter")
                model = model.merge_and_unload()
            else:
                model.save_pretrained(round_dir / "model")
                tokenizer.save_pretrained(round_dir / "model")
            loaded.model = model
        steps += round_steps
        entry = {"round": round_no, "steps": round_steps, "prompts": len(these), "kept": len(train_rows),
                 "sample_seconds": round(sample_seconds, 1),
                 "train_seconds": round(time.perf_counter() - train_started, 1), "selection": selection}
        if evaluate is not None and config.eval_n and round_steps:
            logged = MultilingualEval(config, tokenizer, evaluate).evaluate(steps, loaded.model)
            if logged:
                _append_log(out / "log.jsonl", {"step": steps, "round": round_no, "phase": "eval", **logged})
                entry["eval"] = logged
        _write_json(round_dir / "done.json", entry)
        report.append(entry)
    if loaded is None:
        loaded = policy_after(config, out, rounds)
    final = out / "final"
    info = {"kind": "trained policy", "algorithm": config.algorithm, "rounds": report}
    save_model_folder(loaded.model, loaded.tokenizer, final, info)
    return {"steps": steps, "rounds": report, "seconds": round(time.perf_counter() - started, 1),
            "final": str(final)}
