"""Translation-based semantic rewards: translate-then-compare, and translation likelihood.

Both compare a response written in language L with the English pivot reference through a translation model,
the alternative to comparing them in a shared embedding space (:mod:`pivotrl.rewards.embedding`).

* :class:`TranslateThenCompare` translates each response into English with any translator of
  :mod:`pivotrl.translators` (seq2seq NLLB/M2M100/Marian, the pivot LLM, Apertium) and compares the
  translation with the reference by

  - ``"chrf"``: chrF++ (sacrebleu; character n-grams plus word bigrams), divided by 100;
  - ``"embedding"``: rescaled cosine under an encoder (English against English, so an English-only encoder
    works too), through :class:`~pivotrl.rewards.embedding.EmbeddingSimilarity` and its caches;
  - ``"comet"``: a COMET model (``unbabel-comet``, an optional extra that pins an older transformers; run it
    in its own environment behind ``pivotrl reward serve`` when it clashes). Source = the response,
    hypothesis = its translation, reference = the English reference.

  Translations are cached by (language, text) hash in an LRU, and identical responses are translated once,
  so a GRPO group that repeats an answer pays for it once. Responses already in English are compared as
  they are (the fidelity gate of the composed reward is what stops English answers from paying).

* :class:`TranslationLikelihood` scores how likely the English reference is as a translation of the
  response under a seq2seq model (forced decoding, mean token log-probability; MAPO's alignment signal),
  mapped to ``[0, 1]`` as ``exp(mean log p)``: the geometric-mean probability per reference token.

Both follow TRL's reward contract (``reward(completions, reference=[...], lang=[...]) -> list[float]``),
never raise on a response's text (a translator failure on a batch is logged and scores it 0) and return
values inside ``[0, 1]``.
"""

from __future__ import annotations

import hashlib
import logging
import math
from collections.abc import Sequence
from typing import Any

from pivotrl.languages import get_language
from pivotrl.lru import LRUCache
from pivotrl.rewards.components import _column as _broadcast  # one reading of TRL columns for all rewards
from pivotrl.rewards.components import completion_text

log = logging.getLogger(__name__)

__all__ = ["METRICS", "CometScorer", "TranslateThenCompare", "TranslationLikelihood", "chrf_scores"]

METRICS = ("chrf", "embedding", "comet")
MAX_CHARS = 4000  # longer responses are cut before translation (translators have bounded windows anyway)


def _clean(text: Any) -> str:
    text = completion_text(text) if not isinstance(text, str) else text
    text = text[:MAX_CHARS].encode("utf-8", "replace").decode("utf-8", "replace").replace("\x00", " ")
    return text if text.strip() else ""


def _columns(completions: Sequence[Any], reference: Any, lang: Any) -> tuple[list[str], list[str], list[str]]:
    """TRL's columns as the translation rewards read them: cleaned responses and references, language codes."""
    n = len(completions)
    texts = [_clean(c) for c in completions]
    refs = [_clean("" if r is None else r) for r in _broadcast(reference, n, "reference")]
    return texts, refs, [get_language(str(x)).code for x in _broadcast(lang, n, "lang")]


def _finite01(value: Any) -> float:
    try:
        value = float(value)
    except (TypeError, ValueError):
        return 0.0
    return min(1.0, max(0.0, value)) if math.isfinite(value) else 0.0


def chrf_scores(hypotheses: Sequence[str], references: Sequence[str]) -> list[float]:
    """Sentence-level chrF++ (sacrebleu, ``word_order=2``) of each hypothesis against its reference, in [0, 1]."""
    from sacrebleu.metrics import CHRF

    metric = CHRF(word_order=2)
    out = []
    for hyp, ref in zip(hypotheses, references, strict=True):
        if not hyp.strip() or not ref.strip():
            out.append(0.0)
            continue
        out.append(_finite01(metric.sentence_score(hyp, [ref]).score / 100.0))
    return out


class CometScorer:
    """A COMET model from ``unbabel-comet`` (imported only when built): ``score(sources, hyps, refs)`` in [0, 1]."""

    def __init__(self, model: str = "Unbabel/wmt22-comet-da", *, batch_size: int = 16, gpus: int = 0) -> None:
        try:
            from comet import download_model, load_from_checkpoint
        except ImportError as exc:
            raise ImportError(
                "the 'comet' metric needs the unbabel-comet package, which pins an older transformers than "
                "pivotrl's; install it in a separate environment (pip install unbabel-comet pivotrl), run "
                "`pivotrl reward serve --reward comet.yaml` there (a YAML file with `preset: translate` and "
                "`translate_metric: comet`), and score through that server (`pivotrl export verl --reward-url "
                "URL`, or pivotrl.rewards.client.RewardClient)"
            ) from exc
        self.name = f"comet:{model}"
        self.batch_size = batch_size
        self.gpus = gpus
        self._model = load_from_checkpoint(download_model(model))

    def score(self, sources: Sequence[str], hypotheses: Sequence[str], references: Sequence[str]) -> list[float]:
        data = [{"src": s, "mt": h, "ref": r} for s, h, r in zip(sources, hypotheses, references, strict=True)]
        if not data:
            return []
        output = self._model.predict(data, batch_size=self.batch_size, gpus=self.gpus, progress_bar=False)
        return [_finite01(x) for x in output.scores]


def _key(*parts: str) -> str:
    return hashlib.sha1("\x1f".join(parts).encode("utf-8")).hexdigest()


class TranslateThenCompare:
    """TRL reward: translate each completion into English, then compare it with the English reference. [0, 1].

    ``translator`` is a translator object or a :func:`pivotrl.translators.make_translator` spec (built on
    first use); ``metric`` one of :data:`METRICS`; ``encoder`` (metric "embedding") an encoder or spec for
    :class:`~pivotrl.rewards.embedding.EmbeddingSimilarity`; ``comet_model`` the COMET checkpoint (metric
    "comet"). ``translations`` keeps the last call's English translations (for logging and audits).
    """

    def __init__(self, translator: Any = "seq2seq:facebook/nllb-200-distilled-600M", *, metric: str = "chrf",
                 encoder: Any = "e5-torch", comet_model: str = "Unbabel/wmt22-comet-da",
                 cache_size: int = 100_000, device: str = "auto") -> None:
        if metric not in METRICS:
            raise ValueError(f"unknown translate-then-compare metric {metric!r}; expected one of {', '.join(METRICS)}")
        self.metric = metric
        self.device = device  # of the translator and encoder built from specs (devices.resolve_device)
        self._translator_spec = translator
        self._translator: Any = None if isinstance(translator, str) else translator
        self._encoder_spec = encoder
        self._similarity: Any = None
        self._comet_model = comet_model
        self._comet: CometScorer | None = None
        self._cache = LRUCache(cache_size)
        self.translations: list[str] = []
        self.stats = {"calls": 0, "translated": 0, "cache_hits": 0, "failures": 0}
        self.__name__ = f"translate_{metric}"

    @property
    def translator(self) -> Any:
        if self._translator is None:
            from pivotrl.translators import make_translator

            self._translator = make_translator(self._translator_spec, device=self.device)
        return self._translator

    def to_english(self, texts: Sequence[str], langs: Sequence[str]) -> list[str]:
        """English translations (cached, deduplicated, one translator call per language); "" on failure."""
        out = ["" for _ in texts]
        todo: dict[str, dict[str, list[int]]] = {}
        for i, (text, lang) in enumerate(zip(texts, langs, strict=True)):
            if not text:
                continue
            if lang == "en":
                out[i] = text
                continue
            hit = self._cache.get(_key(lang, text))
            if hit is not None:
                out[i] = hit
                self.stats["cache_hits"] += 1
            else:
                todo.setdefault(lang, {}).setdefault(text, []).append(i)
        for lang, by_text in todo.items():
            unique = list(by_text)
            try:
                english = self.translator.translate(unique, lang, "en")
            except Exception:  # noqa: BLE001 - a translator failure costs this batch its credit, not the run
                log.warning("translation %s->en of %d texts failed; they score 0", lang, len(unique), exc_info=True)
                self.stats["failures"] += len(unique)
                continue
            self.stats["translated"] += len(unique)
            for text, translation in zip(unique, english, strict=True):
                translation = translation if isinstance(translation, str) else ""
                self._cache.put(_key(lang, text), translation)
                for i in by_text[text]:
                    out[i] = translation
        return out

    def _compare(self, sources: list[str], hypotheses: list[str], references: list[str]) -> list[float]:
        if self.metric == "chrf":
            return chrf_scores(hypotheses, references)
        if self.metric == "embedding":
            if self._similarity is None:
                from pivotrl.rewards.embedding import EmbeddingSimilarity

                self._similarity = EmbeddingSimilarity(self._encoder_spec, device=self.device)
            return [_finite01(x) for x in self._similarity(hypotheses, reference=references)]
        if self._comet is None:
            self._comet = CometScorer(self._comet_model)
        scores = self._comet.score(sources, hypotheses, references)
        return [s if h and r else 0.0 for s, h, r in zip(scores, hypotheses, references, strict=True)]

    def __call__(self, completions: Sequence[Any], *, reference: Any = None, lang: Any = "en",
                 **_: Any) -> list[float]:
        self.stats["calls"] += 1
        n = len(completions)
        texts, refs, langs = _columns(completions, reference, lang)
        self.translations = self.to_english(texts, langs)
        try:
            scores = self._compare(texts, self.translations, refs)
        except ImportError:
            raise  # a missing optional backend is a set-up error, reported once, loudly
        except Exception:  # noqa: BLE001
            log.warning("translate-then-compare (%s) failed on a batch; it scores 0", self.metric, exc_info=True)
            return [0.0] * n
        return [_finite01(s) if t and r else 0.0 for s, t, r in zip(scores, self.translations, refs, strict=True)]


class TranslationLikelihood:
    """TRL reward: ``exp(mean log p(reference | response))`` under a seq2seq translation model, in [0, 1].

    ``translator`` must have ``score(sources, targets, src, tgt)`` (:class:`pivotrl.translators.Seq2SeqTranslator`)
    or be a ``"seq2seq:<model>"`` spec. Scores are cached by (language, response, reference) hash; English
    responses are scored with source language English.
    """

    def __init__(self, translator: Any = "seq2seq:facebook/nllb-200-distilled-600M", *,
                 cache_size: int = 100_000, device: str = "auto") -> None:
        self.device = device  # of a translator built from a spec (devices.resolve_device)
        self._translator_spec = translator
        self._translator: Any = None if isinstance(translator, str) else translator
        self._cache = LRUCache(cache_size)
        self.stats = {"calls": 0, "scored": 0, "cache_hits": 0, "failures": 0}
        self.__name__ = "translation_likelihood"

    @property
    def translator(self) -> Any:
        if self._translator is None:
            from pivotrl.translators import make_translator

            self._translator = make_translator(self._translator_spec, device=self.device)
        if not hasattr(self._translator, "score"):
            raise TypeError(f"translation likelihood needs a seq2seq translator with score(); got {self._translator!r}")
        return self._translator

    def __call__(self, completions: Sequence[Any], *, reference: Any = None, lang: Any = "en",
                 **_: Any) -> list[float]:
        self.stats["calls"] += 1
        n = len(completions)
        texts, refs, langs = _columns(completions, reference, lang)
        out = [0.0] * n
        todo: dict[str, dict[tuple[str, str], list[int]]] = {}
        for i, (text, ref, code) in enumerate(zip(texts, refs, langs, strict=True)):
            if not text or not ref:
                continue
            hit = self._cache.get(_key(code, text, ref))
            if hit is not None:
                out[i] = hit
                self.stats["cache_hits"] += 1
            else:
                todo.setdefault(code, {}).setdefault((text, ref), []).append(i)
        for code, by_pair in todo.items():
            pairs = list(by_pair)
            try:
                logps = self.translator.score([p[0] for p in pairs], [p[1] for p in pairs], code, "en")
            except TypeError:
                raise
            except Exception:  # noqa: BLE001
                log.warning("translation likelihood %s->en failed on %d pairs; they score 0", code, len(pairs),
                            exc_info=True)
                self.stats["failures"] += len(pairs)
                continue
            self.stats["scored"] += len(pairs)
            for pair, logp in zip(pairs, logps, strict=True):
                value = _finite01(math.exp(min(0.0, float(logp)))) if math.isfinite(float(logp)) else 0.0
                self._cache.put(_key(code, *pair), value)
                for i in by_pair[pair]:
                    out[i] = value
        return out


def translate_from_config(config: Any, encoder: Any = None, translator: Any = None, **_: Any) -> TranslateThenCompare:
    """The ``translate_similarity`` component of a reward config (registry factory)."""
    return TranslateThenCompare(translator or config.translator, metric=config.translate_metric,
                                encoder=encoder or config.encoder, device=config.device)


def likelihood_from_config(config: Any, translator: Any = None, **_: Any) -> TranslationLikelihood:
    """The ``translation_likelihood`` component of a reward config (registry factory)."""
    return TranslationLikelihood(translator or config.translator, device=config.device)
