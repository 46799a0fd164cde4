"""Output paths checked before the work and one writer for every command (issue 30, class 1).

Every command that writes is run for real, in a child process with a time limit (a pipe or a device that is read
or written blocks or never ends: a regression must fail here, not hang the suite): an ``--out`` under a regular
file (a read-only location even as root, where chmod stops nothing), a file-size limit (RLIMIT_FSIZE: ``write()``
fails with EFBIG, as on a full disk), and run-folder files that are a named pipe or a link to a device. Each ends
in one line naming the file, exit code 1, and no traceback.
"""

from __future__ import annotations

import errno
import json
import os
import resource
import socket
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest

from pivotrl.cli.common import write_failed
from pivotrl.run_folder import (
    OutputPathError,
    WriteError,
    check_output_dir,
    check_output_file,
    existing_file,
    writing,
)

# Runs several commands in one child process (each `python -m pivotrl.cli` start costs seconds), one JSON line per
# command as soon as it ends: which one hung shows in the output of a timed-out run.
RUNNER = """
import json, sys
from typer.testing import CliRunner
from pivotrl.cli import app

runner = CliRunner()
for args in json.loads(sys.argv[1]):
    result = runner.invoke(app, args)
    exc = result.exception
    print(json.dumps({"args": args, "code": result.exit_code, "output": " ".join(result.output.split()),
                      "crash": None if exc is None or isinstance(exc, SystemExit) else repr(exc)}), flush=True)
"""


def _run(cases: list[list[str]], cwd: Path, fsize: int | None = None, timeout: float = 240) -> list[dict]:
    """Each command's exit code, output (whitespace joined: rich wraps long lines) and uncaught exception."""
    limit = None if fsize is None else (lambda: resource.setrlimit(resource.RLIMIT_FSIZE, (fsize, fsize)))
    env = {**os.environ, "COLUMNS": "300"}
    try:
        result = subprocess.run([sys.executable, "-c", RUNNER, json.dumps(cases)], capture_output=True, text=True,
                                timeout=timeout, cwd=cwd, env=env, preexec_fn=limit)
    except subprocess.TimeoutExpired as exc:
        pytest.fail(f"hung after {timeout} s; finished: {exc.stdout}")
    rows = [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]
    assert len(rows) == len(cases), result.stdout + result.stderr
    return rows


def _refused(row: dict, *named: str) -> None:
    assert row["code"] == 1 and row["crash"] is None, row
    assert "Traceback" not in row["output"], row
    for text in named:
        assert text in row["output"], (text, row)


@pytest.fixture
def store(tmp_path) -> Path:
    """A real reference store (the gold pivot: no model)."""
    from pivotrl.pivot import PivotConfig, run_pivot

    folder = tmp_path / "refs"
    run_pivot(PivotConfig(pivot="gold", task="synthetic", split="all", n=40, out=str(folder)), progress=False)
    return folder


@pytest.fixture
def runs(tmp_path) -> Path:
    """A `pivotrl eval` run folder (its metrics.json) for `pivotrl report`."""
    from pivotrl.evaluation.metrics import compute_metrics
    from pivotrl.records import Generation

    def gen(i: int, lang: str, ok: bool) -> Generation:
        return Generation(id=str(i), lang=lang, sample=0, prompt="p", response="r", gold="10", answer_type="number",
                          strict="10" if ok else "1", flexible="10", correct_strict=ok, correct_flexible=ok,
                          correct=ok, detected_lang=lang, in_language=True, n_tokens=5)

    folder = tmp_path / "runs" / "base"
    folder.mkdir(parents=True)
    gens = [gen(i, "en", True) for i in range(4)] + [gen(i, "de", i < 2) for i in range(4)]
    (folder / "metrics.json").write_text(json.dumps({**compute_metrics(gens, ["en", "de"]),
                                                     "run": {"model": "m", "task": "t"}}))
    return folder


# ------------------------------------------------------------------------------------------ the pieces


def test_writing_names_the_file_a_failed_write_does_not(tmp_path):
    target = tmp_path / "scores.jsonl"
    with pytest.raises(WriteError) as caught, writing(target):
        raise OSError(errno.ENOSPC, "Error writing bytes to file. Detail: [errno 28] No space left on device")
    assert caught.value.filename == str(target) and caught.value.strerror == "No space left on device"
    assert write_failed(caught.value) == (f"could not write {target}: No space left on device. Free some space (or "
                                          "choose another --out) and run the command again")
    with pytest.raises(WriteError) as caught, writing(target):  # an open() names its own file: kept
        open(tmp_path / "no" / "such", "w")
    assert caught.value.filename == str(tmp_path / "no" / "such")
    # a file closed after a named failure fails again naming nothing: the message still names the file
    try:
        try:
            raise WriteError(errno.EFBIG, "File too large", str(target))
        except WriteError:
            raise OSError(errno.EFBIG, "File too large") from None
    except OSError as exc:
        line = write_failed(exc, "answers written so far are kept", "runs/x")
    assert line.startswith(f"could not write {target}: File too large; answers written so far are kept. ")
    assert "ulimit -f" in line and line.endswith("run the same command again to continue")
    assert write_failed(OSError(errno.ENOSPC, "No space left on device"), folder="runs/x").startswith(
        "could not write a file in runs/x: No space left on device.")


def test_existing_file_refuses_what_would_block_or_never_end(tmp_path):
    assert existing_file(tmp_path / "missing.jsonl") is False
    assert existing_file(tmp_path / "nothing" / "missing.jsonl") is False
    (tmp_path / "real.jsonl").write_text("{}\n")
    (tmp_path / "link.jsonl").symlink_to(tmp_path / "real.jsonl")
    assert existing_file(tmp_path / "real.jsonl") and existing_file(tmp_path / "link.jsonl")
    (tmp_path / "dangling.jsonl").symlink_to(tmp_path / "gone")
    assert existing_file(tmp_path / "dangling.jsonl") is False
    os.mkfifo(tmp_path / "fifo.jsonl")
    (tmp_path / "zero.jsonl").symlink_to("/dev/zero")
    (tmp_path / "dir.jsonl").mkdir()
    for name, kind in (("fifo.jsonl", "is a named pipe (FIFO)"), ("zero.jsonl", "(a link to /dev/zero) is a "
                       "character device"), ("dir.jsonl", "is a folder")):
        with pytest.raises(OutputPathError, match=r"generations file .*" + name + ".*not a regular file") as caught:
            existing_file(tmp_path / name, "generations file")
        assert kind in str(caught.value)


def test_run_folders_refuse_pipes_and_devices_but_keep_unusual_good_ones(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    (run / "generations.jsonl").symlink_to("/dev/zero")
    with pytest.raises(OutputPathError, match=r"generations.jsonl \(a link to /dev/zero\) is a character device"):
        check_output_dir(run, "evaluation run folder")
    (run / "generations.jsonl").unlink()
    os.mkfifo(run / "log.jsonl")
    with pytest.raises(OutputPathError, match=r"log.jsonl is a named pipe \(FIFO\)"):
        check_output_dir(run)
    (run / "log.jsonl").unlink()
    with socket.socket(socket.AF_UNIX) as sock:  # a socket cannot be opened at all: no hang, left alone
        sock.bind(str(run / "server.sock"))
        assert check_output_dir(run) == run
    other = tmp_path / "other-disk" / "run"  # a run folder linked from elsewhere
    other.mkdir(parents=True)
    (tmp_path / "linked").symlink_to(other)
    assert check_output_dir(tmp_path / "linked") == tmp_path / "linked"
    empty = tmp_path / "empty"
    empty.mkdir()
    assert check_output_dir(empty) == empty and not any(empty.iterdir())  # the probe leaves nothing
    # the folder of one output file is anyone's (--out /dev/stdout): its pipes and devices are not pivotrl's
    assert check_output_file(run / "scores.jsonl") == run / "scores.jsonl"


def test_an_output_file_that_is_a_pipe_nobody_reads_is_an_error_not_a_hang(tmp_path):
    fifo = tmp_path / "scores.jsonl"
    os.mkfifo(fifo)
    started = time.perf_counter()
    with pytest.raises(OutputPathError, match="a named pipe nobody reads"):
        check_output_file(fifo)
    assert time.perf_counter() - started < 5


def test_write_output_under_a_file_size_limit_names_the_file(tmp_path):
    """RLIMIT_FSIZE in a child process: write() fails with EFBIG (Python ignores SIGXFSZ), as a full disk does."""
    script = ("import sys\nfrom pivotrl.run_folder import WriteError, write_output\n"
              "try:\n    write_output(sys.argv[1], 'x' * 100_000)\n"
              "except WriteError as exc:\n    print(exc.errno, exc.filename, exc.strerror)\n")
    target = tmp_path / "big.txt"
    result = subprocess.run([sys.executable, "-c", script, str(target)], capture_output=True, text=True, timeout=60,
                            preexec_fn=lambda: resource.setrlimit(resource.RLIMIT_FSIZE, (4096, 4096)))
    assert result.stdout.strip() == f"{errno.EFBIG} {target} File too large", result.stderr
    assert target.stat().st_size == 4096


# ------------------------------------------------------------------------------------------ every command


def test_every_writing_command_checks_its_out_before_working(tmp_path, store, runs):
    """An --out under a regular file: refused by name at once (before any model, data set or reward loads)."""
    taken = tmp_path / "taken"
    taken.write_text("keep me")
    cases = {
        "data export": ["data", "export", "synthetic", "-o", f"{taken}/x.jsonl"],
        "reward score": ["reward", "score", "--reward", "answer", "--response", "Die Antwort lautet 4.",
                         "--reference", "The answer is 4.", "--lang", "de", "--out", f"{taken}/s.jsonl"],
        "report": ["report", str(runs), "--out", f"{taken}/report"],
        "pivot export": ["pivot", "export", "--refs", str(store), "--out", f"{taken}/refs.jsonl"],
        "pivot export folder": ["pivot", "export", "--refs", str(store), "--out", f"{taken}/dataset"],
        "pivot build-train": ["pivot", "build-train", "--refs", str(store), "--task", "synthetic", "--langs", "de",
                              "--out", f"{taken}/train.parquet"],
        "pivot": ["pivot", "--pivot", "gold", "--task", "synthetic", "-n", "2", "--out", f"{taken}/pivot"],
        "eval": ["eval", "--model", "no-such-model-is-loaded", "--task", "synthetic", "-n", "1",
                 "--out", f"{taken}/eval"],
        "train": ["train", "--out", f"{taken}/train"],
        "demo": ["demo", "--out", f"{taken}/demo"],
        "export verl": ["export", "verl", "--set", f"refs={store}", "--set", "task=synthetic", "--out",
                        f"{taken}/verl"],
        "reward audit": ["reward", "audit", "--reward", "answer", "--out", f"{taken}/audit"],
    }
    started = time.perf_counter()
    rows = _run(list(cases.values()), tmp_path)
    for name, row in zip(cases, rows):
        _refused(row, str(taken))
        assert "is a file" in row["output"] or "is an existing file" in row["output"], (name, row)
    assert time.perf_counter() - started < 200
    assert taken.read_text() == "keep me"


def test_a_full_disk_or_a_size_limit_is_one_line_naming_the_file(tmp_path, store, runs):
    """RLIMIT_FSIZE of 6000 bytes: enough for the lock and settings files, not for the output."""
    answers = tmp_path / "answers.jsonl"
    answers.write_text("".join(json.dumps({"response": f"Die Antwort lautet {i}.", "reference": f"The answer is {i}.",
                                           "lang": "de", "reference_answer": str(i)}) + "\n" for i in range(300)))
    out = tmp_path / "out"
    cases = {
        "data export": (["data", "export", "synthetic", "-o", f"{out}/problems.jsonl"], out / "problems.jsonl"),
        "data export parquet": (["data", "export", "synthetic", "-o", f"{out}/problems.parquet"],
                                out / "problems.parquet"),
        "reward score": (["reward", "score", "--reward", "answer", "--input", str(answers), "--out",
                          f"{out}/scores.jsonl"], out / "scores.jsonl"),
        "report": (["report", str(runs), "--out", f"{out}/report"], out / "report"),
        "pivot export": (["pivot", "export", "--refs", str(store), "--out", f"{out}/refs.jsonl"], out / "refs.jsonl"),
        "pivot build-train": (["pivot", "build-train", "--refs", str(store), "--task", "synthetic", "--langs",
                               "de,fr,ja", "--out", f"{out}/train.jsonl"], out / "train.jsonl"),
        "pivot": (["pivot", "--pivot", "gold", "--task", "synthetic", "-n", "60", "--out", f"{out}/pivot"],
                  out / "pivot" / "references.jsonl"),
    }
    rows = _run([args for args, _ in cases.values()], tmp_path, fsize=6000)
    for name, row in zip(cases, rows):
        _refused(row, f"could not write {cases[name][1]}", "File too large", "ulimit -f")
    # the pivot's store keeps what it wrote and continues without the limit
    again = _run([cases["pivot"][0]], tmp_path)[0]
    assert again["code"] == 0, again


def test_run_folder_files_that_are_pipes_or_devices_are_refused_within_seconds(tmp_path, store, runs):
    device = "/dev/full" if Path("/dev/full").exists() and stat.S_ISCHR(os.stat("/dev/full").st_mode) else "/dev/zero"
    folders = {name: tmp_path / name for name in ("eval-zero", "eval-fifo", "pivot-fifo", "export-zero",
                                                  "train-fifo", "report-fifo")}
    for folder in folders.values():
        folder.mkdir()
    (folders["eval-zero"] / "generations.jsonl").symlink_to(device)
    os.mkfifo(folders["eval-fifo"] / "generations.jsonl")
    os.mkfifo(folders["pivot-fifo"] / "references.jsonl")
    (folders["export-zero"] / "references.jsonl").symlink_to("/dev/zero")
    os.mkfifo(folders["train-fifo"] / "log.jsonl")
    os.mkfifo(folders["report-fifo"] / "metrics.json")
    eval_args = ["eval", "--model", "no-such-model-is-loaded", "--task", "synthetic", "-n", "1", "--out"]
    cases = {
        "eval-zero": (eval_args + [str(folders["eval-zero"])], f"(a link to {device}) is a character device"),
        "eval-fifo": (eval_args + [str(folders["eval-fifo"])], "generations.jsonl is a named pipe"),
        "pivot-fifo": (["pivot", "--pivot", "gold", "--task", "synthetic", "-n", "2", "--out",
                        str(folders["pivot-fifo"])], "references.jsonl is a named pipe"),
        "export-zero": (["pivot", "export", "--refs", str(folders["export-zero"]), "--out", "refs.jsonl"],
                        "references.jsonl (a link to /dev/zero) is a character device"),
        "train-fifo": (["train", "--out", str(folders["train-fifo"])], "log.jsonl is a named pipe"),
        "report-fifo": (["report", str(runs), str(folders["report-fifo"]), "--out", "report"],
                        "metrics.json is a named pipe"),
    }
    started = time.perf_counter()
    rows = _run([args for args, _ in cases.values()], tmp_path, timeout=180)
    for name, row in zip(cases, rows):
        _refused(row, str(folders[name]), cases[name][1], "not a regular file")
    assert time.perf_counter() - started < 150
    assert not (tmp_path / "refs.jsonl").exists()
