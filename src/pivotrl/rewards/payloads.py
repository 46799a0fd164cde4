"""The reward server's request bodies: pivotrl's ``/score`` items and OpenRLHF's ``/get_reward`` columns, each
validated into :class:`~pivotrl.records.RewardInput` records with a 400/413 :class:`RequestError` naming the
field that is wrong."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from pivotrl.records import RewardInput, RewardInputError, json_type
from pivotrl.rewards.batching import RequestError
from pivotrl.text_files import json_value

__all__ = ["check_count", "check_lengths", "openrlhf_request", "parse_item", "score_request"]


def parse_item(obj: Any, where: str = "item") -> RewardInput:
    """Validate one item (a JSON object); raise :class:`RequestError` (400) naming ``where`` and the field."""
    try:
        return RewardInput.from_mapping(obj, where)
    except RewardInputError as exc:
        raise RequestError(400, str(exc)) from None


def check_lengths(items: Sequence[RewardInput], max_chars: int) -> None:
    for i, item in enumerate(items):
        for field in ("response", "reference", "question"):
            n = len(getattr(item, field) or "")
            if n > max_chars:
                raise RequestError(413, f"item {i}: {field} has {n:,} characters, more than the limit of "
                                        f"{max_chars:,} per text (--max-item-chars)")


def check_count(n: int, what: str, max_items: int) -> None:
    if n == 0:
        raise RequestError(400, f"{what}: expected a non-empty list")
    if n > max_items:
        raise RequestError(413, f"{what}: {n} items are more than the limit of {max_items} per request; "
                                "split the request")


def score_request(body: Any, max_items: int) -> list[RewardInput]:
    if not isinstance(body, Mapping):
        raise RequestError(400, f"body: expected a JSON object with 'items', got {json_type(body)}")
    if "items" not in body:
        if "response" in body:  # a single item
            return [parse_item(body, "item")]
        raise RequestError(400, "body: missing 'items' (expected {\"items\": [{\"response\": ..., "
                                "\"reference\": ..., \"lang\": ...}, ...]} or a single item object)")
    items = body["items"]
    if not isinstance(items, list):
        raise RequestError(400, f"items: expected a list, got {json_type(items)}")
    check_count(len(items), "items", max_items)
    return [parse_item(obj, f"items[{i}]") for i, obj in enumerate(items)]


def openrlhf_request(body: Any, max_items: int) -> list[RewardInput]:
    if not isinstance(body, Mapping):
        raise RequestError(400, f"body: expected a JSON object with query, prompts and labels, got "
                                f"{json_type(body)}")
    queries = body.get("query")
    if not isinstance(queries, list):
        raise RequestError(400, f"query: expected a list of strings (prompt + response), got {json_type(queries)}")
    check_count(len(queries), "query", max_items)
    prompts = body.get("prompts")
    if prompts is None:
        prompts = [""] * len(queries)
    labels = body.get("labels")
    for name, column in (("prompts", prompts), ("labels", labels)):
        if not isinstance(column, list):
            raise RequestError(400, f"{name}: expected a list, got {json_type(column)}")
        if len(column) != len(queries):
            raise RequestError(400, f"{name}: {len(column)} values for {len(queries)} queries")
    items = []
    for i, (query, prompt, label) in enumerate(zip(queries, prompts, labels, strict=True)):
        if not isinstance(query, str):
            raise RequestError(400, f"query[{i}]: expected a string, got {json_type(query)}")
        if not isinstance(prompt, str):
            raise RequestError(400, f"prompts[{i}]: expected a string, got {json_type(prompt)}")
        if isinstance(label, str):
            try:
                label = json_value(label)
            except ValueError as exc:  # not JSON, or nested too deeply
                raise RequestError(400, f"labels[{i}]: not JSON ({exc}); expected a JSON object string with "
                                        "reference, lang and optionally reference_answer, answer_type, "
                                        "question") from None
        if not isinstance(label, Mapping):
            raise RequestError(400, f"labels[{i}]: expected a JSON object with reference, lang and optionally "
                                    f"reference_answer, answer_type, question; got {json_type(label)}")
        response = query[len(prompt):] if prompt and query.startswith(prompt) else query
        items.append(parse_item({**label, "response": response}, f"labels[{i}]"))
    return items
