"""A real GRPO step through TRL's GRPOTrainer with pivotrl's composed reward (TRL adapter).

The policy is a tiny random-weight Llama (plumbing: what is tested is the reward contract with TRL, not
learning); the reward is the real ``hybrid`` preset with the packaged encoder.
"""

from __future__ import annotations

import math

import pytest

pytest.importorskip("trl")


@pytest.mark.slow
def test_grpo_step_logs_every_component_and_language(tiny_folder, tmp_path):
    from datasets import Dataset
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from trl import GRPOConfig, GRPOTrainer

    from pivotrl.rewards.compose import build_reward

    tokenizer = AutoTokenizer.from_pretrained(tiny_folder)
    tokenizer.pad_token = tokenizer.eos_token
    model = AutoModelForCausalLM.from_pretrained(tiny_folder)
    reference = "Two plus two is four. The answer is 4."
    rows = [
        {"prompt": "Wie viel ist zwei plus zwei?", "reference": reference, "reference_answer": "4", "lang": "de",
         "answer_type": "number"},
        {"prompt": "二加二等于几？", "reference": reference, "reference_answer": "4", "lang": "zh",
         "answer_type": "number"},
    ]
    reward = build_reward("hybrid")
    funcs, weights = reward.trl_reward_funcs()
    args = GRPOConfig(
        output_dir=str(tmp_path / "grpo"), per_device_train_batch_size=4, num_generations=4,
        max_completion_length=12, max_steps=2, logging_steps=1, report_to=[], reward_weights=weights,
        use_cpu=True, save_strategy="no", bf16=False, seed=0,
    )
    trainer = GRPOTrainer(model=model, processing_class=tokenizer, reward_funcs=funcs, args=args,
                          train_dataset=Dataset.from_list(rows * 2))
    trainer.train()

    logs = [entry for entry in trainer.state.log_history if "loss" in entry]
    assert len(logs) == 2
    for entry in logs:
        for name in reward.config.components:
            assert math.isfinite(entry[f"rewards/{name}/mean"]), name
        # the optimised reward is exactly the composed total (components have weight 0)
        assert entry["reward"] == pytest.approx(entry["rewards/pivotrl_hybrid/mean"], abs=1e-5)
        assert any(key.startswith("reward_by_lang/") for key in entry)
    # both languages were trained on and logged (each step holds one prompt's group)
    seen = {key for entry in logs for key in entry if key.startswith("reward_by_lang/")}
    assert seen == {"reward_by_lang/de", "reward_by_lang/zh"}
