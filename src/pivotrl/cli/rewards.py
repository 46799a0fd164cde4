"""`pivotrl reward`: show, score, serve and audit semantically verifiable rewards."""

from __future__ import annotations

import json

import typer
from rich.table import Table

from pivotrl.cli.common import app, console, fail, options_from, write_failed
from pivotrl.rewards.command_configs import AuditConfig, RewardChoice, ScoreConfig, ServeConfig

# ----------------------------------------------------------------------------------------------- reward

reward_app = typer.Typer(help="Semantically verifiable rewards: show a preset, score responses, serve them over "
                         "HTTP for trainers, audit how well they separate right from wrong and resist hacking.",
                         no_args_is_help=True)
app.add_typer(reward_app, name="reward")


def _build_reward(spec: str, **overrides):
    from pivotrl.rewards.compose import build_reward

    try:
        return build_reward(spec, **overrides)
    except (ValueError, KeyError) as exc:
        fail(str(exc))


@reward_app.command("show")
@options_from(RewardChoice, "choice", skip=("device",))
def reward_show(choice: RewardChoice = None) -> None:  # type: ignore[assignment] - built by options_from
    """Print a reward's configuration: components, weights, gate, thresholds, and its total range."""
    composed = _build_reward(choice.reward)
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
        spec = REGISTRY[name]
        # what the component reads from the config: its own settings (with this config's value) and shared fields
        reads = [f"{key}={getattr(cfg, key)!r} ({setting.help})" for key, setting in spec.settings.items()]
        reads += [f"{field}={getattr(cfg, field)!r}" for field in spec.fields]
        console.print(f"  {name}: {spec.summary}" + (f"; reads {', '.join(reads)}" if reads else ""),
                      highlight=False, markup=False)
    import yaml

    console.print(yaml.safe_dump(cfg.to_dict(), sort_keys=False, allow_unicode=True), highlight=False, markup=False)


@reward_app.command("score")
@options_from(ScoreConfig, "config")
def reward_score(config: ScoreConfig = None) -> None:  # type: ignore[assignment] - built by options_from
    """Score responses against English references: the total and every component, per response."""
    from pivotrl.data.errors import DataError
    from pivotrl.data.files import iter_json_lines
    from pivotrl.run_folder import OutputPathError, check_output_file

    input, response, reference, out = config.input, config.response, config.reference, config.out

    if (input is None) == (response is None):
        fail("give either --input FILE or --response TEXT (with --reference)")
    if out is not None:
        try:  # before any scoring: the scores are never computed only to be lost to a write error
            check_output_file(out, "--out file")
        except OutputPathError as exc:
            fail(str(exc))
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
                fail("--response needs --reference (the English reference it is compared with)")
            rows = [{"response": response, "reference": reference, "lang": config.lang,
                     "reference_answer": config.reference_answer}]
            inputs = [RewardInput.from_mapping(rows[0], "--response")]
    except (DataError, OSError, ValueError) as exc:
        fail(str(exc))
    items = rows
    composed = _build_reward(config.reward, device=config.device)
    try:
        scored = score_inputs(composed, inputs)
    except (ValueError, KeyError, OSError) as exc:  # OSError: a judge server that is down or misnamed
        fail(str(exc))
    if out is not None:
        from pivotrl.run_folder import open_output

        try:
            with open_output(out) as f:
                for item, s in zip(items, scored):
                    f.write(json.dumps({**item, **s.to_dict()}, ensure_ascii=False) + "\n")
        except OSError as exc:
            fail(write_failed(exc))
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
@options_from(ServeConfig, "config")
def reward_serve(config: ServeConfig = None) -> None:  # type: ignore[assignment] - built by options_from
    """Serve a reward over HTTP so trainers' workers share one loaded encoder per node.

    POST /score {"items": [{"response", "reference", "reference_answer", "lang", "answer_type", "question"}]}
    returns {"scores": [{"score", "gate", "components"}]}; POST /get_reward is OpenRLHF's remote reward contract
    (labels are JSON strings with reference, reference_answer, lang, question); GET /health, GET /config. Requests are
    batched dynamically; malformed ones get a 4xx with a JSON {"error"} naming the field. The verl adapter
    (pivotrl.rewards.verl) calls this server when PIVOTRL_REWARD_URL is set. Ctrl-C stops it cleanly.
    """
    from pivotrl.rewards.compose import load_reward_config
    from pivotrl.rewards.server import serve

    try:
        reward = load_reward_config(config.reward, device=config.device)
    except ValueError as exc:
        fail(str(exc))
    try:
        serve(reward, host=config.host, port=config.port, max_batch=config.max_batch, max_wait_ms=config.max_wait_ms,
              max_body_bytes=config.max_body_bytes, max_items=config.max_items,
              max_item_chars=config.max_item_chars, cache_size=config.cache_size, api_key=config.api_key)
    except (ValueError, OSError) as exc:  # no key beyond loopback; the port is taken
        fail(str(exc))


@reward_app.command("audit")
@options_from(AuditConfig, "config")
def reward_audit(config: AuditConfig = None) -> None:  # type: ignore[assignment] - built by options_from
    """How well a reward separates correct from incorrect answers (ROC-AUC and means per language and
    component) and whether honest answers outscore hacking probes built from them: an English copy of the
    reference, a changed final number, truncated reasoning, padding/repetition, an unrelated answer, a bare
    answer, an English answer sentence."""
    from pivotrl.data.errors import DataError
    from pivotrl.rewards.audit import audit_main
    from pivotrl.run_folder import WriteError, claim

    out = config.out
    try:
        with claim(out, "audit folder"):
            composed = _build_reward(config.reward, device=config.device)
            report = audit_main(composed, sources=config.source or ["exemplars", "synthetic"], langs=config.langs,
                                out_dir=out, n=config.n, data_dir=config.data_dir, refs_dir=config.refs,
                                gold_task=config.gold_task, probes=_probe_names(config.probes),
                                echo=lambda text: console.print(text, highlight=False, markup=False))
    except WriteError as exc:  # a full disk while the audit is written: the file, named
        fail(write_failed(exc))
    except (DataError, ValueError, KeyError, OSError) as exc:
        fail(str(exc))
    if not report.probes:
        console.print(f"audit written to {out}/audit.md (ROC-AUC only: no probes were asked for)")
        return
    verdict = "passes" if report.passes(0.99) else "does NOT pass"
    unprobed = [r.lang for r in report.langs.values() if r.min_required is None]
    console.print(f"audit written to {out}/audit.md; the reward {verdict} the 99% probe check in every language "
                  "with probes" + (f" (none in {', '.join(unprobed)}: no correct answer to build them from)"
                                   if unprobed else ""))


def _probe_names(text: str | None) -> list[str] | None:
    """``--probes``: None (every probe), [] for ``none``, else the names given."""
    if text is None:
        return None
    names = [p.strip() for p in text.split(",") if p.strip()]
    return [] if names == ["none"] else names
