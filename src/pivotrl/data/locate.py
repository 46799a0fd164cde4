"""Where problem-set files come from: a local data folder (flag or environment variable) or the hub."""

from __future__ import annotations

import os
from pathlib import Path

from pivotrl.data.errors import DataError

ENV_VAR = "PIVOTRL_DATA_DIR"


def resolve_data_dir(flag: str | Path | None = None) -> Path | None:
    """The data folder: the flag when given, else $PIVOTRL_DATA_DIR, else None (meaning: use the hub)."""
    value = flag if flag not in (None, "") else os.environ.get(ENV_VAR) or None
    if value is None:
        return None
    path = Path(value).expanduser()
    if not path.is_dir():
        source = "--data-dir" if flag not in (None, "") else f"${ENV_VAR}"
        raise DataError(f"data folder {path} (from {source}) does not exist or is not a folder")
    return path


def find_local(data_dir: Path | None, folder: str, pattern: str) -> Path | None:
    """The folder holding files matching ``pattern``: ``data_dir/folder`` or ``data_dir`` itself."""
    if data_dir is None:
        return None
    for candidate in (data_dir / folder, data_dir):
        if candidate.is_dir() and any(candidate.glob(pattern)):
            return candidate
    return None


def hub_file(repo_id: str, filename: str) -> Path:
    """Download one file of a hub data set (cached by huggingface_hub); a clear error when offline."""
    from huggingface_hub import hf_hub_download

    try:
        return Path(hf_hub_download(repo_id=repo_id, filename=filename, repo_type="dataset"))
    except Exception as exc:  # network errors, offline mode, missing file: all mean "not available"
        raise DataError(
            f"could not fetch {filename} from the hub data set {repo_id} ({type(exc).__name__}: {exc}). "
            f"Without hub access, point --data-dir or ${ENV_VAR} at a folder holding the files."
        ) from exc
