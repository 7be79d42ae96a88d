"""One front door per stage: `langshift codeswitch syncs|migrate` and `langshift static train` write the same
bytes as a one-stage recipe run by the pipeline, because both call run_syncs / run_migrate / run_static with
the same config class."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

from langshift.cli import main
from langshift.codeswitch import MigrateConfig, SyncsConfig
from langshift.errors import ConfigError
from langshift.pipeline import run_recipe
from langshift.static import StaticRunConfig

EN = ["The king of the city spoke to the people in the house.  The man gave the book to his daughter!",
      "Water and bread were given to the king, and the king was glad.",
      "The man took the book and the water to the house of the king."]
ES = ["El rey habló al pueblo en la casa.", "El hombre dio el libro a su hija y el agua al rey.",
      "La casa del rey tiene agua y pan.", "El pueblo come pan en la casa."] * 5
DICTIONARY = "king\trey\nwater\tagua\nbook\tlibro\nman\thombre\nhouse\tcasa\npeople\tpueblo\nbread\tpan\ncity\tciudad\n"


@pytest.fixture()
def corpus(tmp_path):
    text, words = tmp_path / "en.txt", tmp_path / "en-es.txt"
    text.write_text("\n".join(EN) + "\n", encoding="utf-8")
    words.write_text(DICTIONARY, encoding="utf-8")
    return text, words


def _flags(options: dict) -> list[str]:
    argv = []
    for key, value in options.items():
        argv += ["--" + key.replace("_", "-"), json.dumps(value) if isinstance(value, dict) else str(value)]
    return argv


def _same_codeswitched(stage: str, options: dict, text: Path, tmp_path: Path, capsys) -> dict:
    cli = tmp_path / "cli"
    assert main(["codeswitch", stage, "--text", str(text), "--out", str(cli / "cs.jsonl"), "--text-out",
                 str(cli / "cs.txt"), *_flags(options)]) == 0
    printed = json.loads(capsys.readouterr().out)
    recipe = {"name": "one", "inputs": {"source_text": str(text)}, "stages": {stage: options}}
    result = run_recipe(recipe, tmp_path / "run", progress=None)
    made = tmp_path / "run" / stage
    assert (made / "codeswitched.txt").read_bytes() == (cli / "cs.txt").read_bytes()
    assert (made / "codeswitched.jsonl").read_bytes() == (cli / "cs.jsonl").read_bytes()
    recorded = result["stages"][stage]["summary"]  # the same Result: only the paths and the timings differ
    assert recorded["sentences"] == printed["sentences"] and recorded["translator_calls"] == printed["translator_calls"]
    assert printed["out"] == str(cli / "cs.jsonl") and printed["text_out"] == str(cli / "cs.txt")
    return printed


def test_syncs_cli_and_pipeline_write_the_same_bytes(corpus, tmp_path, capsys):
    text, words = corpus
    options = {"translator": "dictionary", "translator_options": {"path": str(words)}, "words": "random",
               "mix": "extreme", "type": "token-repl", "density": 1.0, "word_share": 0.5, "batch_size": 2}
    printed = _same_codeswitched("syncs", options, text, tmp_path, capsys)
    assert printed["modified"] > 0 and "rey" in (tmp_path / "cli" / "cs.txt").read_text(encoding="utf-8")


@pytest.mark.skipif(importlib.util.find_spec("HanTa") is None, reason="hanta not installed")
def test_migrate_cli_and_pipeline_write_the_same_bytes(corpus, tmp_path, capsys):
    text, words = corpus
    options = {"translator": "dictionary", "translator_options": {"path": str(words)}, "tagger": "hanta",
               "share": 0.5, "batch_size": 2}
    printed = _same_codeswitched("migrate", options, text, tmp_path, capsys)
    assert printed["replaced"] > 0 and (tmp_path / "cli" / "cs.jsonl.summary.json").is_file()


def test_static_train_cli_and_pipeline_write_the_same_bytes(tmp_path, capsys):
    es = tmp_path / "es.txt"
    es.write_text("\n".join(ES) + "\n", encoding="utf-8")
    options = {"dim": 8, "minn": 3, "maxn": 4, "epochs": 2, "min_count": 1, "bucket": 500, "workers": 1, "seed": 0}
    assert main(["static", "train", "--text", str(es), "--out", str(tmp_path / "cli"), *_flags(options)]) == 0
    printed = json.loads(capsys.readouterr().out)
    recipe = {"name": "one", "inputs": {"target_text": str(es)}, "stages": {"static": options}}
    result = run_recipe(recipe, tmp_path / "run", progress=None)
    made = tmp_path / "run" / "static" / "static"
    names = sorted(p.name for p in (tmp_path / "cli").iterdir())
    assert names == sorted(p.name for p in made.iterdir()) and "model.bin" in names
    for name in names:
        assert (made / name).read_bytes() == (tmp_path / "cli" / name).read_bytes(), name
    recorded = result["stages"]["static"]["summary"]
    assert recorded["steps"] == printed["steps"] == ["trained"] and recorded["words"] == printed["words"] > 5


def test_complete_configs_refuse_what_is_missing(tmp_path):
    with pytest.raises(TypeError, match="text"):
        SyncsConfig(out=str(tmp_path / "o.jsonl"))  # required: no default
    with pytest.raises(ConfigError, match="translator_options"):
        MigrateConfig(text=["x"], out="o.jsonl", translator_options="[1, 2]")
    assert MigrateConfig(text="x", out="o", translator_options="{model: m}").translator_options == {"model": "m"}
    with pytest.raises(ConfigError, match="init"):
        StaticRunConfig(out=str(tmp_path / "s"))  # neither a model to start from nor text to train on
    assert StaticRunConfig(text="t.txt", codeswitched="c.txt", out="s").codeswitched == ["c.txt"]
