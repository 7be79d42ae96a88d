import shutil
import subprocess

import pytest

from langshift.errors import ConfigError, LangshiftError, MissingDependencyError
from langshift.translate import TRANSLATORS, get_translator
from langshift.translate.apertium import installed_pairs
from langshift.translate.apertium_stream import (
    KeptPipeline,
    escape,
    escape_words,
    lemma_tags,
    split_unescaped,
    stream_tokens,
    unescape,
)

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


def count_popen(monkeypatch):
    started = []
    real = subprocess.Popen
    monkeypatch.setattr(subprocess, "Popen", lambda args, *a, **k: started.append(args) or real(args, *a, **k))
    return started


def test_sentences_in_one_subprocess(tr, monkeypatch):
    calls = count_popen(monkeypatch)
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


def test_word_pipelines_are_kept_between_calls(monkeypatch):
    started = count_popen(monkeypatch)
    tr = get_translator("apertium", "en", "es")
    assert tr.translate_words(["book", "houses"], ["NN", "NNS"]) == ["libro", "casas"]
    assert len(started) == 3  # analyser, bilingual transducer, generator
    assert tr.translate_words(["daughter", "women"], ["NN", "NNS"]) == ["hija", "mujeres"]
    assert len(started) == 3  # the same three processes again
    assert tr.translate_words(["dogs"]) == ["perros"]  # untagged: the kept analyser + a fresh tagger
    assert len(started) == 4


def test_kept_pipeline_fails_loudly_instead_of_shifting_outputs():
    from langshift.translate.apertium_stream import nul_payload

    ok = KeptPipeline("cat")
    assert ok.process(nul_payload(["a", "b\\$"]), 2) == b"a\0b\\$\0"
    assert ok.process(nul_payload(["c"]), 1) == b"c\0"
    ok.stop()
    doubled = KeptPipeline("sed -zu 's/^/x\\x00/'")  # two outputs per item: alignment lost
    with pytest.raises(LangshiftError, match="lost alignment"):
        doubled.process(nul_payload(["a", "b"]), 2)
    dead = KeptPipeline("head -c 1; echo broken >&2; exit 3")
    with pytest.raises(LangshiftError, match="ended early.*broken"):
        dead.process(nul_payload(["a", "b"]), 2)


def test_split_unescaped_matches_a_character_scan():
    import random

    def scan(text, sep):  # the definition: a backslash escapes the next character, escapes are kept
        parts, cur, i = [], "", 0
        while i < len(text):
            if text[i] == "\\" and i + 1 < len(text):
                cur, i = cur + text[i:i + 2], i + 2
                continue
            if text[i] == sep:
                parts.append(cur)
                cur = ""
            else:
                cur += text[i]
            i += 1
        return [*parts, cur]

    rng = random.Random(0)
    for _ in range(3000):
        text = "".join(rng.choice("ab/+\\<>") for _ in range(rng.randrange(0, 12)))
        for sep in "/+":
            assert split_unescaped(text, sep) == scan(text, sep), (text, sep)
    assert split_unescaped("^a\\/b/c<n>$", "/") == ["^a\\/b", "c<n>$"]
    assert escape_words(["a$", "b c", "[d]"], "[]") == "a\\$[]b c[]\\[d\\]"
    assert escape_words(["a$", "[d]"], "[]") == "a\\$[]\\[d\\]"
    assert stream_tokens("^a<n>$[x] ^b$") == [("lu", "a<n>"), ("superblank", "x"), ("text", " "), ("lu", "b")]
