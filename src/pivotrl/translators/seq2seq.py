"""Dedicated translation models through transformers: NLLB-200, M2M100 and Marian (opus-mt)."""

from __future__ import annotations

import logging
import math
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from pivotrl.hub import HUB_ID, hub_offline, looks_like_path, probe_hub
from pivotrl.languages import Language, UnknownLanguageError, get_language
from pivotrl.translators.base import TranslatorError, _check_texts, _language, _plan

log = logging.getLogger(__name__)

if TYPE_CHECKING:
    from transformers import PreTrainedModel, PreTrainedTokenizerBase


# --------------------------------------------------------------------------------------------------------
# Seq2seq translation models (NLLB-200, M2M100, Marian)
# --------------------------------------------------------------------------------------------------------

_NLLB_TYPES = ("m2m_100", "nllb-moe")  # NLLB-200 dense checkpoints are m2m_100 models; NLLB-MoE has its own type
_MARIAN_TYPES = ("marian",)


# what a failed hub probe means for a translator's spec (pivotrl.hub.probe_hub's kinds)
_HUB_PROBLEMS = {"gated": "the hub repo is gated: accept its terms on the hub and log in",
                 "missing": "there is no such model on the hub (check the spelling; private repos need a login)"}


def _token_id(tokenizer: PreTrainedTokenizerBase, token: str) -> int | None:
    """The id of ``token`` if the tokenizer knows it as a whole token, else None (unknown tokens map to unk)."""
    try:
        token_id = tokenizer.convert_tokens_to_ids(token)
    except (KeyError, ValueError, TypeError):
        return None
    if token_id is None:
        return None
    if token_id == tokenizer.unk_token_id and token != tokenizer.unk_token:
        return None
    return int(token_id)


def _right_pad(rows: list[list[int]], pad_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    width = max(len(row) for row in rows)
    ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    for i, row in enumerate(rows):
        ids[i, : len(row)] = torch.tensor(row, dtype=torch.long)
        mask[i, : len(row)] = 1
    return ids, mask


def _pair_side(side: str) -> Language | None:
    """The registry language a Marian pair side names, or None for a group name ("ROMANCE", "mul", "gem")."""
    try:
        return get_language(side)
    except UnknownLanguageError:
        return None


class Seq2SeqTranslator:
    """A transformers encoder-decoder translation model: NLLB-200, M2M100 or Marian (opus-mt).

    ``model`` is a checkpoint folder or a hub id; it is loaded on first use. The family comes from
    ``config.model_type``: ``m2m_100`` covers NLLB-200 and M2M100 checkpoints, told apart by the language tokens
    the tokenizer knows (NLLB codes like ``deu_Latn``, M2M100 tokens like ``__de__``); ``marian`` is one language
    pair per model, checked against the pair the checkpoint names (tokenizer ``source_lang``/``target_lang``, or
    an ``opus-mt-xx-yy`` name) when it names one.

    Generation is greedy (``num_beams=1``) or beam search, batched with right padding in length-sorted batches
    under ``torch.inference_mode()``; results come back in input order. Sources longer than the model takes are
    truncated with a warning.
    """

    def __init__(
        self,
        model: str,
        *,
        batch_size: int = 8,
        max_new_tokens: int = 256,
        num_beams: int = 1,
        device: str | torch.device = "auto",
    ) -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        if max_new_tokens < 1:
            raise ValueError(f"max_new_tokens must be >= 1, got {max_new_tokens}")
        if num_beams < 1:
            raise ValueError(f"num_beams must be >= 1, got {num_beams}")
        self.spec = str(model)
        self.name = f"seq2seq:{self.spec}"
        self.batch_size = batch_size
        self.max_new_tokens = max_new_tokens
        self.num_beams = num_beams
        from pivotrl.devices import resolve_device

        self.device = resolve_device(device)  # auto: this process's GPU when there is one, else the CPU
        self._model: PreTrainedModel | None = None
        self._tokenizer: PreTrainedTokenizerBase | None = None
        self._family: str | None = None  # "nllb" | "m2m100" | "marian"

    def __repr__(self) -> str:
        state = self._family or "not loaded"
        return f"Seq2SeqTranslator({self.spec!r}, {state})"

    # ------------------------------------------------------------------ loading

    @property
    def model(self) -> PreTrainedModel:
        self._load()
        assert self._model is not None
        return self._model

    @property
    def tokenizer(self) -> PreTrainedTokenizerBase:
        self._load()
        assert self._tokenizer is not None
        return self._tokenizer

    @property
    def family(self) -> str:
        """``"nllb"``, ``"m2m100"`` or ``"marian"`` (loads the model)."""
        self._load()
        assert self._family is not None
        return self._family

    def _load(self) -> None:
        if self._model is not None:
            return
        from transformers import AutoConfig, AutoModelForSeq2SeqLM, AutoTokenizer

        source, kwargs = self._resolve()
        try:
            config = AutoConfig.from_pretrained(source, **kwargs)
        except Exception as exc:
            raise TranslatorError(
                f"cannot load translation model {self.spec!r}: no readable config.json ({type(exc).__name__}: {exc})"
            ) from exc
        model_type = getattr(config, "model_type", None)
        if model_type not in _NLLB_TYPES + _MARIAN_TYPES:
            raise TranslatorError(
                f"cannot use {self.spec!r} as a seq2seq translator: its model_type is {model_type!r}; supported are "
                f"{', '.join(_NLLB_TYPES + _MARIAN_TYPES)} (NLLB-200, M2M100, Marian/opus-mt). For a causal LM use "
                f"'llm:{self.spec}'"
            )
        try:
            tokenizer = AutoTokenizer.from_pretrained(source, **kwargs)
            model = AutoModelForSeq2SeqLM.from_pretrained(source, dtype=torch.float32, **kwargs)
        except Exception as exc:
            raise TranslatorError(
                f"cannot load translation model {self.spec!r} ({type(exc).__name__}: {exc}). A folder needs "
                f"config.json, the weights and the tokenizer files (save_pretrained of model and tokenizer)"
            ) from exc
        if tokenizer.pad_token_id is None:
            raise TranslatorError(
                f"cannot use {self.spec!r}: its tokenizer has no pad token, so batches cannot be padded"
            )
        if model_type in _MARIAN_TYPES:
            family = "marian"
        else:
            family = self._nllb_or_m2m(tokenizer, model_type)
        model.to(self.device)
        model.eval()
        self._model, self._tokenizer, self._family = model, tokenizer, family

    def _resolve(self) -> tuple[str, dict[str, Any]]:
        """Where to load from, and the from_pretrained options; fails fast when that cannot work."""
        path = Path(self.spec).expanduser()
        if path.is_dir():
            if not (path / "config.json").is_file():
                raise TranslatorError(
                    f"cannot load translation model {self.spec!r}: the folder {path.resolve()} has no config.json. "
                    f"Save a checkpoint there with model.save_pretrained(folder) and tokenizer.save_pretrained(folder)"
                )
            return str(path), {"local_files_only": True}
        if path.exists():
            raise TranslatorError(f"cannot load translation model {self.spec!r}: it is a file, not a checkpoint folder")
        if looks_like_path(self.spec) or not HUB_ID.fullmatch(self.spec):
            raise TranslatorError(
                f"cannot load translation model {self.spec!r}: no such folder (resolved to {path.resolve()}), and "
                f"it is not a hub id of the form org/name"
            )
        # A hub id: the local hub cache may hold it, which needs no network at all.
        from huggingface_hub import try_to_load_from_cache

        cached = try_to_load_from_cache(self.spec, "config.json")
        if isinstance(cached, str):
            return self.spec, {"local_files_only": True}
        if hub_offline():
            raise TranslatorError(
                f"cannot load translation model {self.spec!r}: no such folder, and as a hub id it is not in the "
                f"local cache while hub offline mode is on (HF_HUB_OFFLINE/TRANSFORMERS_OFFLINE). Pass a local "
                f"checkpoint folder"
            )
        probed = probe_hub(self.spec)
        problem = None
        if probed is not None:
            kind, detail = probed
            problem = (f"the hub is not reachable ({detail.split(':')[0]})" if kind == "unreachable"
                       else _HUB_PROBLEMS.get(kind, detail))
        if problem is not None:
            raise TranslatorError(
                f"cannot load translation model {self.spec!r}: no such folder, and as a hub id: {problem}; it is not "
                f"in the local cache either. Pass a local checkpoint folder"
            )
        return self.spec, {}

    def _nllb_or_m2m(self, tokenizer: PreTrainedTokenizerBase, model_type: str) -> str:
        from pivotrl.languages import LANGUAGES

        # Decided by what the tokenizer knows: NLLB checkpoints have "deu_Latn"-style tokens, M2M100 "__de__".
        if any(_token_id(tokenizer, lang.nllb) is not None for lang in LANGUAGES.values()):
            return "nllb"
        if any(_token_id(tokenizer, f"__{code}__") is not None for code in LANGUAGES):
            return "m2m100"
        raise TranslatorError(
            f"cannot use {self.spec!r}: its model_type is {model_type!r} but the tokenizer knows neither NLLB language "
            f"tokens (like 'eng_Latn') nor M2M100 ones (like '__en__') for any pivotrl language"
        )

    # ------------------------------------------------------------------ languages

    def _lang_token(self, lang: Language, role: str) -> tuple[str, int]:
        """For NLLB/M2M100: the tokenizer's code for ``lang`` and its token id, or a clear error."""
        token = lang.nllb if self.family == "nllb" else f"__{lang.code}__"
        token_id = _token_id(self.tokenizer, token)
        if token_id is None:
            raise TranslatorError(
                f"{self.spec!r} does not support {lang.name} ({lang.code}) as the {role} language: its tokenizer has "
                f"no language token {token!r}"
            )
        return token, token_id

    def _marian_target_prefix(self, source: Language, target: Language) -> str:
        """Checks the pair a Marian checkpoint names; the ``>>xx<<`` target token for multi-target models."""
        tokenizer = self.tokenizer
        pair = (getattr(tokenizer, "source_lang", None), getattr(tokenizer, "target_lang", None))
        if not all(pair):
            names = [self.spec, str(getattr(self.model.config, "name_or_path", "") or "")]
            for name in names:
                found = re.search(r"opus-mt-(?:.*-)?([A-Za-z_]+)-([A-Za-z_]+)$", Path(name.rstrip("/")).name)
                if found:
                    pair = (found.group(1), found.group(2))
                    break
        for side, wanted, role in ((pair[0], source, "source"), (pair[1], target, "target")):
            named = _pair_side(str(side)) if side else None
            if named is not None and named.code != wanted.code:
                raise TranslatorError(
                    f"{self.spec!r} is a Marian model for {pair[0]}->{pair[1]}; it cannot take {wanted.name} "
                    f"({wanted.code}) as the {role} language (asked {source.code}->{target.code}). Marian models "
                    f"translate one language pair each"
                )
        codes = list(getattr(tokenizer, "supported_language_codes", None) or [])
        if not codes:
            return ""
        candidates = [target.code, target.nllb.split("_")[0], target.nllb, *target.aliases]
        for candidate in candidates:
            if f">>{candidate}<<" in codes:
                return f">>{candidate}<< "
        raise TranslatorError(
            f"{self.spec!r} does not support {target.name} ({target.code}) as the target language: none of its "
            f"target tokens matches {', '.join(f'>>{c}<<' for c in candidates[:3])}"
        )

    # ------------------------------------------------------------------ encoding

    def _max_source_tokens(self) -> int:
        limits = [int(getattr(self.model.config, "max_position_embeddings", 0) or 0)]
        model_max = getattr(self.tokenizer, "model_max_length", None)
        if model_max and model_max < 1_000_000:
            limits.append(int(model_max))
        limits = [limit for limit in limits if limit > 0]
        return min(limits) if limits else 1024

    def _encode_sources(self, texts: list[str], source: Language, target: Language) -> list[list[int]]:
        tokenizer = self.tokenizer
        prefix_id: int | None = None
        if self.family == "marian":
            texts = [self._marian_target_prefix(source, target) + t for t in texts]
        else:
            token, prefix_id = self._lang_token(source, "source")
            code = token if self.family == "nllb" else source.code
            if hasattr(tokenizer, "set_src_lang_special_tokens"):
                tokenizer.src_lang = code  # the checkpoint's own framing of source text
                prefix_id = None
        rows = [list(ids) for ids in tokenizer(texts, add_special_tokens=prefix_id is None)["input_ids"]]
        if prefix_id is not None:
            # A generic tokenizer that does not know about source languages: frame as NLLB does, lang + text + eos.
            rows = [[prefix_id, *row, tokenizer.eos_token_id] for row in rows]
        limit = self._max_source_tokens()
        special = set(tokenizer.all_special_ids) | {t for t in [prefix_id] if t is not None}
        for i, row in enumerate(rows):
            if len(row) > limit:
                tail = 0
                while tail < len(row) and row[len(row) - 1 - tail] in special:
                    tail += 1
                kept = row[: limit - tail] + (row[len(row) - tail :] if tail else [])
                log.warning("%s: source text %d has %d tokens; truncated to %d", self.name, i, len(row), limit)
                rows[i] = kept
        return rows

    def _encode_targets(self, texts: list[str], target: Language) -> list[list[int]]:
        """Labels laid out as generation produces them: [lang token] + text + eos (no lang token for Marian)."""
        tokenizer = self.tokenizer
        if self.family == "marian":
            # Marian may have a separate target SentencePiece model and vocab: encode in target mode.
            encoded = tokenizer(text_target=texts, add_special_tokens=False)["input_ids"]
            head = []
        else:
            # NLLB/M2M100 share one vocab for both sides; target mode would only move the language token.
            encoded = tokenizer(texts, add_special_tokens=False)["input_ids"]
            head = [self._lang_token(target, "target")[1]]
        # The decoder has the same position limit as the encoder: longer targets are scored on their start.
        room = max(1, self._max_source_tokens() - len(head) - 1)
        return [[*head, *list(ids)[:room], tokenizer.eos_token_id] for ids in encoded]

    def _decoder_start(self) -> int:
        model = self.model
        start = getattr(model.generation_config, "decoder_start_token_id", None)
        if start is None:
            start = getattr(model.config, "decoder_start_token_id", None)
        if start is None:
            raise TranslatorError(f"cannot use {self.spec!r}: its config has no decoder_start_token_id")
        return int(start[0] if isinstance(start, (list, tuple)) else start)

    def _batches(self, lengths: list[int], batch_size: int | None = None) -> list[list[int]]:
        order = sorted(range(len(lengths)), key=lambda i: -lengths[i])
        size = batch_size or self.batch_size
        return [order[first : first + size] for first in range(0, len(order), size)]

    # ------------------------------------------------------------------ public API

    def translate(self, texts: list[str], src: str, tgt: str) -> list[str]:
        """Translate each text from ``src`` to ``tgt``; one string per text, in input order."""
        texts, source, target, todo, results = _plan(texts, src, tgt)
        if not todo:
            return results
        model, tokenizer = self.model, self.tokenizer
        rows = self._encode_sources([texts[i] for i in todo], source, target)
        kwargs: dict[str, Any] = {
            "max_new_tokens": self.max_new_tokens,
            "num_beams": self.num_beams,
            "do_sample": False,
            "pad_token_id": tokenizer.pad_token_id,
        }
        skip = 1  # the decoder start token
        if self.family != "marian":
            kwargs["forced_bos_token_id"] = self._lang_token(target, "target")[1]
            skip = 2  # and the forced target-language token
        with torch.inference_mode():
            for batch in self._batches([len(r) for r in rows]):
                input_ids, attention_mask = _right_pad([rows[j] for j in batch], tokenizer.pad_token_id)
                output = model.generate(
                    input_ids=input_ids.to(self.device), attention_mask=attention_mask.to(self.device), **kwargs
                )
                decoded = tokenizer.batch_decode(output[:, skip:].cpu(), skip_special_tokens=True)
                for j, text in zip(batch, decoded):
                    results[todo[j]] = text.strip()
        return results

    def score(
        self, sources: list[str], targets: list[str], src: str, tgt: str, *, batch_size: int | None = None
    ) -> list[float]:
        """Mean log-probability per target token of each ``targets[i]`` given ``sources[i]`` (forced decoding).

        The target is scored as generation would produce it: every text token plus the closing eos; the forced
        target-language token of NLLB/M2M100 is not counted (generation does not choose it). Values are <= 0;
        higher means the model finds the target a more likely translation of the source.
        """
        sources, targets = _check_texts(sources, "sources"), _check_texts(targets, "targets")
        if len(sources) != len(targets):
            raise ValueError(f"got {len(sources)} sources but {len(targets)} targets")
        if batch_size is not None and batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        source, target = _language(src), _language(tgt)
        if not sources:
            return []
        model, tokenizer = self.model, self.tokenizer
        enc = self._encode_sources(sources, source, target)
        labels = self._encode_targets(targets, target)
        start = self._decoder_start()
        first_scored = 0 if self.family == "marian" else 1
        pad = tokenizer.pad_token_id
        scores = [0.0 for _ in sources]
        with torch.inference_mode():
            for batch in self._batches([len(enc[i]) + len(labels[i]) for i in range(len(enc))], batch_size):
                input_ids, attention_mask = _right_pad([enc[i] for i in batch], pad)
                label_ids, label_mask = _right_pad([labels[i] for i in batch], pad)
                decoder_ids, decoder_mask = _right_pad([[start, *labels[i][:-1]] for i in batch], pad)
                logits = model(
                    input_ids=input_ids.to(self.device),
                    attention_mask=attention_mask.to(self.device),
                    decoder_input_ids=decoder_ids.to(self.device),
                    decoder_attention_mask=decoder_mask.to(self.device),
                ).logits.float()
                logprobs = torch.log_softmax(logits, dim=-1).cpu()
                token_logprobs = logprobs.gather(-1, label_ids.unsqueeze(-1)).squeeze(-1)
                mask = label_mask.bool()
                mask[:, :first_scored] = False
                for row, i in enumerate(batch):
                    values = token_logprobs[row][mask[row]].double()
                    scores[i] = float(values.mean()) if values.numel() else 0.0
        for value in scores:
            if not math.isfinite(value):
                log.warning("%s: non-finite translation score %r", self.name, value)
        return scores


