"""Markdown for the reports (evaluation metrics, run comparisons, the reward audit): one way to write a
percentage and a table."""

from __future__ import annotations

__all__ = ["pct", "table"]


def pct(value: float | None, missing: str = "-") -> str:
    """A share in [0, 1] as a percentage with one decimal ("42.5"); ``missing`` for None."""
    return missing if value is None else f"{100 * value:.1f}"


def table(header: list[str], rows: list[list[str]]) -> list[str]:
    """The lines of a markdown table."""
    return ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)] + ["| " + " | ".join(r) + " |"
                                                                            for r in rows]
