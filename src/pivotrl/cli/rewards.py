"""`pivotrl reward`: show, score, serve and audit semantically verifiable rewards."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.table import Table

from pivotrl.cli.common import DEVICE_HELP, DataDir, _fail, app, console
from pivotrl.rewards.server import (DEFAULT_CACHE_SIZE, DEFAULT_MAX_BATCH, DEFAULT_MAX_BODY_BYTES,
                                    DEFAULT_MAX_ITEM_CHARS, DEFAULT_MAX_ITEMS, DEFAULT_MAX_WAIT_MS)

# ----------------------------------------------------------------------------------------------- reward

reward_app = typer.Typer(help="Semantically verifiable rewards: show a preset, score responses, serve them over "
                         "HTTP for trainers, audit how well they separate right from wrong and resist hacking.",
                         no_args_is_help=True)
app.add_typer(reward_app, name="reward")

RewardSpec = Annotated[str, typer.Option(
    "--reward", "-r", help="A preset (hybrid, embedding, translate, answer) or a YAML file with reward config fields.")]


def _build_reward(spec: str, **overrides):
    from pivotrl.rewards.compose import build_reward

    try:
        return build_reward(spec, **overrides)
    except (ValueError, KeyError) as exc:
        _fail(str(exc))


@reward_app.command("show")
def reward_show(reward: RewardSpec = "hybrid") -> None:
    """Print a reward's configuration: components, weights, gate, thresholds, and its total range."""
    composed = _build_reward(reward)
    cfg = composed.config
    table = Table(title=f"reward {cfg.name!r}: total in [{cfg.total_range()[0]:g}, {cfg.total_range()[1]:g}]")
    for column in ("component", "role", "weight", "range", "gated", "threshold"):
        table.add_column(column)
    from pivotrl.rewards.registry import REGISTRY

    for name in cfg.components:
        spec = REGISTRY[name]
        lo, hi = spec.range
        gated = "gate" if name == cfg.gate else ("yes" if name in cfg.gated and cfg.gate else "no")
        table.add_row(name, spec.role, f"{cfg.weights.get(name, 0.0):g}", f"[{lo:g}, {hi:g}]", gated,
                      f"{cfg.thresholds[name]:g}" if name in cfg.thresholds else "")
    console.print(table)
    for name in cfg.components:
        console.print(f"  {name}: {REGISTRY[name].summary}", highlight=False, markup=False)
    import yaml

    console.print(yaml.safe_dump(cfg.to_dict(), sort_keys=False, allow_unicode=True), highlight=False, markup=False)


@reward_app.command("score")
def reward_score(
    input: Annotated[Optional[Path], typer.Option("--input", "-i", help="JSON Lines file: one object per line "
                     "with response, reference, lang and optionally reference_answer, answer_type.")] = None,
    response: Annotated[Optional[str], typer.Option(help="One response to score (instead of --input).")] = None,
    reference: Annotated[Optional[str], typer.Option(help="The English reference for --response.")] = None,
    lang: Annotated[str, typer.Option(help="The language --response was asked in.")] = "en",
    reference_answer: Annotated[Optional[str], typer.Option(help="The reference's final answer (default: read "
                                "from --reference).")] = None,
    out: Annotated[Optional[Path], typer.Option("--out", "-o", help="Write one JSON line of scores per input "
                   "line here (default: print a table).")] = None,
    reward: RewardSpec = "hybrid",
    device: Annotated[str, typer.Option(help="Where the reward's encoder and translator run: " + DEVICE_HELP
                                        + ".")] = "auto",
) -> None:
    """Score responses against English references: the total and every component, per response."""
    from pivotrl.data.errors import DataError
    from pivotrl.data.files import iter_json_lines
    from pivotrl.run_folder import OutputPathError, check_output_file

    if (input is None) == (response is None):
        _fail("give either --input FILE or --response TEXT (with --reference)")
    if out is not None:
        try:  # before any scoring: the scores are never computed only to be lost to a write error
            check_output_file(out, "--out file")
        except OutputPathError as exc:
            _fail(str(exc))
    from pivotrl.records import RewardInput
    from pivotrl.rewards.compose import score_inputs

    rows: list[dict] = []
    inputs: list[RewardInput] = []
    try:
        if input is not None:
            for line_no, row in iter_json_lines(input):
                inputs.append(RewardInput.from_mapping(row, f"{input}, line {line_no}"))
                rows.append(row)
        else:
            if reference is None:
                _fail("--response needs --reference (the English reference it is compared with)")
            rows = [{"response": response, "reference": reference, "lang": lang, "reference_answer": reference_answer}]
            inputs = [RewardInput.from_mapping(rows[0], "--response")]
    except (DataError, OSError, ValueError) as exc:
        _fail(str(exc))
    items = rows
    composed = _build_reward(reward, device=device)
    try:
        scored = score_inputs(composed, inputs)
    except (ValueError, KeyError) as exc:
        _fail(str(exc))
    if out is not None:
        with out.open("w", encoding="utf-8") as f:
            for item, s in zip(items, scored):
                f.write(json.dumps({**item, **s.to_dict()}, ensure_ascii=False) + "\n")
        console.print(f"{len(scored)} scores written to {out}")
        return
    names = composed.config.components
    table = Table(title=f"reward {composed.config.name!r}")
    for column in ("#", "lang", "total", "gate", *names):
        table.add_column(column, justify="right")
    for i, (item, s) in enumerate(zip(items, scored), 1):
        table.add_row(str(i), item["lang"], f"{s.total:.3f}", f"{s.gate:.2f}",
                      *(f"{s.components[n]:.3f}" for n in names))
    console.print(table)


@reward_app.command("serve")
def reward_serve(
    reward: RewardSpec = "hybrid",
    device: Annotated[str, typer.Option(help="Where the reward's encoder and translator run: " + DEVICE_HELP
                                        + ".")] = "auto",
    host: Annotated[str, typer.Option(help="Address to listen on (0.0.0.0 for other machines).")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port (0 picks a free one).")] = 8000,
    max_batch: Annotated[int, typer.Option(help="Most items scored in one batch.")] = DEFAULT_MAX_BATCH,
    max_wait_ms: Annotated[float, typer.Option(help="How long a batch waits for more requests after the first.")]
    = DEFAULT_MAX_WAIT_MS,
    max_body_bytes: Annotated[int, typer.Option(help="Largest request body accepted (413 above).")]
    = DEFAULT_MAX_BODY_BYTES,
    max_items: Annotated[int, typer.Option(help="Most items in one request (413 above).")] = DEFAULT_MAX_ITEMS,
    max_item_chars: Annotated[int, typer.Option(help="Longest response or reference accepted, in characters "
                              "(413 above): a huge text would hold the scoring thread for every client.")]
    = DEFAULT_MAX_ITEM_CHARS,
    cache_size: Annotated[int, typer.Option(help="Identical items remembered (0: no result cache).")]
    = DEFAULT_CACHE_SIZE,
    api_key: Annotated[Optional[str], typer.Option(envvar="PIVOTRL_REWARD_API_KEY", show_envvar=True,
                       help="Key clients must send ('Authorization: Bearer KEY'); required when --host is not a "
                            "loopback address.")] = None,
) -> None:
    """Serve a reward over HTTP so trainers' workers share one loaded encoder per node.

    POST /score {"items": [{"response", "reference", "reference_answer", "lang", "answer_type"}]} returns
    {"scores": [{"score", "gate", "components"}]}; POST /get_reward is OpenRLHF's remote reward contract
    (labels are JSON strings with reference, reference_answer, lang); GET /health, GET /config. Requests are
    batched dynamically; malformed ones get a 4xx with a JSON {"error"} naming the field. The verl adapter
    (pivotrl.rewards.verl) calls this server when PIVOTRL_REWARD_URL is set. Ctrl-C stops it cleanly.
    """
    from pivotrl.rewards.compose import load_reward_config
    from pivotrl.rewards.server import serve

    try:
        config = load_reward_config(reward, device=device)
    except ValueError as exc:
        _fail(str(exc))
    try:
        serve(config, host=host, port=port, max_batch=max_batch, max_wait_ms=max_wait_ms,
              max_body_bytes=max_body_bytes, max_items=max_items, max_item_chars=max_item_chars,
              cache_size=cache_size, api_key=api_key)
    except (ValueError, OSError) as exc:  # no key beyond loopback; the port is taken
        _fail(str(exc))


@reward_app.command("audit")
def reward_audit(
    reward: RewardSpec = "hybrid",
    source: Annotated[Optional[list[str]], typer.Option("--source", help="exemplars (MGSM's human-translated "
                      "worked answers), synthetic (the embedded set's worked solutions), or a generations.jsonl / "
                      "eval run folder (needs --refs or --gold-task). Repeatable.")] = None,
    langs: Annotated[Optional[str], typer.Option(help="Comma-separated languages (default: every language of "
                     "each source).")] = None,
    n: Annotated[int, typer.Option("-n", help="Synthetic problems per language.")] = 40,
    refs: Annotated[Optional[str], typer.Option(help="A `pivotrl pivot` folder: references for generations.")]
    = None,
    gold_task: Annotated[Optional[str], typer.Option(help="A problem set whose English gold solutions serve as "
                         "references for generations.")] = None,
    out: Annotated[Path, typer.Option("--out", "-o", help="Folder for audit.md, audit.json, audit.png.")]
    = Path("runs/audit"),
    device: Annotated[str, typer.Option(help="Where the reward's encoder and translator run: " + DEVICE_HELP
                                        + ".")] = "auto",
    data_dir: DataDir = None,
) -> None:
    """How well a reward separates correct from incorrect answers (ROC-AUC and means per language and
    component) and whether honest answers outscore hacking probes built from them: an English copy of the
    reference, a changed final number, truncated reasoning, padding/repetition, an unrelated answer, a bare
    answer, an English answer sentence."""
    from pivotrl.data.errors import DataError
    from pivotrl.rewards.audit import audit_main
    from pivotrl.run_folder import claim

    try:
        with claim(out, "audit folder"):
            composed = _build_reward(reward, device=device)
            report = audit_main(composed, sources=source or ["exemplars", "synthetic"], langs=langs, out_dir=out,
                                n=n, data_dir=data_dir, refs_dir=refs, gold_task=gold_task,
                                echo=lambda text: console.print(text, highlight=False, markup=False))
    except (DataError, ValueError, KeyError, OSError) as exc:
        _fail(str(exc))
    verdict = "passes" if report.passes(0.99) else "does NOT pass"
    unprobed = [r.lang for r in report.langs.values() if r.min_required is None]
    console.print(f"audit written to {out}/audit.md; the reward {verdict} the 99% probe check in every language "
                  "with probes" + (f" (none in {', '.join(unprobed)}: no correct answer to build them from)"
                                   if unprobed else ""))
