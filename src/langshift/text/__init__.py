"""Text units (sentences, words with offsets), POS taggers chosen by name, and language ID."""

from __future__ import annotations

from .units import Word, sentence_spans, split_sentences, words

__all__ = ["Word", "sentence_spans", "split_sentences", "words"]
