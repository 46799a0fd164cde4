"""Output paths checked before work, and one writer per run folder (issue 16, items 1 and 2).

The lock tests hold a folder from a real second process and kill it with SIGKILL; the CLI tests run the real
`pivotrl` commands in a subprocess and expect a one-line error (no traceback) within seconds, before any model
loads.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from pivotrl.run_folder import (
    FolderBusyError,
    OutputPathError,
    RunLock,
    check_output_dir,
    check_output_file,
    claim,
    lock_holder,
)

HOLD = """
import sys, time
from pivotrl.run_folder import claim
lock = claim(sys.argv[1]).acquire()
print("held", flush=True)
time.sleep(300)
"""


def _holder(folder: Path) -> subprocess.Popen:
    proc = subprocess.Popen([sys.executable, "-c", HOLD, str(folder)], stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "held"
    return proc


def _cli(*args: str, timeout: float = 60) -> tuple[int, str]:
    """Exit code and the output (stdout + stderr, lines joined: rich wraps long messages)."""
    result = subprocess.run([sys.executable, "-m", "pivotrl.cli", *args], capture_output=True, text=True,
                            timeout=timeout)
    assert "Traceback" not in result.stderr, result.stderr
    return result.returncode, " ".join((result.stdout + result.stderr).split())


def test_an_existing_file_is_not_an_output_folder(tmp_path):
    file = tmp_path / "results.txt"
    file.write_text("keep me")
    with pytest.raises(OutputPathError, match="is an existing file, not a folder"):
        check_output_dir(file)
    with pytest.raises(OutputPathError, match=f"{file} is a file"):
        check_output_dir(file / "run")
    assert file.read_text() == "keep me"


def test_a_folder_the_os_refuses_is_reported(tmp_path):
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o555)
    try:
        if os.access(ro, os.W_OK) and not Path("/sys").is_dir():
            pytest.skip("running as root without a read-only /sys: nothing here refuses a write")
        target = ro / "run" if not os.access(ro, os.W_OK) else Path("/sys/pivotrl-run")
        with pytest.raises(OutputPathError, match="cannot create it"):
            check_output_dir(target)
    finally:
        ro.chmod(0o755)


def test_output_file_checks_leave_no_trace(tmp_path):
    target = tmp_path / "deep" / "scores.jsonl"
    assert check_output_file(target) == target
    assert not target.exists()  # checked, not created
    with pytest.raises(OutputPathError, match="is a folder"):
        check_output_file(tmp_path)


def test_second_writer_is_refused_and_a_killed_holder_frees_the_folder_at_once(tmp_path):
    folder = tmp_path / "run"
    holder = _holder(folder)
    try:
        started = time.perf_counter()
        with pytest.raises(FolderBusyError, match=rf"being written by another process \(pid {holder.pid}"):
            claim(folder).acquire()
        assert time.perf_counter() - started < 1
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()
    with claim(folder) as lock:  # no waiting, no stale-lock clean-up
        assert isinstance(lock, RunLock)
    with claim(folder):  # and released again by the with block
        pass


def test_lock_holder_names_the_live_holder_without_taking_the_lock(tmp_path):
    folder = tmp_path / "run"
    assert lock_holder(folder) is None  # no folder yet
    holder = _holder(folder)
    try:
        assert lock_holder(folder).startswith(f"pid {holder.pid}:")
        with pytest.raises(FolderBusyError):  # still held by the holder after the probe
            claim(folder).acquire()
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()
    assert (folder / ".lock").read_text().startswith(f"pid {holder.pid}:")  # the line stays behind
    assert lock_holder(folder) is None  # but nobody holds the lock
    with claim(folder):
        assert lock_holder(folder).startswith(f"pid {os.getpid()}:")
        with pytest.raises(FolderBusyError):  # probing our own lock did not release or steal it
            claim(folder).acquire()


def test_cli_eval_refuses_a_file_as_out_before_loading_anything(tmp_path):
    file = tmp_path / "taken"
    file.write_text("x")
    started = time.perf_counter()
    code, output = _cli("eval", "--model", "no-such-model-is-loaded", "--task", "synthetic", "-n", "1",
                        "--out", str(file))
    assert code == 1 and "is an existing file, not a folder" in output
    assert time.perf_counter() - started < 30


def test_cli_eval_and_pivot_refuse_a_folder_another_process_writes(tmp_path):
    folder = tmp_path / "busy"
    holder = _holder(folder)
    try:
        for args in (["eval", "--model", "smollm2", "--task", "synthetic", "-n", "1", "--out", str(folder)],
                     ["pivot", "--pivot", "gold", "--task", "synthetic", "-n", "2", "--out", str(folder)]):
            code, output = _cli(*args)
            assert code == 1, output
            assert f"pid {holder.pid}" in output and "being written by another process" in output
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()
    code, output = _cli("pivot", "--pivot", "gold", "--task", "synthetic", "-n", "2", "--out", str(folder))
    assert code == 0, output


def test_cli_reward_score_checks_out_before_scoring(tmp_path):
    scores = tmp_path / "scores"
    scores.mkdir()
    code, output = _cli("reward", "score", "--response", "Die Antwort lautet 4.", "--reference", "The answer is 4.",
                        "--lang", "de", "--out", str(scores))
    assert code == 1 and "is a folder" in output


def test_cli_data_export_refuses_a_folder_as_out(tmp_path):
    code, output = _cli("data", "export", "synthetic", "--out", str(tmp_path))
    assert code == 1 and "output type" in output
    taken = tmp_path / "x.jsonl"
    taken.mkdir()
    code, output = _cli("data", "export", "synthetic", "--out", str(taken))
    assert code == 1 and "is a folder" in output
