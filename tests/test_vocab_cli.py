"""The ``langshift tokenizer`` commands on tiny inputs."""

from __future__ import annotations

import argparse
import json
import sys

import helpers
from langshift.errors import LangshiftError
from langshift.vocab import cli


def main(argv: list[str]) -> int:
    """``langshift`` with only this sub-command registered (other stages' CLIs are tested on their own)."""
    parser = argparse.ArgumentParser(prog="langshift")
    cli.register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except LangshiftError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


def test_train_extend_overlap_commands(tmp_path, capsys, source_bpe):
    base = tmp_path / "base"
    source_bpe.save_pretrained(base)
    text = helpers.write_lines(tmp_path / "es.txt", helpers.ES_TEXT * 20)

    assert main(["tokenizer", "train", "--text", str(text), "--kind", "unigram", "--vocab-size", "400",
                 "--base", str(base), "--out", str(tmp_path / "uni"), "--no-show-progress"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["vocab_size"] == len(json.loads((tmp_path / "uni" / "tokenizer.json").read_text())["model"]["vocab"])
    assert out["fertility"]["new"]["tokens_per_word"] < out["fertility"]["base"]["tokens_per_word"]
    assert out["overlap"]["by_kind"]["special_by_role"] == 3

    assert main(["tokenizer", "extend", "--text", str(text), "--add", "30", "--base", str(base),
                 "--out", str(tmp_path / "ext"), "--no-show-progress"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["added"] == 30 and out["vocab_size"] == len(source_bpe) + 30

    report = tmp_path / "overlap.json"
    assert main(["tokenizer", "overlap", "--source", str(base), "--target", str(tmp_path / "uni"),
                 "--report", str(report)]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed == json.loads(report.read_text()) and printed["by_kind"]["byte"] >= 256

    # an existing --out without --overwrite fails before any training, naming the flag
    assert main(["tokenizer", "train", "--text", str(text), "--vocab-size", "400",
                 "--out", str(tmp_path / "uni")]) == 2
    assert "--overwrite" in capsys.readouterr().err


def test_cli_and_a_one_stage_recipe_write_the_same_tokenizer(tmp_path, capsys, source_bpe):
    """`langshift tokenizer train` and the pipeline's tokenizer stage are one front door: same files, same figures."""
    from langshift.cli import main as langshift
    from langshift.pipeline import run_recipe

    base = helpers.save_model_folder(helpers.tiny_llama(len(source_bpe)), source_bpe, tmp_path / "base")
    text = helpers.write_lines(tmp_path / "es.txt", helpers.ES_TEXT * 20)
    assert langshift(["tokenizer", "train", "--text", str(text), "--base", str(base), "--vocab-size", "360",
                      "--out", str(tmp_path / "cli"), "--no-show-progress"]) == 0
    printed = json.loads(capsys.readouterr().out)
    recipe = {"name": "tokenizer-only", "inputs": {"model": str(base), "target_text": str(text)},
              "stages": {"tokenizer": {"vocab_size": 360, "show_progress": False}}}
    result = run_recipe(recipe, tmp_path / "run", progress=None)
    made = tmp_path / "run" / "tokenizer" / "tokenizer"
    cli_files = sorted(p.name for p in (tmp_path / "cli").iterdir())
    assert cli_files == sorted(p.name for p in made.iterdir()) and "tokenizer.json" in cli_files
    for name in cli_files:
        assert (tmp_path / "cli" / name).read_bytes() == (made / name).read_bytes(), name
    summary = result["stages"]["tokenizer"]["summary"]
    assert {k: v for k, v in summary.items() if k != "out"} == {k: v for k, v in printed.items() if k != "out"}
    assert summary["fertility"]["new"]["tokens_per_word"] < summary["fertility"]["base"]["tokens_per_word"]


def test_extend_needs_a_base(tmp_path, capsys):
    text = helpers.write_lines(tmp_path / "es.txt", helpers.ES_TEXT)
    assert main(["tokenizer", "extend", "--text", str(text), "--out", str(tmp_path / "ext")]) == 2
    assert "--base" in capsys.readouterr().err and not (tmp_path / "ext").exists()
