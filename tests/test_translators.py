"""Tests for pivotrl.translators: PLUMBING ONLY, with random-weight models.

No real translation weights are available offline, so every model here is a tiny encoder-decoder (or Llama)
built from a config with RANDOM weights, plus a tokenizer trained on the spot from a few sentences. Their
"translations" are gibberish: these tests check loading through the same folder path a real checkpoint takes,
batching, language-code handling, forced target tokens, output order and score shapes, and never quality.
"""

from __future__ import annotations

import io
import json
import math
import time
from pathlib import Path

import pytest
import torch

from pivotrl.languages import get_language
from pivotrl.translators import (
    IdentityTranslator,
    LLMTranslator,
    Seq2SeqTranslator,
    Translator,
    TranslatorError,
    clean_llm_output,
    make_translator,
)

pytestmark = pytest.mark.filterwarnings("ignore:Recommended. pip install sacremoses")

CORPUS = [
    "the quick brown fox jumps over the lazy dog",
    "what is two plus two? four.",
    "Wie viel ist zwei plus zwei? Vier.",
    "Der Hund schläft unter dem Tisch.",
    "Le chien dort sous la table.",
    "Janet hat 16 Eier und verkauft 3 davon.",
]
GERMAN = [
    "Wie viel ist zwei plus zwei?",
    "Der Hund schläft.",
    "Janet hat 16 Eier und verkauft jeden Tag 3 davon auf dem Markt für 2 Dollar pro Stück.",
    "Vier.",
    "Der schnelle braune Fuchs springt über den faulen Hund unter dem Tisch.",
]
ENGLISH = ["What is two plus two?", "The dog sleeps.", "Janet has 16 eggs.", "Four.", "The quick brown fox."]
NLLB_CODES = ["eng_Latn", "deu_Latn", "fra_Latn"]  # the tiny NLLB tokenizer knows only these three languages


def _tiny_seq2seq_dims() -> dict:
    return dict(
        d_model=16,
        encoder_layers=1,
        decoder_layers=1,
        encoder_attention_heads=2,
        decoder_attention_heads=2,
        encoder_ffn_dim=32,
        decoder_ffn_dim=32,
        max_position_embeddings=128,
        # Large random weights: with the default 0.02 the tiny decoder ignores its input and every text gets the
        # same output, which would make the order and batching checks vacuous.
        init_std=1.0,
    )


@pytest.fixture(scope="module")
def spm_model() -> bytes:
    """A 60-piece SentencePiece model trained on the spot (M2M100 and Marian tokenizers need one)."""
    import sentencepiece as spm

    buffer = io.BytesIO()
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(CORPUS * 10), model_writer=buffer, vocab_size=60, model_type="unigram",
        character_coverage=1.0, hard_vocab_limit=False, minloglevel=2, num_threads=1,
    )
    return buffer.getvalue()


@pytest.fixture(scope="module")
def nllb_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An NLLB-style checkpoint: M2M100 architecture (model_type m2m_100), NllbTokenizer with 3 language codes."""
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers
    from transformers import M2M100Config, M2M100ForConditionalGeneration, NllbTokenizer

    backend = Tokenizer(models.BPE(unk_token="<unk>"))
    backend.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="always")
    trainer = trainers.BpeTrainer(vocab_size=150, special_tokens=["<s>", "<pad>", "</s>", "<unk>"])
    backend.train_from_iterator(CORPUS * 10, trainer=trainer)
    bpe = json.loads(backend.to_str())["model"]
    tokenizer = NllbTokenizer(
        vocab=bpe["vocab"], merges=[tuple(m) for m in bpe["merges"]], extra_special_tokens=NLLB_CODES
    )
    torch.manual_seed(0)
    model = M2M100ForConditionalGeneration(M2M100Config(vocab_size=len(tokenizer), **_tiny_seq2seq_dims()))
    folder = tmp_path_factory.mktemp("tiny-nllb")
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def m2m_folder(tmp_path_factory: pytest.TempPathFactory, spm_model: bytes) -> Path:
    """An M2M100-style checkpoint: M2M100Tokenizer with its "__de__"-style language tokens."""
    import sentencepiece as spm
    from transformers import M2M100Config, M2M100ForConditionalGeneration, M2M100Tokenizer

    work = tmp_path_factory.mktemp("m2m-src")
    (work / "spm.model").write_bytes(spm_model)
    sp = spm.SentencePieceProcessor(model_file=str(work / "spm.model"))
    vocab = {"<s>": 0, "<pad>": 1, "</s>": 2, "<unk>": 3}
    for i in range(sp.get_piece_size()):
        vocab.setdefault(sp.id_to_piece(i), len(vocab))
    (work / "vocab.json").write_text(json.dumps(vocab))
    tokenizer = M2M100Tokenizer(vocab_file=str(work / "vocab.json"), spm_file=str(work / "spm.model"))
    vocab_size = max(tokenizer.lang_token_to_id.values()) + 1 + tokenizer.num_madeup_words
    torch.manual_seed(0)
    model = M2M100ForConditionalGeneration(M2M100Config(vocab_size=vocab_size, **_tiny_seq2seq_dims()))
    folder = tmp_path_factory.mktemp("tiny-m2m100")
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def marian_folder(tmp_path_factory: pytest.TempPathFactory, spm_model: bytes) -> Path:
    """A Marian (opus-mt style) de->en checkpoint: source/target SentencePiece models and a shared vocab."""
    import warnings

    import sentencepiece as spm
    from transformers import MarianConfig, MarianMTModel, MarianTokenizer

    work = tmp_path_factory.mktemp("marian-src")
    (work / "spm.model").write_bytes(spm_model)
    sp = spm.SentencePieceProcessor(model_file=str(work / "spm.model"))
    vocab = {"</s>": 0, "<unk>": 1}
    for i in range(sp.get_piece_size()):
        if sp.id_to_piece(i) != "<s>":
            vocab.setdefault(sp.id_to_piece(i), len(vocab))
    vocab["<pad>"] = len(vocab)
    (work / "vocab.json").write_text(json.dumps(vocab))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "Recommended: pip install sacremoses"
        tokenizer = MarianTokenizer(
            source_spm=str(work / "spm.model"), target_spm=str(work / "spm.model"), vocab=str(work / "vocab.json"),
            source_lang="de", target_lang="en",
        )
    config = MarianConfig(
        vocab_size=len(tokenizer), pad_token_id=tokenizer.pad_token_id, eos_token_id=tokenizer.eos_token_id,
        decoder_start_token_id=tokenizer.pad_token_id, forced_eos_token_id=tokenizer.eos_token_id,
        **_tiny_seq2seq_dims(),
    )
    torch.manual_seed(0)
    folder = tmp_path_factory.mktemp("tiny-marian")
    MarianMTModel(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def nllb(nllb_folder: Path) -> Seq2SeqTranslator:
    return Seq2SeqTranslator(str(nllb_folder), batch_size=8, max_new_tokens=8)


class _GenerateSpy:
    """Wraps model.generate to record what each call got and returned."""

    def __init__(self, model):
        self.model, self.original, self.calls = model, model.generate, []

    def __call__(self, **kwargs):
        output = self.original(**kwargs)
        self.calls.append((kwargs, output))
        return output


# ---------------------------------------------------------------------------------------------- NLLB-style


def test_nllb_folder_loads_lazily_as_nllb_family(nllb_folder: Path) -> None:
    translator = Seq2SeqTranslator(str(nllb_folder), max_new_tokens=4)
    assert translator.name == f"seq2seq:{nllb_folder}"
    assert isinstance(translator, Translator)
    assert translator._model is None  # nothing loaded before first use
    assert translator.family == "nllb"
    assert translator.model.config.model_type == "m2m_100"


def test_nllb_translate_count_order_and_batching(nllb_folder: Path) -> None:
    big = Seq2SeqTranslator(str(nllb_folder), batch_size=8, max_new_tokens=8)
    small = Seq2SeqTranslator(str(nllb_folder), batch_size=2, max_new_tokens=8)
    out_big = big.translate(GERMAN, "de", "en")
    out_small = small.translate(GERMAN, "de", "en")
    assert len(out_big) == len(GERMAN) and all(isinstance(t, str) for t in out_big)
    assert len(set(out_big)) > 2  # outputs depend on the input, so the order checks below mean something
    assert out_big == out_small
    # Order: each text alone gives what it gave in the batch, at its own position.
    assert [big.translate([text], "de", "en")[0] for text in GERMAN] == out_big
    assert big.translate(list(reversed(GERMAN)), "de", "en") == list(reversed(out_big))


def test_nllb_source_and_forced_target_tokens(nllb: Seq2SeqTranslator) -> None:
    tokenizer = nllb.tokenizer
    deu, eng, fra = tokenizer.convert_tokens_to_ids(["deu_Latn", "eng_Latn", "fra_Latn"])
    spy = _GenerateSpy(nllb.model)
    nllb.model.generate = spy
    try:
        nllb.translate(GERMAN[:3], "de", "en")
        nllb.translate(ENGLISH[:2], "english", "fr")  # names work too
    finally:
        del nllb.model.generate
    (kwargs_de, out_de), (kwargs_en, out_en) = spy.calls
    assert kwargs_de["forced_bos_token_id"] == eng
    assert (kwargs_de["input_ids"][:, 0] == deu).all()  # the source language token opens every source
    assert (out_de[:, 1] == eng).all()  # the first generated token is the target language's
    assert kwargs_en["forced_bos_token_id"] == fra
    assert (kwargs_en["input_ids"][:, 0] == eng).all()
    assert (out_en[:, 1] == fra).all()
    # Right padding: every row ends in eos or pad, and attention covers exactly the real tokens.
    mask = kwargs_de["attention_mask"]
    assert mask[:, 0].all() and not mask[:, 1:].gt(mask[:, :-1]).any()


def test_nllb_unsupported_language_is_named(nllb: Seq2SeqTranslator) -> None:
    with pytest.raises(TranslatorError, match=r"Swahili \(sw\).*target.*'swh_Latn'"):
        nllb.translate(["Hallo"], "de", "sw")
    with pytest.raises(TranslatorError, match=r"Telugu \(te\).*source.*'tel_Telu'"):
        nllb.translate(["Hallo"], "te", "en")
    with pytest.raises(TranslatorError, match="unknown language 'xx'"):
        nllb.translate(["Hallo"], "xx", "en")


def test_empty_inputs_and_same_language_do_not_load(tmp_path: Path) -> None:
    never = Seq2SeqTranslator(str(tmp_path / "missing"))
    assert never.translate([], "de", "en") == []
    assert never.translate(["", "  "], "de", "en") == ["", ""]
    assert never.translate(["Hallo", ""], "de", "german") == ["Hallo", ""]
    assert never._model is None
    with pytest.raises(TypeError):
        never.translate("Hallo", "de", "en")  # type: ignore[arg-type]


def test_nllb_empty_texts_keep_their_place(nllb: Seq2SeqTranslator) -> None:
    out = nllb.translate(["", GERMAN[0], " ", GERMAN[1]], "de", "en")
    assert out[0] == "" and out[2] == ""
    assert out[1] == nllb.translate([GERMAN[0]], "de", "en")[0]
    assert out[3] == nllb.translate([GERMAN[1]], "de", "en")[0]


def test_nllb_score_shapes_range_and_batch_invariance(nllb_folder: Path, nllb: Seq2SeqTranslator) -> None:
    scores = nllb.score(GERMAN, ENGLISH, "de", "en")
    assert len(scores) == len(GERMAN)
    assert all(isinstance(s, float) and math.isfinite(s) and s <= 0 for s in scores)
    # Same pairs, other batch compositions: batch size 1 and 2, reversed order, mixed with other pairs.
    singles = [nllb.score([s], [t], "de", "en")[0] for s, t in zip(GERMAN, ENGLISH)]
    pairs = nllb.score(GERMAN, ENGLISH, "de", "en", batch_size=2)
    reverse = list(reversed(nllb.score(list(reversed(GERMAN)), list(reversed(ENGLISH)), "de", "en")))
    mixed = nllb.score(GERMAN + ["Vier."] * 3, ENGLISH + ["a much longer english sentence than the others"] * 3,
                       "de", "en")[: len(GERMAN)]
    for other in (singles, pairs, reverse, mixed):
        assert other == pytest.approx(scores, abs=1e-5)
    assert nllb.score([], [], "de", "en") == []
    with pytest.raises(ValueError):
        nllb.score(GERMAN, ENGLISH[:2], "de", "en")


def test_nllb_score_matches_transformers_label_loss(nllb: Seq2SeqTranslator) -> None:
    """Cross-check the forced decoding against transformers' own label shifting."""
    tokenizer, model = nllb.tokenizer, nllb.model
    tokenizer.src_lang = "deu_Latn"
    source = tokenizer([GERMAN[0]], return_tensors="pt")
    target_ids = tokenizer(ENGLISH[0], add_special_tokens=False)["input_ids"]
    labels = torch.tensor([[tokenizer.convert_tokens_to_ids("eng_Latn"), *target_ids, tokenizer.eos_token_id]])
    with torch.inference_mode():
        logits = model(**source, labels=labels).logits  # decoder inputs: labels shifted right after eos start
    logprobs = torch.log_softmax(logits, -1).gather(-1, labels.unsqueeze(-1)).squeeze(-1)[0]
    expected = logprobs[1:].mean().item()  # without the forced language token
    assert nllb.score([GERMAN[0]], [ENGLISH[0]], "de", "en")[0] == pytest.approx(expected, abs=1e-5)


# --------------------------------------------------------------------------------------------- M2M100-style


def test_m2m100_family_uses_double_underscore_codes(m2m_folder: Path) -> None:
    translator = Seq2SeqTranslator(str(m2m_folder), batch_size=2, max_new_tokens=6)
    assert translator.family == "m2m100"
    tokenizer = translator.tokenizer
    spy = _GenerateSpy(translator.model)
    translator.model.generate = spy
    try:
        out = translator.translate(GERMAN[:3], "de", "en")
    finally:
        del translator.model.generate
    assert len(out) == 3
    en, de = tokenizer.convert_tokens_to_ids(["__en__", "__de__"])
    for kwargs, output in spy.calls:
        assert kwargs["forced_bos_token_id"] == en
        assert (kwargs["input_ids"][:, 0] == de).all()
        assert (output[:, 1] == en).all()
    scores = translator.score(GERMAN[:3], ENGLISH[:3], "de", "en")
    assert len(scores) == 3 and all(math.isfinite(s) and s <= 0 for s in scores)
    with pytest.raises(TranslatorError, match=r"Telugu \(te\).*'__te__'"):  # M2M100 has no Telugu
        translator.translate(["Hallo"], "de", "te")


# ---------------------------------------------------------------------------------------------------- Marian


def test_marian_translates_its_pair_and_rejects_others(marian_folder: Path) -> None:
    translator = Seq2SeqTranslator(str(marian_folder), batch_size=2, max_new_tokens=6)
    out = translator.translate(GERMAN, "de", "en")
    assert translator.family == "marian"
    assert len(out) == len(GERMAN) and all(isinstance(t, str) for t in out)
    assert len(set(out)) > 2
    assert [translator.translate([t], "de", "en")[0] for t in GERMAN] == out
    assert out == Seq2SeqTranslator(str(marian_folder), batch_size=8, max_new_tokens=6).translate(GERMAN, "de", "en")
    with pytest.raises(TranslatorError, match=r"Marian model for de->en.*French \(fr\)"):
        translator.translate(["Hallo"], "de", "fr")
    with pytest.raises(TranslatorError, match=r"Marian model for de->en.*English \(en\) as the source"):
        translator.translate(["Hello"], "en", "de")
    scores = translator.score(GERMAN, ENGLISH, "de", "en")
    assert len(scores) == len(GERMAN) and all(math.isfinite(s) and s <= 0 for s in scores)
    assert translator.score(GERMAN, ENGLISH, "de", "en", batch_size=1) == pytest.approx(scores, abs=1e-5)


def test_long_sources_are_truncated_with_a_warning(marian_folder: Path, caplog: pytest.LogCaptureFixture) -> None:
    translator = Seq2SeqTranslator(str(marian_folder), max_new_tokens=3)
    long_text = " ".join(GERMAN * 20)  # far more tokens than the 128 positions of the tiny model
    with caplog.at_level("WARNING", logger="pivotrl.translators"):
        rows = translator._encode_sources([long_text, GERMAN[0]], *map(get_language, ("de", "en")))
        out = translator.translate([long_text], "de", "en")
    assert len(rows[0]) == 128 and rows[0][-1] == translator.tokenizer.eos_token_id
    assert rows[1][-1] == translator.tokenizer.eos_token_id and len(rows[1]) < 128
    assert len(out) == 1
    assert "truncated to 128" in caplog.text


# ----------------------------------------------------------------------------------------------- load errors


def test_load_errors_are_clear(tmp_path: Path, llm_folder: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(TranslatorError, match="no such folder"):
        Seq2SeqTranslator(str(tmp_path / "no" / "such" / "model")).translate(["Hallo"], "de", "en")
    (tmp_path / "empty").mkdir()
    with pytest.raises(TranslatorError, match="has no config.json"):
        Seq2SeqTranslator(str(tmp_path / "empty")).translate(["Hallo"], "de", "en")
    with pytest.raises(TranslatorError, match=r"model_type is 'llama'.*llm:"):
        Seq2SeqTranslator(str(llm_folder)).translate(["Hallo"], "de", "en")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    start = time.perf_counter()
    with pytest.raises(TranslatorError, match="not in the local cache.*offline"):
        Seq2SeqTranslator("pivotrl-test/no-such-translation-model").translate(["Hallo"], "de", "en")
    assert time.perf_counter() - start < 5


# ----------------------------------------------------------------------------------------------- LLM, identity

CHAT_TEMPLATE = (
    "{% for m in messages %}<|{{ m['role'] }}|>{{ m['content'] }}\n{% endfor %}"
    "{% if add_generation_prompt %}<|assistant|>{% endif %}"
)


@pytest.fixture(scope="module")
def llm_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 2-layer Llama (hidden 32, random weights) with a 300-token byte-level BPE tokenizer and a chat template."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    backend = Tokenizer(models.BPE())
    backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    backend.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=300, special_tokens=["<|end|>"], initial_alphabet=pre_tokenizers.ByteLevel.alphabet()
    )
    backend.train_from_iterator(CORPUS * 10, trainer=trainer)
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=backend, eos_token="<|end|>")
    tokenizer.chat_template = CHAT_TEMPLATE
    config = LlamaConfig(
        vocab_size=len(tokenizer), hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4,
        num_key_value_heads=2, max_position_embeddings=256, bos_token_id=None, eos_token_id=tokenizer.eos_token_id,
        initializer_range=1.0,  # large random weights, so different prompts give different outputs
    )
    torch.manual_seed(0)
    folder = tmp_path_factory.mktemp("tiny-llama-translator")
    LlamaForCausalLM(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def test_llm_translator_prompt_order_and_batching(llm_folder: Path) -> None:
    from pivotrl.models import load_model

    loaded = load_model(str(llm_folder))
    translator = LLMTranslator(loaded, max_new_tokens=5, batch_size=2)
    assert translator.name == f"llm:{llm_folder}"
    prompt = translator.prompt("Wie viel ist zwei plus zwei?", "de", "en")
    assert prompt.startswith("<|user|>Translate the following text from German to English.")  # the chat template
    assert "Reply with the translation only" in prompt
    assert prompt.endswith("Wie viel ist zwei plus zwei?\n<|assistant|>")
    assert "from English to Swahili" in translator.prompt("x", "en", "sw")
    texts = GERMAN + [""]
    out = translator.translate(texts, "de", "en")
    assert len(out) == len(texts) and out[-1] == ""
    assert len(set(out[:-1])) > 2  # outputs depend on the input, so the order check means something
    assert [translator.translate([t], "de", "en")[0] for t in GERMAN] == out[:-1]
    assert translator.translate(texts, "de", "de") == texts


def test_llm_translator_from_spec_loads_lazily(llm_folder: Path, tmp_path: Path) -> None:
    translator = make_translator(f"llm:{llm_folder}", max_new_tokens=3)
    assert isinstance(translator, LLMTranslator) and translator.name == f"llm:{llm_folder}"
    assert translator._loaded is None
    assert len(translator.translate(["Hallo", "Vier."], "de", "en")) == 2
    with pytest.raises(TranslatorError, match="cannot load the LLM translator"):
        LLMTranslator(str(tmp_path / "missing" / "model")).translate(["Hallo"], "de", "en")


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("Translation: Hello world", "Hello world"),
        ("  English translation:\n\nHello world  ", "Hello world"),
        ("Here is the translation: \"Hello world\"", "Hello world"),
        ("Here's the English translation:\n«Hello world»", "Hello world"),
        ("**Translation:** Hello", "Hello"),
        ("English: Hello", "Hello"),
        ("“Hello world”", "Hello world"),
        ('"Hello" and "bye"', '"Hello" and "bye"'),
        ("The translation of this word is hard.", "The translation of this word is hard."),
        ("Hello world", "Hello world"),
    ],
)
def test_clean_llm_output(raw: str, expected: str) -> None:
    assert clean_llm_output(raw, "English") == expected


def test_identity_translator() -> None:
    identity = IdentityTranslator()
    assert isinstance(identity, Translator) and identity.name == "identity"
    assert identity.translate(["a", "b"], "en", "english") == ["a", "b"]
    with pytest.raises(TranslatorError, match=r"cannot translate German \(de\) to English \(en\)"):
        identity.translate(["a"], "de", "en")


def test_make_translator_specs(nllb_folder: Path) -> None:
    seq = make_translator(f"seq2seq:{nllb_folder}", batch_size=3)
    assert isinstance(seq, Seq2SeqTranslator) and seq.batch_size == 3 and seq.name == f"seq2seq:{nllb_folder}"
    assert isinstance(make_translator("identity"), IdentityTranslator)
    with pytest.raises(TranslatorError, match="unknown translator kind 'google'"):
        make_translator("google:translate")
    with pytest.raises(TranslatorError, match="no translator kind"):
        make_translator("facebook/nllb-200-distilled-600M")
    with pytest.raises(TranslatorError, match="names no model"):
        make_translator("seq2seq:")
    with pytest.raises(TranslatorError, match="apertium"):
        make_translator("apertium:de-en")
    assert issubclass(TranslatorError, ValueError)  # the CLI reports ValueErrors as clean messages


def test_score_truncates_targets_longer_than_the_model_window(marian_folder):
    """A reference longer than the decoder's positions is scored on its start instead of failing the batch."""
    translator = Seq2SeqTranslator(str(marian_folder))
    long_target = "the quick brown fox " * 200
    scores = translator.score(["Vier.", "Wie viel ist zwei?"], [long_target, "What is two?"], "de", "en")
    assert len(scores) == 2 and all(math.isfinite(s) and s <= 0 for s in scores)
