"""A causal LLM (the pivot) prompted to translate."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from pivotrl.translators.base import TranslatorError, _language, _plan

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerBase

    from pivotrl.models import LoadedModel


# --------------------------------------------------------------------------------------------------------
# The pivot LLM as translator
# --------------------------------------------------------------------------------------------------------

_QUOTES = {'"': '"', "'": "'", "“": "”", "„": "“", "«": "»", "»": "«", "‘": "’", "‚": "‘", "「": "」", "『": "』"}
_LABEL = re.compile(
    r"^\s*\**\s*(?:(?:here\s+is|here's|this\s+is)\s+(?:the|my|a|an)\s+)?(?:[\w-]+\s+)?"
    r"(?:translation|translated\s+text)(?:\s+(?:in|into|to)\s+[\w-]+)?\s*\**\s*[:：]\s*\**\s*",
    re.IGNORECASE,
)


def clean_llm_output(text: str, target_name: str | None = None) -> str:
    """Strip what chat models put around a translation: a leading "Translation:"-like label, quotes, spaces."""
    text = text.strip()
    text = _LABEL.sub("", text, count=1)
    if target_name:
        text = re.sub(rf"^\s*\**{re.escape(target_name)}\**\s*[:：]\s*", "", text, count=1, flags=re.IGNORECASE)
    text = text.strip()
    if len(text) >= 2 and text[0] in _QUOTES and text[-1] == _QUOTES[text[0]]:
        inner = text[1:-1]
        if text[0] not in inner and text[-1] not in inner:
            text = inner.strip()
    return text


class LLMTranslator:
    """The pivot LLM prompted to translate ("Translate the following text from German to English. ...").

    ``loaded_or_spec`` is a :class:`pivotrl.models.LoadedModel`, a ``(model, tokenizer)`` pair, or any spec
    :func:`pivotrl.models.load_model` takes (loaded on first use). The prompt goes through the chat template
    when the tokenizer has one; decoding is greedy; the reply is cleaned with :func:`clean_llm_output`.
    """

    PROMPT = "Translate the following text from {src} to {tgt}. Reply with the translation only.\n\n{text}"

    def __init__(self, loaded_or_spec: LoadedModel | tuple[Any, Any] | str, *, max_new_tokens: int = 256,
                 batch_size: int = 8, device: str = "auto") -> None:
        if max_new_tokens < 1:
            raise ValueError(f"max_new_tokens must be >= 1, got {max_new_tokens}")
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        self.max_new_tokens = max_new_tokens
        self.batch_size = batch_size
        self.device = device  # where a spec is loaded (devices.resolve_device); a loaded model stays where it is
        self._spec: str | None = None
        self._loaded: Any = None
        if isinstance(loaded_or_spec, str):
            self._spec = loaded_or_spec
            label = loaded_or_spec
        elif isinstance(loaded_or_spec, tuple):
            model, _tokenizer = loaded_or_spec
            self._loaded = loaded_or_spec
            label = str(getattr(model.config, "name_or_path", "") or type(model).__name__)
        else:
            self._loaded = loaded_or_spec
            label = str(getattr(loaded_or_spec, "name", "") or type(loaded_or_spec.model).__name__)
        self.name = f"llm:{label}"

    def __repr__(self) -> str:
        return f"LLMTranslator({self.name!r}, {'loaded' if self._loaded is not None else 'not loaded'})"

    @property
    def loaded(self) -> Any:
        """The model and tokenizer (a LoadedModel or a pair); loads the spec on first use."""
        if self._loaded is None:
            from pivotrl.devices import generation_dtype, resolve_device
            from pivotrl.models import ModelLoadError, load_model

            device = resolve_device(self.device)
            try:
                self._loaded = load_model(self._spec, dtype=generation_dtype("auto", device), device=device)
            except ModelLoadError as exc:
                raise TranslatorError(f"cannot load the LLM translator {self._spec!r}: {exc}") from exc
        return self._loaded

    @property
    def tokenizer(self) -> PreTrainedTokenizerBase:
        loaded = self.loaded
        return loaded[1] if isinstance(loaded, tuple) else loaded.tokenizer

    def instruction(self, text: str, src: str, tgt: str) -> str:
        """The user message asking for the translation (before any chat template)."""
        return self.PROMPT.format(src=_language(src).name, tgt=_language(tgt).name, text=text)

    def prompt(self, text: str, src: str, tgt: str) -> str:
        """The full text the model continues: :meth:`instruction` through the chat template if there is one."""
        from pivotrl.models import build_prompt

        return build_prompt(self.tokenizer, self.instruction(text, src, tgt))

    def translate(self, texts: list[str], src: str, tgt: str) -> list[str]:
        texts, source, target, todo, results = _plan(texts, src, tgt)
        if not todo:
            return results
        from pivotrl.generation import GenerationConfig, generate

        prompts = [self.prompt(texts[i], source.code, target.code) for i in todo]
        config = GenerationConfig(max_new_tokens=self.max_new_tokens, do_sample=False, batch_size=self.batch_size)
        outputs = generate(self.loaded, prompts, config)
        for i, completions in zip(todo, outputs):
            results[i] = clean_llm_output(completions[0], target.name)
        return results


