"""The settings of the reward commands: ``pivotrl reward score``, ``serve`` and ``audit`` (and ``show``).

One dataclass per command, each field a :func:`~pivotrl.config_fields.setting` with its default and help; the CLI
builds the command's options from it (``pivotrl.cli.common.options_from``). The reward and its device are the
same two settings in every command (:class:`RewardChoice`); the server's limits default to
:mod:`pivotrl.rewards.server`'s.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from pivotrl.config_fields import DATA_DIR_HELP, setting
from pivotrl.devices import DEVICE_HELP
from pivotrl.rewards.client import ENV_API_KEY
from pivotrl.rewards.server import (DEFAULT_CACHE_SIZE, DEFAULT_MAX_BATCH, DEFAULT_MAX_BODY_BYTES,
                                    DEFAULT_MAX_ITEM_CHARS, DEFAULT_MAX_ITEMS, DEFAULT_MAX_WAIT_MS)

__all__ = ["AuditConfig", "RewardChoice", "ScoreConfig", "ServeConfig"]


@dataclass
class RewardChoice:
    """Which reward, and where its models run: what every reward command takes."""

    reward: str = setting("hybrid", flags=("--reward", "-r"), help="A preset (hybrid, hybrid-judge, embedding, "
                          "translate, answer) or a YAML file with reward config fields.")
    device: str = setting("auto", help="Where the reward's encoder and translator run: " + DEVICE_HELP + ".")


@dataclass
class ScoreConfig(RewardChoice):
    """``pivotrl reward score``: responses to score, from a file or one on the command line."""

    input: Path | None = setting(None, flags=("--input", "-i"), help="JSON Lines file: one object per line with "
                                 "response, reference, lang and optionally reference_answer, answer_type, question "
                                 "(the question in the asked language).")
    response: str | None = setting(None, help="One response to score (instead of --input).")
    reference: str | None = setting(None, help="The English reference for --response.")
    lang: str = setting("en", help="The language --response was asked in.")
    reference_answer: str | None = setting(None, help="The reference's final answer (default: read from "
                                                      "--reference).")
    out: Path | None = setting(None, flags=("--out", "-o"), help="Write one JSON line of scores per input line "
                                                                 "here (default: print a table).")


@dataclass
class ServeConfig(RewardChoice):
    """``pivotrl reward serve``: where the reward server listens and the limits it keeps."""

    host: str = setting("127.0.0.1", help="Address to listen on (0.0.0.0 for other machines).")
    port: int = setting(8000, at_least=0, at_most=65535, help="Port (0 picks a free one).")
    max_batch: int = setting(DEFAULT_MAX_BATCH, at_least=1, help="Most items scored in one batch.")
    max_wait_ms: float = setting(DEFAULT_MAX_WAIT_MS, at_least=0, help="How long a batch waits for more requests "
                                                                       "after the first.")
    max_body_bytes: int = setting(DEFAULT_MAX_BODY_BYTES, at_least=1, help="Largest request body accepted (413 "
                                                                           "above).")
    max_items: int = setting(DEFAULT_MAX_ITEMS, at_least=1, help="Most items in one request (413 above).")
    max_item_chars: int = setting(DEFAULT_MAX_ITEM_CHARS, at_least=1, help="Longest response, reference or "
                                  "question accepted, in characters (413 above): a huge text would hold the scoring "
                                  "thread for every client.")
    cache_size: int = setting(DEFAULT_CACHE_SIZE, at_least=0, help="Identical items remembered (0: no result "
                                                                   "cache).")
    api_key: str | None = setting(None, envvar=ENV_API_KEY, help="Key clients must send ('Authorization: Bearer "
                                  "KEY'); required when --host is not a loopback address.")


@dataclass
class AuditConfig(RewardChoice):
    """``pivotrl reward audit``: the answers the reward is audited on, and where the report goes."""

    source: list[str] = setting(default_factory=lambda: ["exemplars", "synthetic"], flags=("--source",),
                                help="exemplars (MGSM's human-translated worked answers), synthetic (the embedded "
                                "set's worked solutions), or a generations.jsonl / eval run folder (needs --refs or "
                                "--gold-task). Repeatable.")
    langs: str | None = setting(None, help="Comma-separated languages (default: every language of each source).")
    n: int = setting(40, flags=("-n",), at_least=1, help="Synthetic problems per language.")
    refs: str | None = setting(None, help="A `pivotrl pivot` folder: references for generations.")
    gold_task: str | None = setting(None, help="A problem set whose English gold solutions serve as references for "
                                               "generations.")
    out: Path = setting(Path("runs/audit"), flags=("--out", "-o"), help="Folder for audit.md, audit.json, "
                                                                        "audit.png.")
    data_dir: str | None = setting(None, help=DATA_DIR_HELP)
    probes: str | None = setting(None, help="Comma-separated probes to build from the right answers (default: "
                                            "all of them); 'none': score the answers only (ROC-AUC, no probes).")
