"""Reading the YAML files users write (reward configs, training recipes) with errors that name the file.

A key written twice in one mapping is an error naming the file, both lines and the key: YAML itself keeps the last
value without a word, so a recipe edited by appending (``learning_rate`` at the top, another further down) would
train with whichever came last.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from pivotrl.text_files import read_text

__all__ = ["DuplicateKeyError", "read_yaml_mapping", "yaml_value"]


class DuplicateKeyError(yaml.YAMLError):
    """A key given twice in one YAML mapping (``line``: the second, 1-based; ``first``: the first)."""

    def __init__(self, key: Any, line: int, first: int) -> None:
        self.key, self.line, self.first = key, line, first
        super().__init__(f"line {line}: key {key!r} is given twice in one mapping (first on line {first}); YAML "
                         "would keep only the last value: remove one")


class _UniqueKeyLoader(yaml.SafeLoader):
    """PyYAML's safe loader, refusing a key written twice in one mapping (merge keys, ``<<``, may be overridden)."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: dict[Any, int] = {}
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue
            key = self.construct_object(key_node, deep=True)
            line = key_node.start_mark.line + 1
            try:
                if key in seen:
                    raise DuplicateKeyError(key, line, seen[key])
                seen[key] = line
            except TypeError:  # an unhashable key: the loader's own error names it
                continue
        return super().construct_mapping(node, deep=deep)



def yaml_value(text: str) -> Any:
    """``text`` read as YAML (safe types only), a key given twice in one mapping refused
    (:class:`DuplicateKeyError`); a value nested too deeply to read is a ``yaml.YAMLError`` too."""
    try:
        return yaml.load(text, Loader=_UniqueKeyLoader)  # noqa: S506 - a SafeLoader subclass
    except RecursionError:
        raise yaml.YAMLError("nested too deeply (thousands of levels of brackets or indentation)") from None


def read_yaml_mapping(path: Path, what: str) -> dict[str, Any]:
    """The mapping at the top of a YAML file (an empty file is an empty mapping); ValueError naming the file (and
    the line, for a key given twice)."""
    try:
        loaded = yaml_value(read_text(path))
    except DuplicateKeyError as exc:
        raise ValueError(f"{path}, {exc}") from None
    except yaml.YAMLError as exc:
        raise ValueError(f"{path}: not valid YAML: {exc}") from exc
    if loaded is None:
        return {}
    if not isinstance(loaded, dict):
        raise ValueError(f"{path}: expected a mapping of {what}, got {type(loaded).__name__}")
    return loaded
