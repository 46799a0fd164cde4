"""Evaluation: metrics on hand-made generations, fidelity on real text, resume after a kill, reports, errors."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from pivotrl.evaluation import EvalConfig, EvalError, compute_metrics, metrics_markdown, run_eval
from pivotrl.fidelity import detect_language, in_language, language_share
from pivotrl.records import Generation
from pivotrl.report import ReportError, write_report

PIVOTRL = os.path.join(os.path.dirname(sys.executable), "pivotrl")


def gen(pid, lang, strict, flexible, gold="10", sample=0, in_lang=True, n_tokens=20):
    ok = lambda a: a is not None and float(a) == float(gold)  # noqa: E731
    best = strict if strict is not None else flexible
    return Generation(id=pid, lang=lang, sample=sample, prompt="p", response="r", gold=gold, answer_type="number",
                      strict=strict, flexible=flexible, correct_strict=ok(strict), correct_flexible=ok(flexible),
                      correct=ok(best), detected_lang=lang if in_lang else "en", in_language=in_lang,
                      n_tokens=n_tokens)


def test_metrics_by_hand():
    gens = [
        # English: 3 of 4 right by the best answer (strict when found, else flexible); the phrase found in 2
        gen("a", "en", "10", "10"), gen("b", "en", None, "10"), gen("c", "en", "7", "10"), gen("d", "en", None, "10"),
        # German: 1 of 4 right, one answer written in English, one where nothing can be told
        gen("a", "de", "10", "10"), gen("b", "de", None, "3"), gen("c", "de", None, None, in_lang=False),
        gen("d", "de", None, None, in_lang=None),
        # Swahili: 2 of 4
        gen("a", "sw", None, "10", n_tokens=40), gen("b", "sw", "10", "10", n_tokens=40),
        gen("c", "sw", None, "1", n_tokens=40), gen("d", "sw", None, None, n_tokens=40),
    ]
    m = compute_metrics(gens, ["en", "de", "sw"])
    en, de, sw = (m["languages"][c] for c in ("en", "de", "sw"))
    # c: strict 7 is wrong even though the last number is right: the best answer is the strict one
    assert (en["accuracy"], en["strict"], en["flexible"], en["answer_found"]) == (0.75, 0.25, 1.0, 0.5)
    assert (de["accuracy"], de["fidelity"], de["fidelity_known"], de["any_number_found"]) == (0.25, 2 / 3, 3, 0.5)
    assert (sw["accuracy"], sw["mean_tokens"]) == (0.5, 40)
    s = m["summary"]
    assert s["non_en_accuracy"] == pytest.approx((0.25 + 0.5) / 2)
    assert s["english_gap_points"] == pytest.approx(100 * (0.75 - 0.375))
    table = metrics_markdown(m, "t")
    assert "| de (German) | 4 | 25.0 |" in table and "+37.5 points" in table


def test_cut_share_counts_only_answers_whose_ending_was_recorded():
    from dataclasses import replace

    # German: 1 of 3 recorded endings was the budget; the 4th answer comes from before endings were recorded
    de = [replace(gen(i, "de", None, "1"), cut=c) for i, c in zip("abcd", (True, False, False, None))]
    en = [replace(gen(i, "en", None, "1"), cut=None) for i in "ab"]  # nothing known: no share, not 0
    m = compute_metrics(de + en, ["en", "de"])
    assert m["languages"]["de"]["cut"] == pytest.approx(1 / 3) and m["languages"]["en"]["cut"] is None
    assert m["summary"]["non_en_cut"] == pytest.approx(1 / 3) and m["summary"]["en_cut"] is None
    table = metrics_markdown(m)
    assert "| 33.3 |" in table and "answers cut at the new-token budget: English -%, non-English mean 33.3%" in table


def test_pass_at_k_and_majority():
    answers = {"a": ["10", "3", "3"], "b": ["10", "10", None]}
    gens = [gen(pid, "de", a, a, sample=i) for pid, row in answers.items() for i, a in enumerate(row)]
    de = compute_metrics(gens)["languages"]["de"]
    assert de["samples"] == 3 and de["problems"] == 2
    assert de["pass_at_k"] == 1.0  # both problems have a right sample
    assert de["majority"] == 0.5  # a: "3" wins the vote; b: "10" wins
    assert de["accuracy"] == pytest.approx(3 / 6)


# ----------------------------------------------------------------------------------- fidelity, real text


def test_fidelity_on_real_questions_in_many_scripts(data_dir):
    from pivotrl.data import load_problems

    problems = load_problems("mgsm", data_dir=data_dir, n=40)
    for lang in ("bn", "de", "en", "es", "fr", "ja", "ru", "sw", "te", "th", "zh"):
        texts = [p.question for p in problems if p.lang == lang]
        hits = sum(in_language(t, lang) is True for t in texts)
        assert hits >= 0.95 * len(texts), (lang, hits)
    german = next(p.question for p in problems if p.lang == "de")
    assert in_language(german, "fr") is False
    assert detect_language("5 + 6 = 11. 11 * 2 = 22.").lang is None  # numbers say nothing
    assert in_language("= 42", "de") is None
    assert in_language("Tontu bi mooy 5.", "wo") is None  # Wolof: not known to the identifier
    assert detect_language("答案是 18。").lang == "zh" and detect_language("答えは18です。").lang == "ja"
    english = next(p.question for p in problems if p.lang == "en")
    half = f"{german} {english}"
    assert 0.3 < language_share(half, "de") < 0.7


# ----------------------------------------------------------------------------------- runs, resume, errors


def _lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def test_resume_after_sigkill(tiny_folder, tmp_path):
    """Kill a real `pivotrl eval` process mid-run (SIGKILL), re-run it: every item exactly once."""
    out = tmp_path / "run"
    cmd = [PIVOTRL, "eval", "--model", str(tiny_folder), "--task", "synthetic", "--langs", "en,de", "-n", "40",
           "--max-new-tokens", "24", "--batch-size", "2", "--no-chat", "--out", str(out)]
    gens = out / "generations.jsonl"
    for kill_after in (6, 30):  # kill twice, at different points
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.time() + 120
        while time.time() < deadline and (not gens.exists() or len(gens.read_bytes().splitlines()) < kill_after):
            time.sleep(0.05)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        assert proc.returncode == -signal.SIGKILL
    partial = len(_lines(gens))
    assert 30 <= partial < 80
    with open(gens, "a", encoding="utf-8") as f:
        f.write('{"id": "synthetic-s0-000')  # a line cut in the middle, as a kill during a write leaves it
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    rows = _lines(gens)
    keys = [(r["id"], r["lang"], r["sample"]) for r in rows]
    assert len(keys) == len(set(keys)) == 80  # nothing lost, nothing duplicated
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["languages"]["de"]["problems"] == 40 and metrics["run"]["generated_now"] == 80 - partial
    again = subprocess.run(cmd, capture_output=True, text=True, timeout=300)  # all done: nothing generated
    assert again.returncode == 0 and "generated 0 answers" in again.stdout


def test_other_settings_are_refused_and_extension_works(tiny_folder, tmp_path):
    base = dict(model=str(tiny_folder), task="synthetic", langs=["en"], n=3, max_new_tokens=8, out=str(tmp_path))
    run_eval(EvalConfig(**base), progress=False)
    with pytest.raises(EvalError, match="other settings .*max_new_tokens: 8 -> 9"):
        run_eval(EvalConfig(**{**base, "max_new_tokens": 9}), progress=False)
    m = run_eval(EvalConfig(**{**base, "langs": ["en", "de"], "n": 4}), progress=False)  # extends the run
    assert m["run"]["generated_now"] == 5 and m["languages"]["de"]["problems"] == 4
    assert len(_lines(tmp_path / "generations.jsonl")) == 8


def test_samples_give_pass_at_k(tiny_folder, tmp_path):
    m = run_eval(EvalConfig(model=str(tiny_folder), task="synthetic", langs=["de"], n=2, samples=3,
                            max_new_tokens=8, out=str(tmp_path)), progress=False)
    assert m["languages"]["de"]["samples"] == 3 and "pass_at_k" in m["languages"]["de"]
    rows = _lines(tmp_path / "generations.jsonl")
    assert sorted(r["sample"] for r in rows) == [0, 0, 1, 1, 2, 2]


@pytest.mark.parametrize("args, message", [
    (["--task", "mgsn"], "unknown problem set 'mgsn'"),
    (["--task", "mgsm", "--langs", "de,xx"], "unknown language 'xx'"),
    (["--task", "mgsm", "--langs", "ko"], "mgsm has no language ko"),
    (["--task", "synthetic", "--model", "/nonexistent/model", "-n", "1"], "/nonexistent/model"),
    (["--task", "synthetic", "--prompt", "fancy", "-n", "1"], "unknown prompt style 'fancy'"),
])
def test_clear_errors(args, message, tmp_path, data_dir):
    from typer.testing import CliRunner

    from pivotrl.cli import app

    result = CliRunner().invoke(app, ["eval", *args, "--out", str(tmp_path / "o"), "--data-dir", str(data_dir)])
    assert result.exit_code == 1 and message in " ".join(result.output.split()), result.output


# ----------------------------------------------------------------------------------- report


def _fake_run(folder: Path, de_right: int, de_cut: int | None = None) -> Path:
    from dataclasses import replace

    gens = [gen(str(i), "en", "10", "10") for i in range(4)]
    gens += [replace(gen(str(i), "de", "10" if i < de_right else "1", None),
                     cut=None if de_cut is None else i >= 4 - de_cut) for i in range(4)]
    folder.mkdir(parents=True)
    (folder / "metrics.json").write_text(json.dumps({**compute_metrics(gens, ["en", "de"]),
                                                     "run": {"model": "m", "task": "t"}}))
    return folder


def test_report_tables_and_plots(tmp_path):
    base, trained = _fake_run(tmp_path / "base", 1), _fake_run(tmp_path / "trained", 3, de_cut=1)
    report = write_report([base, trained], tmp_path / "report")
    text = report.read_text()
    # the base run recorded no endings: its column says so rather than 0
    assert "Answers cut at the new-token budget" in text and "| de | - | 25.0 | - |" in text
    assert "cut at the new-token budget" not in write_report([base], tmp_path / "only-base").read_text()
    assert "| de | 25.0 | 75.0 | +50.0 |" in text  # accuracy per language with the difference to the base
    assert "| base | 100.0 | 25.0 | +75.0 |" in text and "| trained | 100.0 | 75.0 | +25.0 |" in text
    for png in ("accuracy.png", "fidelity.png", "english_gap.png"):
        data = (tmp_path / "report" / png).read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 5000
        assert f"]({png})" in text
    with pytest.raises(ReportError, match="no metrics.json"):
        write_report([tmp_path], tmp_path / "r2")


@pytest.mark.model
def test_packaged_model_on_msvamp(data_dir, tmp_path):
    """The real packaged model, two MSVAMP problems in two languages, end to end through the CLI."""
    result = subprocess.run([PIVOTRL, "eval", "--task", "msvamp", "--langs", "en,zh", "-n", "2",
                             "--max-new-tokens", "24", "--data-dir", str(data_dir), "--out", str(tmp_path)],
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr
    assert "| zh (Chinese) | 2 |" in result.stdout and "English gap" in result.stdout
    rows = _lines(tmp_path / "generations.jsonl")
    assert len(rows) == 4 and all(r["n_tokens"] <= 24 and r["prompt"] for r in rows)
    assert json.loads((tmp_path / "config.json").read_text())["identity"]["chat"] is True


def test_few_shot_mgsm_prompt(tiny_folder, tmp_path, data_dir):
    """--shots K puts K hand-translated exemplars before the question, in lm-eval's native CoT layout."""
    run_eval(EvalConfig(model=str(tiny_folder), task="mgsm", langs=["de", "ja"], n=1, shots=2, prompt="mgsm",
                        chat=False, max_new_tokens=4, data_dir=str(data_dir), out=str(tmp_path)), progress=False)
    rows = {r["lang"]: r for r in _lines(tmp_path / "generations.jsonl")}
    de = rows["de"]["prompt"]
    assert de.startswith("Frage: Roger hat 5 Tennisbälle.")
    assert de.count("Frage: ") == 3 and de.count("Schritt-für-Schritt-Antwort:") == 3
    assert de.endswith("Frage: Janets Enten legen 16 Eier pro Tag. Sie isst drei jeden Morgen zum Frühstück und "
                       "backt mit vier jeden Tag Muffins für ihre Freunde. Den Rest verkauft sie täglich auf dem "
                       "Bauernmarkt für 2 US-Dollar pro frischem Entenei. Wie viel Dollar nimmt sie täglich auf "
                       "dem Bauernmarkt ein?\nSchritt-für-Schritt-Antwort:")
    assert rows["ja"]["prompt"].count("問題：") == 3
