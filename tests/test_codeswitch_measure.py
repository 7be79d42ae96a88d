from __future__ import annotations

import json

import pytest

from langshift.cli import main
from langshift.codeswitch.measure import MeasureOptions, measure, parts
from langshift.errors import ConfigError
from test_codeswitch_migrate import FakeTranslator

# A hand-built corpus: one document per line, every sentence labelled by construction.
CORPUS = [
    ("The king of the city spoke to the people in the house.", "monolingual"),
    ("The rey of the ciudad spoke to the pueblo in the casa.", "token-repl"),
    ("Her brother wrote a letter (carta) about the river.", "token-annt"),
    ("The old man gave the book to his daughter. (El hombre viejo dio el libro a su hija.)", "sent-annt"),
    ("Water and bread were brought to the table for the children.", "monolingual"),
    ("El médico dijo que el paciente necesita descanso y agua.", "sent-repl"),
    ("Le roi de la ville parle au peuple dans la maison.", "unrelated"),
    ("Light came into the world and the darkness did not overcome it.", "monolingual"),
]


def test_parts_cut_segments():
    p = parts("The king (rey) spoke (to them).")
    assert p.outside == "The king spoke ."
    assert [s for _, s in p.segments] == ["rey", "to them"]


def test_measure_recovers_hand_built_types():
    # as three documents, so that each has an English majority
    docs = [" ".join(t for t, _ in CORPUS[:4]), " ".join(t for t, _ in CORPUS[4:6]) + " The sun rose over the "
            "green hills.", CORPUS[6][0] + " " + CORPUS[7][0]]
    report, rows = measure(docs, MeasureOptions(langs=["en", "es"]))
    got = {r["text"]: r["label"] for r in rows}
    # pysbd cuts "Sentence. (Oración.)" in two: the English half is monolingual, the annotation is sent-annt
    english, note = CORPUS[3][0].split(" (")
    expected = dict(CORPUS[:3] + CORPUS[4:]) | {english: "monolingual", "(" + note: "sent-annt",
                                                 "The sun rose over the green hills.": "monolingual"}
    assert got == expected
    assert report["counts"]["monolingual"] == 5 and report["counts"]["sent-annt"] == 1
    assert report["code_switched"] == 5
    assert report["examples"]["token-repl"] == [CORPUS[1][0]]
    assert abs(sum(report["shares"].values()) - 1) < 1e-5


def test_split_annotation_sentence_and_translation_check():
    # the splitter may cut "Sentence. (Oración.)" in two: the parenthesised sentence annotates the previous one
    doc = "The old man gave the book to his daughter. (El hombre viejo dio el libro a su hija.)"
    _, rows = measure([doc], MeasureOptions())
    assert "sent-annt" in [r["label"] for r in rows]
    # with a translator, an annotation must translate what stands beside it
    es_en = FakeTranslator(sentences={"carta": "letter", "mesa": "table"})
    _, rows = measure(["Her brother wrote a letter (carta) about the river."], MeasureOptions(), translator=es_en)
    assert rows[0]["label"] == "token-annt"
    _, rows = measure(["Her brother wrote a letter (mesa) about the river."], MeasureOptions(), translator=es_en)
    assert rows[0]["label"] == "token-repl"


def test_measure_cli_and_config(tmp_path, capsys):
    f = tmp_path / "c.txt"
    f.write_text("\n".join(t for t, _ in CORPUS) + "\n", encoding="utf-8")
    assert main(["codeswitch", "measure", "--text", str(f), "--langs", "en,es", "--out", str(tmp_path / "r.json"),
                 "--labels-out", str(tmp_path / "l.jsonl")]) == 0
    rep = json.loads((tmp_path / "r.json").read_text())
    assert rep["sentences"] == len(CORPUS) + 1  # the sent-annt line is split in two by the splitter
    assert len((tmp_path / "l.jsonl").read_text().splitlines()) == rep["sentences"]
    with pytest.raises(ConfigError, match="langs"):
        MeasureOptions(langs=["en"])
