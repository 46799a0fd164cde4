"""verl's custom reward function: single and batch forms, locally and through a live reward server."""

from __future__ import annotations

import numpy as np
import pytest

from pivotrl.data import load_problems
from pivotrl.rewards import verl
from pivotrl.rewards.compose import build_reward
from pivotrl.rewards.server import RewardServer

# The default encoder (torch float32) pads texts to the longest in their batch; scoring a text alone or in a
# batch changes its embedding by ~1e-7, its rescaled reward by ~1e-6. Same inputs, same scores up to that.
TOL = 1e-5


def _rows() -> list[dict]:
    """verl-style rows: a response in L, the gold answer as ground_truth, the English reference in extra_info."""
    problems = load_problems("synthetic", ["en", "de", "zh", "fr"], n=1)
    english = {p.id: p for p in problems if p.lang == "en"}
    rows = []
    for p in problems:
        if p.lang == "en":
            continue
        ref = english[p.id]
        rows.append({"data_source": "synthetic", "solution_str": p.solution, "ground_truth": ref.answer,
                     "extra_info": {"reference": ref.solution, "lang": p.lang, "problem_id": p.id}})
    # A wrong final answer and an English copy of the reference (gated) for contrast.
    first = rows[0]
    rows.append({**first, "solution_str": first["solution_str"].rsplit(" ", 1)[0] + " 999."})
    rows.append({**first, "solution_str": first["extra_info"]["reference"]})
    return rows


ROWS = _rows()


@pytest.fixture(scope="module")
def trl_totals() -> list[float]:
    """The TRL-side totals for the same inputs: ComposedReward called as a TRL reward function."""
    reward = build_reward("hybrid")
    return reward([r["solution_str"] for r in ROWS], reference=[r["extra_info"]["reference"] for r in ROWS],
                  reference_answer=[r["ground_truth"] for r in ROWS], lang=[r["extra_info"]["lang"] for r in ROWS])


@pytest.fixture(scope="module", autouse=True)
def fresh_cache():
    """Start from an empty backend cache (the module builds one local reward, kept across its tests)."""
    verl.reset_cache()
    yield
    verl.reset_cache()


@pytest.fixture
def local_env(monkeypatch):
    monkeypatch.delenv(verl.ENV_URL, raising=False)
    monkeypatch.setenv(verl.ENV_CONFIG, "hybrid")


@pytest.fixture(scope="module")
def server():
    srv = RewardServer("hybrid", port=0)
    srv.start()
    yield srv
    srv.stop()


@pytest.fixture
def remote_env(monkeypatch, server):
    monkeypatch.setenv(verl.ENV_URL, server.url)
    verl.reset_cache()
    yield server


def _check_dict(result: dict, components: list[str]) -> None:
    assert set(result) == {"score", "gate", *components}
    assert all(isinstance(v, float) for v in result.values())


def _single(rows):
    return [verl.compute_score(data_source=r["data_source"], solution_str=r["solution_str"],
                               ground_truth=r["ground_truth"], extra_info=r["extra_info"]) for r in rows]


def _batch(rows, as_numpy: bool = False):
    columns = {"data_sources": [r["data_source"] for r in rows], "solution_strs": [r["solution_str"] for r in rows],
               "ground_truths": [r["ground_truth"] for r in rows], "extra_infos": [r["extra_info"] for r in rows]}
    if as_numpy:  # what verl's DataProto.non_tensor_batch holds
        columns = {k: np.array(v, dtype=object) for k, v in columns.items()}
    return verl.compute_score(**columns)


def test_local_single_and_batch_equal_trl_totals(local_env, trl_totals):
    components = build_reward("hybrid").config.components
    single = _single(ROWS)
    batch = _batch(ROWS, as_numpy=True)
    assert len(single) == len(batch) == len(ROWS)
    for s, b, total in zip(single, batch, trl_totals):
        _check_dict(s, components)
        _check_dict(b, components)
        assert s["score"] == pytest.approx(total, abs=TOL)
        assert b["score"] == pytest.approx(total, abs=TOL)
        assert s == pytest.approx(b, abs=TOL)
    assert batch[0]["answer_agreement"] == 1.0 and batch[-2]["answer_agreement"] == 0.0
    assert batch[-1]["gate"] < 0.2  # the English copy
    assert _batch([]) == []
    # Positional single form (data_source, solution_str, ground_truth, extra_info), as older managers call it.
    r = ROWS[1]
    assert verl.compute_score(r["data_source"], r["solution_str"], r["ground_truth"], r["extra_info"])["score"] == \
        pytest.approx(trl_totals[1], abs=TOL)


def test_local_backend_is_built_once(local_env, monkeypatch):
    # Empty responses score without the encoder: this test is about the cache, not the scores.
    row = {"solution_str": "", "ground_truth": "4", "extra_info": ROWS[0]["extra_info"]}
    verl.compute_score(**row)
    first = verl._backend()
    verl.compute_score(solution_strs=[""], ground_truths=["4"], extra_infos=[row["extra_info"]])
    assert verl._backend() is first and first.reward.config.name == "hybrid"
    monkeypatch.setenv(verl.ENV_CONFIG, "answer")  # another setting: another reward
    result = verl.compute_score(**{**row, "solution_str": "Die Antwort lautet 4."})
    assert result == {"score": 1.0, "answer_agreement": 1.0, "gate": 1.0}
    assert verl._backend() is not first


def test_remote_single_and_batch_equal_trl_totals(remote_env, trl_totals):
    before = remote_env.health()["served"]
    single = _single(ROWS)
    batch = _batch(ROWS)
    assert remote_env.health()["served"] - before == 2 * len(ROWS)  # really scored by the server
    components = remote_env.reward.config.components
    for s, b, total in zip(single, batch, trl_totals):
        _check_dict(s, components)
        assert s["score"] == pytest.approx(total, abs=TOL)
        assert b["score"] == pytest.approx(total, abs=TOL)
        assert s == pytest.approx(b, abs=TOL)


def test_remote_errors_are_clear(remote_env):
    with pytest.raises(ValueError, match="unknown language 'xx'"):
        verl.compute_score(solution_str="a", ground_truth="1", extra_info={"reference": "r", "lang": "xx"})


@pytest.mark.parametrize(("extra_info", "needle"), [
    ({"lang": "de"}, "no 'reference'"),
    ({"reference": "", "lang": "de"}, "no 'reference'"),
    ({"reference": "The answer is 4."}, "no 'lang'"),
    ({"reference": "The answer is 4.", "lang": "xx"}, "unknown language 'xx'"),
    ({"reference": "The answer is 4.", "lang": "de", "answer_type": "essay"}, "answer_type"),
    (None, "expected a dict, got nothing"),
])
def test_missing_extra_info_fields(local_env, extra_info, needle):
    with pytest.raises(ValueError, match=needle) as info:
        verl.compute_score(data_source="x", solution_str="Die Antwort lautet 4.", ground_truth="4",
                           extra_info=extra_info)
    assert "extra_info" in str(info.value)
    with pytest.raises(ValueError, match=r"extra_infos\[1\]"):
        verl.compute_score(data_sources=["x", "x"], solution_strs=["a", "b"], ground_truths=["4", "4"],
                           extra_infos=[{"reference": "The answer is 4.", "lang": "de"}, extra_info])


def test_bad_calls(local_env):
    with pytest.raises(TypeError, match="solution_str"):
        verl.compute_score(data_source="x", ground_truth="4", extra_info={"reference": "r", "lang": "de"})
    with pytest.raises(ValueError, match="extra_infos has 1 values for 2"):
        verl.compute_score(solution_strs=["a", "b"], ground_truths=["1", "2"],
                           extra_infos=[{"reference": "r", "lang": "de"}])


def test_the_question_in_extra_info_reaches_the_reward(tmp_path, monkeypatch):
    """extra_info["question"] reaches every component, locally and through a reward server, in both calling
    forms; rows without one still score (None); a question that is not a string is an error naming the row."""
    import yaml
    from question_recorder import recording_questions

    info = {"reference": "2 + 2 = 4. The answer is 4.", "lang": "de"}
    with recording_questions() as rec:
        config = tmp_path / "records_question.yaml"
        config.write_text(yaml.safe_dump(rec.config(answer_agreement=1.0)), encoding="utf-8")
        monkeypatch.delenv(verl.ENV_URL, raising=False)
        monkeypatch.setenv(verl.ENV_CONFIG, str(config))
        verl.reset_cache()
        result = verl.compute_score(data_source="x", solution_str="Die Antwort lautet 4.", ground_truth="4",
                                    extra_info={**info, "question": "Was ist 2 + 2?"})
        assert result["score"] == 1.0 and rec.seen[-1] == ["Was ist 2 + 2?"]
        batch = verl.compute_score(data_sources=["x", "x"], solution_strs=["Die Antwort lautet 4."] * 2,
                                   ground_truths=np.array(["4", "4"], dtype=object),
                                   extra_infos=np.array([{**info, "question": "Wie viel?"}, info], dtype=object))
        assert len(batch) == 2 and rec.seen[-1] == ["Wie viel?", None]
        with pytest.raises(ValueError, match=r"extra_infos\[1\]\['question'\] must be a string"):
            verl.compute_score(solution_strs=["a", "b"], ground_truths=["4", "4"],
                               extra_infos=[info, {**info, "question": 12}])

        srv = RewardServer(rec.config(answer_agreement=1.0), port=0, warmup=False)
        srv.start()
        try:
            monkeypatch.setenv(verl.ENV_URL, srv.url)
            verl.reset_cache()
            remote = verl.compute_score(solution_strs=["Die Antwort lautet 4.", "Die Antwort lautet 5."],
                                        ground_truths=["4", "4"],
                                        extra_infos=[{**info, "question": "Fern?"}, info])
            assert [r["score"] for r in remote] == [1.0, 0.0] and rec.seen[-1] == ["Fern?", None]
            assert srv.health()["served"] == 2  # really scored by the server
        finally:
            srv.stop()
            verl.reset_cache()
