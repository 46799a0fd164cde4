"""Stage 4: RL training. pivotrl does not implement an RL algorithm: TRL (GRPO, RLOO) and verl are the engines.

* :mod:`pivotrl.train.config` - :class:`TrainConfig`, the recipe (YAML + command-line overrides);
* :mod:`pivotrl.train.run` - the training set, the reward, TRL's trainer, checkpoints and resume, the final
  model folder;
* :mod:`pivotrl.train.callbacks` - the log file, the evaluation during training, the reward progress bar;
* :mod:`pivotrl.train.verl_export` - the training set, reward module and launch scripts for verl on Ray.
"""

from pivotrl.train.config import CPU_TRL, DEMO_LORA, TRL_DEFAULTS, TrainConfig, TrainConfigError, load_train_config
from pivotrl.train.run import TrainError, run_train

__all__ = ["CPU_TRL", "DEMO_LORA", "TRL_DEFAULTS", "TrainConfig", "TrainConfigError", "TrainError",
           "load_train_config", "run_train"]
