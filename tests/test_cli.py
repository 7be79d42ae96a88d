"""The command line as a user meets it: plugin listing, error exits, the generated reference."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from langshift.cli import main

ROOT = Path(__file__).resolve().parent.parent


def test_ls_lists_every_registry_with_its_plugins(capsys):
    assert main(["ls"]) == 0
    out = capsys.readouterr().out
    for kind, names in {"init method": ["random", "mean", "fvt", "focus", "migrate", "wechsel", "salt"],
                        "translator": ["apertium", "dictionary", "seq2seq", "llm"],
                        "tagger": ["hanta", "apertium", "spacy"]}.items():
        assert f"{kind}:" in out, out
        block = out.split(f"{kind}:")[1]
        for name in names:
            assert f"\n  {name} " in block


def test_unknown_method_exits_2_with_close_names(tmp_path, capsys):
    code = main(["transfer", "--model", "smollm2-135m-instruct", "--tokenizer", str(tmp_path), "--method", "focsu",
                 "--out", str(tmp_path / "out")])
    assert code == 2
    err = capsys.readouterr().err
    assert "focsu" in err and "'focus'" in err
    assert not (tmp_path / "out").exists()


def test_cli_reference_is_current():
    result = subprocess.run([sys.executable, str(ROOT / "scripts" / "cli_reference.py"), "--check"], cwd=ROOT)
    assert result.returncode == 0, "docs/cli.md is stale: run python scripts/cli_reference.py"


def test_help_does_not_import_torch():
    """Building the parser (every `langshift … --help`, every typo) must not pay torch's import (seconds)."""
    import subprocess
    import sys

    code = ("import sys; from langshift.cli import build_parser; build_parser(); "
            "print(sorted(m for m in ('torch', 'transformers', 'datasets') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
