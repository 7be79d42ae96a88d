"""The Translator interface, the backend registry and the caching wrapper every caller gets.

A backend subclasses ``Translator`` and registers under a name; it translates whole batches (one
subprocess call, one model batch, one HTTP request per item at most) and returns None for an item
it cannot translate. ``get_translator`` wraps it in ``CachedTranslator``: the cache is consulted
first, only the distinct misses go to the backend in one batch, and ``stats`` counts what happened.
"""

from __future__ import annotations

import hashlib
import inspect
import json
import os
from collections.abc import Sequence
from typing import Any, ClassVar

from ..errors import ConfigError
from ..registry import Registry
from .cache import TranslationCache

TRANSLATORS: Registry[type[Translator]] = Registry("translator", modules=[
    "langshift.translate.apertium", "langshift.translate.dictionary",
    "langshift.translate.seq2seq", "langshift.translate.llm",
])


class Translator:
    """A translation backend for one language pair. Subclasses set ``name`` and implement both methods."""

    name: ClassVar[str] = ""

    def __init__(self, source_lang: str, target_lang: str):
        self.source_lang, self.target_lang = source_lang, target_lang

    def options(self) -> dict[str, Any]:
        """Options that change the output; they go into the cache key's fingerprint."""
        return {}

    def translate_words(self, words: list[str], tags: list[str] | None = None) -> list[str | None]:
        raise NotImplementedError

    def translate_sentences(self, sentences: list[str]) -> list[str | None]:
        raise NotImplementedError


def fingerprint(options: dict[str, Any]) -> str:
    blob = json.dumps(options, sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


class CachedTranslator:
    """What callers use: a backend behind a persistent cache, with call counters.

    ``stats``: ``calls`` (items sent to the backend), ``cache_hits`` (items answered by the cache or by
    an earlier duplicate in the same batch), ``untranslated`` (items answered None), ``requests`` (batches
    sent to the backend).
    """

    def __init__(self, backend: Translator, cache: str | os.PathLike | TranslationCache | None = None):
        self.backend = backend
        self.source_lang, self.target_lang = backend.source_lang, backend.target_lang
        if cache is not None and not isinstance(cache, TranslationCache):
            cache = TranslationCache(cache)
        self.cache = cache
        self._mem: dict[tuple[str, str], str | None] = {}
        self.key = (backend.name, fingerprint(backend.options()), backend.source_lang, backend.target_lang)
        self.stats = {"calls": 0, "cache_hits": 0, "untranslated": 0, "requests": 0}

    @property
    def calls(self) -> int:
        return self.stats["calls"]

    def translate_words(self, words: list[str], tags: list[str] | None = None) -> list[str | None]:
        """One result per word (None: the backend cannot translate it). ``tags`` (Penn) pick the reading."""
        words = _check_list("words", words)
        if tags is not None:
            tags = _check_list("tags", tags)
            if len(tags) != len(words):
                raise ConfigError("tags", f"{len(tags)} tags", f"give one tag per word ({len(words)} words)")
        # the tag is part of the key: "book" as a verb and as a noun translate differently
        keys = [w if tags is None else f"{w}\t{t}" for w, t in zip(words, tags or words, strict=True)]

        def call(missing: list[str]) -> list[str | None]:
            if tags is None:
                return self.backend.translate_words(missing)
            split = [k.split("\t", 1) for k in missing]
            return self.backend.translate_words([w for w, _ in split], [t for _, t in split])

        return self._run("word", keys, call)

    def translate_sentences(self, sentences: list[str]) -> list[str | None]:
        return self._run("sentence", _check_list("sentences", sentences), self.backend.translate_sentences)

    def _run(self, kind: str, keys: list[str], call) -> list[str | None]:
        # 1. distinct keys; 2. answers from memory, then from the on-disk cache; 3. one backend batch
        distinct = list(dict.fromkeys(keys))
        known = {k: self._mem[(kind, k)] for k in distinct if (kind, k) in self._mem}
        rest = [k for k in distinct if k not in known]
        if rest and self.cache is not None:
            known.update(self.cache.get_many(self.key, kind, rest))
        missing = [k for k in distinct if k not in known]
        if missing:
            results = call(missing)
            if len(results) != len(missing):
                raise RuntimeError(f"translator {self.backend.name!r} returned {len(results)} results "
                                   f"for {len(missing)} inputs")
            fresh = dict(zip(missing, results, strict=True))
            if self.cache is not None:
                self.cache.put_many(self.key, kind, fresh)
            known.update(fresh)
            self.stats["calls"] += len(missing)
            self.stats["requests"] += 1
        self.stats["cache_hits"] += len(keys) - len(missing)
        for k in distinct:
            self._mem[(kind, k)] = known[k]
        out = [known[k] for k in keys]
        self.stats["untranslated"] += sum(r is None for r in out)
        return out


def _check_list(param: str, items: Sequence[str]) -> list[str]:
    if isinstance(items, str) or not all(isinstance(x, str) for x in items):
        raise ConfigError(param, type(items).__name__, "give a list of strings")
    return list(items)


def get_translator(name: str, source_lang: str, target_lang: str, cache: str | os.PathLike | None = None,
                   **options: Any) -> CachedTranslator:
    """The backend ``name`` for ``source_lang``→``target_lang`` behind the cache at ``cache`` (None: memory only)."""
    cls = TRANSLATORS.get(name, "--backend")
    accepted = [p for p in inspect.signature(cls.__init__).parameters if p not in ("self", "source_lang", "target_lang")]
    for key in options:
        if key not in accepted:
            raise ConfigError(key, options[key], f"not an option of translator {name!r}; "
                                                 f"it takes: {', '.join(accepted) or 'no options'}")
    return CachedTranslator(cls(source_lang, target_lang, **options), cache)
