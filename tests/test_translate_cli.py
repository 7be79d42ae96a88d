import json
import shutil

import pytest

from langshift.cli import main

FREEDICT = "/usr/share/dictd/freedict-eng-spa.index"


def test_words_to_jsonl_with_a_dictionary(tmp_path, capsys):
    src = tmp_path / "words.txt"
    src.write_text("book\nHouse\nxyzzyq\n", encoding="utf-8")
    dic = tmp_path / "d.txt"
    dic.write_text("book libro\nhouse casa\n", encoding="utf-8")
    out = tmp_path / "out.jsonl"
    code = main(["translate", "--backend", "dictionary", "--source-lang", "en", "--target-lang", "es", "--words", "--in", str(src),
                 "--out", str(out), "--cache", str(tmp_path / "c.sqlite"), "--option", f"path={dic}"])
    assert code == 0
    rows = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert rows == [{"source": "book", "translation": "libro"}, {"source": "House", "translation": "Casa"},
                    {"source": "xyzzyq", "translation": None}]
    summary = json.loads(capsys.readouterr().out)
    assert summary["calls"] == 3 and summary["untranslated"] == 1


@pytest.mark.skipif(shutil.which("apertium") is None, reason="apertium not installed")
def test_sentences_to_text_with_apertium(tmp_path):
    src = tmp_path / "s.txt"
    src.write_text("The old man gave the book to his daughter.\n", encoding="utf-8")
    out = tmp_path / "out.txt"
    assert main(["translate", "--backend", "apertium", "--source-lang", "en", "--target-lang", "es", "--in", str(src),
                 "--out", str(out)]) == 0
    assert out.read_text(encoding="utf-8") == "El hombre viejo dio el libro a su hija.\n"


def test_errors_exit_2_and_write_nothing(tmp_path, capsys):
    src = tmp_path / "s.txt"
    src.write_text("hello\n", encoding="utf-8")
    out = tmp_path / "out.txt"
    assert main(["translate", "--backend", "nope", "--source-lang", "en", "--target-lang", "es", "--in", str(src),
                 "--out", str(out)]) == 2
    assert main(["translate", "--backend", "dictionary", "--source-lang", "en", "--target-lang", "es", "--in", str(src),
                 "--out", str(out), "--option", "oops"]) == 2
    err = capsys.readouterr().err
    assert "no such translator" in err and "KEY=VALUE" in err
    assert not out.exists()
