import multiprocessing as mp
import subprocess
import sys
from pathlib import Path

import pytest

from langshift.errors import ConfigError, LangshiftError
from langshift.translate import TRANSLATORS, CachedTranslator, TranslationCache, Translator


class Upper(Translator):
    """A deterministic test backend: upper-cases, cannot translate words starting with 'x'; counts calls."""

    name = "upper-test"

    def __init__(self, src, tgt, suffix=""):
        super().__init__(src, tgt)
        self.suffix, self.seen = suffix, []

    def options(self):
        return {"suffix": self.suffix}

    def translate_words(self, words, tags=None):
        self.seen.append(list(words))
        return [None if w.startswith("x") else w.upper() + self.suffix + (f"/{t}" if t else "")
                for w, t in zip(words, tags or [None] * len(words), strict=True)]

    def translate_sentences(self, sentences):
        self.seen.append(list(sentences))
        return [s[::-1] + self.suffix for s in sentences]


def test_cache_survives_a_new_object_and_counts(tmp_path):
    path = tmp_path / "c.sqlite"
    first = CachedTranslator(Upper("en", "es"), path)
    assert first.translate_words(["a", "b", "a", "x1"]) == ["A", "B", "A", None]
    assert first.stats == {"calls": 3, "cache_hits": 1, "untranslated": 1, "requests": 1}
    second = CachedTranslator(Upper("en", "es"), path)
    assert second.translate_words(["a", "x1", "c"]) == ["A", None, "C"]
    assert second.backend.seen == [["c"]]  # None is cached too: x1 is not asked again
    assert second.calls == 1 and second.stats["cache_hits"] == 2
    assert second.translate_sentences(["abc"]) == ["cba"]
    assert second.translate_words(["abc"]) == ["ABC"]  # words and sentences are separate kinds


def test_tags_languages_and_options_do_not_collide(tmp_path):
    path = tmp_path / "c.sqlite"
    CachedTranslator(Upper("en", "es"), path).translate_words(["book"])
    de = CachedTranslator(Upper("en", "de", suffix="!"), path)
    assert de.translate_words(["book"]) == ["BOOK!"] and de.calls == 1
    es_opt = CachedTranslator(Upper("en", "es", suffix="?"), path)
    assert es_opt.translate_words(["book"]) == ["BOOK?"] and es_opt.calls == 1
    tagged = CachedTranslator(Upper("en", "es"), path)
    assert tagged.translate_words(["book", "book"], ["NN", "VB"]) == ["BOOK/NN", "BOOK/VB"]
    assert tagged.calls == 2
    assert TranslationCache(path).count() == 5


def _writer(path, offset, n):
    tr = CachedTranslator(Upper("en", "es"), path)
    for start in range(0, n, 50):
        tr.translate_words([f"w{offset + i}" for i in range(start, start + 50)] + ["shared"])


def test_two_processes_write_at_once(tmp_path):
    path = str(tmp_path / "c.sqlite")
    ctx = mp.get_context("spawn")
    procs = [ctx.Process(target=_writer, args=(path, k * 10000, 1000)) for k in range(2)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
    assert [p.exitcode for p in procs] == [0, 0]
    cache = TranslationCache(path)
    assert cache.count() == 2001
    key = CachedTranslator(Upper("en", "es"), path).key
    got = cache.get_many(key, "word", ["w5", "w10999", "shared"])
    assert got == {"w5": "W5", "w10999": "W10999", "shared": "SHARED"}


def test_new_process_reads_the_cache(tmp_path):
    path = tmp_path / "c.sqlite"
    CachedTranslator(Upper("en", "es"), path).translate_words(["persisted"])
    here = str(Path(__file__).parent)
    code = (f"import sys; sys.path.insert(0, {here!r}); from test_translate_cache import Upper; "
            "from langshift.translate import CachedTranslator; "
            f"t = CachedTranslator(Upper('en', 'es'), {str(path)!r}); print(t.translate_words(['persisted']), t.calls)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.stdout.strip() == "['PERSISTED'] 0", out.stderr


def test_bad_inputs(tmp_path):
    tr = CachedTranslator(Upper("en", "es"))
    with pytest.raises(ConfigError, match="words"):
        tr.translate_words("book")
    with pytest.raises(ConfigError, match="tags"):
        tr.translate_words(["a", "b"], ["NN"])
    with pytest.raises(ConfigError, match="folder"):
        TranslationCache(tmp_path)
    bad = tmp_path / "not.sqlite"
    bad.write_text("this is not a database" * 100)
    with pytest.raises(LangshiftError, match="sqlite"):
        CachedTranslator(Upper("en", "es"), bad).translate_words(["a"])


def test_registry_does_not_hold_the_test_backend():
    assert "upper-test" not in TRANSLATORS.names()
