"""Offline algorithms (dpo, rft): the algorithm table, recipe errors, pairs and targets chosen from real reward
scores, real TRL runs on a tiny model, and a run killed in sampling and again in training that resumes.

The run tests use a tiny random-weight Llama whose end token is made likely (answers end after a few tokens, so
that some are whole and can be ranked): plumbing only. Whether DPO or RFT helps is measured with Qwen2.5-0.5B in
docs/BENCHMARKS.md, not here.
"""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from pivotrl.data import load_problems
from pivotrl.rewards.compose import build_reward
from pivotrl.train.algorithms import ALGORITHMS, COMMON_TRL, trl_classes
from pivotrl.train.config import TrainConfigError, load_train_config, trl_args
from pivotrl.train.offline import (
    SharedSamplesError,
    check_shared_samples,
    default_min_reward,
    nothing_kept,
    preference_pair,
    read_samples,
    round_rows,
    select_round,
    sft_target,
)

# --------------------------------------------------------------------------------------- the algorithm table


def test_every_algorithm_names_real_trl_classes_and_defaults_that_are_their_fields():
    for name, row in ALGORITHMS.items():
        config_class, trainer_class = trl_classes(name)
        assert config_class.__name__ == row.config_class and trainer_class.__name__ == row.trainer_class
        fields = set(config_class.__dataclass_fields__)
        assert set(COMMON_TRL) <= fields and set(row.trl_defaults) <= fields, name
        assert row.online == (not row.offline_defaults), name


def test_grpo_defaults_do_not_leak_into_the_offline_algorithms():
    dpo = trl_args(load_train_config(None, ["algorithm=dpo"]))
    grpo = trl_args(load_train_config(None, []), reward_weights=[1.0])
    assert type(dpo).__name__ == "DPOConfig" and type(grpo).__name__ == "GRPOConfig"
    assert not hasattr(dpo, "num_generations") and not hasattr(dpo, "reward_weights")
    assert grpo.max_steps == 30 and dpo.max_steps == -1 and dpo.num_train_epochs == 1
    assert dpo.precompute_ref_log_probs and dpo.beta == 0.1
    sft = trl_args(load_train_config(None, ["algorithm=rft", "trl.learning_rate=3e-5"]))
    assert type(sft).__name__ == "SFTConfig" and sft.learning_rate == 3e-5 and sft.max_steps == -1
    # offline fields: the recipe's value, else the algorithm's default
    config = load_train_config(None, ["algorithm=dpo", "samples_per_prompt=6"])
    assert config.offline("samples_per_prompt") == 6 and config.offline("pair_margin") == 0.25


@pytest.mark.parametrize("overrides, message", [
    (["algorithm=dpo", "samples_per_prompt=1"], "samples_per_prompt must be 2 or more for dpo"),
    (["algorithm=dpo", "pair_margin=3.5"], "pair_margin 3.5 is out of reach: the hybrid reward's totals span -1.5 "
                                           "to 1.7"),
    (["algorithm=dpo", "reward=answer", "pair_margin=1.5"], "no two answers differ by more than 1"),
    (["algorithm=rft", "min_reward=2"], "min_reward 2 is out of reach"),
    (["algorithm=dpo", "trl.num_generations=8"], "trl.num_generations is not a field of TRL's DPOConfig; it is a "
                                                 "field of grpo, rloo"),
    (["algorithm=rft", "trl.mask_truncated_completions=true"], "not a field of TRL's SFTConfig"),
    (["algorithm=grpo", "rounds=2"], "rounds applies to dpo, rft, not to algorithm grpo"),
    (["algorithm=rft", "pair_margin=0.1"], "pair_margin applies to dpo, not to algorithm rft"),
    (["algorithm=dpo", "rounds=0"], "rounds must be a positive integer"),
    (["algorithm=dpo", "sample_temperature=0"], "sample_temperature must be above 0"),
    (["algorithm=dpo", "rounds=2", "dtype=bfloat16", "lora.r=8"], "use dtype float32"),
    (["algorithm=ppo"], "algorithm must be one of grpo, rloo, dpo, rft"),
    (["algorithm=grpo", "samples_from=runs/a"], "samples_from applies to dpo, rft, not to algorithm grpo"),
])
def test_bad_offline_settings_are_refused_before_anything_loads(overrides, message):
    started = time.perf_counter()
    with pytest.raises(TrainConfigError, match="defaults: ") as err:
        load_train_config(None, overrides)
    assert message in str(err.value)
    assert time.perf_counter() - started < 5


def test_round_rows_take_the_next_slice_of_one_seeded_order():
    rows = [{"problem_id": str(i), "lang": "de"} for i in range(10)]
    assert round_rows(rows, None, 3, 0) == rows
    first, second, third = (round_rows(rows, 4, r, 0) for r in (1, 2, 3))
    assert len({r["problem_id"] for r in first + second}) == 8  # two rounds, eight different prompts
    assert {r["problem_id"] for r in third} >= ({r["problem_id"] for r in rows} - {r["problem_id"] for r in
                                                                                     first + second})  # wraps
    assert round_rows(rows, 4, 1, 1) != first  # the order follows the seed


# -------------------------------------------------------------------------- pairs from real reward scores

# Real text: German problems of the synthetic set with the set's own German and English solutions.
PROBLEMS = {(p.id, p.lang): p for p in load_problems("synthetic", ["en", "de"], n=3)}
IDS = sorted({pid for pid, _ in PROBLEMS})


def _record(reward, pid: str, answers: list[tuple[str, bool]]) -> dict:
    """One prompt's scored answers as sample_round writes them: the texts scored with the real reward."""
    english = PROBLEMS[(pid, "en")]
    texts = [t for t, _ in answers]
    scored = reward.score(texts, reference=[english.solution] * len(texts),
                          reference_answer=[english.answer] * len(texts), lang=["de"] * len(texts),
                          answer_type=["number"] * len(texts))
    return {"problem_id": pid, "lang": "de", "round": 1, "answers": [
        {"text": t, "tokens": len(t.split()), "cut": cut, "reward": s.total, "components": s.components}
        for (t, cut), s in zip(answers, scored, strict=True)]}


@pytest.fixture(scope="module")
def hybrid(one_openmp_thread):
    return build_reward("hybrid")


def test_the_pair_is_the_worked_native_answer_over_a_wrong_or_english_one(hybrid):
    pid, other = IDS[0], IDS[1]
    right_de = PROBLEMS[(pid, "de")].solution
    wrong_de = PROBLEMS[(other, "de")].solution  # fluent German, another problem's numbers
    right_en = PROBLEMS[(pid, "en")].solution  # right, in English
    record = _record(hybrid, pid, [(wrong_de, False), (right_en, False), (right_de, False)])
    rewards = {a["text"]: a["reward"] for a in record["answers"]}
    assert rewards[right_de] > max(rewards[wrong_de], rewards[right_en])  # what the reward says, checked first
    (chosen, rejected), why = preference_pair(record, margin=0.25, min_reward=None)
    assert why == "kept" and chosen["text"] == right_de
    assert rejected["reward"] == min(rewards.values())
    # the margin is a floor on the chosen-rejected difference
    gap = chosen["reward"] - rejected["reward"]
    assert preference_pair(record, margin=gap + 0.01, min_reward=None) == (None, "below margin")
    assert preference_pair(record, margin=0.0, min_reward=rewards[right_de] + 0.01) == (None, "below min_reward")
    # RFT keeps the same best answer when it passes the threshold (the hybrid's default: the answer credit)
    target, why = sft_target(record, default_min_reward(hybrid.config))
    assert why == "kept" and target["text"] == right_de and default_min_reward(hybrid.config) == 1.0
    assert sft_target(record, rewards[right_de] + 0.01) == (None, "below min_reward")


def test_a_cut_answer_is_never_chosen_rejected_or_a_target(hybrid):
    pid, other = IDS[0], IDS[1]
    right_de = PROBLEMS[(pid, "de")].solution
    wrong_de = PROBLEMS[(other, "de")].solution
    # the best-scored text, but cut at the budget (as if the model had not ended it)
    record = _record(hybrid, pid, [(right_de, True), (wrong_de, False)])
    assert preference_pair(record, 0.0, None) == (None, "cut")
    target, _ = sft_target(record, -10.0)
    assert target["text"] == wrong_de  # the only whole answer
    assert sft_target(_record(hybrid, pid, [(right_de, True)]), -10.0) == (None, "cut")
    same = _record(hybrid, pid, [(right_de, False), (right_de, False)])
    assert preference_pair(same, 0.0, None) == (None, "no spread")


def test_selection_builds_conversational_rows_and_counts_per_language(hybrid):
    pid, other = IDS[0], IDS[1]
    right_de, wrong_de = PROBLEMS[(pid, "de")].solution, PROBLEMS[(other, "de")].solution
    rows = [{"problem_id": pid, "lang": "de", "prompt": [{"role": "user", "content": "Frage"}]},
            {"problem_id": other, "lang": "de", "prompt": [{"role": "user", "content": "Frage 2"}]}]
    records = [_record(hybrid, pid, [(right_de, False), (wrong_de, False)]),
               _record(hybrid, other, [(wrong_de, True), (wrong_de, True)])]
    config = load_train_config(None, ["algorithm=dpo"])
    train, selection = select_round(config, records, rows, None)
    assert train == [{"prompt": rows[0]["prompt"], "chosen": [{"role": "assistant", "content": right_de}],
                      "rejected": [{"role": "assistant", "content": wrong_de}]}]
    de = selection["de"]
    assert de["prompts"] == 2 and de["answers"] == 4 and de["kept"] == 1 and de["cut_share"] == 0.5
    assert de["skipped"] == {"cut": 1}
    rewards = [a["reward"] for r in records for a in r["answers"]]
    assert de["mean_reward"] == pytest.approx(sum(rewards) / 4, abs=1e-4)
    assert nothing_kept(selection, "dpo") == []
    # a language where no prompt had two whole answers is named, with why
    zh_rows = [{**r, "lang": "zh"} for r in rows]
    zh_records = [{**r, "lang": "zh", "answers": [{**a, "cut": True} for a in r["answers"]]} for r in records]
    _, both = select_round(config, records + zh_records, rows + zh_rows, None)
    assert both["zh"]["kept"] == 0 and both["de"]["kept"] == 1
    assert nothing_kept(both, "dpo") == ["no pairs in zh: 2 prompts, 2 cut"]
    rft = dataclasses.replace(config, algorithm="rft")
    train, selection = select_round(rft, records, rows, 1.0)
    assert train == [{"prompt": rows[0]["prompt"], "completion": [{"role": "assistant", "content": right_de}]}]


def test_a_sampling_file_torn_by_a_kill_loses_only_its_last_line(tmp_path):
    path = tmp_path / "samples.jsonl"
    whole = json.dumps({"problem_id": "a", "lang": "de", "answers": []}) + "\n"
    path.write_text(whole + '{"problem_id": "b", "la', encoding="utf-8")
    # another run's file may be being written: its unfinished line is skipped, and the file left alone
    assert [r["problem_id"] for r in read_samples(path, repair=False)] == ["a"]
    assert path.read_text(encoding="utf-8").endswith('"la')
    assert [r["problem_id"] for r in read_samples(path)] == ["a"]
    assert path.read_text(encoding="utf-8") == whole  # the torn line is cut off: appends start on a clean line


# ----------------------------------------------------------------------------------- real runs (tiny model)


@pytest.fixture(scope="module")
def short_answers(tiny_folder, tmp_path_factory) -> Path:
    """The tiny random model with its end token made likely: a constant feature in every token embedding, a bit
    larger in the end token's, so that its logit leads by a few nats and answers end after ~5-20 tokens."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model = AutoModelForCausalLM.from_pretrained(tiny_folder)
    tokenizer = AutoTokenizer.from_pretrained(tiny_folder)
    with torch.no_grad():
        embeddings = model.get_input_embeddings().weight
        embeddings[:, 0] = 10.0
        embeddings[tokenizer.eos_token_id, 0] = 10.5
    folder = tmp_path_factory.mktemp("tiny-short")
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


# The brevity guard (a penalty that shrinks as an answer nears a quarter of the reference's words) and language
# fidelity, ungated: both differ between random strings of different lengths, so groups have spread.
FIDELITY = "reward={weights: {brevity_guard: 1.0, language_fidelity: 1.0}, gate: null}"


def _offline(model: Path, out: Path, algorithm: str, *extra: str) -> list[str]:
    return ["--set", f"model={model}", "--set", f"algorithm={algorithm}", "--set", "langs=de,zh", "--set",
            "levels=[1]", "--set", FIDELITY, "--set", "eval_n=1", "--set", "eval_max_new_tokens=8",
            "--set", "sample_max_new_tokens=24", "--set", "lora.r=4", "--set", "lora.target_modules=all-linear",
            "--set", "trl.learning_rate=1e-3", "--set", "trl.per_device_train_batch_size=2",
            *(a for x in extra for a in ("--set", x)), "--output-dir", str(out), "--no-progress"]


def _cli(args: list[str]) -> subprocess.Popen:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    return subprocess.Popen([sys.executable, "-m", "pivotrl.cli", "train", *args], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def _log(run: Path) -> list[dict]:
    return [json.loads(line) for line in (run / "log.jsonl").read_text(encoding="utf-8").splitlines()]


@pytest.mark.slow
def test_two_dpo_rounds_train_on_pairs_and_chain_their_adapters(tmp_path, short_answers):
    from pivotrl.models import load_model
    from pivotrl.train.offline import policy_after

    run = tmp_path / "dpo"
    proc = _cli(_offline(short_answers, run, "dpo", "n_train=6", "rounds=2", "pair_margin=0.0"))
    out, _ = proc.communicate(timeout=300)
    assert proc.returncode == 0, out[-3000:]
    done = [json.loads((run / f"round-{r}" / "done.json").read_text()) for r in (1, 2)]
    for r, entry in enumerate(done, 1):
        pairs = [json.loads(line) for line in (run / f"round-{r}" / "train.jsonl").read_text().splitlines()]
        assert entry["kept"] == len(pairs) > 0 and entry["steps"] == -(-len(pairs) // 2)  # one epoch, batch 2
        assert all(set(p) == {"prompt", "chosen", "rejected"} for p in pairs)
        assert entry["prompts"] == 12 and set(entry["selection"]) == {"de", "zh"}
        assert (run / f"round-{r}" / "adapter" / "adapter_config.json").is_file()
        assert f"round {r}: {entry['kept']} of 12 prompts kept" in out
    logged = _log(run)
    steps = [e["step"] for e in logged if "loss" in e]
    total = done[0]["steps"] + done[1]["steps"]
    assert steps == list(range(1, total + 1))  # round 2's steps continue round 1's count
    assert {e["round"] for e in logged if "loss" in e} == {1, 2}
    sampling = [e for e in logged if "kept" in e]
    assert [e["step"] for e in sampling] == [0, done[0]["steps"]] and all("reward_by_lang/de" in e for e in sampling)
    assert [e["step"] for e in logged if "eval/non_en_accuracy" in e] == [done[0]["steps"], total]
    # the report reads it as it reads GRPO's: every loss and evaluation line kept, a row per language
    from pivotrl.pipeline import read_log, rollout_table

    rows = read_log(run)
    assert sum("loss" in r for r in rows) == total and sum("eval/non_en_accuracy" in r for r in rows) == 2
    table = rollout_table(rows)
    assert any(line.startswith("| de | 2 |") for line in table) and any(line.startswith("| zh | 2 |") for line in table)
    from pivotrl.pipeline import _append_training

    report = tmp_path / "report.md"
    report.write_text("# report\n", encoding="utf-8")
    _append_training(report, run, {})
    kept = done[0]["kept"] + done[1]["kept"]
    assert "2 round(s); mean sampled reward" in report.read_text() and f"{kept} pairs or targets" in report.read_text()
    # round 2 sampled from the policy with round 1's adapter merged in: its weights moved from the base's
    base = load_model(str(short_answers)).model.state_dict()
    after_one = policy_after(load_train_config(run / "recipe.yaml"), run, 1).model.state_dict()
    assert any(not torch.equal(base[k], after_one[k]) for k in base)
    final = load_model(str(run / "final"))
    assert json.loads((run / "final" / "pivotrl.json").read_text())["algorithm"] == "dpo"
    assert final.model.config.num_hidden_layers == 2


@pytest.mark.slow
def test_rft_fine_tunes_on_the_best_whole_answers(tmp_path, short_answers):
    run = tmp_path / "rft"
    proc = _cli(_offline(short_answers, run, "rft", "n_train=6", "min_reward=0.05"))
    out, _ = proc.communicate(timeout=300)
    assert proc.returncode == 0, out[-3000:]
    records = read_samples(run / "round-1" / "samples.jsonl")
    targets = [json.loads(line) for line in (run / "round-1" / "train.jsonl").read_text().splitlines()]
    expected = [t for t, _ in (sft_target(r, 0.05) for r in records) if t is not None]
    assert [t["completion"][0]["content"] for t in targets] == [t["text"] for t in expected]
    assert targets and all(set(t) == {"prompt", "completion"} for t in targets)
    assert [e for e in _log(run) if "loss" in e]  # SFTTrainer trained and logged
    assert (run / "final" / "config.json").is_file()


@pytest.mark.slow
def test_a_run_killed_in_sampling_and_in_training_resumes_without_sampling_twice(tmp_path, short_answers):
    run = tmp_path / "killed"
    # 48 problems x 2 languages: 6 engine calls of 16 prompts; a kill after the first call's lines land
    args = _offline(short_answers, run, "dpo", "n_train=48", "pair_margin=0.0", "sample_max_new_tokens=48",
                    "trl.per_device_train_batch_size=1", "trl.save_steps=1")
    samples = run / "round-1" / "samples.jsonl"
    proc = _cli(args)
    deadline = time.time() + 240
    while time.time() < deadline and not (samples.is_file() and samples.read_text(encoding="utf-8").count("\n")):
        assert proc.poll() is None, proc.stdout.read()[-3000:]
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    before = samples.read_text(encoding="utf-8")
    before = before[:before.rfind("\n") + 1]  # its whole lines (the kill may tear the last one)
    assert 0 < before.count("\n") < 96 and not (run / "round-1" / "done.json").exists()

    # without --resume the run folder is protected
    again = _cli(args)
    out, _ = again.communicate(timeout=120)
    assert again.returncode == 1 and "pass --resume" in out

    # resume, and kill again once training has saved its first checkpoint
    proc = _cli([*args, "--resume"])
    checkpoint = run / "round-1" / "trainer" / "checkpoint-1" / "trainer_state.json"
    while time.time() < deadline and not checkpoint.exists():
        assert proc.poll() is None, proc.stdout.read()[-3000:]
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    sampled = samples.read_text(encoding="utf-8")
    assert sampled.startswith(before)  # the first run's samples kept as they were
    keys = [(r["problem_id"], r["lang"]) for r in read_samples(samples)]
    assert len(keys) == len(set(keys)) == 96  # every prompt once: nothing sampled twice

    resumed = _cli([*args, "--resume"])
    out, _ = resumed.communicate(timeout=600)
    assert resumed.returncode == 0, out[-3000:]
    assert samples.read_text(encoding="utf-8") == sampled  # training resumed; sampling was not redone
    done = json.loads((run / "round-1" / "done.json").read_text())
    state = json.loads((run / "round-1" / "trainer" / f"checkpoint-{done['steps']}" / "trainer_state.json").read_text())
    assert state["global_step"] == done["steps"] == done["kept"] > 1
    steps = sorted({e["step"] for e in _log(run) if "loss" in e})
    assert steps == list(range(1, done["steps"] + 1))  # every step logged, before and after the kill
    # ... and once: the lines logged after the checkpoint the run resumed from were cut before it trained again,
    # and the round's sampling line, kept across both kills, was not written twice
    assert [e["step"] for e in _log(run) if "loss" in e] == steps
    assert [e.get("phase") for e in _log(run) if "kept" in e] == ["sampling"]
    assert (run / "final" / "config.json").is_file()


@pytest.mark.slow
def test_a_run_kept_as_records_without_weights_trains_again_without_sampling(tmp_path, short_answers):
    """The second study keeps a run's records in git (experiments/reproduce.py: recipe, log, sampled rounds; no
    weights, no checkpoints) and puts them back on a new machine: the run trains again from its samples."""
    import importlib.util
    import shutil

    spec = importlib.util.spec_from_file_location("reproduce_state", Path(__file__).parents[1] / "experiments" /
                                                  "reproduce.py")
    reproduce = importlib.util.module_from_spec(spec)
    sys.modules["reproduce_state"] = reproduce
    spec.loader.exec_module(reproduce)
    root, state = tmp_path / "study", tmp_path / "state"
    run = root / "rft-s0" / "train"
    args = _offline(short_answers, run, "rft", "n_train=6", "min_reward=0.05")
    out, _ = _cli(args).communicate(timeout=300)
    assert (run / "final" / "config.json").is_file(), out[-3000:]
    sampled = (run / "round-1" / "samples.jsonl").read_text(encoding="utf-8")
    trained = [e for e in _log(run) if "loss" in e]
    assert trained

    reproduce.save_state(root, state)
    shutil.rmtree(root)  # the machine is gone
    reproduce.restore_state(state, root, ["msvamp"])  # never evaluated: not finished
    assert not (run / "final").exists() and not (run / "round-1" / "done.json").exists()
    resumed = _cli([*args, "--resume"])
    out, _ = resumed.communicate(timeout=300)
    assert resumed.returncode == 0, out[-3000:]
    assert (run / "round-1" / "samples.jsonl").read_text(encoding="utf-8") == sampled  # nothing sampled again
    assert (run / "final" / "config.json").is_file()
    assert [e.get("phase") for e in _log(run) if "kept" in e] == ["sampling"]  # its sampling logged once
    assert [e["step"] for e in _log(run) if "loss" in e] == [e["step"] for e in trained]  # trained again, once


# ------------------------------------------------------------------- one run's answers scored by another reward


def _sampled_run(folder: Path, *overrides: str) -> Path:
    """A run folder as an rft run leaves it after sampling: its recipe and a round-1 samples file."""
    config = load_train_config(None, ["algorithm=rft", "langs=de", *overrides])
    (folder / "round-1").mkdir(parents=True)
    (folder / "recipe.yaml").write_text(json.dumps(config.to_dict()), encoding="utf-8")  # JSON is YAML
    samples = folder / "round-1" / "samples.jsonl"
    samples.write_text(json.dumps({"problem_id": "p0", "lang": "de", "answers": []}) + "\n", encoding="utf-8")
    return samples


@pytest.mark.parametrize("theirs, ours, named", [
    (["sample_temperature=0.7"], [], "sample_temperature (0.7 there, 0.8 here)"),  # ours: the default
    (["seed=1"], [], "seed (1 there, 0 here)"),
    (["model=qwen1.5b"], ["model=qwen0.5b"], "model ('qwen1.5b' there, 'qwen0.5b' here)"),
    (["langs=de,fr"], [], "langs (['de', 'fr'] there, ['de'] here)"),
])
def test_answers_sampled_differently_are_refused_naming_the_field(tmp_path, theirs, ours, named):
    samples = _sampled_run(tmp_path / "theirs", *theirs)
    config = load_train_config(None, ["algorithm=rft", "langs=de", f"samples_from={tmp_path / 'theirs'}", *ours])
    with pytest.raises(SharedSamplesError, match="sampled differently from this run") as err:
        check_shared_samples(config, samples)
    assert named in str(err.value)


def test_answers_sampled_alike_are_taken_whatever_the_reward_and_labels(tmp_path):
    samples = _sampled_run(tmp_path / "theirs", "reward=hybrid", "labels=pivot", "min_reward=1.0")
    config = load_train_config(None, ["algorithm=rft", "langs=de", "reward=answer", "labels=gold",
                                      f"samples_from={samples}"])
    check_shared_samples(config, samples)  # no error
    with pytest.raises(SharedSamplesError, match="does not exist"):
        check_shared_samples(config, tmp_path / "nowhere" / "samples.jsonl")


@pytest.mark.slow
def test_a_run_scores_another_runs_answers_with_its_own_reward_instead_of_sampling(tmp_path, short_answers):
    first, second = tmp_path / "fidelity", tmp_path / "brevity"
    out, _ = _cli(_offline(short_answers, first, "rft", "n_train=6", "min_reward=0.05")).communicate(timeout=300)
    assert (first / "final" / "config.json").is_file(), out[-3000:]
    # another reward (the brevity guard alone), another threshold, the same policy, prompts and sampling
    brevity = "reward={weights: {brevity_guard: 1.0}, gate: null}"
    proc = _cli([*_offline(short_answers, second, "rft", "n_train=6", "min_reward=-0.5"), "--set", brevity,
                 "--set", f"samples_from={first}"])
    out, _ = proc.communicate(timeout=300)
    assert proc.returncode == 0, out[-3000:]
    theirs = {(r["problem_id"], r["lang"]): r for r in read_samples(first / "round-1" / "samples.jsonl")}
    ours = read_samples(second / "round-1" / "samples.jsonl")
    assert len(ours) == len(theirs) == 12
    for record in ours:
        source = theirs[(record["problem_id"], record["lang"])]
        assert [a["text"] for a in record["answers"]] == [a["text"] for a in source["answers"]]
        assert record["scored_from"] == str(first / "round-1" / "samples.jsonl") and record["score_seconds"] >= 0
        # the total is this run's reward: the first run's brevity component alone, not its total
        assert [a["reward"] for a in record["answers"]] == [a["components"]["brevity_guard"]
                                                            for a in source["answers"]]
    assert any(a["reward"] != b["reward"] for r in ours for a, b in
               zip(r["answers"], theirs[(r["problem_id"], r["lang"])]["answers"], strict=True))
    targets = [json.loads(line) for line in (second / "round-1" / "train.jsonl").read_text().splitlines()]
    expected = [t for t, _ in (sft_target(r, -0.5) for r in ours) if t is not None]
    assert targets and [t["completion"][0]["content"] for t in targets] == [t["text"] for t in expected]
    assert (second / "final" / "config.json").is_file()
    # a run asking for prompts the other never sampled is refused (before its policy loads)
    proc = _cli([*_offline(short_answers, tmp_path / "more", "rft", "n_train=9"), "--set", f"samples_from={first}"])
    out, _ = proc.communicate(timeout=120)
    assert proc.returncode != 0 and "has no answers for 6 of this run's 18 prompts" in out, out[-3000:]
