"""Reading the YAML files users write (reward configs, training recipes) with errors that name the file."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from pivotrl.text_files import read_text


def read_yaml_mapping(path: Path, what: str) -> dict[str, Any]:
    """The mapping at the top of a YAML file (an empty file is an empty mapping); ValueError naming the file."""
    try:
        loaded = yaml.safe_load(read_text(path))
    except yaml.YAMLError as exc:
        raise ValueError(f"{path}: not valid YAML: {exc}") from exc
    if loaded is None:
        return {}
    if not isinstance(loaded, dict):
        raise ValueError(f"{path}: expected a mapping of {what}, got {type(loaded).__name__}")
    return loaded
