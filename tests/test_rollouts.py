"""Rollouts through pivotrl's engine (pivotrl.train.rollouts) and the direction of one real TRL update.

* The engine renders the same prompt ids as TRL and, at a temperature near 0, samples the same answers as
  TRL's own generate path (a tiny model with peaked random weights: plumbing).
* On the packaged SmolLM2 with LoRA adapters that are not zero, the log-probabilities the engine returns are
  the ones TRL's loss computes from the same weights (importance ratio 1 at the first step), and they differ
  from the base model's: the adapters are sampled from.
* One GRPO optimizer step on a fixed group of answers with known rewards raises the log-probability of the
  better-rewarded answers relative to the worse ones, and swapping the rewards swaps the direction.
"""

from __future__ import annotations

import copy

import pytest
import torch

from tests.conftest import tiny_tokenizer

PROMPT = [{"role": "user", "content": "What is 2 + 3? Finish with 'The answer is N.'"}]


def _trainer(model, tokenizer, reward_funcs, *, rollout_func=None, peft_config=None, **config):
    from datasets import Dataset
    from trl import GRPOConfig, GRPOTrainer

    settings = dict(output_dir="/tmp/pivotrl-test-rollouts", per_device_train_batch_size=4, num_generations=4,
                    max_completion_length=24, max_steps=1, learning_rate=1e-3, beta=0.0, loss_type="dapo",
                    use_cpu=True, bf16=False, report_to=[], save_strategy="no", logging_steps=1, seed=0,
                    temperature=1.0)
    settings.update(config)
    return GRPOTrainer(model=model, processing_class=tokenizer, reward_funcs=reward_funcs,
                       args=GRPOConfig(**settings), train_dataset=Dataset.from_list([{"prompt": PROMPT}] * 4),
                       rollout_func=rollout_func, peft_config=peft_config)


def _zero(completions, **_):
    return [0.0] * len(completions)


@pytest.fixture(scope="module")
def peaked_tiny():
    """A 2-layer Llama whose random weights are large enough that its next-token choices are rarely near ties,
    with a chat template (TRL renders conversational prompts through it)."""
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    tokenizer = tiny_tokenizer()
    tokenizer.pad_token = tokenizer.eos_token
    tokenizer.chat_template = ("{% for m in messages %}{{ m['role'] }}: {{ m['content'] }}\n{% endfor %}"
                               "{% if add_generation_prompt %}assistant:{% endif %}")
    config = LlamaConfig(vocab_size=len(tokenizer), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2, initializer_range=0.6,
                         tie_word_embeddings=True, bos_token_id=None, eos_token_id=tokenizer.eos_token_id,
                         pad_token_id=tokenizer.eos_token_id)
    model = LlamaForCausalLM(config).eval()
    # A second end token, one this model often picks, so that some answers end before the budget
    model.generation_config.eos_token_id = [tokenizer.eos_token_id, 107]
    return model, tokenizer


def test_engine_renders_and_samples_what_trl_samples_at_low_temperature(peaked_tiny):
    from pivotrl.train.rollouts import render_prompts, sample_rollouts

    model, tokenizer = peaked_tiny
    prompts = [[{"role": "user", "content": text}] for text in
               ("what is two plus two?", "the quick brown fox", "Wie viel ist zwei?", "the lazy dog jumps")]
    trainer = _trainer(model, tokenizer, [_zero], temperature=0.01, max_completion_length=6,
                       per_device_train_batch_size=8, num_generations=2)
    rows = [p for p in prompts for _ in range(2)]  # TRL repeats each prompt num_generations times in a row
    ours = render_prompts(rows, tokenizer, trainer.chat_template_kwargs)
    theirs, _, _ = trainer._tokenize_prompts(rows)
    assert ours == [list(ids) for ids in theirs]

    trl_ids, _ = trainer._generate_single_turn(ours, None, {}, 2)
    engine_ids, logprobs = sample_rollouts(trainer, ours, packed_weights=False)
    assert engine_ids == [list(ids) for ids in trl_ids]
    assert [len(lp) for lp in logprobs] == [len(ids) for ids in engine_ids]
    # the tiny model both ends answers with its end token and runs some into the budget: both kinds compared
    ends = {ids[-1] in (tokenizer.eos_token_id, 107) for ids in engine_ids}
    assert len(engine_ids) == 8 and ends == {True, False}


@pytest.fixture(scope="module")
def smollm2():
    from pivotrl.models import load_model

    loaded = load_model("smollm2")
    if loaded.tokenizer.pad_token is None:
        loaded.tokenizer.pad_token = loaded.tokenizer.eos_token
    return loaded


def _lora():
    from peft import LoraConfig

    return LoraConfig(task_type="CAUSAL_LM", r=8, lora_alpha=16, lora_dropout=0.0, target_modules="all-linear")


def _sequence_logps(model, prompt_ids: list[int], completions: list[list[int]]) -> torch.Tensor:
    """Per completion: the sum of its tokens' log-probabilities after the prompt, computed here directly."""
    sums = []
    with torch.no_grad():
        for ids in completions:
            full = torch.tensor([prompt_ids + ids])
            logits = model(input_ids=full).logits[0, len(prompt_ids) - 1:-1].float()
            sums.append(torch.log_softmax(logits, -1).gather(1, torch.tensor(ids)[:, None]).sum())
    return torch.stack(sums)


@pytest.mark.model
def test_engine_logprobs_are_the_ones_the_loss_computes_with_the_adapters(smollm2):
    from pivotrl.train.rollouts import render_prompts, sample_rollouts

    model = copy.deepcopy(smollm2.model)
    trainer = _trainer(model, smollm2.tokenizer, [_zero], peft_config=_lora(), max_completion_length=32)
    torch.manual_seed(1)
    for name, param in trainer.model.named_parameters():  # adapters that are not zero, as after some training
        if "lora_B" in name:
            param.data.normal_(0, 0.02)
    prompt_ids = render_prompts([PROMPT] * 4, smollm2.tokenizer)
    completion_ids, logprobs = sample_rollouts(trainer, prompt_ids, packed_weights=True)

    from torch.nn.utils.rnn import pad_sequence

    width = max(len(c) for c in completion_ids)
    # right-pad the completions to a common width, as TRL does, and ask TRL's loss for its log-probabilities
    full = pad_sequence([torch.tensor(prompt_ids[0] + c + [0] * (width - len(c))) for c in completion_ids],
                        batch_first=True)
    mask = torch.stack([torch.tensor([1] * (len(prompt_ids[0]) + len(c)) + [0] * (width - len(c)))
                        for c in completion_ids])
    with torch.no_grad():
        trl_logps, _ = trainer._get_per_token_logps_and_entropies(trainer.model, full, mask, width, batch_size=4)[:2]
    assert len(completion_ids) == 4
    for row, (c, lp) in enumerate(zip(completion_ids, logprobs)):
        ratio = torch.exp(trl_logps[row, :len(c)] - torch.tensor(lp))
        assert torch.allclose(ratio, torch.ones_like(ratio), atol=2e-3), ratio  # on-policy: ratio 1 at step one
    with trainer.model.disable_adapter():
        base = torch.cat([_sequence_logps(trainer.model, prompt_ids[0], [c]) for c in completion_ids])
    sampled = torch.tensor([sum(lp) for lp in logprobs])
    assert (sampled - base).abs().max() > 0.05  # the adapters change what is sampled: they are in the engine


def _step_changes(smollm2, good: set[int], bf16: bool = False) -> tuple[float, float]:
    """One GRPO step on a fixed group of four answers where the answers in ``good`` get reward 1 and the
    others 0; returns the mean change of the good and of the other answers' log-probabilities."""
    tokenizer = smollm2.tokenizer
    texts = ["2 + 3 = 5. The answer is 5.", "Two plus three makes five, so the answer is 5.",
             "2 + 3 = 6. The answer is 6.", "The answer is 23."]
    from pivotrl.train.rollouts import render_prompts

    render = render_prompts([PROMPT], tokenizer)[0]
    answers = [tokenizer(t, add_special_tokens=False)["input_ids"] + [tokenizer.eos_token_id] for t in texts]

    def fixed_rollout(prompts, trainer):
        assert len(prompts) == 4
        model = trainer.accelerator.unwrap_model(trainer.model)
        logps = []
        with torch.no_grad():
            for ids in answers:
                full = torch.tensor([render + ids])
                logits = model(input_ids=full).logits[0, len(render) - 1:-1].float()
                logps.append(torch.log_softmax(logits, -1).gather(1, torch.tensor(ids)[:, None])[:, 0].tolist())
        return {"prompt_ids": [render] * 4, "completion_ids": answers, "logprobs": logps}

    def reward(completions, **_):
        contents = [c[0]["content"] if isinstance(c, list) else c for c in completions]
        return [1.0 if texts.index(text.strip()) in good else 0.0 for text in contents]

    model = copy.deepcopy(smollm2.model)
    trainer = _trainer(model, tokenizer, [reward], rollout_func=fixed_rollout, peft_config=_lora(),
                       learning_rate=2e-3, bf16=bf16)
    before = _sequence_logps(trainer.model, render, answers)
    trainer.train()
    after = _sequence_logps(trainer.model, render, answers)
    change = after - before
    chosen = torch.tensor([i in good for i in range(4)])
    return float(change[chosen].mean()), float(change[~chosen].mean())


@pytest.mark.model
@pytest.mark.parametrize("bf16", [False, True], ids=["float32", "bf16-autocast"])  # bf16: pivotrl's CPU default
def test_one_grpo_step_moves_probability_towards_the_better_rewarded_answers(smollm2, bf16):
    good, bad = _step_changes(smollm2, good={0, 1}, bf16=bf16)
    assert good - bad > 0.05, (good, bad)
    # the same answers with the rewards swapped: the step goes the other way
    good_swapped, bad_swapped = _step_changes(smollm2, good={2, 3}, bf16=bf16)
    assert good_swapped - bad_swapped > 0.05, (good_swapped, bad_swapped)


def test_groups_without_spread_leave_the_update_unchanged(peaked_tiny):
    """One SGD step on two groups, one with equal rewards: the same weight change with the group dropped."""
    from pivotrl.train.update import keep_rows, skip_rows_without_gradient

    model, tokenizer = peaked_tiny
    prompts = [[{"role": "user", "content": "what is two plus two?"}], [{"role": "user", "content": "the lazy dog"}]]
    answers = [[tokenizer.encode(t) + [tokenizer.eos_token_id] for t in texts] for texts in
               (["four", "the fox", "two", "dog"], ["four two", "quick", "the dog", "lazy fox"])]
    rewards = {0: [1.0, 1.0, 1.0, 1.0], 1: [1.0, 0.0, 0.5, 0.0]}  # group 0 has no spread

    def rollout(batch, trainer):
        from pivotrl.train.rollouts import render_prompts

        ids = render_prompts(batch, tokenizer)
        groups = [prompts.index(p) for p in batch[::4]]
        completion = [a for g in groups for a in answers[g]]
        return {"prompt_ids": ids, "completion_ids": completion, "logprobs": [[0.0] * len(c) for c in completion],
                "group": [g for g in groups for _ in range(4)]}

    def reward(completions, group, **_):
        seen: dict[int, int] = {}
        out = []
        for g in group:
            out.append(rewards[g][seen.get(g, 0)])
            seen[g] = seen.get(g, 0) + 1
        return out

    from datasets import Dataset
    from trl import GRPOConfig, GRPOTrainer

    changes = []
    for skip in (False, True):
        copy_ = copy.deepcopy(model)
        before = {n: p.detach().clone() for n, p in copy_.named_parameters()}
        args = GRPOConfig(output_dir="/tmp/pivotrl-test-skip", per_device_train_batch_size=8, num_generations=4,
                          max_completion_length=8, max_steps=1, learning_rate=1.0, optim="sgd", beta=0.0,
                          loss_type="dapo", use_cpu=True, bf16=False, report_to=[], save_strategy="no",
                          logging_steps=1, seed=0, shuffle_dataset=False, max_grad_norm=0.0)
        trainer = GRPOTrainer(model=copy_, processing_class=tokenizer, reward_funcs=[reward], args=args,
                              train_dataset=Dataset.from_list([{"prompt": p} for p in prompts]), rollout_func=rollout)
        assert skip_rows_without_gradient(trainer) if skip else True
        trainer.train()
        changes.append({n: p.detach() - before[n] for n, p in copy_.named_parameters()})
        if skip:
            logged = [h for h in trainer.state.log_history if "update/rows_skipped" in h]
            assert logged and logged[0]["update/rows_skipped"] == 0.5
    moved = sum(float(c.abs().sum()) for c in changes[0].values())
    assert moved > 0
    for name in changes[0]:  # equal up to float rounding (the two batches are padded to other widths)
        full, skipped = changes[0][name], changes[1][name]
        assert float((full - skipped).norm()) <= 1e-4 * float(full.norm()) + 1e-9, name
    # rows with advantage 0 or no loss token (an answer cut and masked) go; the top-up keeps whole accumulation
    # steps: 2 useful rows in 2 steps stay 2, in 3 steps become 3
    advantages = torch.tensor([0.0, 0, 0, 0, 1, -1, 0.5, 0])
    loss_tokens = torch.tensor([3, 4, 5, 6, 7, 8, 0, 2])
    assert keep_rows(advantages, loss_tokens, 2).tolist() == [4, 5]
    assert keep_rows(advantages, loss_tokens, 3).tolist() == [0, 4, 5]
    assert keep_rows(torch.ones(8), torch.ones(8), 1) is None


def test_scoring_only_completion_tokens_gives_the_same_logprobs_and_gradients(peaked_tiny, monkeypatch):
    import trl.kernels.chunked_logprob as kernels
    import trl.trainer.utils as trl_utils

    from pivotrl.train.update import score_only_completion_tokens

    model, tokenizer = peaked_tiny
    trainer = _trainer(copy.deepcopy(model), tokenizer, [_zero])
    # a batch as TRL builds it: left-padded prompts of two lengths, right-padded completions of three
    pad = tokenizer.pad_token_id
    rows = [([pad, pad, 5, 17, 42], [8, 9, 3, 0]), ([11, 12, 13, 14, 15], [20, 21, 0, 0]),
            ([pad, 7, 8, 9, 10], [30, 31, 32, 33])]
    ids = torch.tensor([p + c for p, c in rows])
    mask = torch.tensor([[int(t != pad) for t in p] + [1] * 4 for p, _ in rows])
    mask[0, -1] = mask[1, -2:] = 0

    def logps_and_grads():
        trainer.model.zero_grad()
        logps = trainer._get_per_token_logps_and_entropies(trainer.model, ids, mask, 4)[0]
        (logps * mask[:, -4:]).sum().backward()
        return logps.detach() * mask[:, -4:], {n: p.grad.clone() for n, p in trainer.model.named_parameters()}

    monkeypatch.setattr(trl_utils, "_use_triton", kernels._use_triton)  # TRL's own choice on a CPU: every position
    every_position, grads = logps_and_grads()
    score_only_completion_tokens()
    assert trl_utils._use_triton(torch.device("cpu"))
    completions_only, compact_grads = logps_and_grads()
    assert torch.allclose(every_position, completions_only, atol=1e-5)
    for name, grad in grads.items():
        assert torch.allclose(grad, compact_grads[name], atol=1e-5, rtol=1e-4), name


def test_rloo_samples_with_the_engine_through_pivotrl_train(peaked_tiny, tmp_path):
    """TRL 1.16's RLOO has no rollout_func: pivotrl replaces its single-turn sampling on the trainer; one real
    RLOO step then runs on answers the engine sampled (its per-language lengths are logged)."""
    from pivotrl.train.config import TrainConfig
    from pivotrl.train.run import build_trainer

    model, tokenizer = peaked_tiny
    config = TrainConfig(model="tiny", output_dir=str(tmp_path), langs=["de"], reward="answer", algorithm="rloo",
                         rollouts="engine", trl={"num_generations": 2, "per_device_train_batch_size": 4,
                                                 "max_completion_length": 6, "max_steps": 1, "save_strategy": "no",
                                                 "beta": 0.0})
    config.validate()
    rows = [{"prompt": [{"role": "user", "content": q}], "lang": "de", "reference": "The answer is 4.",
             "reference_answer": "4", "answer_type": "number", "question": q, "problem_id": str(i)}
            for i, q in enumerate(["Wie viel ist zwei?", "what is two plus two?"])]
    trainer = build_trainer(config, copy.deepcopy(model), tokenizer, rows)
    assert "_generate_single_turn" in vars(trainer)  # the engine's, set on this trainer
    calls = []
    engine = trainer._generate_single_turn
    trainer._generate_single_turn = lambda *a, **k: calls.append(len(a[0])) or engine(*a, **k)
    trainer.train()
    assert calls == [4]  # one call for the step's 2 prompts x 2 answers
    logged = [h for h in trainer.state.log_history if "loss" in h]
    assert logged and 0 < logged[0]["completions/length_by_lang/de"] <= 6
