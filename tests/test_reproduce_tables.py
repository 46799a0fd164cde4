"""The study's statistics (experiments/reproduce.py): the bootstrap interval of the gain, the answers turned
right and wrong, the share cut at the budget and the early / late training figures, on hand-made runs."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import pytest

_PATH = Path(__file__).resolve().parents[1] / "experiments" / "reproduce.py"
_spec = importlib.util.spec_from_file_location("reproduce", _PATH)
reproduce = importlib.util.module_from_spec(_spec)
sys.modules["reproduce"] = reproduce  # its dataclasses look their module up while being defined
_spec.loader.exec_module(reproduce)


def _answers(right: dict[str, set[int]], n: int = 10) -> dict[tuple[str, str], bool]:
    """(problem id, language) -> right, for problems 0..n-1 in each language of ``right``."""
    return {(f"p{i}", lang): i in ids for lang, ids in right.items() for i in range(n)}


def test_flips_count_each_direction():
    base = _answers({"de": {0, 1, 2}, "fr": {0}})
    run = _answers({"de": {1, 2, 3, 4}, "fr": set()})
    assert reproduce._flips(base, run, ["de", "fr"]) == (2, 2)  # de: +3 +4, -0; fr: -0
    assert reproduce._flips(base, run, ["de"]) == (2, 1)


def test_bootstrap_gain_is_the_mean_difference_with_an_interval_around_it():
    base = _answers({"de": set(), "fr": set()})
    assert reproduce.bootstrap_gain(base, [base], ["de", "fr"]) == (0.0, 0.0, 0.0)
    # every problem gains in German only: +50 points on the mean of two languages, whatever the resample
    all_de = _answers({"de": set(range(10)), "fr": set()})
    assert reproduce.bootstrap_gain(base, [all_de], ["de", "fr"]) == pytest.approx((50.0, 50.0, 50.0))
    # half the problems gain in both languages: the interval brackets +50 and is wide at 10 problems
    half = _answers({"de": set(range(5)), "fr": set(range(5))})
    gain, low, high = reproduce.bootstrap_gain(base, [half], ["de", "fr"])
    assert gain == pytest.approx(50.0) and low < 50.0 < high and high - low > 40
    # two seeds: a problem counts with its mean over them
    assert reproduce.bootstrap_gain(base, [all_de, base], ["de", "fr"])[0] == pytest.approx(25.0)
    # a run that skipped a language is no comparison
    assert reproduce.bootstrap_gain(base, [_answers({"de": set()})], ["de", "fr"]) is None


def _eval_folder(folder: Path, rows: list[dict], budget: int = 256) -> Path:
    folder.mkdir(parents=True)
    (folder / "config.json").write_text(json.dumps({"config": {"max_new_tokens": budget}}))
    (folder / "generations.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return folder


def test_cut_share_uses_recorded_endings_and_estimates_only_the_old_ones(tmp_path):
    recorded = _eval_folder(tmp_path / "new", [
        {"lang": "de", "n_tokens": 256, "cut": True}, {"lang": "de", "n_tokens": 254, "cut": False},
        {"lang": "de", "n_tokens": 12, "cut": False}, {"lang": "en", "n_tokens": 256, "cut": True}])
    assert reproduce._cut_share(recorded, ["de"]) == (pytest.approx(1 / 3), False)
    assert reproduce._mean_length(recorded, ["de"]) == pytest.approx((256 + 254 + 12) / 3)
    assert reproduce._mean_length(recorded, ["fr"]) is None
    # answers evaluated before endings were recorded: within 4 tokens of the budget counts as cut
    old = _eval_folder(tmp_path / "old", [{"lang": "de", "n_tokens": n} for n in (258, 253, 251, 40)])
    assert reproduce._cut_share(old, ["de"]) == (0.5, True)
    assert reproduce._cut_share(old, ["fr"]) is None
    assert reproduce._cut_share(tmp_path / "missing", ["de"]) is None


def test_early_late_means_over_the_first_and_last_ten_steps():
    rows = [{"completions/clipped_ratio": 0.0 if step < 10 else 0.5} for step in range(40)]
    assert reproduce._early_late({0: rows}, "completions/clipped_ratio") == "0.0 / 50.0"
    other = [{"completions/clipped_ratio": 0.1} for _ in range(40)]
    assert reproduce._early_late({0: rows, 1: other}, "completions/clipped_ratio") == "5.0 ± 5.0 / 30.0 ± 20.0"


def test_run_states_tell_done_training_and_held_runs_apart(tmp_path):
    study = reproduce.STUDIES["qwen"]
    order = reproduce.jobs(study, list(study.methods), None)
    (done_method, done_seed), (training_method, training_seed) = order[0], order[1]
    for task in study.evals:
        (tmp_path / f"{done_method}-s{done_seed}" / f"eval-{task}").mkdir(parents=True)
        (tmp_path / f"{done_method}-s{done_seed}" / f"eval-{task}" / "metrics.json").write_text("{}")
    train = tmp_path / f"{training_method}-s{training_seed}" / "train"
    (train / "checkpoint-5").mkdir(parents=True)
    (train / "log.jsonl").write_text("".join(json.dumps({"step": s, "reward": 0.1}) + "\n" for s in range(1, 8)))
    with reproduce.RunLock(train.parent, "run"):  # as the study holds a run while it works on it
        lines = reproduce.run_states(study, tmp_path, list(study.methods), None)
    assert len(lines) == len(order)
    assert lines[0] == f"{done_method} seed {done_seed}: done"
    assert lines[1].startswith(f"{training_method} seed {training_seed}: training: logged step 7 of "
                               f"{study.pipeline.steps}, resumes from checkpoint 5 [running: pid ")
    assert lines[2].endswith(": not started")
    # released: no holder any more
    assert "[running" not in reproduce.run_states(study, tmp_path, list(study.methods), None)[1]


def test_bootstrap_difference_is_paired_and_averages_each_side_over_its_seeds():
    half = _answers({"de": set(range(5)), "fr": set(range(5))})
    everything = _answers({"de": set(range(10)), "fr": set(range(10))})
    nothing = _answers({"de": set(), "fr": set()})
    # the same answers on both sides: zero, and no spread, whatever the resample (the pairing)
    assert reproduce.bootstrap_difference([half], [half], ["de", "fr"]) == (0.0, 0.0, 0.0)
    assert reproduce.bootstrap_difference([half], [everything], ["de", "fr"])[0] == pytest.approx(50.0)
    # two reference seeds (all, nothing) average to 50%: a run at 50% everywhere is level with them
    assert reproduce.bootstrap_difference([everything, nothing], [half], ["de", "fr"])[0] == pytest.approx(0.0)
    assert reproduce.bootstrap_difference([], [half], ["de"]) is None


def _scored_run(folder: Path, right: dict[str, set[int]], n: int = 10) -> Path:
    """An eval folder whose generations and metrics agree: problems ``right[lang]`` right, the others wrong."""
    rows = [{"id": f"p{i}", "lang": lang, "correct": i in ids, "n_tokens": 50}
            for lang, ids in right.items() for i in range(n)]
    _eval_folder(folder, rows)
    languages = {lang: {"accuracy": len(ids) / n} for lang, ids in right.items()}
    (folder / "metrics.json").write_text(json.dumps({"languages": languages}))
    return folder


def test_against_ceiling_gives_the_share_of_gold_only_when_golds_gain_is_clear(tmp_path):
    langs = ["de", "fr"]
    base = _scored_run(tmp_path / "base", {"de": set(), "fr": set()})
    gold = _scored_run(tmp_path / "gold", {"de": set(range(8)), "fr": set(range(8))})
    pb = _scored_run(tmp_path / "pb", {"de": set(range(4)), "fr": set(range(4))})
    runs = {"base": {0: base}, "rlvr-gold": {0: gold}, "pbrlsvr-hybrid": {0: pb}}
    metrics = {m: {s: reproduce._metrics(p) for s, p in by.items()} for m, by in runs.items()}
    lines = reproduce._against_ceiling(runs, metrics, reproduce._correct(base), 0.0, langs)
    row = lines[-1]
    assert row.startswith("| pbrlsvr-hybrid | 0 | -40.0 [") and row.endswith("| 50% |")
    # gold no better than base: no share
    flat = _scored_run(tmp_path / "flat", {"de": {0}, "fr": set()})
    runs["rlvr-gold"] = {0: flat}
    metrics["rlvr-gold"] = {0: reproduce._metrics(flat)}
    assert "not distinguishable from zero" in reproduce._against_ceiling(runs, metrics, reproduce._correct(base),
                                                                          0.0, langs)[-1]
    # nothing to compare without a label-free method
    assert reproduce._against_ceiling({"base": {0: base}, "rlvr-gold": {0: gold}}, metrics,
                                      reproduce._correct(base), 0.0, langs) == []


def test_answers_are_exported_sorted_reproducibly_and_only_when_newer(tmp_path):
    import gzip
    import os

    rows = [{"id": "p2", "lang": "de", "sample": 0, "response": "Die Antwort lautet 8.", "prompt": "long prompt",
             "gold": "8", "correct": True, "strict": "8", "flexible": "8", "n_tokens": 9, "cut": False},
            {"id": "p1", "lang": "de", "sample": 0, "response": "7 + 1 = 9", "prompt": "long prompt", "gold": "8",
             "correct": False, "strict": None, "flexible": "9", "n_tokens": 7, "cut": False}]
    base = _eval_folder(tmp_path / "base", rows)
    run = _eval_folder(tmp_path / "run", rows[:1])
    found = {"evals": {"msvamp": {"base": {0: base}, "pbrlsvr-hybrid": {1: run}}}}
    written = reproduce.export_answers(found, tmp_path / "answers")
    assert sorted(p.name for p in written) == ["base-msvamp.jsonl.gz", "pbrlsvr-hybrid-s1-msvamp.jsonl.gz"]
    with gzip.open(tmp_path / "answers" / "base-msvamp.jsonl.gz", "rt", encoding="utf-8") as f:
        back = [json.loads(line) for line in f]
    assert [r["id"] for r in back] == ["p1", "p2"] and "prompt" not in back[0]
    assert back[0]["flexible"] == "9" and back[0]["correct"] is False and back[1]["response"] == rows[0]["response"]
    first = (tmp_path / "answers" / "base-msvamp.jsonl.gz").read_bytes()
    assert reproduce.export_answers(found, tmp_path / "answers") == []  # nothing newer: nothing rewritten
    os.utime(base / "generations.jsonl", (2e9, 2e9))
    assert len(reproduce.export_answers(found, tmp_path / "answers")) == 1
    assert (tmp_path / "answers" / "base-msvamp.jsonl.gz").read_bytes() == first  # same answers, same bytes


def test_an_offline_run_reports_its_round_and_progress(tmp_path):
    train = tmp_path / "train"
    (train / "round-1").mkdir(parents=True)
    (train / "train_set.jsonl").write_text("{}\n" * 600)
    (train / "round-1" / "samples.jsonl").write_text("{}\n" * 48)
    assert reproduce._round_state(train) == "round-1: sampling, 48 of 600 prompts sampled"
    (train / "round-1" / "train.jsonl").write_text("{}\n")
    assert reproduce._round_state(train) == "round-1: training, no checkpoint yet"
    (train / "round-1" / "trainer" / "checkpoint-10").mkdir(parents=True)
    assert reproduce._round_state(train) == "round-1: training, checkpoint 10"
    (train / "round-1" / "done.json").write_text("{}")
    assert reproduce._round_state(train) == "round 1 done, final model not saved yet"


def test_study_state_round_trips_what_each_stage_resumes_from_without_weights(tmp_path):
    root, state = tmp_path / "runs", tmp_path / "state"
    (root / "pivot").mkdir(parents=True)
    # a pivot store being written: its last line is not finished yet
    (root / "pivot" / "references.jsonl").write_text('{"problem_id": "p0"}\n{"problem_id": "p1"}\n{"probl')
    (root / "pivot" / "config-abc.json").write_text("{}")
    (root / "pivot" / ".lock").write_text("")
    _eval_folder(root / "base" / "eval-msvamp", [{"lang": "de", "n_tokens": 12, "cut": False}])
    (root / "base" / "eval-msvamp" / "metrics.json").write_text('{"languages": {}}')
    for run, evaluated in (("gold-s0", True), ("gold-s1", False)):  # s1 trained, its evaluation unfinished
        train = root / run / "train"
        (train / "final").mkdir(parents=True)
        (train / "final" / "adapter.bin").write_bytes(b"weights")
        (train / "round-1" / "trainer" / "checkpoint-5").mkdir(parents=True)
        (train / "round-1" / "samples.jsonl").write_text('{"problem_id": "p0", "lang": "de"}\n')
        (train / "round-1" / "done.json").write_text("{}")
        (train / "recipe.yaml").write_text("algorithm: rft\n")
        (train / "log.jsonl").write_text('{"step": 1, "reward": 0.5}\n')
        _eval_folder(root / run / "eval-msvamp", [{"lang": "de", "n_tokens": 9, "cut": False}])
        if evaluated:
            (root / run / "eval-msvamp" / "metrics.json").write_text('{"languages": {}}')

    written = reproduce.save_state(root, state)
    packed = sorted(str(p.relative_to(state)) for p in written)
    run_files = ["eval-msvamp/config.json.gz", "eval-msvamp/generations.jsonl.gz", "train/log.jsonl.gz",
                 "train/round-1/done.json.gz",
                 "train/recipe.yaml.gz", "train/round-1/samples.jsonl.gz"]
    assert packed == sorted(["base/eval-msvamp/config.json.gz", "base/eval-msvamp/generations.jsonl.gz",
                             "base/eval-msvamp/metrics.json.gz", "gold-s0/eval-msvamp/metrics.json.gz",
                             *(f"gold-s{s}/{f}" for s in (0, 1) for f in run_files),
                             "pivot/config-abc.json.gz", "pivot/references.jsonl.gz"])
    assert reproduce.save_state(root, state) == []  # nothing changed: nothing rewritten

    fresh = tmp_path / "new-machine"
    reproduce.restore_state(state, fresh, ["msvamp"])
    assert (fresh / "pivot" / "references.jsonl").read_text() == '{"problem_id": "p0"}\n{"problem_id": "p1"}\n'
    # evaluated everywhere: finished, with its log, without weights
    assert (fresh / "gold-s0" / "train" / "final").is_dir()
    assert not (fresh / "gold-s0" / "train" / "final" / "adapter.bin").exists()
    assert reproduce._eval_done(fresh / "gold-s0" / "eval-msvamp")
    # not finished: it trains again from its kept samples (not its round's done mark), and its half evaluation
    # of weights now gone is left out
    assert (fresh / "gold-s1" / "train" / "round-1" / "samples.jsonl").is_file()
    assert not (fresh / "gold-s1" / "train" / "final").exists()
    assert not (fresh / "gold-s1" / "train" / "round-1" / "done.json").exists()
    assert not (fresh / "gold-s1" / "eval-msvamp").exists()
    # what the machine already has is newer and stays
    (fresh / "pivot" / "references.jsonl").write_text("newer\n")
    reproduce.restore_state(state, fresh, ["msvamp"])
    assert (fresh / "pivot" / "references.jsonl").read_text() == "newer\n"


def test_offline_runs_report_what_they_trained_on_and_their_hours(tmp_path):
    study = reproduce.STUDIES["qwen-rft"]
    langs = study.pipeline.langs
    run = tmp_path / "rlvr-gold-s1"
    train = run / "train"
    (train / "final").mkdir(parents=True)
    (train / "round-1").mkdir()
    # 2 prompts per language; German kept both, the others one; 900 s of sampling over the prompts
    selection = {c: {"prompts": 2, "answers": 8, "kept": 2 if c == "de" else 1, "cut_share": 0.25 if c == "sw" else 0,
                     "mean_reward": 0.5, "mean_tokens": 100.0, "skipped": {}} for c in langs}
    (train / "round-1" / "done.json").write_text(json.dumps({"round": 1, "steps": 3, "selection": selection}))
    (train / "round-1" / "samples.jsonl").write_text("".join(json.dumps({"sample_seconds": 90.0}) + "\n"
                                                             for _ in range(10)))
    log = [{"step": 0, "phase": "sampling", "reward": 0.5}, *({"step": i, "loss": 1.0 / i} for i in (1, 2, 3)),
           {"step": 3, "train_runtime": 1800.0}]
    (train / "log.jsonl").write_text("".join(json.dumps(e) + "\n" for e in log))
    for task in study.evals:
        (run / f"eval-{task}").mkdir()
        (run / f"eval-{task}" / "metrics.json").write_text(json.dumps({"run": {"seconds_now": 1800.0}}))
    (tmp_path / "pbrlsvr-hybrid-s0" / "train").mkdir(parents=True)  # not finished: left out

    rounds = reproduce.offline_rounds(study, tmp_path)
    assert list(rounds) == ["rlvr-gold"] and list(rounds["rlvr-gold"]) == [1]
    assert rounds["rlvr-gold"][1]["sample_seconds"] == 900.0
    row = reproduce.offline_table(study, rounds)[-2]
    cells = [c.strip() for c in row.strip("|").split("|")]
    # prompts, answers, reward, cut % (one language of five at 25%), length, kept %, steps, loss, hours
    # no recipe and no answers in these samples: nothing to check against gold ("?")
    assert cells == ["rlvr-gold", "1", "10", "40", "0.500", "5.0", "100", "100 / 50 / 50 / 50 / 50", "3",
                     f"{(1 + 1 / 2 + 1 / 3) / 3:.3f}", "?", "?", "?", "0.25", "0.50", "1.00", "1.75"]
    colour = {m: f"C{i}" for i, m in enumerate(["base", *study.methods])}
    figure = reproduce._offline_figure("qwen-rft", rounds, colour, tmp_path)
    assert figure.stat().st_size > 10_000  # drawn: a loss curve and two bar panels


def test_a_label_free_runs_targets_are_checked_against_the_gold_answers_it_never_saw(data_dir, tmp_path):
    from pivotrl.data import load_problems

    study = reproduce.STUDIES["qwen-rft"]
    gold = {(p.id, p.lang): p.answer for p in load_problems("msvamp", ["de"], split="train", data_dir=data_dir)}
    (first, a), (second, b) = list(gold.items())[:2]
    wrong = str(int(a) + 1)

    def answer(text: str, reward: float, cut: bool = False) -> dict:
        return {"text": text, "reward": reward, "cut": cut, "tokens": 40}

    records = [  # the best whole answer of each prompt is its target when it scores 1.0 (the hybrid's threshold)
        {"problem_id": first[0], "lang": "de", "answers": [answer(f"... Die Antwort lautet {a}.", 1.2),
                                                           answer(f"Die Antwort lautet {wrong}.", 0.1)]},
        # a wrong answer agreeing with nothing real, kept by a reward that scored it high
        {"problem_id": second[0], "lang": "de", "answers": [answer(f"Die Antwort lautet {int(b) + 7}.", 1.1),
                                                            answer(f"Die Antwort lautet {b}.", 0.4)]},
        # right only in a cut answer: no whole right answer to keep
        {"problem_id": first[0], "lang": "de", "answers": [answer(f"Die Antwort lautet {a}.", 1.5, cut=True),
                                                           answer("Die Antwort lautet 0.5.", 0.0)]},
    ]
    train = tmp_path / "train"
    (train / "round-1").mkdir(parents=True)
    samples = train / "round-1" / "samples.jsonl"
    samples.write_text("".join(json.dumps(r) + "\n" for r in records))
    (train / "recipe.yaml").write_text(f"algorithm: rft\nreward: hybrid\nmin_reward: null\ntask: msvamp\n"
                                       f"langs: [de]\ndata_dir: {data_dir}\n")
    counts = reproduce._targets_against_gold(study, train, [samples])
    assert counts == {"answers": 6, "right": 3, "prompts": 3, "prompts_with_right": 2, "kept": 2, "kept_right": 1,
                      "by_lang": {"de": [2, 1]}, "not_kept": {"a wrong answer was the target": 1}}
    # a right answer under the threshold: the components that held it there are named
    assert reproduce._short_of_threshold({"components": {"answer_agreement": 1.0, "language_fidelity": 0.4,
                                                         "brevity_guard": -0.6, "length_guard": 0.0}}) == \
        "brevity_guard + language_fidelity"
    assert reproduce._short_of_threshold({"components": {"embedding_similarity": 0.3}}) == "credit below the threshold"
    study_rounds = {"pbrlsvr-hybrid": {0: {"against_gold": counts}}}
    table = reproduce._not_kept_table(["de", "fr"], study_rounds)
    assert "| pbrlsvr-hybrid | 0 | 1 / 2 | 0 / 0 | a wrong answer was the target 1 |" in table


def test_the_other_methods_score_the_hybrid_runs_answers_of_their_seed(tmp_path):
    study = reproduce.STUDIES["qwen-rft"]
    source = reproduce.shared_source(study, tmp_path, "rlvr-gold", 1)
    assert source == tmp_path / "pbrlsvr-hybrid-s1" / "train"
    assert reproduce.shared_source(study, tmp_path, "pbrlsvr-hybrid", 1) is None  # it samples
    assert reproduce.shared_source(reproduce.STUDIES["qwen"], tmp_path, "rlvr-gold", 1) is None  # GRPO samples
    (source / "round-1").mkdir(parents=True)
    (source / "train_set.jsonl").write_text("{}\n" * 3)
    samples = source / "round-1" / "samples.jsonl"
    line = json.dumps({"problem_id": "p", "lang": "de", "sample_seconds": 6.0, "answers": []}) + "\n"
    samples.write_text(line * 2 + '{"problem_id": "p3", "la')  # the source still sampling: a line in flight
    assert not reproduce._round_sampled(source)
    assert samples.read_text().endswith('"la')  # another run's file is never cut
    samples.write_text(line * 3)
    assert reproduce._round_sampled(source)
    # what the scoring run cost: its own scoring time, named after the run whose answers it took
    scored = tmp_path / "rlvr-gold-s1" / "train" / "round-1" / "samples.jsonl"
    scored.parent.mkdir(parents=True)
    scored.write_text("".join(json.dumps({"sample_seconds": 6.0, "score_seconds": 0.5, "scored_from": str(samples),
                                          "answers": []}) + "\n" for _ in range(3)))
    assert reproduce._sampling_cost([scored]) == {"sample_seconds": 1.5, "scored_from": "pbrlsvr-hybrid-s1"}
    assert reproduce._sampling_cost([samples]) == {"sample_seconds": 18.0, "scored_from": None}
