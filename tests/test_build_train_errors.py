"""`pivotrl pivot build-train` on wrong but well-formed input: a language the set lacks, a --refs folder that does
not exist or holds nothing, references of another set. Each is an error naming what is wrong, and no file is
written."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from pivotrl.cli import app
from pivotrl.data import DataError
from pivotrl.pivot import PivotConfig, build_train_set, run_pivot


@pytest.fixture(scope="module")
def refs(tmp_path_factory):
    folder = tmp_path_factory.mktemp("refs")
    run_pivot(PivotConfig(pivot="gold", task="synthetic", split="all", n=10, out=str(folder)), progress=False)
    return folder


def _build_train(*args: str):
    return CliRunner().invoke(app, ["pivot", "build-train", *args])


def test_a_language_the_set_lacks_is_an_error_naming_it_and_the_sets_languages(refs, tmp_path):
    out = tmp_path / "train.jsonl"
    result = _build_train("--refs", str(refs), "--task", "synthetic", "--langs", "de,ko", "--out", str(out))
    assert result.exit_code == 1
    assert "synthetic has no questions in ko (it has en, de, es, fr, ru, zh, ja, sw)" in " ".join(result.output.split())
    assert "--translator" in result.output and not out.exists()
    with pytest.raises(DataError, match="synthetic has no questions in ko"):
        build_train_set(refs, "synthetic", ["ko"])


def test_a_missing_refs_folder_does_not_exist_and_is_not_made(tmp_path):
    missing = tmp_path / "no-such-store"
    result = _build_train("--refs", str(missing), "--task", "synthetic", "--langs", "de",
                          "--out", str(tmp_path / "t.jsonl"))
    assert result.exit_code == 1
    text = " ".join(result.output.split())
    assert f"reference store {missing} does not exist" in text and "--pivot-name" not in text
    assert not missing.exists()
    (tmp_path / "a-file").write_text("x", encoding="utf-8")
    with pytest.raises(DataError, match="is a file, not a folder"):
        build_train_set(tmp_path / "a-file", "synthetic", ["de"])
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="holds no references.jsonl"):
        build_train_set(tmp_path / "empty", "synthetic", ["de"])
    (tmp_path / "empty" / "references.jsonl").write_text("", encoding="utf-8")
    with pytest.raises(DataError, match="holds no references yet"):
        build_train_set(tmp_path / "empty", "synthetic", ["de"])


def test_references_of_another_set_make_no_empty_file(refs, tmp_path, data_dir):
    out = tmp_path / "train.jsonl"
    result = _build_train("--refs", str(refs), "--task", "msvamp", "--langs", "de", "--out", str(out),
                          "--data-dir", str(data_dir))
    assert result.exit_code == 1
    text = " ".join(result.output.split())
    assert "none of its 9 references" in text and "is a problem of msvamp in de" in text
    assert not out.exists()
    result = _build_train("--refs", str(refs), "--task", "synthetic", "--langs", "de", "--out", str(out))
    assert result.exit_code == 0, result.output
    assert out.read_text(encoding="utf-8").count("\n") > 0
