"""The Hugging Face hub, asked the way every loader here asks it: is a spec a local path or a hub id, is the
hub switched off, and is a repo there (one short request, instead of transformers' retries with back-off
for about 45 s per file when the hub cannot be reached)."""

from __future__ import annotations

import os
import re

__all__ = ["HUB_ID", "hub_offline", "looks_like_path", "probe_hub"]

# "name" or "org/name" made of letters, digits, "-", "_" and "."
HUB_ID = re.compile(r"[A-Za-z0-9][\w.\-]*(/[A-Za-z0-9][\w.\-]*)?")


def looks_like_path(spec: str) -> bool:
    """A spec of these shapes is meant as a local path: sending it to the hub would only produce a confusing
    "repo id" error after network timeouts."""
    return (
        spec.startswith(("/", "./", "../", "~", "\\"))
        or spec.lower().endswith(".gguf")
        or spec.count("/") > 1
        or "\\" in spec
        or (len(spec) > 1 and spec[1] == ":")  # Windows drive letter
    )


def hub_offline() -> bool:
    """Offline mode, read from the environment now (huggingface_hub reads HF_HUB_OFFLINE once at import; a
    caller or a test may switch it on later)."""
    truthy = {"1", "on", "yes", "true"}
    if any(os.environ.get(name, "").strip().lower() in truthy for name in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")):
        return True
    try:
        from huggingface_hub import constants
    except ImportError:
        return False
    return bool(constants.HF_HUB_OFFLINE)


def probe_hub(repo_id: str) -> tuple[str, str] | None:
    """None if the hub has ``repo_id``, else ``(kind, detail)``: kind ``gated``, ``missing``, ``unreachable``
    (connection, DNS, proxy, timeout) or ``unusable`` (huggingface_hub cannot be imported)."""
    try:
        from huggingface_hub import model_info
        from huggingface_hub.errors import GatedRepoError, RepositoryNotFoundError
    except ImportError as exc:
        return "unusable", f"huggingface_hub is not usable ({exc})"
    try:
        model_info(repo_id, timeout=10)
    except GatedRepoError as exc:
        return "gated", str(exc).splitlines()[0]
    except RepositoryNotFoundError as exc:
        return "missing", str(exc).splitlines()[0]
    except Exception as exc:  # connection, DNS, proxy, timeout, offline errors all mean "cannot reach"
        return "unreachable", f"{type(exc).__name__}: {exc}"
    return None
