"""Sentences and words with character offsets, so a replacement can keep the original spacing.

Sentences come from pysbd (rule sets for ~23 languages). A language pysbd lacks falls back to its
English rules with a one-time warning: those rules split on ., ! and ? plus common abbreviations,
which is sensible for most Latin/Cyrillic/Greek-script text and wrong for scripts with their own
full stop (e.g. Thai has none) — pass ``fallback="none"`` to keep whole paragraphs instead.

Words (``words``): a token is
  * a number: digits with inner ``.``/``,`` groups (``3.5``, ``1,000``, ``2024``);
  * a word: letters/marks/digits, with inner apostrophes (``don't``, ``l'homme``, ``O’Brien``) and
    inner hyphens (``state-of-the-art``) kept inside one token;
  * with ``punct=True`` every other non-space character is its own token (default: skipped).
Offsets index the original string: ``text[w.start:w.end] == w.text`` always holds.
"""

from __future__ import annotations

import logging
from functools import cache
from typing import NamedTuple

import regex

from ..errors import ConfigError

log = logging.getLogger(__name__)

# Written by hand because no maintained library returns Unicode word offsets with these apostrophe and
# hyphen rules; \p{L}\p{M}\p{N} (letters, combining marks, digits) keeps Devanagari/Arabic words whole.
_WORD = regex.compile(
    r"(?P<num>\p{Nd}+(?:[.,]\p{Nd}+)*)(?![\p{L}\p{M}])"
    r"|(?P<word>[\p{L}\p{M}\p{N}]+(?:['’\-‐][\p{L}\p{M}\p{N}]+)*)"
    r"|(?P<punct>[^\s\p{L}\p{M}\p{N}])"
)


class Word(NamedTuple):
    """One token: ``text == original[start:end]`` (a named tuple: MIGRATE makes a million of these, and a
    frozen dataclass took half of the time of ``words``)."""

    start: int
    end: int
    text: str

    @property
    def is_punct(self) -> bool:
        return not any(c.isalnum() for c in self.text)


def words(text: str, punct: bool = False) -> list[Word]:
    """Tokens of ``text`` with offsets; punctuation tokens only when ``punct`` is true."""
    if punct:
        return [Word(m.start(), m.end(), m.group()) for m in _WORD.finditer(text)]
    return [Word(m.start(), m.end(), m.group()) for m in _WORD.finditer(text) if m.lastgroup != "punct"]


@cache
def _segmenter(lang: str, fallback: str):
    import pysbd
    from pysbd.languages import LANGUAGE_CODES

    code = lang.lower().split("-")[0].split("_")[0]
    if code in LANGUAGE_CODES:
        return pysbd.Segmenter(language=code, clean=False)
    if fallback == "none":
        log.warning("pysbd has no sentence rules for %r; keeping each paragraph as one sentence", lang)
        return None
    log.warning("pysbd has no sentence rules for %r (it has %s); using its English rules",
                lang, ", ".join(sorted(LANGUAGE_CODES)))
    return pysbd.Segmenter(language="en", clean=False)


_COMMON_ENDS = ".!?…。！？।؟"


@cache
def _inner_end(segmenter) -> regex.Pattern:
    """A sentence-final mark (the segmenter language's own, plus common ones) followed, after closing
    quotes or brackets, by whitespace and more text: only where this matches can pysbd split a line."""
    marks = set(_COMMON_ENDS) | set(getattr(segmenter.language_module, "Punctuations", ()))
    return regex.compile("[" + regex.escape("".join(sorted(marks))) + r"][\"'”’»)\]]*\s+\S")


def sentence_spans(text: str, lang: str, fallback: str = "en") -> list[tuple[int, int]]:
    """(start, end) offsets of the sentences of ``text``, without surrounding whitespace."""
    if fallback not in ("en", "none"):
        raise ConfigError("fallback", fallback, "use 'en' (pysbd English rules) or 'none' (no split)")
    spans: list[tuple[int, int]] = []
    seg = _segmenter(lang, fallback)
    inner_end = _inner_end(seg) if seg is not None else None
    for para_start, para in _paragraphs(text):
        stripped = para.strip()
        if seg is None or not inner_end.search(stripped):
            # no sentence-final mark before more text: keep the line whole without asking pysbd (~1 ms a
            # line, most of the cost of MIGRATE on verse-per-line text such as the Bible)
            at = para_start + para.index(stripped)
            spans.append((at, at + len(stripped)))
            continue
        cursor = 0
        for piece in seg.segment(para):
            piece = piece.strip()
            if not piece:
                continue
            # pysbd with clean=False returns the text in order; locate each piece from the cursor on
            at = para.find(piece, cursor)
            if at < 0:  # defensive: pysbd altered the text; fall back to the cursor position
                at = cursor
            spans.append((para_start + at, para_start + at + len(piece)))
            cursor = at + len(piece)
    return spans


def split_sentences(text: str, lang: str, fallback: str = "en") -> list[str]:
    """The sentences of ``text`` (a paragraph or several, separated by newlines)."""
    return [text[a:b] for a, b in sentence_spans(text, lang, fallback)]


def _paragraphs(text: str):
    """Lines as (offset, line): a newline always ends a sentence."""
    offset = 0
    for line in text.split("\n"):
        if line.strip():
            yield offset, line
        offset += len(line) + 1
