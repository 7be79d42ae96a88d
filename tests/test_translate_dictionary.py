import gzip
from pathlib import Path

import pytest

from langshift.errors import ConfigError, LangshiftError
from langshift.translate import get_translator
from langshift.translate.dictionary import _b64_number, parse_dictd_entry, read_dictd

FREEDICT = Path("/usr/share/dictd/freedict-eng-spa.index")
_B64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"


def b64(n):
    out = ""
    while True:
        out = _B64[n % 64] + out
        n //= 64
        if n == 0:
            return out


def write_dictd(folder, entries, compress=True):
    """entries: list of (headword, body) written as a dictd pair (index sorted like dictd's)."""
    data, index = b"", []
    for head, body in [("00databaseshort", "00-database-short\n  Test dictionary\n")] + entries:
        raw = body.encode("utf-8")
        index.append(f"{head}\t{b64(len(data))}\t{b64(len(raw))}")
        data += raw
    (folder / "t.index").write_text("\n".join(index) + "\n", encoding="utf-8")
    if compress:
        with gzip.open(folder / "t.dict.dz", "wb") as fh:
            fh.write(data)
    else:
        (folder / "t.dict").write_bytes(data)
    return folder / "t.index"


def test_base64_numbers_and_entry_parsing():
    assert _b64_number("A") == 0 and _b64_number("BA") == 64 and _b64_number(b64(123456)) == 123456
    assert parse_dictd_entry("book /buk/\n1. libro\n2. pedir, reservar\n") == ["libro", "pedir", "reservar"]
    assert parse_dictd_entry("man /mæn/\nhombre\n") == ["hombre"]


@pytest.mark.parametrize("compress", [True, False])
def test_hand_written_dictd_pair(tmp_path, compress):
    index = write_dictd(tmp_path, [
        ("book", "book /bʊk/\ncontable, tenedordelibros\n"),
        ("book", "book /buk/\n1. libro\n2. reservar\n"),
        ("daughter", "daughter /dɔːtər/\nhija\n"),
        ("New York", "New York\nNueva York\n"),
    ], compress)
    entries = read_dictd(index)
    assert entries["book"] == [["contable", "tenedordelibros"], ["libro", "reservar"]]
    freq = get_translator("dictionary", "en", "es", path=str(index))
    assert freq.translate_words(["book", "Book", "DAUGHTER", "new york", "books"]) == [
        "libro", "Libro", "HIJA", "Nueva York", None]
    first = get_translator("dictionary", "en", "es", path=str(index), choose="first")
    assert first.translate_words(["book"]) == ["contable"]
    assert freq.stats["untranslated"] == 1


def test_two_column_file(tmp_path):
    path = tmp_path / "en-es.txt"
    path.write_text("house casa\nhouse hogar\ndog\tperro\n\n", encoding="utf-8")
    tr = get_translator("dictionary", "en", "es", path=str(path), choose="first")
    assert tr.translate_words(["house", "Dog", "cat"]) == ["casa", "Perro", None]
    path.write_text("house\n", encoding="utf-8")
    with pytest.raises(LangshiftError, match="line 1 needs two columns"):
        get_translator("dictionary", "en", "de", path=str(path))


@pytest.mark.skipif(not FREEDICT.exists(), reason="dict-freedict-eng-spa not installed")
def test_real_freedict_files():
    tr = get_translator("dictionary", "en", "es")
    assert len(tr.backend.entries) > 5000
    assert tr.translate_words(["book", "man", "daughter", "water", "King"]) == [
        "libro", "hombre", "hija", "agua", "Rey"]


def test_errors(tmp_path):
    with pytest.raises(ConfigError, match="no FreeDict dictionary"):
        get_translator("dictionary", "en", "xh")
    with pytest.raises(ConfigError, match="path"):
        get_translator("dictionary", "en", "es", path=str(tmp_path / "missing.index"))
    with pytest.raises(ConfigError, match="choose"):
        get_translator("dictionary", "en", "es", path=str(write_dictd(tmp_path, [])), choose="best")
    tr = get_translator("dictionary", "en", "es", path=str(write_dictd(tmp_path, [("a", "a\nb\n")])))
    with pytest.raises(ConfigError, match="words only"):
        tr.translate_sentences(["a b"])
