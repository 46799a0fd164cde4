"""Stage 4: RL training. pivotrl does not implement an RL algorithm: TRL (GRPO, RLOO, DPO, SFT) and verl are the
engines.

* :mod:`pivotrl.train.algorithms` - the table of algorithms: each one's TRL classes, defaults and fields;
* :mod:`pivotrl.train.config` - :class:`TrainConfig`, the recipe (YAML + command-line overrides);
* :mod:`pivotrl.train.run` - the training set, the reward, TRL's trainer, checkpoints and resume, the final
  model folder;
* :mod:`pivotrl.train.rollouts` - each step's answers sampled by pivotrl's generation engine (TRL's
  ``rollout_func``), and the per-language length and cut share logged beside the reward;
* :mod:`pivotrl.train.update` - shortcuts in GRPO's update that leave its gradient as it was;
* :mod:`pivotrl.train.offline` - DPO and RFT in rounds: sample, score, select pairs or targets, train;
* :mod:`pivotrl.train.checkpoints` - the checkpoint a resume continues from, the model folders a run leaves;
* :mod:`pivotrl.train.callbacks` - the log file, the evaluation during training, the reward progress bar;
* :mod:`pivotrl.train.verl_export` - the training set as verl's parquet files, with the reward module;
* :mod:`pivotrl.train.verl_launch` - :class:`VerlLaunch`, verl's launch settings, and the scripts and README
  written from them.
"""

from pivotrl.train.algorithms import ALGORITHMS, Algorithm
from pivotrl.train.config import CPU_TRL, DEMO_LORA, TrainConfig, TrainConfigError, load_train_config
from pivotrl.train.run import TrainError, build_rows, held_out_examples, run_train, training_examples
from pivotrl.train.verl_export import export_verl
from pivotrl.train.verl_launch import VerlLaunch

__all__ = ["ALGORITHMS", "CPU_TRL", "DEMO_LORA", "Algorithm", "TrainConfig", "TrainConfigError", "TrainError",
           "VerlLaunch", "build_rows", "export_verl", "held_out_examples", "load_train_config", "run_train",
           "training_examples"]
