"""Shared test set-up: the real benchmark files in ../shared/data (or $PIVOTRL_DATA_DIR)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parents[1]


def _data_dir() -> Path | None:
    value = os.environ.get("PIVOTRL_DATA_DIR")
    path = Path(value) if value else REPO.parent / "shared" / "data"
    return path if (path / "mgsm").is_dir() else None


DATA_DIR = _data_dir()


@pytest.fixture(scope="session")
def data_dir() -> Path:
    if DATA_DIR is None:
        if os.environ.get("CI"):
            # In CI the data must be there: a skipped data test would hide a broken set-up.
            raise RuntimeError("benchmark data not found: expected ../shared/data or $PIVOTRL_DATA_DIR")
        pytest.skip("benchmark data (../shared/data) not available on this machine")
    return DATA_DIR


# ---------------------------------------------------------------- tiny random-weight model: plumbing only
# Random weights say nothing about quality: tests use this model for loading, batching, resume and shapes.


def tiny_tokenizer():
    """A 300-token byte-level BPE tokenizer trained on the spot (offline); eos but no pad token."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    backend = Tokenizer(models.BPE())
    backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    backend.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=300,
        special_tokens=["<|endoftext|>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
    )
    corpus = ["the quick brown fox jumps over the lazy dog", "what is two plus two? four.", "Wie viel ist zwei?"]
    backend.train_from_iterator(corpus * 20, trainer=trainer)
    return PreTrainedTokenizerFast(tokenizer_object=backend, eos_token="<|endoftext|>")


@pytest.fixture(scope="session")
def tiny_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 2-layer Llama with random weights and a 300-token BPE tokenizer, saved as a normal folder."""
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    tokenizer = tiny_tokenizer()
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=256,
        tie_word_embeddings=True,
        bos_token_id=None,
        eos_token_id=tokenizer.eos_token_id,
    )
    folder = tmp_path_factory.mktemp("tiny-llama")
    LlamaForCausalLM(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


