"""One front door per command: `langshift codeswitch measure|score|ablate|teach` write the same bytes as the
library's run_x(XConfig) given the same options, because the command is only a table row over it
(distill: tests/test_codeswitch_synth.py, which has the tiny model)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from helpers import EN_TEXT, ES_TEXT, write_lines
from langshift.cli import main
from langshift.codeswitch import AblateConfig, MeasureConfig, ScoreConfig, run_ablate, run_measure, run_score
from langshift.codeswitch.teach import TeachConfig, run_teach
from langshift.errors import ConfigError
from test_codeswitch_ablate import corpus, fake_detect
from test_codeswitch_synth import DICT


@pytest.fixture(autouse=True)
def word_list_langid(monkeypatch):
    monkeypatch.setattr("langshift.text.langid.detect", fake_detect)


def same_bytes(a: Path, b: Path) -> None:
    assert a.read_bytes() == b.read_bytes(), f"{a} and {b} differ"


def test_measure_cli_equals_library(tmp_path, capsys):
    text = write_lines(tmp_path / "c.txt", corpus())
    lib = run_measure(MeasureConfig(text=[str(text)], langs=["en", "es"], out=str(tmp_path / "lib.json"),
                                    labels_out=str(tmp_path / "lib.jsonl")))
    capsys.readouterr()
    # --langs as a comma-separated item, as before the list field
    assert main(["codeswitch", "measure", "--text", str(text), "--langs", "en,es", "--out", str(tmp_path / "cli.json"),
                 "--labels-out", str(tmp_path / "cli.jsonl")]) == 0
    printed = json.loads(capsys.readouterr().out)
    same_bytes(tmp_path / "lib.json", tmp_path / "cli.json")
    same_bytes(tmp_path / "lib.jsonl", tmp_path / "cli.jsonl")
    report = json.loads((tmp_path / "lib.json").read_text())
    assert {k: v for k, v in printed.items() if k not in ("out", "labels_out", "detectors")} == report
    assert lib.counts == report["counts"] and lib.labels_out == str(tmp_path / "lib.jsonl")
    assert MeasureConfig(text="c.txt", langs=["en", "es"]).langs == MeasureConfig(text=["c.txt"], langs=["en,es"]).langs
    # the library checks its outputs too: --out may not be the input
    with pytest.raises(ConfigError, match="--out"):
        run_measure(MeasureConfig(text=[str(text)], out=str(text), overwrite=True))


def test_score_cli_equals_library(tmp_path, capsys):
    docs = corpus()
    gold = write_lines(tmp_path / "gold.jsonl", [json.dumps({"text": d, "label": "none"}) for d in docs])
    lib = run_score(ScoreConfig(gold=str(gold), out=str(tmp_path / "lib.json"), rows_out=str(tmp_path / "lib.jsonl")))
    capsys.readouterr()
    assert main(["codeswitch", "score", "--gold", str(gold), "--out", str(tmp_path / "cli.json"),
                 "--rows-out", str(tmp_path / "cli.jsonl")]) == 0
    printed = json.loads(capsys.readouterr().out)
    same_bytes(tmp_path / "lib.json", tmp_path / "cli.json")
    same_bytes(tmp_path / "lib.jsonl", tmp_path / "cli.jsonl")
    written = json.loads((tmp_path / "lib.json").read_text())
    assert "confusion" in written and "confusion" not in printed  # the table stays in the file
    assert printed["per_label"] == written["per_label"] == lib.to_dict()["per_label"]
    assert written["measure"]["langs"] == ["en", "es"] and "threshold" in written["detect"]
    with pytest.raises(ConfigError, match="--rows-out"):
        run_score(ScoreConfig(gold=str(gold), rows_out=str(gold), overwrite=True))


def test_ablate_cli_equals_library(tmp_path, capsys):
    text = write_lines(tmp_path / "c.txt", corpus())
    lib = run_ablate(AblateConfig(text=str(text), out=str(tmp_path / "lib"), seed=4, control_from="any"))
    capsys.readouterr()
    assert main(["codeswitch", "ablate", "--text", str(text), "--out", str(tmp_path / "cli"), "--seed", "4",
                 "--control-from", "any"]) == 0
    printed = json.loads(capsys.readouterr().out)
    for name in ("original.txt", "cs-free.txt", "control.txt", "summary.json"):
        same_bytes(tmp_path / "lib" / name, tmp_path / "cli" / name)
    summary = json.loads((tmp_path / "lib" / "summary.json").read_text())
    assert printed == lib.to_dict() | {"out": str(tmp_path / "cli")}
    assert "held_out" in summary and "held_out" not in printed
    assert "replaced" in summary["corpora"]["control"] and "replaced" not in printed["corpora"]["control"]
    with pytest.raises(ConfigError, match="--out"):
        run_ablate(AblateConfig(text=str(text), out=str(tmp_path), overwrite=True))


def test_teach_cli_equals_library(tmp_path, capsys):
    pairs = write_lines(tmp_path / "pairs.tsv", [f"{e}\t{s}" for e, s in zip(EN_TEXT, ES_TEXT[:8], strict=True)])
    dic = write_lines(tmp_path / "d.tsv", DICT)
    options = {"translator": "dictionary", "dictionary": str(dic), "words": "random", "word_share": 1.0,
               "min_target_spans": 0.0, "limit": 6}
    lib = run_teach(TeachConfig(pairs=str(pairs), out=str(tmp_path / "lib.jsonl"), **options))
    capsys.readouterr()
    argv = [x for k, v in options.items() for x in ("--" + k.replace("_", "-"), str(v))]
    assert main(["codeswitch", "teach", "--pairs", str(pairs), "--out", str(tmp_path / "cli.jsonl"), *argv]) == 0
    printed = json.loads(capsys.readouterr().out)
    same_bytes(tmp_path / "lib.jsonl", tmp_path / "cli.jsonl")
    same_bytes(tmp_path / "lib.jsonl.summary.json", tmp_path / "cli.jsonl.summary.json")
    assert lib.pairs == printed["pairs"] == 6 and printed["kept"] == lib.kept > 0
    assert set(printed["config"]) == set(json.loads((tmp_path / "lib.jsonl.summary.json").read_text())["config"])
    with pytest.raises(ConfigError, match="--limit"):
        TeachConfig(pairs=str(pairs), out="o.jsonl", limit=0)
