"""Pivot references: verification, the kill-safe store (5 SIGKILLs), the endpoint and gold pivots, build-train."""

import json
import os
import random
import signal
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from pivotrl.data import load_problems, split_of
from pivotrl.pivot import PivotConfig, ReferenceStore, build_train_set, run_pivot, verify_samples, write_examples
from pivotrl.pivot.run import settings_key
from pivotrl.records import Reference

PIVOTRL = os.path.join(os.path.dirname(sys.executable), "pivotrl")


def test_verification_rules():
    samples = ["2 + 3 = 5. The answer is 5.", "The answer is 6.", "So we get 5 apples."]
    v = verify_samples(samples, gold="5")
    assert (v.status, v.chosen, v.kept, v.answer, v.agreement) == ("verified", 0, (0, 2), "5", 2 / 3)
    v = verify_samples(samples, gold="7")
    assert v.status == "none" and v.chosen is None and "no sample reaches the gold answer 7" in v.reason
    v = verify_samples(samples, gold=None)  # no gold: majority 5 (2 of 3)
    assert (v.status, v.answer, v.kept) == ("majority", "5", (0, 2))
    v = verify_samples(["The answer is 1.", "The answer is 2.", "The answer is 3."], gold=None)
    assert v.status == "none" and "no clear majority" in v.reason
    assert verify_samples(["no number", "none"], gold=None).reason == "no final answer found in 2 samples"


def _ref(pid, pivot="p", settings="s", status="verified"):
    return Reference(pid, "q", status, "r", "text", "1", "1", 1.0, ("text",), ("1",), (0,), pivot, settings)


def test_store_keys_and_repair(tmp_path):
    store = ReferenceStore(tmp_path)
    store.append([_ref("a"), _ref("b"), _ref("a", pivot="other"), _ref("a", settings="s2")])
    store.append([_ref("a")])  # a duplicate key: readers keep the first
    assert [r.problem_id for r in store.read("p", "s")] == ["a", "b"]
    assert store.done_ids("other", "s") == {"a"}
    assert sorted(store.pairs()) == [("other", "s", 1), ("p", "s", 2), ("p", "s2", 1)]
    with open(store.path, "a") as f:
        f.write('{"problem_id": "c", "quest')  # a line cut by a kill
    store = ReferenceStore(tmp_path)  # reopening cuts it off
    assert store.path.read_bytes().endswith(b"\n") and store.done_ids("p", "s") == {"a", "b"}


def test_settings_change_the_key():
    assert settings_key(PivotConfig(k=4)) != settings_key(PivotConfig(k=2))
    assert settings_key(PivotConfig(k=4, n=3)) == settings_key(PivotConfig(k=4, n=10))  # n is not a setting


def test_gold_pivot_and_build_train(tmp_path):
    """Gold English solutions of the synthetic set as the pivot, then target-language prompts from the parallel
    set itself; held-out problems never reach the training set."""
    summary = run_pivot(PivotConfig(pivot="gold", task="synthetic", split="all", n=30, out=str(tmp_path)),
                        progress=False)
    assert summary["by_status"] == {"gold": 30} and summary["reference_rate"] == 1.0

    class Upper:  # a translator for a language the set lacks (pairing logic only; real ones: test_translators)
        name = "upper"

        def translate(self, texts, src, tgt):
            return [f"[{tgt}] {t.upper()}" for t in texts]

    examples, info = build_train_set(tmp_path, "synthetic", ["de", "ja", "it"], translator=Upper())
    held = {f"synthetic-s0-{i:05d}" for i in range(30) if split_of(f"synthetic-s0-{i:05d}") == "held-out"}
    assert held and info["held_out_dropped"] == len(held)
    assert {e.id for e in examples}.isdisjoint(held)
    per_lang = {lang: [e for e in examples if e.lang == lang] for lang in ("de", "ja", "it")}
    assert len(per_lang["de"]) == len(per_lang["ja"]) == len(per_lang["it"]) == 30 - len(held)
    de = per_lang["de"][0]
    source = {p.id: p for p in load_problems("synthetic", "de", n=30)}[de.id]
    assert de.question == source.question and de.prompt_source == "parallel:synthetic"
    assert de.reference.endswith(f"The answer is {de.reference_answer}.") and de.question_en == source.question_en
    assert per_lang["it"][0].prompt_source == "translated:upper" and per_lang["it"][0].question.startswith("[it]")
    out = write_examples(examples, tmp_path / "train.parquet")
    import pyarrow.parquet as pq

    assert pq.read_table(out).num_rows == len(examples)

    from typer.testing import CliRunner

    from pivotrl.cli import app

    result = CliRunner().invoke(app, ["pivot", "export", "--refs", str(tmp_path), "--out", str(tmp_path / "hf")])
    assert result.exit_code == 0, result.output
    import datasets

    assert datasets.load_from_disk(str(tmp_path / "hf")).num_rows == 30
    result = CliRunner().invoke(app, ["pivot", "build-train", "--refs", str(tmp_path), "--task", "synthetic",
                                      "--langs", "de,sw", "--out", str(tmp_path / "t.jsonl")])
    assert result.exit_code == 0, result.output
    assert len((tmp_path / "t.jsonl").read_text().splitlines()) == 2 * (30 - len(held))


class _Pivot(BaseHTTPRequestHandler):
    """Answers every question with '... The answer is 5.'; the first request gets an HTTP 500."""

    calls = 0

    def do_POST(self):  # noqa: N802
        type(self).calls += 1
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        if type(self).calls == 1:
            self.send_response(500)
            self.end_headers()
            return
        choices = [{"index": i, "message": {"role": "assistant", "content": "2 + 3 = 5. The answer is 5."}}
                   for i in range(body.get("n", 1))]
        data = json.dumps({"choices": choices, "usage": {"completion_tokens": 9 * len(choices)}}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass


def test_endpoint_pivot_against_a_local_server(tmp_path):
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Pivot)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        endpoint = {"base_url": f"http://127.0.0.1:{server.server_port}/v1", "model": "pivot-70b",
                    "backoff": 0.01, "concurrency": 2}
        config = PivotConfig(pivot="endpoint", endpoint=endpoint, task="synthetic", split="all", n=12, k=2,
                             out=str(tmp_path))
        summary = run_pivot(config, progress=False)
    finally:
        server.shutdown()
    refs = ReferenceStore(tmp_path).read()
    assert len(refs) == 12 and summary["stored"] == 12
    for r in refs:  # verified exactly where the gold answer is 5
        assert r.status == ("verified" if r.gold == "5" else "none")
        assert r.pivot == f"endpoint:{endpoint['base_url']}#pivot-70b" and len(r.samples) == 2
    assert summary["new_tokens_now"] > 0


def test_five_sigkills_lose_nothing_and_duplicate_nothing(tiny_folder, tmp_path):
    """A real `pivotrl pivot` process (a random-weight model: plumbing only), killed with SIGKILL at random
    moments five times, then run to the end: exactly one reference per problem."""
    out = tmp_path / "refs"
    n = 300  # more than five short runs can finish, so every kill lands mid-run
    cmd = [PIVOTRL, "pivot", "--pivot", str(tiny_folder), "--task", "synthetic", "--split", "all", "-n", str(n),
           "--k", "2", "--max-new-tokens", "8", "--batch-size", "2", "--out", str(out)]
    path = out / "references.jsonl"
    rng = random.Random(7)
    counts = []
    for _ in range(5):
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        before = len(path.read_bytes().splitlines()) if path.exists() else 0
        deadline = time.time() + 120  # wait for this run to write something, then kill at a random moment
        while time.time() < deadline and (not path.exists() or len(path.read_bytes().splitlines()) <= before):
            time.sleep(0.02)
        time.sleep(rng.uniform(0.0, 0.3))
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        counts.append(len(path.read_bytes().splitlines()))
    assert counts == sorted(counts) and counts[0] > 0 and counts[-1] < n, counts  # progress, not finished
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    ids = [r["problem_id"] for r in rows]
    assert len(ids) == len(set(ids)) == n
    assert set(ids) == {p.id for p in load_problems("synthetic", "en", n=n)}
    assert "stored" in done.stdout and str(n) in done.stdout


def test_local_pivot_writes_each_reference_as_it_finishes_and_keeps_the_flight_full(tiny_folder, tmp_path,
                                                                                     monkeypatch):
    # plumbing (random weights): one generate call covers several batches, and the store gets one reference
    # per append, in the order the problems finish
    import pivotrl.generation as models
    from pivotrl.pivot.backends import LocalPivot

    calls, appends = [], []
    real_generate, real_append = models.generate_with_stats, ReferenceStore.append
    monkeypatch.setattr(models, "generate_with_stats",
                        lambda loaded, prompts, config, **kw: calls.append(len(prompts))
                        or real_generate(loaded, prompts, config, **kw))
    monkeypatch.setattr(ReferenceStore, "append", lambda self, refs: appends.append(len(list(refs)))
                        or real_append(self, [r for r in refs]))
    n, batch = 20, 2
    summary = run_pivot(PivotConfig(pivot=str(tiny_folder), task="synthetic", split="all", n=n, k=2,
                                    max_new_tokens=6, batch_size=batch, out=str(tmp_path)), progress=False)
    per_call = batch * LocalPivot.problems_per_call
    assert calls == [min(per_call, n - i) for i in range(0, n, per_call)]
    assert appends == [1] * n and summary["stored"] == n
    assert len({r.problem_id for r in ReferenceStore(tmp_path).read()}) == n


@pytest.mark.model
def test_packaged_pivot_on_msvamp(data_dir, tmp_path):
    result = subprocess.run([PIVOTRL, "pivot", "--task", "msvamp", "--split", "train", "-n", "2", "--k", "2",
                             "--max-new-tokens", "48", "--data-dir", str(data_dir), "--out", str(tmp_path)],
                            capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stderr
    refs = ReferenceStore(tmp_path).read()
    assert len(refs) == 2 and all(len(r.samples) == 2 and r.pivot == "local:smollm2" for r in refs)
    assert all(r.status in ("verified", "none") and r.reason for r in refs)
    assert "verified_rate" in result.stdout
