"""Machine translation between English and the target languages, for building prompts and checking answers.

PB-RLSVR needs translation twice: to turn English problems into target-language training prompts when no
parallel data exists, and to turn target-language responses back into English for translate-then-compare
rewards. Every backend here is a plain object with

* ``name``: the backend's identity, used in cache keys and provenance (``"seq2seq:facebook/nllb-200-distilled-600M"``);
* ``translate(texts, src, tgt) -> list[str]``: one translation per text, in input order. ``src`` and ``tgt``
  are codes (or names) from :mod:`pivotrl.languages`; empty texts stay empty and ``src == tgt`` returns the
  texts unchanged.

Backends:

* :class:`Seq2SeqTranslator`: a dedicated translation model through transformers. NLLB-200 and M2M100 (one
  model, many languages, the target forced as the first decoder token) and Marian / opus-mt (one language
  pair per model). It also has ``score(sources, targets, src, tgt)``: the mean token log-probability of each
  target given its source under forced decoding, the "translation likelihood" signal MAPO uses, usable as a
  reward.
* :class:`LLMTranslator`: the pivot LLM itself, prompted to translate. No extra model, but only as good as the
  LLM is in both languages, which for small models is not very good.
* :class:`IdentityTranslator`: for English (or any language into itself); refuses real translation.

:func:`make_translator` builds one from a spec string: ``"seq2seq:<folder or hub id>"``, ``"llm:<model spec>"``
(any spec :func:`pivotrl.models.load_model` takes), ``"apertium"`` or ``"identity"``.

* :class:`ApertiumTranslator`: the rule-based Apertium system through its command line (``apt-get install
  apertium apertium-eng-spa``). Only the installed pairs (Spanish-English here); no GPU, no weights, fast.
  It is the one real translator that installs offline here (apt, no weights).

Claims about translation quality need real weights; no translation model installs from the package registry,
so the tests check plumbing with random-weight models (loading, batching, language codes, order and shapes)
and real translation with Apertium where it is installed.
"""

from __future__ import annotations

from typing import Any

from pivotrl.translators.apertium import ApertiumTranslator
from pivotrl.translators.base import IdentityTranslator, Translator, TranslatorError
from pivotrl.translators.llm import LLMTranslator, clean_llm_output
from pivotrl.translators.seq2seq import Seq2SeqTranslator

__all__ = [
    "ApertiumTranslator",
    "IdentityTranslator",
    "LLMTranslator",
    "Seq2SeqTranslator",
    "Translator",
    "TranslatorError",
    "clean_llm_output",
    "make_translator",
]

# --------------------------------------------------------------------------------------------------------
# Specs
# --------------------------------------------------------------------------------------------------------

_KINDS = ("seq2seq:<folder or hub id>", "llm:<model spec>", "apertium", "identity")


def make_translator(
    spec: str, *, device: str | None = None, **options: Any
) -> Seq2SeqTranslator | LLMTranslator | ApertiumTranslator | IdentityTranslator:
    """Build a translator from ``"seq2seq:<model>"``, ``"llm:<model spec>"``, ``"apertium"`` or ``"identity"``.

    ``options`` go to the constructor (``batch_size``, ``max_new_tokens``, ...); ``device`` to a model-backed
    one (the others run no model). Nothing is loaded yet.
    """
    if not isinstance(spec, str) or not spec.strip():
        raise TranslatorError(f"empty translator spec; expected one of: {', '.join(_KINDS)}")
    kind, sep, rest = spec.strip().partition(":")
    kind, rest = kind.strip().lower(), rest.strip()
    if kind == "identity" and not rest:
        if options:
            raise TranslatorError(f"the identity translator takes no options, got {', '.join(options)}")
        return IdentityTranslator()
    if kind in ("seq2seq", "llm"):
        if not rest:
            raise TranslatorError(f"translator spec {spec!r} names no model; expected {kind}:<model>")
        if device is not None:
            options["device"] = device
        return Seq2SeqTranslator(rest, **options) if kind == "seq2seq" else LLMTranslator(rest, **options)
    if kind == "apertium" and not rest:
        return ApertiumTranslator(**options)
    what = f"unknown translator kind {kind!r}" if sep else "no translator kind"
    raise TranslatorError(f"translator spec {spec!r}: {what}; expected one of: {', '.join(_KINDS)}")
