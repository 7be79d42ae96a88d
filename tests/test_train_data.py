"""CLO data (fake translator), JSONL validation, the offline instruction builder, the CLI."""

from __future__ import annotations

import json

import pytest

from langshift.cli import main
from langshift.errors import ConfigError, LangshiftError
from langshift.pipeline import run_recipe
from langshift.train import clo_data, instructions
from langshift.train.clo_data import CloDataConfig, run_clo_data
from langshift.train.data import read_jsonl
from langshift.translate import TRANSLATORS, Translator


class FakeTranslator:
    """Upper-cases each line; cannot translate lines containing 'XX'."""

    def __init__(self):
        self.seen = []

    def translate_sentences(self, sentences):
        self.seen.extend(sentences)
        return [None if "XX" in s else s.upper() for s in sentences]


class UpperTranslator(Translator):
    """FakeTranslator as a registered backend (`--translator upper`): needs nothing installed."""

    name = "upper"

    def translate_sentences(self, sentences):
        return FakeTranslator().translate_sentences(sentences)


@pytest.fixture()
def upper(monkeypatch):
    TRANSLATORS.names()  # the built-in backends first, then ours beside them for this test only
    monkeypatch.setitem(TRANSLATORS._items, "upper", UpperTranslator)


def _sft(tmp_path, rows):
    path = tmp_path / "sft.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def test_translate_keeps_ids_layout_and_reports_untranslated():
    recs = [{"id": "a", "instruction": "say hi", "response": "hi\n\n  - one"},
            {"id": "b", "instruction": "fail XX here", "response": "ok"},
            {"id": "c", "instruction": "say hi", "response": "bye"}]
    fake = FakeTranslator()
    kept, failed = clo_data.translate_records(recs, fake)
    assert [r["id"] for r in kept] == ["a", "c"]
    assert kept[0] == {"id": "a", "x_en": "say hi", "y_en": "hi\n\n  - one", "x_t": "SAY HI", "y_t": "HI\n\n  - ONE"}
    assert failed[0]["id"] == "b" and failed[0]["failed_fields"] == ["instruction"]
    assert fake.seen.count("say hi") == 1  # each distinct line sent once


def test_run_clo_data_writes_both_files(tmp_path):
    sft = _sft(tmp_path, [{"id": 1, "instruction": "q one", "response": "a one"},
                          {"id": 2, "instruction": "q XX", "response": "a"}])
    out = tmp_path / "clo.jsonl"
    res = run_clo_data(CloDataConfig(sft=str(sft), translator="fake", target_lang="es", out=str(out)),
                       translator=FakeTranslator())
    assert res.translated == 1 and res.untranslated == 1
    assert read_jsonl(out, clo_data.CLO_FIELDS)[0]["x_t"] == "Q ONE"
    assert json.loads((tmp_path / "clo.untranslated.jsonl").read_text())["id"] == "2"
    assert json.loads((tmp_path / "clo.stats.json").read_text()) == res.to_dict()
    assert res.to_dict()["source_lang"] == "en" and res.to_dict()["target_lang"] == "es"


def test_clo_data_refuses_the_same_language_on_both_sides():
    with pytest.raises(ConfigError, match="--target-lang='en'.*source language too"):
        CloDataConfig(sft="s", translator="upper", target_lang="en", out="o")


def test_clo_data_cli_and_pipeline_write_the_same_records(tmp_path, upper, capsys):
    """`langshift clo data` and a recipe's clo_data stage call the same front door with the same config."""
    sft = _sft(tmp_path, [{"id": i, "instruction": f"question {i}\n  - item", "response": f"answer {i}"}
                          for i in range(6)] + [{"id": "x", "instruction": "q XX", "response": "a"}])
    cli_out = tmp_path / "cli" / "clo.jsonl"
    assert main(["clo", "data", "--sft", str(sft), "--translator", "upper", "--target-lang", "es",
                 "--source-lang", "en", "--out", str(cli_out)]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["translated"] == 6 and printed["untranslated"] == 1
    recipe = {"name": "clo-data-only", "inputs": {"sft": str(sft)},
              "stages": {"clo_data": {"translator": "upper", "source_lang": "en", "target_lang": "es"}}}
    result = run_recipe(recipe, tmp_path / "run", progress=None)
    summary = result["stages"]["clo_data"]["summary"]
    assert {k: summary[k] for k in ("records", "translated", "untranslated", "source_lang", "target_lang")} == \
        {k: printed[k] for k in ("records", "translated", "untranslated", "source_lang", "target_lang")}
    stage = tmp_path / "run" / "clo_data"
    for name in ("clo.jsonl", "clo.untranslated.jsonl"):
        assert (stage / name).read_bytes() == (cli_out.parent / name).read_bytes()


@pytest.mark.parametrize("line, message", [
    ({"id": "x", "instruction": "q"}, r"line 2: field 'response' is missing"),
    ({"id": "x", "instruction": "q", "response": ""}, r"line 2: field 'response' is ''"),
    ({"id": "0", "instruction": "q", "response": "r"}, r"line 2: id '0' appears twice"),
])
def test_bad_sft_lines(tmp_path, line, message):
    sft = _sft(tmp_path, [{"id": "0", "instruction": "q", "response": "r"}, line])
    with pytest.raises(LangshiftError, match=message):
        run_clo_data(CloDataConfig(sft=str(sft), translator="fake", target_lang="es", out=str(tmp_path / "o.jsonl")),
                     translator=FakeTranslator())
    assert not (tmp_path / "o.jsonl").exists()


def test_not_json_line(tmp_path):
    path = tmp_path / "x.jsonl"
    path.write_text('{"id": "1", "instruction": "a", "response": "b"}\nnot json\n', encoding="utf-8")
    with pytest.raises(LangshiftError, match="line 2 is not JSON"):
        read_jsonl(path, clo_data.SFT_FIELDS)


def test_json_lines_skip_blanks_and_name_the_line_that_is_not_an_object(tmp_path):
    from langshift.files import read_json_lines

    path = tmp_path / "x.jsonl"
    path.write_text('{"a": 1}\n\n{"b": 2}\n', encoding="utf-8")
    assert read_json_lines(path) == [(1, {"a": 1}), (3, {"b": 2})]
    path.write_text('{"a": 1}\n[1, 2]\n', encoding="utf-8")
    with pytest.raises(LangshiftError, match="line 2 is a list, not a JSON object"):
        read_json_lines(path)
    path.write_text("\n\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="only blank lines"):
        read_json_lines(path)


def test_build_sft_is_reproducible_and_honest(tmp_path):
    a = instructions.build_sft(20, ["man"], seed=1)
    assert a == instructions.build_sft(20, ["man"], seed=1) and len(a) == 20
    assert len({r["id"] for r in a}) == 20
    for r in a:  # each answer repeats its page's own description, nothing invented
        name = r["id"].split(":")[1].rsplit(".", 1)[0]
        assert name in r["instruction"] and name in r["response"]


def test_cli_build_sft_and_clo_data(tmp_path, capsys, upper):
    out = tmp_path / "sft.jsonl"
    assert main(["train", "build-sft", "--out", str(out), "--n", "5", "--sources", "man"]) == 0
    assert len(read_jsonl(out, clo_data.SFT_FIELDS)) == 5
    assert main(["train", "build-sft", "--out", str(out), "--n", "5"]) == 2  # exists, no --overwrite
    assert "--overwrite" in capsys.readouterr().err
    assert main(["clo", "data", "--sft", str(out), "--translator", "upper", "--target-lang", "es",
                 "--out", str(tmp_path / "clo.jsonl")]) == 0
    assert json.loads(capsys.readouterr().out)["translated"] == 5
    assert main(["train", "clo", "--model", "m", "--data", "d", "--out", str(tmp_path / "o"), "--lambda", "2"]) == 2
    assert "--lambda=2.0" in capsys.readouterr().err
