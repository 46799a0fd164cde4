"""Apertium, the rule-based translator, through its command line."""

from __future__ import annotations

import html
import re
import shutil
import subprocess

from pivotrl.languages import Language
from pivotrl.translators.base import TranslatorError, _check_texts, _language

# --------------------------------------------------------------------------------------------------------
# Apertium (rule-based, command line)
# --------------------------------------------------------------------------------------------------------

# Apertium names languages by ISO 639-3 codes; pivotrl by ISO 639-1.
_APERTIUM_CODES = {"en": "eng", "es": "spa", "fr": "fra", "pt": "por", "it": "ita", "de": "deu", "ca": "cat"}
_DIV = re.compile(r'<div class="pivotrl-(\d+)">(.*?)</div>', re.DOTALL)


class ApertiumTranslator:
    """Apertium's command line (``apertium <pair>``), for the language pairs installed on the machine.

    All texts of a call go through one ``apertium -f html -u`` process: each text is HTML-escaped and wrapped
    in its own ``<div>``, which Apertium's HTML deformatter passes through untouched, so the output splits back
    into one translation per text in order. ``-u`` drops the ``*`` Apertium puts before unknown words.
    """

    def __init__(self, *, executable: str = "apertium", timeout: float = 120.0) -> None:
        path = shutil.which(executable)
        if path is None:
            raise TranslatorError(
                f"the apertium translator needs the {executable!r} command, which is not installed; "
                "on Debian/Ubuntu: apt-get install apertium apertium-eng-spa"
            )
        self.executable = path
        self.timeout = timeout
        self.name = "apertium"

    def pairs(self) -> list[str]:
        """The installed pairs, as Apertium lists them ("spa-eng", ...)."""
        out = subprocess.run([self.executable, "-l"], capture_output=True, text=True, timeout=self.timeout)
        return [line.strip() for line in out.stdout.splitlines() if line.strip()]

    def _pair(self, source: Language, target: Language) -> str:
        codes = [_APERTIUM_CODES.get(lang.code) for lang in (source, target)]
        pair = f"{codes[0]}-{codes[1]}" if None not in codes else None
        if pair is None or pair not in self.pairs():
            raise TranslatorError(
                f"Apertium has no installed pair for {source.name} to {target.name}; installed: "
                f"{', '.join(self.pairs()) or 'none'}"
            )
        return pair

    def translate(self, texts: list[str], src: str, tgt: str) -> list[str]:
        texts = _check_texts(texts)
        source, target = _language(src), _language(tgt)
        if source.code == target.code:
            return list(texts)
        results = ["" for _ in texts]
        todo = [i for i, text in enumerate(texts) if text.strip()]
        if not todo:
            return results
        pair = self._pair(source, target)
        clean = {i: texts[i].encode("utf-8", "replace").decode("utf-8") for i in todo}  # lone surrogates
        document = "".join(f'<div class="pivotrl-{i}">{html.escape(clean[i], quote=False)}</div>\n' for i in todo)
        done = subprocess.run([self.executable, "-f", "html", "-u", pair], input=document, capture_output=True,
                              text=True, timeout=self.timeout)
        if done.returncode != 0:
            raise TranslatorError(f"apertium {pair} failed (exit {done.returncode}): {done.stderr.strip()[:500]}")
        found = {int(m.group(1)): html.unescape(m.group(2)).strip() for m in _DIV.finditer(done.stdout)}
        missing = [i for i in todo if i not in found]
        if missing:
            raise TranslatorError(f"apertium {pair} lost {len(missing)} of {len(todo)} texts in its output")
        for i in todo:
            results[i] = found[i]
        return results


