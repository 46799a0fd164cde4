"""oneDNN-packed linear weights during CPU generation (pivotrl.packed_linear): the products stay float32 and
agree with nn.Linear's to rounding, every layer gets its own forward back, and generate() packs only calls
large enough to repay it. The speed is measured in bench/generation_speed.py, not here."""

from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path

import pytest
import torch

import pivotrl.generation as generation
from pivotrl.generation import GenerationConfig, generate_with_stats
from pivotrl.models import LoadedModel, load_model
from pivotrl.packed_linear import can_pack, packed_linears

pytestmark = pytest.mark.skipif(not can_pack(), reason="this torch build has no oneDNN packed linear")


class _Adapter(torch.nn.Linear):
    """Stands for a quantized or adapter layer: a subclass, which packing must leave alone."""


def _model() -> torch.nn.Module:
    torch.manual_seed(0)
    return torch.nn.ModuleDict({
        "with_bias": torch.nn.Linear(64, 96),
        "no_bias": torch.nn.Linear(96, 48, bias=False),
        "subclass": _Adapter(48, 8),
        "bf16": torch.nn.Linear(8, 8).to(torch.bfloat16),
    })


def _outputs(model: torch.nn.Module, x: torch.Tensor) -> list[torch.Tensor]:
    hidden = model["no_bias"](model["with_bias"](x))
    return [hidden, model["subclass"](hidden), model["bf16"](torch.ones(3, 8, dtype=torch.bfloat16))]


@pytest.mark.parametrize("shape", [(32, 64), (2, 7, 64), (1, 64)])
def test_packed_products_equal_nn_linear_to_rounding_and_forwards_come_back(shape: tuple[int, ...]) -> None:
    model = _model()
    x = torch.randn(*shape)
    plain = _outputs(model, x)
    with torch.inference_mode(), packed_linears(model) as count:
        assert count == 2  # the two plain float32 layers; not the subclass, not the bfloat16 one
        assert {name for name, m in model.items() if "forward" in vars(m)} == {"with_bias", "no_bias"}
        packed = _outputs(model, x)
    for a, b in zip(plain, packed):
        assert a.shape == b.shape
        torch.testing.assert_close(b, a, rtol=1e-5, atol=1e-5)
    assert not any("forward" in vars(m) for m in model.values())
    assert torch.equal(_outputs(model, x)[0], plain[0])  # nn.Linear's own product again, bit for bit


def test_forwards_come_back_after_an_error_inside_the_block() -> None:
    model = _model()
    with pytest.raises(RuntimeError, match="inside"), packed_linears(model):
        raise RuntimeError("inside")
    assert not any("forward" in vars(m) for m in model.values())


@pytest.fixture(scope="module")
def tiny(tiny_folder: Path) -> LoadedModel:
    return load_model(str(tiny_folder))


def _spy(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    packed_counts: list[int] = []

    @contextmanager
    def recording(model: torch.nn.Module, rows: int = 32):
        with packed_linears(model, rows) as count:
            packed_counts.append(count)
            yield count

    monkeypatch.setattr(generation, "packed_linears", recording)
    return packed_counts


_PROMPTS = ["the fox", "what is two plus two? the quick brown fox jumps over", "the lazy dog", "Wie",
            "four. the quick", "what is two plus two?", "the quick brown fox jumps over the lazy dog", "dog"]


def test_generation_packs_large_calls_with_the_same_greedy_text(tiny: LoadedModel,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    # 8 prompts x 256 tokens reaches the packing threshold (2048 tokens); random weights run to the budget.
    packed_counts = _spy(monkeypatch)
    config = GenerationConfig(max_new_tokens=256, batch_size=4)
    packed, stats = generate_with_stats(tiny, _PROMPTS, config)
    assert packed_counts == [sum(type(m) is torch.nn.Linear for m in tiny.model.modules())]
    assert packed_counts[0] > 0
    plain, _ = generate_with_stats(tiny, _PROMPTS, GenerationConfig(max_new_tokens=256, batch_size=4,
                                                                    packed_weights=False))
    assert len(packed_counts) == 1  # packed_weights=False: not entered at all
    # Float32 both ways: only the summation order differs, so a row could diverge only after a near tie of
    # two logits, which random weights make rare; one such row is tolerated, two are a bug.
    assert sum(a == b for a, b in zip(packed, plain)) >= len(_PROMPTS) - 1
    assert stats["new_tokens"] > 0
    assert not any("forward" in vars(m) for m in tiny.model.modules())


def test_small_calls_are_not_packed(tiny: LoadedModel, monkeypatch: pytest.MonkeyPatch) -> None:
    packed_counts = _spy(monkeypatch)
    generate_with_stats(tiny, _PROMPTS[:2], GenerationConfig(max_new_tokens=16, batch_size=4))  # 32 tokens
    generate_with_stats(tiny, _PROMPTS * 40, GenerationConfig(max_new_tokens=16, batch_size=2))  # 2 rows
    assert packed_counts == []


def test_nothing_is_packed_when_the_copies_would_not_fit(monkeypatch: pytest.MonkeyPatch) -> None:
    import psutil

    model = _model()
    needed = sum(m.weight.numel() * 4 for m in (model["with_bias"], model["no_bias"]))
    short = psutil.virtual_memory()._replace(available=2 * needed - 1)
    monkeypatch.setattr(psutil, "virtual_memory", lambda: short)
    with packed_linears(model) as count:
        assert count == 0
        assert not any("forward" in vars(m) for m in model.values())
    monkeypatch.setattr(psutil, "virtual_memory", lambda: short._replace(available=2 * needed))
    with packed_linears(model) as count:
        assert count == 2


def test_trainer_style_generate_calls_pack_the_lora_layers_and_see_weight_changes(tiny_folder: Path) -> None:
    # TRL's trainers call model.generate on the PEFT model themselves: every call packs (each LoRA layer as one
    # merged product), gives back plain forwards afterwards, and packs again, so an adapter update between two
    # calls is seen. Random weights: plumbing only.
    from peft import LoraConfig, get_peft_model

    from pivotrl.packed_linear import pack_while_generating

    policy = get_peft_model(load_model(str(tiny_folder)).model,
                            LoraConfig(r=4, lora_alpha=8, target_modules="all-linear", task_type="CAUSAL_LM"))
    lora_layer = next(m for m in policy.modules() if hasattr(m, "base_layer"))
    packed_during: list[bool] = []
    lora_layer.register_forward_pre_hook(lambda module, args: packed_during.append("forward" in vars(module)))
    inputs = torch.tensor([[5, 17, 42, 8], [9, 3, 77, 12]])
    kwargs = dict(max_new_tokens=24, do_sample=False, pad_token_id=0)

    plain = policy.generate(input_ids=inputs, **kwargs)
    pack_while_generating(policy, rows=2)
    with torch.no_grad():
        packed = policy.generate(input_ids=inputs, **kwargs)
    assert packed_during and not any(packed_during[:len(packed_during) // 2]) and all(
        packed_during[len(packed_during) // 2:])  # the first call ran plain, the second packed throughout
    assert not any("forward" in vars(m) for m in policy.modules())
    assert torch.equal(packed, plain)

    with torch.no_grad():  # a training step changes the adapters between rollouts
        for module in policy.modules():
            if hasattr(module, "lora_B"):
                module.lora_B["default"].weight.normal_(0, 0.5)
    changed = policy.generate(input_ids=inputs, **kwargs)
    del policy.generate  # back to the plain method
    assert torch.equal(changed, policy.generate(input_ids=inputs, **kwargs)) and not torch.equal(changed, plain)


def test_a_lora_layer_packs_as_its_merged_weight(tiny_folder: Path) -> None:
    # Adapters that are not zero (as after training): inside the block each LoRA layer is one packed product of
    # W + scaling * B @ A, and the model computes what PEFT's own forward computes, to float rounding.
    from peft import LoraConfig, get_peft_model

    torch.manual_seed(0)
    policy = get_peft_model(load_model(str(tiny_folder)).model,
                            LoraConfig(r=4, lora_alpha=8, target_modules="all-linear", task_type="CAUSAL_LM"))
    with torch.no_grad():
        for module in policy.modules():
            if hasattr(module, "lora_B"):
                module.lora_B["default"].weight.normal_(0, 0.5)
    lora_layers = [m for m in policy.modules() if hasattr(m, "base_layer")]
    inputs = torch.tensor([[5, 17, 42, 8], [9, 3, 77, 12]])
    with torch.no_grad():
        plain = policy(input_ids=inputs).logits
        with policy.disable_adapter():
            base = policy(input_ids=inputs).logits
        with packed_linears(policy, rows=2) as count:
            assert all("forward" in vars(m) for m in lora_layers)
            assert not any("forward" in vars(m.base_layer) for m in lora_layers)  # one product per LoRA layer
            packed = policy(input_ids=inputs).logits
    assert count == len(lora_layers) + 1  # and the output layer, which has no adapter
    assert torch.allclose(packed, plain, atol=1e-4) and not torch.allclose(base, plain, atol=1e-2)
    assert not any("forward" in vars(m) for m in policy.modules())
