"""verl's launch settings and the files written from them: ``run_grpo.sh``, ``run_ppo.sh``, ``reward.py``, README.

:class:`VerlLaunch` holds what a verl job needs beyond the data (policy, GPUs, batch sizes, lengths, learning
rates, logging); ``pivotrl export verl`` builds one option per field. The batch sizes are fitted to the data and
the GPU count so that verl 0.5.0's own checks pass (:func:`batch_sizes`). Every script key was checked against
verl 0.5.0's flattened default config (``verl/trainer/config/_generated_ppo_trainer.yaml``).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

from pivotrl.config_fields import check_fields, setting
from pivotrl.rewards.verl import ENV_CONFIG, ENV_URL

__all__ = ["VERL_VERSION", "VerlLaunch", "batch_sizes", "launch_script", "readme", "reward_module", "script_word"]

VERL_VERSION = "0.5.0"


_POSITIVE = "a positive integer"


def _every_n_steps(value: int) -> bool:
    return not isinstance(value, bool) and isinstance(value, int) and (value == -1 or value >= 1)


@dataclass
class VerlLaunch:
    """The launch settings of an exported verl job (defaults: one 8-GPU node, a 7B policy)."""

    model: str = setting("Qwen/Qwen2.5-7B-Instruct", help="The policy verl trains (hub id or path on the cluster).")
    n_gpus: int = setting(8, at_least=1, expected=_POSITIVE, help="GPUs per node.")
    nnodes: int = setting(1, at_least=1, expected=_POSITIVE, help="Nodes.")
    critic_model: str | None = setting(None, help="PPO's critic (default: the policy's model).")
    rollout_n: int = setting(8, at_least=2, expected="at least 2 (GRPO's advantage is relative to the group)",
                             help="GRPO samples per prompt (PPO uses one).")
    train_batch_size: int = setting(256, at_least=1, expected=_POSITIVE,
                                    help="Prompts per step (fitted down to the data and GPU count).")
    ppo_mini_batch_size: int = setting(64, at_least=1, expected=_POSITIVE,
                                       help="Prompts per optimiser update (fitted to divide the batch).")
    max_prompt_length: int = setting(1024, at_least=1, expected=_POSITIVE,
                                     help="Prompt tokens (longer prompts are dropped).")
    max_response_length: int = setting(1024, at_least=1, expected=_POSITIVE, help="Response tokens.")
    rollout_tp: int = setting(2, at_least=1, expected=_POSITIVE,
                              help="vLLM tensor parallelism of the rollout (divides --n-gpus).")
    gpu_memory_utilization: float = setting(0.6, above=0, at_most=1, help="vLLM's share of GPU memory, in (0, 1].")
    actor_lr: float = setting(1e-6, above=0, help="Policy learning rate.")
    critic_lr: float = setting(1e-5, above=0, help="PPO critic learning rate.")
    kl_loss_coef: float = setting(0.001, at_least=0, help="GRPO KL loss coefficient (low_var_kl).")
    total_epochs: int = setting(15, at_least=1, expected=_POSITIVE, help="Passes over the training set.")
    test_freq: int = setting(5, check=_every_n_steps, expected="-1 or a positive integer",
                             help="Validate every N steps (-1 when no held-out split is exported).")
    save_freq: int = setting(-1, check=_every_n_steps, expected="-1 or a positive integer",
                             help="Checkpoint every N steps (-1: only at the end).")
    logger: list[str] = setting(default_factory=lambda: ["console"],
                                help="verl loggers (repeatable): console, wandb, tensorboard, ...")
    project_name: str = setting("pivotrl", help="trainer.project_name.")
    experiment_name: str | None = setting(None, help="trainer.experiment_name (default: <data source>-<reward>).")

    def check(self) -> None:
        """Refuse settings verl would reject later on the cluster, naming the field."""
        check_fields(self)  # each field within the values its setting declares (SettingError, a ValueError)
        for name in ("n_gpus", "nnodes", "rollout_n", "train_batch_size", "ppo_mini_batch_size", "max_prompt_length",
                     "max_response_length", "rollout_tp", "total_epochs"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool):
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        if self.n_gpus % self.rollout_tp:
            raise ValueError(f"rollout_tp={self.rollout_tp} must divide n_gpus={self.n_gpus} "
                             "(vLLM tensor parallelism per node)")
        loggers = self.loggers()
        if not loggers or not all(isinstance(x, str) and x.strip() and "," not in x for x in loggers):
            raise ValueError(f"logger must name at least one verl logger (console, wandb, tensorboard, ...): "
                             f"{self.logger!r}")

    def loggers(self) -> list[str]:
        return [self.logger] if isinstance(self.logger, str) else list(self.logger)

    def script_settings(self, experiment_name: str, has_test: bool) -> dict[str, Any]:
        """The values the scripts and README use (the export summary records them too)."""
        values = {k: v for k, v in asdict(self).items()
                  if k not in ("rollout_n", "train_batch_size", "ppo_mini_batch_size")}  # fitted: see batch_sizes
        values.update(critic_model=self.critic_model or self.model, logger=self.loggers(),
                      experiment_name=experiment_name, test_freq=self.test_freq if has_test else -1,
                      val_before_train=has_test)
        for name in ("model", "critic_model", "project_name", "experiment_name"):
            script_word(values[name], name)  # they go into the launch scripts
        for x in values["logger"]:
            script_word(x, "logger")
        return values


@dataclass(frozen=True)
class _Batch:
    """verl batch sizes for one algorithm, already satisfying verl 0.5.0's checks for the export's GPUs."""

    rollout_n: int
    train_batch_size: int
    ppo_mini_batch_size: int
    steps_per_epoch: int


def batch_sizes(n_rows: int, train_batch_size: int, mini_batch_size: int, n: int, world: int,
                 algo: str) -> _Batch:
    """Batch sizes verl 0.5.0 accepts: ``train_batch_size * n`` divisible by the GPU count (ray_trainer), the
    normalised ``ppo_mini_batch_size * n // world`` positive (fsdp_workers), the train loader not empty (it
    drops the last partial batch) and, for even updates, the mini batch dividing the train batch."""
    step = world // math.gcd(n, world)
    size = min(train_batch_size, n_rows) // step * step
    if size == 0:
        raise ValueError(f"{algo}: {n_rows} training rows are too few for {world} GPUs with {n} sample(s) per "
                         f"prompt: verl needs train_batch_size * rollout.n divisible by {world}, i.e. a batch of "
                         f"at least {step} prompts; export more examples or use fewer GPUs")
    fitting = [m for m in range(step, min(mini_batch_size, size) + 1, step) if size % m == 0]
    mini = max(fitting) if fitting else step
    return _Batch(rollout_n=n, train_batch_size=size, ppo_mini_batch_size=mini, steps_per_epoch=n_rows // size)


# --------------------------------------------------------------------------------------------- reward.py

_REWARD_TEMPLATE = '''"""pivotrl's PB-RLSVR reward for verl {verl_version}: custom_reward_function.path points here.

Generated by pivotrl.train.verl_export. verl loads it with importlib (verl/trainer/ppo/reward.py) and calls
``compute_score`` once per response (reward_model.reward_manager=naive) or once per batch
(reward_model.reward_manager=batch, what the launch scripts use). It re-exports
pivotrl.rewards.verl.compute_score, so pivotrl must be importable in the Python that runs verl's TaskRunner
(install it on every Ray node).

Defaults from the export, used unless the environment already sets them (an empty {env_url}
switches the reward server off):

* {env_config} = {config_doc}
* {env_url} = {url_doc}
"""

import os

_HERE = os.path.dirname(os.path.abspath(__file__))
REWARD_CONFIG = {config!r}  # a preset name, or a YAML file name relative to this folder
REWARD_CONFIG_IS_FILE = {is_file!r}
REWARD_URL = {url!r}  # a running `pivotrl reward serve`, or None to score in this process

_config = os.path.join(_HERE, REWARD_CONFIG) if REWARD_CONFIG_IS_FILE else REWARD_CONFIG
if {env_config!r} not in os.environ:
    os.environ[{env_config!r}] = _config
if REWARD_URL and {env_url!r} not in os.environ:
    os.environ[{env_url!r}] = REWARD_URL

try:
    from pivotrl.rewards.verl import compute_score
except ImportError as exc:  # pragma: no cover - depends on the cluster's environment
    raise ImportError(f"the PB-RLSVR reward needs pivotrl in this Python ({{exc}}); install pivotrl on every "
                      "Ray node (pip install pivotrl[rewards]) or ship it with the job's runtime_env") from exc

__all__ = ["compute_score"]
'''


def reward_module(spec: str, is_file: bool, url: str | None) -> str:
    return _REWARD_TEMPLATE.format(
        verl_version=VERL_VERSION, env_config=ENV_CONFIG, env_url=ENV_URL, config=spec, is_file=is_file, url=url,
        config_doc=f"<this folder>/{spec}" if is_file else spec,
        url_doc=url or "(unset: the reward is built in verl's reward process)")


# ---------------------------------------------------------------------------------------------- scripts

_SERVER_SNIPPET = r'''
# Optional: START_REWARD_SERVER=1 starts `pivotrl reward serve` on this node before training (at
# PIVOTRL_REWARD_URL, or http://127.0.0.1:$REWARD_PORT when none is set) and stops it afterwards. A loopback
# URL only works when verl's TaskRunner runs on this node (single node). Otherwise start the server yourself
# before the job, on a node every Ray node can reach:
#   pivotrl reward serve --reward "$PIVOTRL_REWARD_CONFIG" --host 0.0.0.0 --port 8000
# and set PIVOTRL_REWARD_URL=http://<that node>:8000 (re-export, or set it where Ray's workers start).
START_REWARD_SERVER="${START_REWARD_SERVER:-0}"
if [[ "$START_REWARD_SERVER" == "1" && -z "${PIVOTRL_REWARD_URL:-}" ]]; then
    export PIVOTRL_REWARD_URL="http://127.0.0.1:${REWARD_PORT:-8000}"
fi
if [[ "$START_REWARD_SERVER" == "1" ]]; then
    base="${PIVOTRL_REWARD_URL%/}"; base="${base%/score}"; base="${base%/get_reward}"
    hostport="${base#*://}"; hostport="${hostport%%/*}"
    host="${hostport%:*}"; port="${hostport##*:}"
    [[ "$hostport" == *:* ]] || port=80
    case "$host" in
        127.*|localhost|"[::1]") bind=127.0.0.1 ;;
        *) bind=0.0.0.0 ;;
    esac
    pivotrl reward serve --reward "$PIVOTRL_REWARD_CONFIG" --host "$bind" --port "$port" &
    REWARD_SERVER_PID=$!
    trap 'kill "$REWARD_SERVER_PID" 2>/dev/null || true' EXIT
    for _ in $(seq 1 "${REWARD_SERVER_WAIT:-300}"); do
        if python3 -c 'import sys, urllib.request; urllib.request.urlopen(sys.argv[1] + "/health", timeout=2)' \
            "$base" 2>/dev/null; then
            break
        fi
        kill -0 "$REWARD_SERVER_PID" 2>/dev/null || { echo "pivotrl reward serve exited" >&2; exit 1; }
        sleep 1
    done
    python3 -c 'import sys, urllib.request; urllib.request.urlopen(sys.argv[1] + "/health", timeout=5)' "$base" \
        || { echo "reward server at $base did not answer" >&2; exit 1; }
fi
'''


_UNSAFE = set('"$`\\}\n\r')


def script_word(value: Any, name: str) -> str:
    """A value for a double-quoted shell default (``"${X:-value}"``); refuses characters bash would expand."""
    text = str(value)
    if not text or _UNSAFE & set(text):
        raise ValueError(f"{name} {text!r} cannot go into a launch script (empty, or has one of: \" $ ` \\ }} newline)")
    return text


def launch_script(algo: str, batch: _Batch, s: dict[str, Any], reward_spec: str, reward_is_file: bool,
            url: str | None, *, has_test: bool) -> str:
    """``run_grpo.sh`` / ``run_ppo.sh``: the header and paths, the settings as overridable variables, then
    verl's trainer with its Hydra overrides."""
    lines = _script_paths(algo, s, has_test) + _script_settings(algo, batch, s, reward_spec, reward_is_file, url)
    body = "python3 -m verl.trainer.main_ppo \\\n" + "".join(f"    {a} \\\n" for a in _hydra_overrides(algo))
    return "\n".join(line for line in lines if line is not None) + "\n" + body + '    "$@"\n'


def _script_paths(algo: str, s: dict[str, Any], has_test: bool) -> list[str | None]:
    """The script's header comment and its data, reward and model paths."""
    grpo = algo == "grpo"
    title = "GRPO (algorithm.adv_estimator=grpo, no critic)" if grpo else \
        "PPO with GAE (algorithm.adv_estimator=gae, with a critic)"
    lines: list[str | None] = [
        "#!/usr/bin/env bash",
        f"# PB-RLSVR {title},",
        f"# on verl {VERL_VERSION}; generated by pivotrl.train.verl_export.",
        f"# Written against verl=={VERL_VERSION}: every key below exists in its flattened default config",
        "# (verl/trainer/config/_generated_ppo_trainer.yaml); other verl versions may rename keys.",
        "#",
        "# Run it on the Ray head node (ray.init() joins a running cluster, else starts a local one):",
        f"#   bash {'run_grpo.sh' if grpo else 'run_ppo.sh'} [extra Hydra overrides, e.g. trainer.total_epochs=3]",
        "# Every setting below can be overridden with an environment variable of the same name.",
        "# The data and reward paths must be readable at the same path on every Ray node (shared storage).",
        "set -euo pipefail",
        "",
        'EXPORT_DIR="${EXPORT_DIR:-$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)}"',
        'TRAIN_FILES="${TRAIN_FILES:-$EXPORT_DIR/train.parquet}"',
        ('VAL_FILES="${VAL_FILES:-$EXPORT_DIR/test.parquet}"' if has_test else
         '# no held-out split was exported: verl needs val_files anyway, so validation is switched off\n'
         'VAL_FILES="${VAL_FILES:-$EXPORT_DIR/train.parquet}"'),
        'REWARD_FN="${REWARD_FN:-$EXPORT_DIR/reward.py}"',
        "",
        f'MODEL="${{MODEL:-{script_word(s["model"], "model")}}}"',
    ]
    if not grpo:
        lines.append(f'CRITIC_MODEL="${{CRITIC_MODEL:-{script_word(s["critic_model"], "critic_model")}}}"')
    return lines


def _script_settings(algo: str, batch: _Batch, s: dict[str, Any], reward_spec: str, reward_is_file: bool,
                     url: str | None) -> list[str | None]:
    """The run's settings, each a shell variable an environment variable of the same name overrides, and the
    reward's configuration for reward.py."""
    grpo = algo == "grpo"
    config_default = f'$EXPORT_DIR/{reward_spec}' if reward_is_file else reward_spec
    experiment = script_word(s["experiment_name"] + ("-grpo" if grpo else "-ppo"), "experiment_name")
    lines: list[str | None] = [
        f'N_GPUS_PER_NODE="${{N_GPUS_PER_NODE:-{s["n_gpus"]}}}"',
        f'NNODES="${{NNODES:-{s["nnodes"]}}}"',
        f"# fitted to {batch.train_batch_size} prompts x {batch.rollout_n} sample(s) on "
        f"{s['n_gpus'] * s['nnodes']} GPUs; keep TRAIN_BATCH_SIZE * ROLLOUT_N divisible by the GPU count",
        f'TRAIN_BATCH_SIZE="${{TRAIN_BATCH_SIZE:-{batch.train_batch_size}}}"',
        f'PPO_MINI_BATCH_SIZE="${{PPO_MINI_BATCH_SIZE:-{batch.ppo_mini_batch_size}}}"',
        f'ROLLOUT_N="${{ROLLOUT_N:-{batch.rollout_n}}}"' if grpo else None,
        f'MAX_PROMPT_LENGTH="${{MAX_PROMPT_LENGTH:-{s["max_prompt_length"]}}}"',
        f'MAX_RESPONSE_LENGTH="${{MAX_RESPONSE_LENGTH:-{s["max_response_length"]}}}"',
        'MAX_TOKEN_LEN_PER_GPU="${MAX_TOKEN_LEN_PER_GPU:-$(( (MAX_PROMPT_LENGTH + MAX_RESPONSE_LENGTH) * 4 ))}"',
        f'ROLLOUT_TP="${{ROLLOUT_TP:-{s["rollout_tp"]}}}"',
        f'GPU_MEMORY_UTILIZATION="${{GPU_MEMORY_UTILIZATION:-{s["gpu_memory_utilization"]}}}"',
        f'ACTOR_LR="${{ACTOR_LR:-{s["actor_lr"]}}}"',
    ]
    if grpo:
        lines.append(f'KL_LOSS_COEF="${{KL_LOSS_COEF:-{s["kl_loss_coef"]}}}"')
    else:
        lines.append(f'CRITIC_LR="${{CRITIC_LR:-{s["critic_lr"]}}}"')
    lines += [
        f'TOTAL_EPOCHS="${{TOTAL_EPOCHS:-{s["total_epochs"]}}}"',
        f'TEST_FREQ="${{TEST_FREQ:-{s["test_freq"]}}}"',
        f'VAL_BEFORE_TRAIN="${{VAL_BEFORE_TRAIN:-{str(s["val_before_train"])}}}"',
        f'SAVE_FREQ="${{SAVE_FREQ:-{s["save_freq"]}}}"',
        f'LOGGER="${{LOGGER:-[{",".join(s["logger"])}]}}"',
        f'PROJECT_NAME="${{PROJECT_NAME:-{script_word(s["project_name"], "project_name")}}}"',
        f'EXPERIMENT_NAME="${{EXPERIMENT_NAME:-{experiment}}}"',
        'CHECKPOINT_DIR="${CHECKPOINT_DIR:-$EXPORT_DIR/checkpoints/$EXPERIMENT_NAME}"',
        "",
        "# The reward (reward.py reads these; it falls back to the same defaults when Ray workers lack them).",
        f'export {ENV_CONFIG}="${{{ENV_CONFIG}:-{config_default}}}"',
    ]
    if url:
        lines.append(f'export {ENV_URL}="${{{ENV_URL}-{url}}}"')
    else:
        lines.append(f"# set {ENV_URL}=http://host:port to score through `pivotrl reward serve` (one encoder per node)")
    lines.append(_SERVER_SNIPPET)
    return lines


def _hydra_overrides(algo: str) -> list[str]:
    """verl's ``main_ppo`` overrides: data, actor / rollout / reference (and critic for PPO), reward, trainer;
    values come from the script's variables."""
    grpo = algo == "grpo"
    args = [
        f"algorithm.adv_estimator={algo}",
        'data.train_files="$TRAIN_FILES"',
        'data.val_files="$VAL_FILES"',
        "data.prompt_key=prompt",
        'data.train_batch_size="$TRAIN_BATCH_SIZE"',
        'data.max_prompt_length="$MAX_PROMPT_LENGTH"',
        'data.max_response_length="$MAX_RESPONSE_LENGTH"',
        "data.filter_overlong_prompts=True",
        "data.truncation=error",
        'actor_rollout_ref.model.path="$MODEL"',
        "actor_rollout_ref.model.use_remove_padding=True",
        "actor_rollout_ref.model.enable_gradient_checkpointing=True",
        'actor_rollout_ref.actor.optim.lr="$ACTOR_LR"',
        'actor_rollout_ref.actor.ppo_mini_batch_size="$PPO_MINI_BATCH_SIZE"',
        "actor_rollout_ref.actor.use_dynamic_bsz=True",
        'actor_rollout_ref.actor.ppo_max_token_len_per_gpu="$MAX_TOKEN_LEN_PER_GPU"',
    ]
    if grpo:
        args += ["actor_rollout_ref.actor.use_kl_loss=True",
                 'actor_rollout_ref.actor.kl_loss_coef="$KL_LOSS_COEF"',
                 "actor_rollout_ref.actor.kl_loss_type=low_var_kl",
                 "actor_rollout_ref.actor.entropy_coeff=0"]
    else:
        args += ["actor_rollout_ref.actor.use_kl_loss=False"]
    args += [
        "actor_rollout_ref.actor.fsdp_config.param_offload=False",
        "actor_rollout_ref.actor.fsdp_config.optimizer_offload=False",
        "actor_rollout_ref.rollout.name=vllm",
        'actor_rollout_ref.rollout.n="$ROLLOUT_N"' if grpo else "actor_rollout_ref.rollout.n=1",
        'actor_rollout_ref.rollout.tensor_model_parallel_size="$ROLLOUT_TP"',
        'actor_rollout_ref.rollout.gpu_memory_utilization="$GPU_MEMORY_UTILIZATION"',
        "actor_rollout_ref.ref.fsdp_config.param_offload=True",
    ]
    if not grpo:
        args += [
            'critic.model.path="$CRITIC_MODEL"',
            'critic.optim.lr="$CRITIC_LR"',
            "critic.model.use_remove_padding=True",
            "critic.model.enable_gradient_checkpointing=True",
            'critic.ppo_max_token_len_per_gpu="$(( MAX_TOKEN_LEN_PER_GPU * 2 ))"',
            "critic.model.fsdp_config.param_offload=False",
            "critic.model.fsdp_config.optimizer_offload=False",
        ]
    args += [
        "algorithm.use_kl_in_reward=False",
        "reward_model.reward_manager=batch",
        'custom_reward_function.path="$REWARD_FN"',
        "custom_reward_function.name=compute_score",
        "trainer.critic_warmup=0",
        'trainer.logger="$LOGGER"',
        'trainer.project_name="$PROJECT_NAME"',
        'trainer.experiment_name="$EXPERIMENT_NAME"',
        'trainer.n_gpus_per_node="$N_GPUS_PER_NODE"',
        'trainer.nnodes="$NNODES"',
        'trainer.save_freq="$SAVE_FREQ"',
        'trainer.test_freq="$TEST_FREQ"',
        'trainer.val_before_train="$VAL_BEFORE_TRAIN"',
        'trainer.total_epochs="$TOTAL_EPOCHS"',
        'trainer.default_local_dir="$CHECKPOINT_DIR"',
    ]
    return args


# ----------------------------------------------------------------------------------------------- README


def readme(s: dict[str, Any]) -> str:
    rows = ", ".join(f"{split}: {n} rows" for split, n in s["rows"].items())
    langs = "\n".join(f"| {split} | " + ", ".join(f"{lang} {n}" for lang, n in by.items()) + " |"
                      for split, by in s["by_lang"].items())
    has_test = "test" in s["rows"]
    url = s["reward"]["url"]
    g, p = s["grpo"], s["ppo"]
    serve_spec = "reward.yaml" if s["paths"].get("reward_config") else s["reward"]["config"]
    test_line = ("* `test.parquet` - the held-out examples (validation: `data.val_files`)." if has_test else
                 "* no `test.parquet`: no held-out examples were given, so the scripts pass `train.parquet` as "
                 "`data.val_files` (verl requires one) and switch validation off.")
    config_line = ("\n* `reward.yaml` - the reward config (a copy of the YAML file given to the export)."
                   if s["paths"].get("reward_config") else "")
    return f"""# PB-RLSVR training data for verl {s['verl_version']}

Exported by `pivotrl.train.verl_export.export_verl` on {s['created']}: the policy answers reasoning problems
asked in a target language and is rewarded for meaning the same as an English pivot reference
(pivot-based RL with semantically verifiable rewards). {rows}.

| split | rows per language |
|---|---|
{langs}

## Files

* `train.parquet` - the training rows (`data.train_files`).
{test_line}
* `reward.py` - the reward (`custom_reward_function.path`, `custom_reward_function.name=compute_score`): it
  re-exports `pivotrl.rewards.verl.compute_score` and sets `{s['reward']['env']['config']}` /
  `{s['reward']['env']['url']}` defaults unless the environment sets them.{config_line}
* `run_grpo.sh` - GRPO: `algorithm.adv_estimator=grpo`, {g['rollout_n']} samples per prompt, KL loss, no critic.
* `run_ppo.sh` - PPO: `algorithm.adv_estimator=gae` with a critic (`critic.model.path`), one sample per prompt.
* `export.json` - the export summary (row counts, languages, batch sizes, settings).

## verl version

Written against **verl {s['verl_version']}** (`pip install verl=={s['verl_version']}` plus vLLM, on GPU nodes).
The row layout is verl's documented RL data format ("Prepare Data for Post-Training",
`examples/data_preprocess/gsm8k.py`); the script keys were checked against verl {s['verl_version']}'s
`verl/trainer/config/_generated_ppo_trainer.yaml`. Other versions may rename keys: check
`python3 -m verl.trainer.main_ppo --cfg job` before a long run.

## Row layout

| column | type | value |
|---|---|---|
| `data_source` | string | {', '.join(f'`{d}`' for d in s['data_source'])} (verl groups validation metrics by it) |
| `prompt` | list of {{role, content}} | one user message: the target-language question and the native \
step-by-step instruction (`{s['prompt_style']}` style); verl applies the tokenizer's chat template |
| `ability` | string | `math` |
| `reward_model` | {{style, ground_truth}} | `rule`, the English reference's final answer as a string |
| `extra_info` | struct | `split`, `index`, `problem_id`, `lang`, `reference` (the English pivot \
reference), `question` (the target-language question), `question_en`, `answer_type`, `prompt_source` |

The longest prompt has {s['max_prompt_chars']} characters; `data.max_prompt_length={s['max_prompt_length']}` tokens,
and `data.filter_overlong_prompts=True` drops longer ones.

## Running on a Ray cluster

1. On every node: the same Python environment with verl {s['verl_version']}, vLLM and **pivotrl**
   (`reward.py` imports it in verl's TaskRunner, which Ray may place on any node), and this folder at the same
   path (shared storage), or set `EXPORT_DIR`/`TRAIN_FILES`/`VAL_FILES`/`REWARD_FN` to where it is.
2. Start Ray: `ray start --head --port=6379` on the head node, `ray start --address=<head>:6379` on the others
   (a single machine needs nothing: verl starts a local Ray).
3. On the head node: `bash run_grpo.sh` (or `bash run_ppo.sh`). Extra Hydra overrides go after the script
   name, e.g. `bash run_grpo.sh trainer.total_epochs=3 trainer.logger='[console,wandb]'`; the variables at
   the top of the scripts (`MODEL`, `N_GPUS_PER_NODE`, `NNODES`, `TRAIN_BATCH_SIZE`, ...) can be set in the
   environment instead. With `ray job submit` use
   `ray job submit --address=http://<head>:8265 --runtime-env-json='{{"env_vars": {{...}}}}' -- bash run_grpo.sh`.

Defaults: model `{s['model']}`, {s['n_gpus']} GPUs per node x {s['nnodes']} node(s), vLLM rollout with tensor
parallel size {s['rollout_tp']}. Batch sizes were fitted to the data and GPUs so verl's checks pass
(`train_batch_size * rollout.n` divisible by the GPU count; the mini batch divides the batch):
GRPO `train_batch_size={g['train_batch_size']}`, `ppo_mini_batch_size={g['ppo_mini_batch_size']}`
({g['steps_per_epoch']} step(s) per epoch); PPO `train_batch_size={p['train_batch_size']}`,
`ppo_mini_batch_size={p['ppo_mini_batch_size']}` ({p['steps_per_epoch']} step(s) per epoch).
Change them together with the GPU count.

## The reward and the reward server

verl calls `compute_score` through its batch reward manager (`reward_model.reward_manager=batch`), so the
embedding similarity encodes a whole batch at once. Reward: `{s['reward']['config']}`.

* Without a reward URL the reward is built inside verl's reward process (on CPU there, once per process).
* With `{s['reward']['env']['url']}` set, `compute_score` sends the batch to a running `pivotrl reward serve`,
  which holds the encoder once (it can use a GPU of its own) and batches requests from every caller.
  {'This export defaults to `' + url + '`.' if url else 'This export has no default URL.'} Start the server
  before the job on a node every Ray node reaches:

      pivotrl reward serve --reward {serve_spec} --host 0.0.0.0 --port 8000
      curl http://<that node>:8000/health

  and point the job at it (`export {s['reward']['env']['url']}=http://<that node>:8000`), or let the script
  start it on the head node with `START_REWARD_SERVER=1 bash run_grpo.sh`.

Ray workers on other nodes do not see the launching shell's environment: `reward.py` therefore carries the
export's defaults. To change them for a multi-node run, re-export, set the variables where `ray start` runs,
or pass them in the job's `runtime_env` `env_vars`. An empty `{s['reward']['env']['url']}` switches the server
off.
"""
