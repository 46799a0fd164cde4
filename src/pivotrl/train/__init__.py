"""Stage 4: RL training. pivotrl does not implement an RL algorithm: TRL (GRPO, RLOO) and verl are the engines.

* :mod:`pivotrl.train.config` - :class:`TrainConfig`, the recipe (YAML + command-line overrides);
* :mod:`pivotrl.train.run` - the training set, the reward, TRL's trainer, checkpoints and resume, the final
  model folder;
* :mod:`pivotrl.train.callbacks` - the log file, the evaluation during training, the reward progress bar;
* :mod:`pivotrl.train.verl_export` - the training set, reward module and launch scripts for verl on Ray.
"""
