"""Write docs/cli.md: every `langshift` command with its flags and help text, read from the parser itself.

    python scripts/cli_reference.py          # regenerates docs/cli.md (a test checks it is current)
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

OUT = Path(__file__).resolve().parent.parent / "docs" / "cli.md"


def _commands(parser: argparse.ArgumentParser, prefix: str):
    yield prefix, parser
    for action in parser._actions:  # argparse has no public API for walking sub-commands
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from _commands(sub, f"{prefix} {name}")


def render() -> str:
    import os

    from langshift.cli import build_parser

    os.environ["COLUMNS"] = "100"  # argparse wraps help text to the terminal width

    lines = ["# CLI reference", "", "Generated from the parser by `python scripts/cli_reference.py`; do not edit.", ""]
    for name, parser in _commands(build_parser(), "langshift"):
        if name == "langshift":
            continue
        lines += [f"## `{name}`", "", "```", parser.format_help().replace("\t", " ").rstrip(), "```", ""]
    return "\n".join(lines)


if __name__ == "__main__":
    text = render()
    if "--check" in sys.argv:
        sys.exit(0 if OUT.is_file() and OUT.read_text() == text else 1)
    OUT.parent.mkdir(exist_ok=True)
    OUT.write_text(text)
    print(f"wrote {OUT}")
