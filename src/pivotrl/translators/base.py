"""What every translator shares: the error, the protocol, the checks of texts and languages, and the identity
translator."""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

from pivotrl.languages import Language, UnknownLanguageError, get_language


class TranslatorError(ValueError):
    """A translator cannot be built or cannot do what was asked; the message says what and why.

    A ValueError so that callers reporting bad user input (a wrong spec, an unsupported language) catch it too.
    """


@runtime_checkable
class Translator(Protocol):
    name: str

    def translate(self, texts: list[str], src: str, tgt: str) -> list[str]: ...


def _language(code: str) -> Language:
    try:
        return get_language(code)
    except UnknownLanguageError as exc:
        raise TranslatorError(str(exc)) from exc


def _check_texts(texts: Any, what: str = "texts") -> list[str]:
    if isinstance(texts, str):
        raise TypeError(f"{what} must be a list of strings, not a single string")
    texts = list(texts)
    for text in texts:
        if not isinstance(text, str):
            raise TypeError(f"{what} must be strings, got {type(text).__name__}")
    return texts


def _plan(texts: Any, src: str, tgt: str) -> tuple[list[str], Any, Any, list[int], list[str]]:
    """Checked texts, both languages, the indices a model must translate (none when ``src`` is ``tgt``; empty
    texts stay empty), and the results list to fill (the texts themselves when nothing is to translate)."""
    texts = _check_texts(texts)
    source, target = _language(src), _language(tgt)
    if source.code == target.code:
        return texts, source, target, [], list(texts)
    return texts, source, target, [i for i, text in enumerate(texts) if text.strip()], ["" for _ in texts]


# --------------------------------------------------------------------------------------------------------
# Identity
# --------------------------------------------------------------------------------------------------------


class IdentityTranslator:
    """Returns texts unchanged when source and target are the same language; any other pair is an error."""

    name = "identity"

    def translate(self, texts: list[str], src: str, tgt: str) -> list[str]:
        texts = _check_texts(texts)
        source, target = _language(src), _language(tgt)
        if source.code != target.code:
            raise TranslatorError(
                f"the identity translator cannot translate {source.name} ({source.code}) to {target.name} "
                f"({target.code}); use a seq2seq or llm translator"
            )
        return list(texts)


