"""Translators chosen by name (apertium, dictionary, seq2seq, llm) behind one cached interface."""

from __future__ import annotations

from .base import TRANSLATORS, CachedTranslator, Translator, get_translator
from .cache import TranslationCache

__all__ = ["TRANSLATORS", "CachedTranslator", "TranslationCache", "Translator", "get_translator"]
