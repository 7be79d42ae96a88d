import pytest

from langshift.errors import ConfigError
from langshift.text.units import sentence_spans, split_sentences, words

EN = ("Dr. Smith met Mrs. Jones at 10.30 a.m. on Monday. They talked about the U.S. economy! "
      "Did it go well? Nobody knows.")
ES = ("¿Dónde está tu padre? ¡No lo sé! Vive a 3,5 km al norte de la ciudad. "
      "El señor García llegó ayer, pero no dijo nada.")


def test_english_sentences_keep_abbreviations_together():
    assert split_sentences(EN, "en") == [
        "Dr. Smith met Mrs. Jones at 10.30 a.m. on Monday.", "They talked about the U.S. economy!",
        "Did it go well?", "Nobody knows."]


def test_spanish_sentences_with_inverted_marks():
    assert split_sentences(ES, "es") == [
        "¿Dónde está tu padre?", "¡No lo sé!", "Vive a 3,5 km al norte de la ciudad.",
        "El señor García llegó ayer, pero no dijo nada."]


def test_sentence_spans_index_the_original_text_including_repeats():
    text = "Yes. Yes.\nNo!  Yes."
    spans = sentence_spans(text, "en")
    assert [text[a:b] for a, b in spans] == ["Yes.", "Yes.", "No!", "Yes."]
    assert spans[0] != spans[1]


def test_unknown_language_falls_back_and_warns(caplog):
    assert split_sentences("Habari yako. Nzuri sana!", "sw") == ["Habari yako.", "Nzuri sana!"]
    assert split_sentences("Habari yako. Nzuri sana!", "sw", fallback="none") == ["Habari yako. Nzuri sana!"]
    with pytest.raises(ConfigError, match="fallback"):
        split_sentences("x", "sw", fallback="regex")


def test_word_offsets_round_trip_and_rules():
    text = "O’Brien's state-of-the-art car costs 1,000.50 dollars — don't panic! हिन्दी भाषा 😀"
    toks = words(text, punct=True)
    assert all(text[w.start:w.end] == w.text for w in toks)
    assert [w.text for w in words(text)] == ["O’Brien's", "state-of-the-art", "car", "costs", "1,000.50",
                                             "dollars", "don't", "panic", "हिन्दी", "भाषा"]
    punct = [w.text for w in toks if w.is_punct]
    assert punct == ["—", "!", "😀"]


def test_replacement_by_offsets_preserves_spacing():
    text = "The  book,\tthe books."
    out, last = [], 0
    for w in words(text):
        out.append(text[last:w.start])
        out.append(w.text.upper() if w.text.startswith("book") else w.text)
        last = w.end
    out.append(text[last:])
    assert "".join(out) == "The  BOOK,\tthe BOOKS."


def test_lines_without_an_inner_full_stop_skip_pysbd_and_match_it(monkeypatch):
    from langshift.text import units

    seg = units._segmenter("en", "en")
    lines = ["  And God said, Let there be light: and there was light.  ", "Selah", "He came (not he.) Then left.",
             "Dr. Who spoke. Then left!", "Is it? Yes", "No end mark here"]
    expected = [[p.strip() for p in seg.segment(line)] for line in lines]
    calls = []
    real = seg.segment
    monkeypatch.setattr(seg, "segment", lambda text: calls.append(text) or real(text))
    text = "\n".join(lines)
    got = [[line[a:b] for a, b in sentence_spans(line, "en")] for line in lines]
    assert got == expected
    assert calls == lines[2:5]  # only lines with a full stop (or ?/!) before more text reach pysbd
    spans = sentence_spans(text, "en")
    assert [text[a:b] for a, b in spans] == [s for line in expected for s in line]


def test_the_fast_path_knows_each_language_s_own_full_stops():
    assert split_sentences("Τι είναι αυτό; Δεν ξέρω.", "el") == ["Τι είναι αυτό;", "Δεν ξέρω."]
    assert split_sentences("Բարեւ։ Ինչպես ես։", "hy") == ["Բարեւ։", "Ինչպես ես։"]
    assert split_sentences("ይህ ምንድን ነው። አላውቅም።", "am") == ["ይህ ምንድን ነው።", "አላውቅም።"]
