import shutil
import subprocess

import pytest

from langshift.errors import ConfigError, LangshiftError, MissingDependencyError
from langshift.translate import TRANSLATORS, get_translator
from langshift.translate.apertium import escape, installed_pairs, lemma_tags, unescape

pytestmark = pytest.mark.skipif(shutil.which("apertium") is None or "eng-spa" not in installed_pairs(),
                                reason="apertium + apertium-eng-spa not installed")


@pytest.fixture(scope="module")
def tr():
    return get_translator("apertium", "en", "es")


def test_words_keep_inflection_and_case(tr):
    words = ["book", "books", "daughters", "Daughters", "Book", "BOOKS", "women", "xyzzyq", "John's"]
    assert tr.translate_words(words) == ["libro", "libros", "hijas", "Hijas", "Libro", "LIBROS", "mujeres",
                                         None, None]
    assert tr.stats["untranslated"] == 2


def test_tags_choose_the_reading(tr):
    assert tr.translate_words(["book", "book", "books"], ["NN", "VB", "NNS"]) == ["libro", "reservar", "libros"]


def test_each_distinct_word_reaches_the_backend_once():
    tr = get_translator("apertium", "en", "es")
    tr.translate_words(["house", "house", "dog", "house"])
    assert tr.calls == 2 and tr.stats["requests"] == 1 and tr.stats["cache_hits"] == 2
    tr.translate_words(["dog", "cat"])
    assert tr.calls == 3 and tr.stats["requests"] == 2


def test_sentences_in_one_subprocess(tr, monkeypatch):
    calls = []
    real = subprocess.run
    monkeypatch.setattr(subprocess, "run", lambda *a, **k: calls.append(a) or real(*a, **k))
    sents = ["The old man gave the book to his daughter.", "Costs $5 [approx] a/b\\c ^x$.", "",
             "Two\nlines here."] + [f"I have {n} dogs." for n in range(200)]
    out = get_translator("apertium", "en", "es").translate_sentences(sents)
    assert len(calls) == 1
    assert out[0] == "El hombre viejo dio el libro a su hija."
    assert "$5 [approx]" in out[1] and "\\c ^x$" in out[1]
    assert out[2] == "" and "\n" not in out[3]
    assert out[4] == "Tengo 0 perros."


def test_unsupported_pair_lists_installed_pairs():
    with pytest.raises(ConfigError, match="installed pairs: .*eng-spa"):
        get_translator("apertium", "en", "fi")


def test_missing_binary_names_the_install(tmp_path):
    with pytest.raises(MissingDependencyError, match="apt-get install apertium apertium-eng-spa"):
        get_translator("apertium", "en", "es", bin_dir=str(tmp_path))
    with pytest.raises(MissingDependencyError, match="no apertium language pairs"):
        get_translator("apertium", "en", "es", data_dir=str(tmp_path))


def test_bad_option_and_backend_names():
    with pytest.raises(ConfigError, match="not an option of translator 'apertium'"):
        get_translator("apertium", "en", "es", beams=3)
    with pytest.raises(LangshiftError, match="apertium"):
        get_translator("apertiun", "en", "es")
    assert {"apertium", "dictionary", "seq2seq", "llm"} <= set(TRANSLATORS.names())


def test_stream_helpers():
    raw = "a^b$c[d]e/f@g<h>\\i"
    assert unescape(escape(raw)) == raw
    assert lemma_tags("book<n><pl>") == ("book", ["n", "pl"])
    assert lemma_tags("can<vaux><pres>+not<adv>") == ("can", ["vaux", "pres"])
