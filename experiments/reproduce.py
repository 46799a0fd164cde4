"""The CPU-scale reproduction of PB-RLSVR's claim (docs/RESULTS.md): base model vs RLVR with target-language
gold answers vs PB-RLSVR (embedding and hybrid rewards against a pivot's English references), at equal
training steps and sampling budget, over several seeds.

Studies (``--study``):

* ``qwen`` (the main one): Qwen2.5-0.5B-Instruct policy, Qwen2.5-1.5B-Instruct English pivot, LoRA, trained on
  MSVAMP's train split in 7 languages, evaluated greedily on MSVAMP and MGSM held-out in every language;
* ``smollm2-synthetic`` / ``smollm2-msvamp``: the first study (SmolLM2-135M as policy and pivot, full
  fine-tuning), kept with the settings it was measured with.

    .venv/bin/python experiments/reproduce.py                          # the qwen study: every run, then the page
    .venv/bin/python experiments/reproduce.py --methods pbrlsvr-hybrid --seeds 1
    .venv/bin/python experiments/reproduce.py --report-only            # tables and plots from the runs so far
    .venv/bin/python experiments/reproduce.py --status                 # which runs are done, training, held

Every stage skips finished work and training resumes from its last checkpoint, so the command can be killed
and run again (in another session) until everything is done. Each run (a method and a seed) is locked while
it is worked on, so two copies of the command on one machine share the work instead of colliding. Runs go to
``runs/reproduce/<study>/``, tables and plots to ``docs/results/<study>/``. What a new machine needs to go on (the
pivot's references, evaluations' answers, runs' recipes, logs and samples; not weights) is kept compressed in
``docs/results/<study>/state/``, rewritten with the tables, and put back into the runs folder on start: commit it.
"""

from __future__ import annotations

import argparse
import functools
import gzip
import json
import random
import shutil
import statistics
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from pivotrl.pipeline import CPU_TRL, DEMO_LORA, PipelineConfig, pivot_stage, read_log, train_stage
from pivotrl.run_folder import FolderBusyError, RunLock, check_output_dir, lock_holder

# The first study's TRL settings (full fine-tuning, one prompt x 4 answers of 64 tokens per step), kept as they
# were when it was measured; the demo's own defaults (train.config.CPU_TRL) have moved since.
SMOLLM2_TRL: dict[str, Any] = {
    "num_generations": 4, "per_device_train_batch_size": 4, "max_completion_length": 64,
    "learning_rate": 1e-5, "beta": 0.0, "loss_type": "dapo", "temperature": 1.0,
    "save_steps": 10, "logging_steps": 1, "gradient_checkpointing": False,
}
SMOLLM2_LANGS = ["de", "es", "fr", "ru", "zh", "ja", "sw"]
# The 0.5B's right greedy answers on MSVAMP held-out run to 85-256 tokens in English, French, Chinese and Thai
# (median ~165; only the bare "Die Antwort lautet N." of German and Russian is short): a 128-token budget cut
# almost every one of them, and a 3-step trial at 128 sampled 0 right answers of 24. Training samples with
# the evaluation's budget, two prompts x 4 answers a step. Temperature 0.7, not 1.0: the reward audit sampled
# the base policy at 1.0 on the training split and only 25 of 336 answers (7%) were right, so 3 groups of 4 in
# 4 would have no right answer, hence no spread in a gold-answer reward (its greedy accuracy is about 20%).
QWEN_TRL: dict[str, Any] = {**CPU_TRL, "max_completion_length": 256, "save_steps": 5, "temperature": 0.7}
# The second study trains by rejection-sampling fine-tuning (recipes/cpu/rft-msvamp-*.yaml): one round over the
# 120 problems' prompts, 4 answers each at T 0.8 with the evaluation's 256-token budget, the best whole answer
# per prompt that reaches the reward's answer credit fine-tuned on for one epoch. RFT, not GRPO or DPO: in the
# learning-per-CPU-hour bench (docs/BENCHMARKS.md) it drew the most answers per hour, kept answer lengths (DPO
# shortened French 103 -> 30 tokens) and peaked at 7.9 GB, and all three moved held-out accuracy alike.
RFT_OFFLINE: dict[str, Any] = {"rounds": 1, "samples_per_prompt": 4, "sample_temperature": 0.8,
                               "sample_max_new_tokens": 256}
RFT_TRL: dict[str, Any] = {"learning_rate": 5e-5, "per_device_train_batch_size": 4, "num_train_epochs": 1,
                           "save_steps": 10, "logging_steps": 1, "gradient_checkpointing": False}
# Five of the first study's seven languages, for CPU time (each language costs a fifth of every run): two
# Latin-script high-resource ones, two other scripts (Cyrillic, Chinese) and the low-resource Swahili; Japanese
# and Thai were left out, as a second East Asian script and the language with the longest answers in tokens.
RFT_LANGS = ["de", "fr", "ru", "zh", "sw"]


@dataclass(frozen=True)
class Study:
    """One reproduction: the models, the training set, the evaluation sets and the methods compared."""

    pipeline: PipelineConfig  # policy, pivot, training set, languages, TRL and LoRA settings, steps
    evals: dict[str, int]  # evaluation set -> held-out problems per language
    all_langs: bool  # evaluate every language of each set (else English plus the training languages)
    eval_max_new_tokens: int
    methods: dict[str, dict[str, Any]]  # method -> PipelineConfig fields that make it
    seeds: dict[str, list[int]] = field(default_factory=dict)  # default seeds per method (when no order)
    base_all_langs: bool = True  # the base model in every language of each set (else as the trained runs)
    answers: bool = False  # commit every evaluation's per-item answers beside the tables (results/<study>/answers)
    # evaluation set -> the split its problems come from (default held-out); a set never trained on may use "all"
    # (MGSM's held-out side is 57 of its 250 problems)
    eval_splits: dict[str, str] = field(default_factory=dict)
    audit_n: int = 0  # training problems per language whose sampled base answers the reward audit scores
    audit_temperature: float = 1.0  # the audit's sampling temperature (TRL's default; training may use another)
    # (method, seed) in the order they run when no --seeds is given; () runs every method's first seed, then
    # the second seeds, ...
    order: tuple[tuple[str, int], ...] = ()
    # offline studies: the method whose first-round answers every other method of the same seed scores with its
    # own reward (samples_from) instead of sampling its own: the methods then differ only in what their reward
    # keeps, on the same answers, and the sampling is paid once per seed
    shared_samples: str | None = None

    def default_seeds(self) -> dict[str, list[int]]:
        """Seeds per method: read from ``order`` when the study has one, else ``seeds``."""
        if not self.order:
            return self.seeds
        seeds: dict[str, list[int]] = {}
        for method, seed in self.order:
            seeds.setdefault(method, []).append(seed)
        return seeds


CEILING = "rlvr-gold"  # the method with target-language labels that PB-RLSVR tries to match without them


def _method_table(extra: dict[str, Any] | None = None) -> dict[str, dict[str, Any]]:
    methods: dict[str, dict[str, Any]] = {
        "rlvr-gold": {"labels": "gold", "reward": "answer"},  # target-language gold answers, right/wrong
        "pbrlsvr-embedding": {"labels": "pivot", "reward": "embedding"},  # no target-language labels
        # the hybrid as these studies ran it, spelled out: the preset gained the brevity guard later, and a
        # run's recipe must keep meaning what it meant
        "pbrlsvr-hybrid": {"labels": "pivot", "reward": {"preset": "hybrid", "weights": {"brevity_guard": 0.0}}},
    }
    return methods | (extra or {})


STUDIES: dict[str, Study] = {
    "qwen": Study(
        pipeline=PipelineConfig(model="qwen0.5b", pivot="qwen1.5b", task="msvamp", levels=None,
                                langs=["de", "fr", "ru", "zh", "ja", "th", "sw"], pivot_n=120, pivot_k=4,
                                pivot_max_new_tokens=384, steps=40, trl=dict(QWEN_TRL), lora=dict(DEMO_LORA)),
        # trained runs are evaluated in English and the 7 trained languages (the base model in all of them)
        evals={"msvamp": 40, "mgsm": 40}, all_langs=False, eval_max_new_tokens=256,
        # rlvr-en: gold-answer RLVR on the English questions only; how much of an English-only gain transfers
        # pbrlsvr-hybrid-floor: the hybrid with the brevity guard, added after hybrid seed 1 collapsed to bare
        # guessed answers (RESULTS.md): does the floor stop the collapse, and what does the hybrid gain then?
        methods=_method_table({"rlvr-en": {"labels": "gold", "reward": "answer", "langs": ["en"]},
                               "pbrlsvr-hybrid-floor": {"labels": "pivot", "reward": {
                                   "preset": "hybrid", "weights": {"brevity_guard": 0.5}}}}),
        audit_n=12,
        # the two seeds the comparison needs first, then the extra methods, then third seeds
        order=(("rlvr-gold", 0), ("pbrlsvr-hybrid", 0), ("rlvr-gold", 1), ("pbrlsvr-hybrid", 1),
               ("pbrlsvr-embedding", 0), ("rlvr-en", 0), ("pbrlsvr-hybrid-floor", 0), ("pbrlsvr-hybrid-floor", 1),
               ("rlvr-gold", 2), ("pbrlsvr-hybrid", 2)),
    ),
    "qwen-rft": Study(
        pipeline=PipelineConfig(model="qwen0.5b", pivot="qwen1.5b", task="msvamp", levels=None, langs=RFT_LANGS,
                                pivot_n=120, pivot_k=4, pivot_max_new_tokens=384, algorithm="rft",
                                offline=dict(RFT_OFFLINE), trl=dict(RFT_TRL), lora=dict(DEMO_LORA)),
        # MSVAMP's held-out split has 208 problems; MGSM is never trained on: the first 100 of all its 250
        evals={"msvamp": 200, "mgsm": 100}, all_langs=False, base_all_langs=False, eval_max_new_tokens=256,
        answers=True, eval_splits={"mgsm": "all"},
        # the label-free methods take the reward's default threshold (the hybrid's answer credit; 3/4 of the
        # embedding similarity's top); gold keeps answers whose final number equals the target-language gold
        methods={"rlvr-gold": {"labels": "gold", "reward": "answer"},
                 "pbrlsvr-hybrid": {"labels": "pivot", "reward": "hybrid"},
                 "pbrlsvr-embedding": {"labels": "pivot", "reward": "embedding"}},
        order=(("pbrlsvr-hybrid", 0), ("rlvr-gold", 0), ("pbrlsvr-hybrid", 1), ("rlvr-gold", 1),
               ("pbrlsvr-embedding", 0)),
        shared_samples="pbrlsvr-hybrid",
    ),
    "smollm2-synthetic": Study(
        pipeline=PipelineConfig(model="smollm2", pivot="smollm2", task="synthetic", levels=[1, 2],
                                langs=SMOLLM2_LANGS, pivot_n=48, pivot_k=4, pivot_max_new_tokens=128, steps=50,
                                trl=dict(SMOLLM2_TRL), lora=None),
        evals={"synthetic": 16}, all_langs=False, eval_max_new_tokens=96,
        methods=_method_table(), seeds={"rlvr-gold": [0, 1], "pbrlsvr-embedding": [0, 1], "pbrlsvr-hybrid": [0, 1]},
    ),
    "smollm2-msvamp": Study(
        pipeline=PipelineConfig(model="smollm2", pivot="smollm2", task="msvamp", levels=None,
                                langs=SMOLLM2_LANGS, pivot_n=48, pivot_k=4, pivot_max_new_tokens=128, steps=50,
                                trl=dict(SMOLLM2_TRL), lora=None),
        evals={"msvamp": 12, "mgsm": 4}, all_langs=False, eval_max_new_tokens=128,
        methods=_method_table(), seeds={"rlvr-gold": [0, 1], "pbrlsvr-embedding": [0, 1], "pbrlsvr-hybrid": [0, 1]},
    ),
}
# Where the first study's runs were written before studies had names.
LEGACY_ROOTS = {"smollm2-synthetic": "runs/reproduce/synthetic", "smollm2-msvamp": "runs/reproduce/msvamp"}


def study_root(name: str, runs: Path) -> Path:
    return Path(LEGACY_ROOTS[name]) if name in LEGACY_ROOTS and runs == Path("runs/reproduce") else runs / name


# ------------------------------------------------------------------------------------------------ the runs


def evaluate(study: Study, model: str, out: Path, task: str, all_langs: bool = False) -> dict[str, Any]:
    """Greedy held-out evaluation, the same settings for the base model and every trained one (the base model
    in every language of the set, a trained one in the study's languages)."""
    from pivotrl.evaluation import EvalConfig, run_eval

    config = study.pipeline
    langs = None if all_langs or study.all_langs else ["en", *config.langs]
    levels = config.levels if task == "synthetic" else None
    split = study.eval_splits.get(task, "held-out")
    if split != "held-out" and task == config.task:
        raise ValueError(f"{task} is the training set: its evaluation must use the held-out split, not {split!r}")
    eval_config = EvalConfig(model=model, task=task, langs=langs, split=split, n=study.evals[task],
                             levels=levels, max_new_tokens=study.eval_max_new_tokens, data_dir=config.data_dir,
                             out=str(out))
    return run_eval(eval_config)


def audit_reward(study: Study, root: Path) -> None:
    """Does the reward separate right from wrong answers of this policy? Sample the base policy (at
    ``audit_temperature``, the training budget of new tokens) on the first ``audit_n`` training problems in every
    target language, then score each answer with every component of the hybrid reward against the pivot's
    references: ROC-AUC per language and component, and the hacking probes (``pivotrl reward audit``)."""
    from pivotrl.evaluation import EvalConfig, run_eval
    from pivotrl.rewards.audit import audit_main

    config = study.pipeline
    samples = root / "audit" / "samples"
    if (root / "audit" / "hybrid" / "audit.json").is_file():
        return
    run_eval(EvalConfig(model=config.model, task=config.task, langs=list(config.langs), split="train",
                        n=study.audit_n, samples=4, temperature=study.audit_temperature,
                        max_new_tokens=int(config.trl["max_completion_length"]), data_dir=config.data_dir,
                        out=str(samples)))
    if not (root / "audit" / "hybrid" / "audit.json").is_file():
        audit_main("hybrid", [str(samples)], out_dir=root / "audit" / "hybrid", data_dir=config.data_dir,
                   refs_dir=root / "pivot")


def _eval_done(out: Path) -> bool:
    return (out / "metrics.json").is_file()


def jobs(study: Study, methods: list[str], seeds: list[int] | None) -> list[tuple[str, int]]:
    """(method, seed) in the order they run: the study's own order, else every method's first seed, then the
    second seeds, ..."""
    if seeds is None and study.order:
        return [(m, s) for m, s in study.order if m in methods]
    chosen = {m: (seeds if seeds is not None else study.default_seeds().get(m, [0])) for m in methods}
    order = []
    for rank in range(max((len(s) for s in chosen.values()), default=0)):
        order += [(m, s[rank]) for m, s in chosen.items() if rank < len(s)]
    return order


def run_study(name: str, root: Path, methods: list[str], seeds: list[int] | None, docs: Path,
              prepare_only: bool = False) -> None:
    study = STUDIES[name]
    config = replace(study.pipeline, out=str(root))
    # pivotrl's stages lock their own folders (pivot store, evaluation, training); a second copy of this
    # script meets FolderBusyError there and goes on to work nobody holds.
    try:
        pivot = pivot_stage(config, root / "pivot")  # seed 0 sampling, shared by every run
        print(f"[{name}] pivot references: {pivot['by_status']}", flush=True)
    except FolderBusyError as exc:
        print(f"[{name}] {exc}; going on", flush=True)
        if not prepare_only:
            return  # training needs the finished references
    for task in study.evals:
        try:
            evaluate(study, config.model, root / "base" / f"eval-{task}", task, all_langs=study.base_all_langs)
        except FolderBusyError as exc:
            print(f"[{name}] {exc}; going on", flush=True)
    if study.audit_n:
        try:
            audit_reward(study, root)
        except FolderBusyError as exc:
            print(f"[{name}] {exc}; going on", flush=True)
    write_results(name, root, docs)  # the base model's tables, and the state a new machine starts from
    if prepare_only:
        return
    for method, seed in jobs(study, methods, seeds):
        run = replace(config, seed=seed, **study.methods[method])
        run_dir = root / f"{method}-s{seed}"
        if all(_eval_done(run_dir / f"eval-{task}") for task in study.evals):
            continue
        source = shared_source(study, root, method, seed)
        if source is not None:
            if not _round_sampled(source):
                print(f"[{name}] {method} seed {seed}: waits for {source.parent.name}'s first-round answers, "
                      "which it scores with its own reward; skipping it for now", flush=True)
                continue
            run = replace(run, offline={**run.offline, "samples_from": str(source)})
        started = time.perf_counter()
        try:
            with RunLock(check_output_dir(run_dir), "run"):  # the run's own folder: train/ and eval-*/ inside
                train_stage(run, run_dir / "train", root / "pivot" if run.labels == "pivot" else None)
                for task in study.evals:
                    evaluate(study, str(run_dir / "train" / "final"), run_dir / f"eval-{task}", task)
        except FolderBusyError as exc:
            print(f"[{name}] {method} seed {seed}: {exc}; skipping it", flush=True)
            continue
        print(f"[{name}] {method} seed {seed}: done in {time.perf_counter() - started:.0f} s", flush=True)
        write_results(name, root, docs)


def shared_source(study: Study, root: Path, method: str, seed: int) -> Path | None:
    """The run folder whose first-round answers ``method`` scores instead of sampling (``Study.shared_samples``
    of the same seed), or None where it samples its own."""
    if study.shared_samples is None or method == study.shared_samples or study.pipeline.algorithm == "grpo":
        return None
    return root / f"{study.shared_samples}-s{seed}" / "train"


def _round_sampled(train: Path) -> bool:
    """Every training prompt of the run's first round has its answers."""
    from pivotrl.train.offline import read_samples

    rows, samples = train / "train_set.jsonl", train / "round-1" / "samples.jsonl"
    if not rows.is_file() or not samples.is_file():
        return False
    return len(read_samples(samples, repair=False)) >= len(rows.read_text(encoding="utf-8").splitlines())


def run_states(study: Study, root: Path, methods: list[str], seeds: list[int] | None) -> list[str]:
    """One line per run in running order: evaluated, training (step, last checkpoint), or not started, and
    whether a process holds it now; for resuming a study across sessions without reading folders by hand."""
    lines = []
    for method, seed in jobs(study, methods, seeds):
        run_dir = root / f"{method}-s{seed}"
        train = run_dir / "train"
        evals = [task for task in study.evals if _eval_done(run_dir / f"eval-{task}")]
        if len(evals) == len(study.evals):
            state = "done"
        elif (train / "final").is_dir():
            state = f"trained; evaluated on {', '.join(evals) or 'nothing yet'} of {', '.join(study.evals)}"
        elif study.pipeline.algorithm != "grpo" and (train / "round-1").is_dir():
            state = _round_state(train)
        elif (train / "log.jsonl").is_file():
            steps = [r["step"] for r in read_log(train) if "reward" in r]
            saved = sorted(int(c.name.rsplit("-", 1)[1]) for c in train.glob("checkpoint-*")
                           if c.name.rsplit("-", 1)[1].isdigit())
            state = (f"training: logged step {max(steps, default=0)} of {study.pipeline.steps}, "
                     f"resumes from {f'checkpoint {saved[-1]}' if saved else 'the start'}")
        else:
            state = "not started"
        holder = lock_holder(run_dir)
        lines.append(f"{method} seed {seed}: {state}" + (f" [running: {holder}]" if holder else ""))
    return lines


def _round_state(train: Path) -> str:
    """Where an offline run stands: the round it is in, the prompts sampled so far, the trainer's checkpoint."""
    rounds = sorted(train.glob("round-*"), key=lambda p: int(p.name.rsplit("-", 1)[1]))
    last = rounds[-1]
    if (last / "done.json").is_file():
        return f"round {last.name.rsplit('-', 1)[1]} done, final model not saved yet"
    def lines(path: Path) -> int:
        return path.read_text(encoding="utf-8").count("\n") if path.is_file() else 0

    sampled, prompts = lines(last / "samples.jsonl"), lines(train / "train_set.jsonl")
    saved = sorted(int(c.name.rsplit("-", 1)[1]) for c in (last / "trainer").glob("checkpoint-*")
                   if c.name.rsplit("-", 1)[1].isdigit())
    if (last / "train.jsonl").is_file():
        return f"{last.name}: training, {f'checkpoint {saved[-1]}' if saved else 'no checkpoint yet'}"
    return f"{last.name}: sampling, {sampled} of {prompts or '?'} prompts sampled"


# ------------------------------------------------------------------------------------------ tables, plots


def _metrics(path: Path) -> dict[str, Any] | None:
    file = path / "metrics.json"
    return json.loads(file.read_text(encoding="utf-8")) if file.is_file() else None


@functools.cache
def _greedy_rows(path: Path) -> tuple[dict[str, Any], ...]:
    """An eval run's first answer per (problem, language), read once per report (files are large: 280-440
    answers per run)."""
    file = path / "generations.jsonl"
    rows = (json.loads(line) for line in file.read_text(encoding="utf-8").splitlines()) if file.is_file() else ()
    return tuple(row for row in rows if row.get("sample", 0) == 0)


def _correct(path: Path) -> dict[tuple[str, str], bool]:
    """(problem id, language) -> greedy answer right (flexible), from an eval run's generations."""
    return {(row["id"], row["lang"]): bool(row["correct"]) for row in _greedy_rows(path)}


# Answers evaluated before the decoder's ending was recorded (``cut`` missing) count as cut when their length,
# re-tokenised from the decoded text, is within this many tokens of the budget: re-tokenising a cut answer gives
# 252-260 tokens for a budget of 256 (the base model's MGSM answers), where finished answers near the budget
# are about one per token length.
_CUT_SLACK = 4


def _cut_share(path: Path, langs: list[str]) -> tuple[float, bool] | None:
    """Share of an eval run's answers in ``langs`` that the new-token budget cut, and whether any of it was
    estimated from lengths (see ``_CUT_SLACK``); None without generations."""
    config = path / "config.json"
    if not (path / "generations.jsonl").is_file() or not config.is_file():
        return None
    budget = json.loads(config.read_text(encoding="utf-8"))["config"]["max_new_tokens"]
    flags, estimated = [], False
    for row in _greedy_rows(path):
        if row["lang"] in langs:
            if row.get("cut") is None:
                estimated = True
                flags.append(row["n_tokens"] >= budget - _CUT_SLACK)
            else:
                flags.append(bool(row["cut"]))
    return (statistics.fmean(flags), estimated) if flags else None


def _mean_length(path: Path, langs: list[str]) -> float | None:
    """Mean length in new tokens of an eval run's answers in ``langs`` (bare "The answer is N." answers are
    about 10; the base model's worked answers 100-250)."""
    lengths = [row["n_tokens"] for row in _greedy_rows(path) if row["lang"] in langs]
    return statistics.fmean(lengths) if lengths else None


def _fmt(values: list[float], scale: float = 100.0, signed: bool = False, digits: int = 1) -> str:
    """Mean (and, over several seeds, ± the population standard deviation) of ``values`` times ``scale``."""
    if not values:
        return "-"
    mean = scale * statistics.fmean(values)
    text = f"{mean:+.{digits}f}" if signed else f"{mean:.{digits}f}"
    if len(values) > 1:
        text += f" ± {scale * statistics.pstdev(values):.{digits}f}"
    return text


def _flips(base: dict[tuple[str, str], bool], run: dict[tuple[str, str], bool], langs: list[str]) -> tuple[int, int]:
    """(answers the base model got wrong and the run right, answers the base got right and the run wrong)."""
    keys = [k for k in base if k[1] in langs and k in run]
    return sum(run[k] and not base[k] for k in keys), sum(base[k] and not run[k] for k in keys)


def bootstrap_gain(base: dict[tuple[str, str], bool], runs: list[dict[tuple[str, str], bool]],
                   langs: list[str], draws: int = 2000, seed: int = 0) -> tuple[float, float, float] | None:
    """Gain of the non-English mean accuracy over base (points), with a 95% bootstrap interval over problems."""
    return bootstrap_difference([base], runs, langs, draws, seed)


def bootstrap_difference(reference: list[dict[tuple[str, str], bool]], runs: list[dict[tuple[str, str], bool]],
                         langs: list[str], draws: int = 2000, seed: int = 0) -> tuple[float, float, float] | None:
    """Non-English mean accuracy of ``runs`` minus that of ``reference`` (points), with a 95% bootstrap interval.

    Problems are resampled (the same draw in every language, as they are parallel; paired, as both sides
    answered the same problems); a method's accuracy on a problem is averaged over its seeds, so the interval
    covers problem sampling, not seed variation (the tables give that as ± across seeds).
    """
    ids = sorted({i for i, lang in reference[0] if lang in langs}) if reference else []
    keys = [(i, lang) for i in ids for lang in langs]
    if not ids or not runs or any(k not in r for k in keys for r in [*reference, *runs]):
        return None

    def accuracy(side: list[dict[tuple[str, str], bool]], key: tuple[str, str]) -> float:
        return statistics.fmean(float(r[key]) for r in side)

    per_problem = [statistics.fmean(accuracy(runs, (i, lang)) - accuracy(reference, (i, lang)) for lang in langs)
                   for i in ids]
    rng = random.Random(seed)
    means = sorted(statistics.fmean(rng.choices(per_problem, k=len(ids))) for _ in range(draws))
    return (100 * statistics.fmean(per_problem), 100 * means[int(0.025 * draws)], 100 * means[int(0.975 * draws) - 1])


def collect(study: Study, root: Path) -> dict[str, Any]:
    """Every finished evaluation and training log of a study: {evals: {task: {method: {seed: folder}}}, ...}."""
    found: dict[str, Any] = {"evals": {}, "logs": {}, "pivot": None, "rounds": {}}
    for task in study.evals:
        if not _eval_done(root / "base" / f"eval-{task}"):
            continue
        runs: dict[str, dict[int, Path]] = {"base": {0: root / "base" / f"eval-{task}"}}
        for method in study.methods:
            for run_dir in sorted(root.glob(f"{method}-s*")):
                if _eval_done(run_dir / f"eval-{task}"):
                    runs.setdefault(method, {})[int(run_dir.name.rsplit("-s", 1)[1])] = run_dir / f"eval-{task}"
        found["evals"][task] = runs
    for method in study.methods:
        for run_dir in sorted(root.glob(f"{method}-s*")):
            if not (run_dir / "train" / "final").is_dir():  # a run still training would mix step counts
                continue
            rows = [r for r in read_log(run_dir / "train") if "reward" in r]
            if rows:
                found["logs"].setdefault(method, {})[int(run_dir.name.rsplit("-s", 1)[1])] = rows
    if study.pipeline.algorithm != "grpo":
        found["rounds"] = offline_rounds(study, root)
    refs = root / "pivot" / "references.jsonl"
    if refs.is_file():
        status: dict[str, int] = {}
        for line in refs.read_text(encoding="utf-8").splitlines():
            s = json.loads(line)["status"]
            status[s] = status.get(s, 0) + 1
        found["pivot"] = status
    return found


def offline_rounds(study: Study, root: Path) -> dict[str, dict[int, dict[str, Any]]]:
    """What each finished offline run (RFT, DPO) trained on and what it cost: {method: {seed: record}} with its
    rounds' ``done.json`` selections, the loss per training step, and the seconds spent sampling (summed over
    prompts from ``samples.jsonl``: a resumed round's earlier time included), training and evaluating."""

    out: dict[str, dict[int, dict[str, Any]]] = {}
    for method in study.methods:
        for run_dir in sorted(root.glob(f"{method}-s*")):
            train = run_dir / "train"
            rounds = sorted(train.glob("round-*/done.json"), key=lambda p: int(p.parent.name.rsplit("-", 1)[1]))
            if not (train / "final").is_dir() or not rounds:
                continue
            samples = [r.parent / "samples.jsonl" for r in rounds]
            log = read_log(train)  # a resumed run's repeated steps once
            evals = [_metrics(run_dir / f"eval-{task}") for task in study.evals]
            out.setdefault(method, {})[int(run_dir.name.rsplit("-s", 1)[1])] = {
                "rounds": [json.loads(r.read_text(encoding="utf-8")) for r in rounds],
                "loss": [(int(e["step"]), float(e["loss"])) for e in log if "loss" in e],
                **_sampling_cost(samples),
                "train_seconds": sum(float(e["train_runtime"]) for e in log if "train_runtime" in e),
                "eval_seconds": sum(float(m["run"].get("seconds_now", 0)) for m in evals if m) if all(evals) else None,
                "against_gold": _targets_against_gold(study, train, samples),
            }
    return out


def _sampling_cost(samples: list[Path]) -> dict[str, Any]:
    """What a run's rounds cost to sample, summed over prompts (a resumed round's earlier time included): its
    own sampling, or, for answers taken from another run (``scored_from``), its scoring of them, with that run's
    name."""
    from pivotrl.train.offline import read_samples

    if not all(p.is_file() for p in samples):
        return {"sample_seconds": None, "scored_from": None}
    seconds, source = 0.0, None
    for path in samples:
        for row in read_samples(path, repair=False):
            if "scored_from" in row:
                source = Path(row["scored_from"]).parents[2].name  # <run>/train/round-1/samples.jsonl
                seconds += float(row.get("score_seconds", 0))
            else:
                seconds += float(row.get("sample_seconds", 0))
    return {"sample_seconds": seconds, "scored_from": source}


@functools.cache
def _training_gold(task: str, langs: tuple[str, ...], data_dir: str | None) -> dict[tuple[str, str], str]:
    """The target-language gold answer of every training problem, keyed (problem id, language)."""
    from pivotrl.data import load_problems

    return {(p.id, p.lang): p.answer for p in load_problems(task, list(langs), split="train", data_dir=data_dir)}


def _targets_against_gold(study: Study, train: Path, samples: list[Path]) -> dict[str, int] | None:
    """How right, by the target-language gold answer the label-free rewards never see, a run's sampled answers
    and its kept fine-tuning targets were: {answers, right, prompts, prompts_with_right (a whole right answer
    to keep), kept, kept_right}. The target is re-derived as selection made it (the best whole answer, kept at
    the recipe's threshold). None where the samples or the data cannot be read."""
    from pivotrl.answers import answers_match, extract_answer
    from pivotrl.rewards.compose import load_reward_config
    from pivotrl.train.offline import default_min_reward, read_samples, sft_target
    from pivotrl.yaml_files import read_yaml_mapping

    recipe = train / "recipe.yaml"
    if not recipe.is_file() or not all(p.is_file() for p in samples):
        return None
    config = read_yaml_mapping(recipe, "the run's recipe")
    if config.get("algorithm") != "rft":
        return None
    threshold = config.get("min_reward")
    if threshold is None:
        threshold = default_min_reward(load_reward_config(config["reward"]))
    try:
        gold = _training_gold(str(config["task"]), tuple(config["langs"]), config.get("data_dir"))
    except Exception:  # noqa: BLE001 - the data may not be on this machine: the table then shows "?"
        return None
    counts: dict[str, Any] = dict.fromkeys(("answers", "right", "prompts", "prompts_with_right", "kept",
                                            "kept_right"), 0)
    counts["by_lang"] = {}  # language -> [prompts with a whole right answer, of them kept]
    counts["not_kept"] = {}  # why a prompt's best whole right answer fell short of the threshold -> prompts
    for path in samples:
        for record in read_samples(path, repair=False):
            answer = gold.get((str(record.get("problem_id")), str(record.get("lang"))))
            if answer is None or "answers" not in record:
                return None

            def right(a: dict[str, Any], code: str = str(record["lang"]), answer: str = answer) -> bool:
                return answers_match(extract_answer(a["text"], code).best, answer)

            counts["prompts"] += 1
            counts["answers"] += len(record["answers"])
            counts["right"] += sum(right(a) for a in record["answers"])
            whole_right = [a for a in record["answers"] if not a["cut"] and right(a)]
            counts["prompts_with_right"] += bool(whole_right)
            target, _ = sft_target(record, float(threshold))
            if target is not None:
                counts["kept"] += 1
                counts["kept_right"] += right(target)
            if whole_right:
                lang = counts["by_lang"].setdefault(str(record["lang"]), [0, 0])
                lang[0] += 1
                if target is not None and right(target):
                    lang[1] += 1
                else:
                    why = ("a wrong answer was the target" if target is not None
                           else _short_of_threshold(max(whole_right, key=lambda a: a["reward"])))
                    counts["not_kept"][why] = counts["not_kept"].get(why, 0) + 1
    return counts


def _short_of_threshold(answer: dict[str, Any]) -> str:
    """Which of a right answer's reward components held it under the threshold: a guard that penalised it, the
    language gate (fidelity under 1), disagreement with the reference's answer; else its credit was too low."""
    parts = answer.get("components", {})
    why = [name for name, value in parts.items() if name.endswith("_guard") and value < 0]
    if parts.get("language_fidelity", 1.0) < 1.0:
        why.append("language_fidelity")
    if parts.get("answer_agreement", 1.0) < 1.0:
        why.append("answer_agreement")
    return " + ".join(why) or "credit below the threshold"


def offline_table(study: Study, rounds: dict[str, dict[int, dict[str, Any]]]) -> list[str]:
    """One row per finished offline run: its prompts, what its sampling scored, the targets it kept per
    language, and the hours it cost (sampling, training, evaluation on this machine)."""
    langs = study.pipeline.langs
    lines = ["### What each run trained on, and its cost", "",
             "One round per run: every training prompt sampled, scored by the run's reward, the best whole answer "
             "kept as a fine-tuning target when it reaches the reward's threshold. \"Right by gold\" checks "
             "the sampled answers and the kept targets against the target-language gold answer, which the "
             "label-free rewards never see: how clean a label-free method's targets are. A run marked \"scored X's "
             "answers\" did not sample: it scored the first-round answers of X (same policy, seed, prompts and "
             "sampling) with its own reward, and its sampling hours are that scoring. Times are wall-clock on "
             "this machine (2 cores); a part redone after a kill counts once.", "",
             "| method | seed | prompts | answers sampled | mean sampled reward | sampled answers cut % | "
             "mean sampled length (tokens) | targets kept % (" + " / ".join(langs) + ") | training steps | "
             "final loss (mean of last 10 steps) | sampled answers right by gold % | "
             "prompts with a whole right answer % | kept targets right by gold % | sampling h | training h | "
             "evaluation h | total h |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for method, by_seed in rounds.items():
        for seed, run in sorted(by_seed.items()):
            sel = [r["selection"] for r in run["rounds"]]
            per = {c: [x[c] for x in sel if c in x] for c in langs}
            prompts = sum(x["prompts"] for v in per.values() for x in v)
            answers = sum(x["answers"] for v in per.values() for x in v)
            def weighted(key: str, per=per, answers=answers) -> float:  # a mean over every sampled answer
                return sum(x[key] * x["answers"] for v in per.values() for x in v if x[key] is not None) / max(
                    1, answers)
            kept = " / ".join(f"{100 * sum(x['kept'] for x in v) / max(1, sum(x['prompts'] for x in v)):.0f}"
                              for v in per.values())
            tail = [loss for _, loss in run["loss"][-10:]]
            hours = [run["sample_seconds"], run["train_seconds"], run["eval_seconds"]]
            cells = [f"{h / 3600:.2f}" if h is not None else "?" for h in hours]
            if run.get("scored_from"):
                cells[0] += f" (scored {run['scored_from']}'s answers)"
            total = f"{sum(hours) / 3600:.2f}" if None not in hours else "?"
            g = run.get("against_gold")
            gold_cells = ([f"{100 * g['right'] / max(1, g['answers']):.1f}",
                           f"{100 * g['prompts_with_right'] / max(1, g['prompts']):.1f}",
                           f"{100 * g['kept_right'] / g['kept']:.1f} ({g['kept_right']} of {g['kept']})"
                           if g["kept"] else "-"] if g else ["?"] * 3)
            lines.append(f"| {method} | {seed} | {prompts} | {answers} | {weighted('mean_reward'):.3f} | "
                         f"{100 * weighted('cut_share'):.1f} | {weighted('mean_tokens'):.0f} | {kept} | "
                         f"{sum(r['steps'] for r in run['rounds'])} | "
                         f"{statistics.fmean(tail) if tail else float('nan'):.3f} | {' | '.join(gold_cells)} | "
                         f"{' | '.join(cells)} | {total} |")
    return lines + [""] + _not_kept_table(langs, rounds)


def _not_kept_table(langs: list[str], rounds: dict[str, dict[int, dict[str, Any]]]) -> list[str]:
    """Per run: of the prompts where the policy sampled a whole right answer (by gold), how many became targets
    per language, and why the others' best right answer fell short of the run's threshold."""
    rows = [(method, seed, run["against_gold"]) for method, by_seed in rounds.items()
            for seed, run in sorted(by_seed.items()) if run.get("against_gold")]
    if not rows:
        return []
    lines = ["Right answers kept: per language, the prompts where a whole sampled answer was right by the gold "
             "answer, and how many of them gave a right target (kept / with a right answer); then why the others did "
             "not: a wrong answer outscored the right ones and was the target, or the best right answer fell short "
             "of the threshold (the reward components that held it under: a guard that penalised it, the "
             "language gate, disagreement with the reference's answer).", "",
             "| method | seed | " + " | ".join(langs) + " | right but not kept: why (prompts) |",
             "|---|---|" + "---|" * len(langs) + "---|"]
    for method, seed, g in rows:
        cells = [f"{g['by_lang'].get(c, [0, 0])[1]} / {g['by_lang'].get(c, [0, 0])[0]}" for c in langs]
        why = ", ".join(f"{k} {n}" for k, n in sorted(g["not_kept"].items(), key=lambda kv: -kv[1])) or "-"
        lines.append(f"| {method} | {seed} | {' | '.join(cells)} | {why} |")
    return lines + [""]


def _mean_over(metrics: dict[str, Any], langs: list[str], key: str) -> float | None:
    """Mean of a per-language figure over ``langs``; None when the run did not evaluate one of them."""
    if any(c not in metrics["languages"] for c in langs) or not langs:
        return None
    return statistics.fmean(float(metrics["languages"][c][key] or 0.0) for c in langs)


def _early_late(by_seed: dict[int, list[dict[str, Any]]], key: str, scale: float = 100.0, digits: int = 1) -> str:
    """A logged figure's mean over the first 10 and the last 10 steps (± across seeds), as "first / last"."""
    early = [statistics.fmean(float(r.get(key, 0)) for r in rows[:10]) for rows in by_seed.values()]
    late = [statistics.fmean(float(r.get(key, 0)) for r in rows[-10:]) for rows in by_seed.values()]
    return f"{_fmt(early, scale, digits=digits)} / {_fmt(late, scale, digits=digits)}"


def tables(study: Study, found: dict[str, Any]) -> str:
    lines: list[str] = []
    config = study.pipeline
    for task, runs in found["evals"].items():
        base = _metrics(runs["base"][0])
        langs = list(base["languages"])
        # The comparison is over the trained languages, which every run evaluates (trained runs may skip the
        # others to save time; the base model's other languages stay in the first table).
        scored = [c for c in langs if c != "en" and c in config.langs]
        base_correct = _correct(runs["base"][0])
        n = base["languages"][langs[0]]["problems"]
        split = "held-out" if study.eval_splits.get(task, "held-out") == "held-out" else "test (never trained on)"
        lines += [f"### Evaluated on {task} {split} ({n} problems per language, greedy)", "",
                  f"Mean ± spread across seeds. One answer moves a language by {100 / n:.1f} points and the "
                  f"non-English mean of the {len(scored)} trained languages by {100 / (n * len(scored)):.2f}."]
        metrics = {m: {s: _metrics(p) for s, p in by_seed.items()} for m, by_seed in runs.items()}
        for key, title in [("accuracy", "Accuracy % (flexible extraction: native answer phrase, else last number)"),
                           ("strict", "Strict accuracy % (native answer phrase only)"),
                           ("fidelity", "Language fidelity % (answers identified as the question's language)")]:
            lines += ["", title + ":", "", "| method | seeds | " + " | ".join(langs) + " |",
                      "|" + "---|" * (len(langs) + 2)]
            for method, by_seed in metrics.items():
                ms = list(by_seed.values())
                cells = [_fmt([m["languages"][c][key] for m in ms
                               if m["languages"].get(c, {}).get(key) is not None]) for c in langs]
                lines.append(f"| {method} | {','.join(map(str, sorted(by_seed)))} | " + " | ".join(cells) + " |")
        lines += ["", f"Means over the trained languages ({', '.join(scored)}):", "",
                  "| method | non-En acc % | non-En strict % | gain vs base (points, ± seeds) | "
                  "95% CI of gain (bootstrap over problems) | English acc % | English gap (points) | "
                  "non-En fidelity % | non-En answers cut at the budget % | non-En mean answer length (tokens) | "
                  "answers turned right / wrong vs base |",
                  "|---|---|---|---|---|---|---|---|---|---|---|"]
        base_non = _mean_over(base, scored, "accuracy") or 0.0
        estimated = False
        for method, by_seed in metrics.items():
            ms = [m for m in by_seed.values() if _mean_over(m, scored, "accuracy") is not None]
            if not ms:
                continue
            non = [_mean_over(m, scored, "accuracy") for m in ms]
            strict = [_mean_over(m, scored, "strict") for m in ms]
            fid = [_mean_over(m, scored, "fidelity") for m in ms]
            en = [m["languages"]["en"]["accuracy"] for m in ms if "en" in m["languages"]]
            gap = [m["languages"]["en"]["accuracy"] - x for m, x in zip(ms, non) if "en" in m["languages"]]
            gain = [x - base_non for x in non]
            seeds_correct = [_correct(runs[method][s]) for s in sorted(by_seed)]
            ci = bootstrap_gain(base_correct, seeds_correct, scored) if method != "base" else None
            ci_text = f"{ci[0]:+.1f} [{ci[1]:+.1f}, {ci[2]:+.1f}]" if ci else "-"
            shares = [_cut_share(runs[method][s], scored) for s in sorted(by_seed)]
            cut = [c[0] for c in shares if c is not None]
            length = [x for x in (_mean_length(runs[method][s], scored) for s in sorted(by_seed)) if x is not None]
            estimated |= any(c[1] for c in shares if c is not None)
            flips = [_flips(base_correct, c, scored) for c in seeds_correct] if method != "base" else []
            flip_text = " · ".join(f"+{won} / -{lost}" for won, lost in flips) or "-"
            lines.append(f"| {method} | {_fmt(non)} | {_fmt(strict)} | "
                         f"{_fmt(gain, signed=True) if method != 'base' else '0'} | {ci_text} | "
                         f"{_fmt(en)} | {_fmt(gap, signed=True)} | {_fmt(fid)} | {_fmt(cut)} | "
                         f"{_fmt(length, 1, digits=0)} | {flip_text} |")
        lines += ["", f"Answers turned right / wrong: of the {n * len(scored)} trained-language answers, how many the "
                      "base model got wrong and the trained model right (+), and the other way round (-), per "
                      "seed. The gain is their difference; their sum shows how much training moved."]
        lines += _against_ceiling(runs, metrics, base_correct, base_non, scored)
        if estimated:
            lines += ["", f"Answers cut at the budget: for runs evaluated before the decoder's ending was recorded, "
                          f"an answer counts as cut when its re-tokenised length is within {_CUT_SLACK} tokens of "
                          f"the {study.eval_max_new_tokens}-token budget (an estimate, good to a few answers)."]
        lines.append("")
    if found["rounds"]:
        lines += offline_table(study, found["rounds"])
    if found["logs"] and study.pipeline.algorithm == "grpo":
        lines += ["### Training signal", "",
                  "| method | seeds | steps | mean reward, first 10 steps | mean reward, last 10 steps | "
                  "groups without reward spread % | answer agreement of sampled answers % | "
                  "sampled answers cut at the budget %, first / last 10 steps | mean sampled length (tokens), "
                  "first / last 10 steps |",
                  "|---|---|---|---|---|---|---|---|---|"]
        for method, by_seed in found["logs"].items():
            first = [statistics.fmean(float(r["reward"]) for r in rows[:10]) for rows in by_seed.values()]
            last = [statistics.fmean(float(r["reward"]) for r in rows[-10:]) for rows in by_seed.values()]
            zero = [statistics.fmean(float(r.get("frac_reward_zero_std", 0)) for r in rows)
                    for rows in by_seed.values()]
            hit = [statistics.fmean(float(r["rewards/answer_agreement/mean"]) for r in rows)
                   for rows in by_seed.values() if "rewards/answer_agreement/mean" in rows[0]]
            steps = ",".join(str(len(rows)) for rows in by_seed.values())

            lines.append(f"| {method} | {','.join(map(str, sorted(by_seed)))} | {steps} | "
                         f"{_fmt(first, 1, digits=3)} | {_fmt(last, 1, digits=3)} | {_fmt(zero)} | {_fmt(hit)} | "
                         f"{_early_late(by_seed, 'completions/clipped_ratio')} | "
                         f"{_early_late(by_seed, 'completions/mean_length', 1, 0)} |")
        lines.append("")
    if found["pivot"]:
        stored = sum(found["pivot"].values())
        lines += [f"Pivot references ({config.pivot}, {config.pivot_k} samples per problem) for {stored} of "
                  f"{config.pivot_n} English {config.task} training problems: "
                  + ", ".join(f"{k} {v}" for k, v in sorted(found["pivot"].items()))
                  + " (verified: a sample's final answer equals the gold answer; gold: none did, the set's worked "
                    "solution is used)", ""]
    return "\n".join(lines)


def _against_ceiling(runs: dict[str, dict[int, Path]], metrics: dict[str, dict[int, dict[str, Any]]],
                     base_correct: dict[tuple[str, str], bool], base_non: float, scored: list[str]) -> list[str]:
    """Each label-free method against rlvr-gold on the same problems: the difference of the non-English means
    with its paired bootstrap interval, and the share of gold's gain it reached (only where gold's own gain is
    distinguishable from zero: a share of a gain lost in the noise means nothing)."""
    if CEILING not in runs or not any(m not in ("base", CEILING) for m in runs):
        return []
    gold = [_correct(runs[CEILING][s]) for s in sorted(runs[CEILING])]
    gold_ci = bootstrap_gain(base_correct, gold, scored)
    gold_gain = statistics.fmean(_mean_over(m, scored, "accuracy") or 0.0 for m in metrics[CEILING].values())
    gold_gain -= base_non
    seeds = ", ".join(map(str, sorted(runs[CEILING])))
    lines = ["", f"Against {CEILING} (seeds {seeds}), the label-using ceiling, on the same problems:", "",
             f"| method | seeds | minus {CEILING} (points, 95% CI, paired bootstrap over problems) | "
             f"share of {CEILING}'s gain |", "|---|---|---|---|"]
    for method, by_seed in runs.items():
        if method in ("base", CEILING):
            continue
        diff = bootstrap_difference(gold, [_correct(by_seed[s]) for s in sorted(by_seed)], scored)
        diff_text = f"{diff[0]:+.1f} [{diff[1]:+.1f}, {diff[2]:+.1f}]" if diff else "-"
        gain = statistics.fmean(_mean_over(m, scored, "accuracy") or 0.0 for m in metrics[method].values()) - base_non
        if gold_ci and gold_ci[1] > 0:
            share = f"{100 * gain / gold_gain:.0f}%"
        else:
            share = f"- ({CEILING}'s gain is not distinguishable from zero)"
        lines.append(f"| {method} | {','.join(map(str, sorted(by_seed)))} | {diff_text} | {share} |")
    return lines


_PANEL_TITLES = {"frac_reward_zero_std": "groups without spread", "completions/mean_length": "mean sampled length "
                 "(tokens)", "completions/clipped_ratio": "sampled answers cut at the budget"}


def plots(name: str, found: dict[str, Any], out: Path) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    # one colour per method in every figure: the base model first, then the study's methods in their order
    colour = {method: f"C{i}" for i, method in enumerate(["base", *STUDIES[name].methods])}
    paths = []
    for task, runs in found["evals"].items():
        metrics = {m: [_metrics(p) for p in by_seed.values()] for m, by_seed in runs.items()}
        langs = list(metrics["base"][0]["languages"])
        fig, axes = plt.subplots(1, 2, figsize=(13, 3.8))
        width = 0.8 / len(metrics)
        x = np.arange(len(langs))
        for ax, key in zip(axes, ("accuracy", "fidelity")):
            for i, (method, ms) in enumerate(metrics.items()):
                values = np.array([[100 * (m["languages"].get(c, {}).get(key) or 0) for c in langs] for m in ms])
                ax.bar(x + (i - (len(metrics) - 1) / 2) * width, values.mean(0), width,
                       yerr=values.std(0) if len(values) > 1 else None, label=method, capsize=2,
                       color=colour[method])
            ax.set_xticks(x, langs)
            ax.set_ylabel(f"{key} (%)")
            ax.set_ylim(0, 105)
            ax.set_title(f"{key} on {task} held-out")
        axes[0].legend(fontsize=7)
        fig.tight_layout()
        path = out / f"{task}.png"
        fig.savefig(path, dpi=110)
        plt.close(fig)
        paths.append(path)
    if found["rounds"]:
        paths.append(_offline_figure(name, found["rounds"], colour, out))
    if found["logs"] and STUDIES[name].pipeline.algorithm == "grpo":
        # the reward functions' own totals (rewards/pivotrl_<preset>/mean) repeat the reward panel: left out
        components = sorted({k.split("/")[1] for rows in (r for s in found["logs"].values() for r in s.values())
                             for k in rows[0] if k.startswith("rewards/") and k.endswith("/mean")
                             and not k.startswith("rewards/pivotrl_")})
        by_lang = sorted({k.split("/")[1] for s in found["logs"].values() for rows in s.values() for row in rows
                          for k in row if k.startswith("reward_by_lang/")})
        panels = ["reward", "frac_reward_zero_std", "completions/mean_length", "completions/clipped_ratio",
                  *[f"rewards/{c}/mean" for c in components],
                  *[f"reward_by_lang/{c}" for c in by_lang]]
        cols = 4
        fig, axes = plt.subplots(-(-len(panels) // cols), cols, figsize=(16, 3.0 * -(-len(panels) // cols)),
                                 squeeze=False)
        # one line style per seed; a panel shows only the runs that log its component, so colours taken in
        # plotting order would change meaning from panel to panel
        styles = ["-", "--", ":", "-."]
        for ax, key in zip(axes.flat, panels):
            for method, by_seed in found["logs"].items():
                for rank, (seed, rows) in enumerate(sorted(by_seed.items())):
                    points = [(r["step"], float(r[key])) for r in rows if r.get(key) is not None]
                    if not points:
                        continue
                    steps, values = zip(*points)
                    width = min(5, len(values))
                    smooth = np.convolve(values, np.ones(width) / width, mode="valid")
                    ax.plot(steps[len(steps) - len(smooth):], smooth, label=f"{method} s{seed}", lw=1,
                            color=colour[method], linestyle=styles[rank % len(styles)])
            ax.set_title(_PANEL_TITLES.get(key, key.replace("rewards/", "").replace("/mean", "")), fontsize=9)
            ax.set_xlabel("step", fontsize=8)
        for ax in list(axes.flat)[len(panels):]:
            ax.axis("off")
        axes.flat[0].legend(fontsize=6)
        fig.suptitle(f"{name}: training reward (total, per component, per language; 5-step moving averages)")
        fig.tight_layout()
        path = out / "training.png"
        fig.savefig(path, dpi=100)
        plt.close(fig)
        paths.append(path)
    return paths


def _offline_figure(name: str, rounds: dict[str, dict[int, dict[str, Any]]], colour: dict[str, str],
                    out: Path) -> Path:
    """The offline runs' training: the fine-tuning loss per step (10-step moving average), and per language the
    mean sampled reward and the share of prompts that gave a target."""
    import matplotlib.pyplot as plt
    import numpy as np

    langs = STUDIES[name].pipeline.langs
    runs = [(method, seed, run) for method, by_seed in rounds.items() for seed, run in sorted(by_seed.items())]
    fig, axes = plt.subplots(1, 3, figsize=(16, 3.8))
    styles = ["-", "--", ":", "-."]
    width = 0.8 / max(1, len(runs))
    x = np.arange(len(langs))
    for i, (method, seed, run) in enumerate(runs):
        label = f"{method} s{seed}"
        if run["loss"]:
            steps, losses = zip(*run["loss"])
            k = min(10, len(losses))
            smooth = np.convolve(losses, np.ones(k) / k, mode="valid")
            axes[0].plot(steps[len(steps) - len(smooth):], smooth, label=label, lw=1, color=colour[method],
                         linestyle=styles[seed % len(styles)])
        sel = run["rounds"][-1]["selection"]
        offset = (i - (len(runs) - 1) / 2) * width
        axes[1].bar(x + offset, [sel.get(c, {}).get("mean_reward") or 0 for c in langs], width, label=label,
                    color=colour[method], alpha=1.0 if seed == 0 else 0.6)
        axes[2].bar(x + offset, [100 * sel[c]["kept"] / max(1, sel[c]["prompts"]) if c in sel else 0 for c in langs],
                    width, label=label, color=colour[method], alpha=1.0 if seed == 0 else 0.6)
    axes[0].set(title="fine-tuning loss (10-step moving average)", xlabel="step")
    axes[1].set(title="mean sampled reward (each run's own reward)", xticks=x, xticklabels=langs)
    axes[2].set(title="prompts that gave a target (%)", xticks=x, xticklabels=langs, ylim=(0, 105))
    axes[0].legend(fontsize=7)
    fig.suptitle(f"{name}: what each run trained on")
    fig.tight_layout()
    path = out / "training.png"
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def write_results(name: str, root: Path, docs: Path) -> Path:
    study = STUDIES[name]
    out = docs / "results" / name
    out.mkdir(parents=True, exist_ok=True)
    _greedy_rows.cache_clear()  # a long study writes its page after every run; runs may be re-evaluated between
    found = collect(study, root)
    images = plots(name, found, out)
    text = tables(study, found)
    path = out / "tables.md"  # images linked from beside them here, from docs/ in RESULTS.md
    path.write_text(f"<!-- written by experiments/reproduce.py --study {name}; do not edit by hand -->\n\n{text}\n\n"
                    + "\n".join(f"![{p.stem}]({p.name})" for p in images) + "\n", encoding="utf-8")
    _fill_results_page(docs / "RESULTS.md", name,
                       text + "\n\n" + "\n".join(f"![{p.stem}](results/{name}/{p.name})" for p in images))
    for audit_file in ("audit.md", "audit.png"):  # the reward audit on the base policy's sampled answers
        if (root / "audit" / "hybrid" / audit_file).is_file():
            shutil.copyfile(root / "audit" / "hybrid" / audit_file, out / audit_file)
    if study.answers:
        export_answers(found, out / "answers")
    save_state(root, out / "state")
    config = study.pipeline
    settings = {"policy": config.model, "pivot": config.pivot, "task": config.task, "langs": config.langs,
                "algorithm": config.algorithm, "offline": config.offline, "steps": config.steps,
                "pivot_n": config.pivot_n, "pivot_k": config.pivot_k, "trl": config.trl,
                "lora": config.lora, "methods": study.methods, "seeds": study.default_seeds(), "evals": study.evals,
                "eval_all_langs": study.all_langs, "eval_splits": study.eval_splits,
                "eval_max_new_tokens": study.eval_max_new_tokens,
                "audit_n": study.audit_n}
    (out / "settings.json").write_text(json.dumps(settings, indent=2) + "\n", encoding="utf-8")
    return path


# What each exported answer keeps: enough to re-score it with another extractor (the text and what pivotrl read
# from it), without the prompt (the same for every run, rebuilt from the data).
ANSWER_FIELDS = ("id", "lang", "sample", "response", "gold", "answer_type", "strict", "flexible", "correct_strict",
                 "correct_flexible", "correct", "detected_lang", "in_language", "n_tokens", "cut")


def export_answers(found: dict[str, Any], out: Path) -> list[Path]:
    """Every finished evaluation's per-item answers as ``<method>-s<seed>-<task>.jsonl.gz`` (``base-<task>``),
    one JSON object per answer with :data:`ANSWER_FIELDS`; rewritten only when the evaluation is newer."""
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for task, runs in found["evals"].items():
        for method, by_seed in runs.items():
            for seed, folder in by_seed.items():
                source = folder / "generations.jsonl"
                target = out / (f"base-{task}.jsonl.gz" if method == "base" else f"{method}-s{seed}-{task}.jsonl.gz")
                if target.is_file() and target.stat().st_mtime >= source.stat().st_mtime:
                    continue
                lines = (json.loads(line) for line in source.read_text(encoding="utf-8").splitlines() if line.strip())
                rows = sorted(({k: row.get(k) for k in ANSWER_FIELDS} for row in lines),
                              key=lambda r: (r["lang"], r["id"], r["sample"]))
                # mtime 0 in the gzip header: the same answers give the same bytes (a clean git diff)
                with gzip.GzipFile(target, "wb", mtime=0) as f:
                    f.write("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows).encode("utf-8"))
                written.append(target)
    return written


# ------------------------------------------------------------------------------------ state kept in git

# A study outlives the machine it runs on only through what is committed: runs/ is ignored, and a machine that is
# shut down takes it along. The state folder (docs/results/<study>/state) keeps, compressed, the records every
# stage resumes from: the pivot's references, the evaluations' answers (finished or not), and each run's recipe,
# log and sampled rounds. Not weights (17 MB a run, and a trainer checkpoint more): a run whose evaluations are
# all done comes back as finished; any other run trains again from its kept samples, without sampling again.
_KEPT = (".json", ".jsonl", ".yaml")


def _state_files(root: Path) -> list[Path]:
    folders = [root / "pivot", *sorted(root.glob("*/eval-*")), *sorted(root.glob("*/train"))]
    files = [f for folder in folders if folder.is_dir() for f in sorted(folder.iterdir())
             if f.is_file() and f.suffix in _KEPT]
    rounds = [f for name in ("samples.jsonl", "done.json") for f in sorted(root.glob(f"*/train/round-*/{name}"))]
    return files + rounds


def save_state(root: Path, state: Path) -> list[Path]:
    """Compress the study's records into ``state`` (each ``<path under root>.gz``), rewriting only those whose
    content changed; a line still being written is left out."""
    written = []
    for source in _state_files(root):
        data = source.read_bytes()
        data = data[: data.rfind(b"\n") + 1] if source.suffix == ".jsonl" else data
        target = state / (str(source.relative_to(root)) + ".gz")
        if target.is_file() and gzip.decompress(target.read_bytes()) == data:
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        with gzip.GzipFile(target, "wb", mtime=0) as f:  # mtime 0: the same content gives the same bytes
            f.write(data)
        written.append(target)
    return written


def restore_state(state: Path, root: Path, tasks: list[str]) -> list[Path]:
    """Put back the files of ``state`` that ``root`` lacks (a new machine, or runs/ removed); files already in
    ``root`` are newer and stay. A run evaluated on every one of ``tasks`` gets a ``train/final`` folder holding a
    note instead of weights, so the study counts it as finished and reads its log and rounds. Any other run trains
    again from its samples, so its round marks and partial evaluations are left out."""
    def finished(run: str) -> bool:
        return all((state / run / f"eval-{task}" / "metrics.json.gz").is_file() for task in tasks)

    restored = []
    for packed in sorted(state.rglob("*.gz")):
        relative = packed.relative_to(state)
        run = relative.parts[0]
        # an unfinished run's evaluations (of weights now gone) and round marks (its round trains again) stay out
        if run != "base" and not finished(run) and (relative.name == "done.json.gz" or (
                len(relative.parts) > 2 and relative.parts[1].startswith("eval-"))):
            continue
        target = root / str(relative).removesuffix(".gz")
        if target.exists():
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(gzip.decompress(packed.read_bytes()))
        restored.append(target)
        if relative.parts[1:] == ("train", "log.jsonl.gz") and finished(run) and not (target.parent / "final").exists():
            (target.parent / "final").mkdir()
            (target.parent / "final" / "RESTORED.txt").write_text(f"Restored from {state}: the weights were not "
                                                                  "kept.\n", encoding="utf-8")
    return restored


def _fill_results_page(page: Path, name: str, tables_md: str) -> None:
    """Put the generated tables between the study's two markers in docs/RESULTS.md (the prose stays)."""
    start, end = f"<!-- tables:{name}:start -->", f"<!-- tables:{name}:end -->"
    if not page.is_file():
        return
    text = page.read_text(encoding="utf-8")
    if start not in text or end not in text:
        return
    head, rest = text.split(start, 1)
    tail = rest.split(end, 1)[1]
    page.write_text(f"{head}{start}\n{tables_md.strip()}\n{end}{tail}", encoding="utf-8")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--study", choices=list(STUDIES), default="qwen", help="Which study (default: %(default)s).")
    parser.add_argument("--runs", default="runs/reproduce", help="Folder of every study's runs (default: %(default)s).")
    parser.add_argument("--docs", default="docs", help="Where RESULTS.md and results/ live (default: %(default)s).")
    parser.add_argument("--methods", help="Comma-separated methods (default: all of the study's).")
    parser.add_argument("--seeds", help="Comma-separated seeds for every method (default: the study's per method).")
    parser.add_argument("--steps", type=int, help="Training steps (default: the study's); a finished run with "
                        "fewer steps is continued from its last checkpoint.")
    parser.add_argument("--prepare-only", action="store_true",
                        help="Only the pivot references and the base model's evaluations.")
    parser.add_argument("--report-only", action="store_true", help="Only rebuild the tables and plots.")
    parser.add_argument("--status", action="store_true",
                        help="Only list the runs in order: done, training (logged step, checkpoint) or not started, "
                             "and which process holds each now.")
    args = parser.parse_args()
    if args.steps is not None:
        STUDIES[args.study] = replace(STUDIES[args.study],
                                      pipeline=replace(STUDIES[args.study].pipeline, steps=args.steps))
    study = STUDIES[args.study]
    methods = [m for m in (args.methods or ",".join(study.methods)).split(",") if m]
    unknown = [m for m in methods if m not in study.methods]
    if unknown:
        parser.error(f"--methods: unknown {', '.join(unknown)}; the {args.study} study has {', '.join(study.methods)}")
    try:
        seeds = [int(s) for s in args.seeds.split(",")] if args.seeds else None
    except ValueError:
        parser.error(f"--seeds: expected comma-separated integers, got {args.seeds!r}")
    root = study_root(args.study, Path(args.runs))
    state = Path(args.docs) / "results" / args.study / "state"
    restored = restore_state(state, root, list(study.evals))
    if restored:
        print(f"[{args.study}] restored {len(restored)} files from {state}", flush=True)
    if args.status:
        print("\n".join(run_states(study, root, methods, seeds)))
        return
    if not args.report_only:
        run_study(args.study, root, methods, seeds, Path(args.docs), prepare_only=args.prepare_only)
    print(f"tables and plots: {write_results(args.study, root, Path(args.docs))}")


if __name__ == "__main__":
    main()
