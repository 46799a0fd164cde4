"""The ``pivotrl`` command: one sub-command per pipeline stage, one module per stage.

    pivotrl data       list / show / export problem sets                                           (cli/data.py)
    pivotrl languages  the language registry                                                       (cli/data.py)
    pivotrl models     the packaged models: installed, assembled, checked                          (cli/data.py)
    pivotrl pivot      English pivot references, verified and resumable; build-train pairs them   (cli/pivot.py)
    pivotrl reward     semantically verifiable rewards: show, score, serve, audit                (cli/rewards.py)
    pivotrl train      RL training through TRL: GRPO, RLOO online, DPO, RFT in rounds; resume     (cli/train.py)
    pivotrl export     verl: the training set, reward module and launch scripts for Ray          (cli/train.py)
    pivotrl eval       multilingual evaluation: accuracy, fidelity, English gap             (cli/evaluation.py)
    pivotrl report     compare evaluation runs (tables and plots)                           (cli/evaluation.py)
    pivotrl demo       the main job on the embedded default                                       (cli/demo.py)

A command's options come from its config dataclass (``cli.common.options_from``; ``recipe_options`` for the
training recipe's shortcuts), so each setting's default and help are declared once, beside the code it configures.
"""

from pivotrl.cli import data, demo, evaluation, pivot, rewards, train  # noqa: F401 - each registers its commands
from pivotrl.cli.common import app

__all__ = ["app"]
