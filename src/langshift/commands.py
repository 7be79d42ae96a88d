"""CLI sub-commands as a table over the stages' front doors.

A ``Command`` names a typed config and the ``run(cfg) -> Result`` it goes to: its flags come from the
config's fields and help (``StageConfig.add_arguments``), the command prints the result as JSON. The
pipeline calls the same functions with the same configs, so `langshift tokenizer train …` and a recipe's
tokenizer stage write the same artefact.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import sys
from collections.abc import Callable, Sequence
from typing import Any

from .config import Result, StageConfig


@dataclasses.dataclass(frozen=True)
class Command:
    name: str
    config: type[StageConfig]
    run: Callable[[Any], Result]          # the stage's front door; imports its heavy libraries when called
    help: str
    skip: tuple[str, ...] = ()             # fields the command does not offer (they keep their defaults)
    fixed: dict[str, Any] = dataclasses.field(default_factory=dict)  # fields the command sets itself

    def add_to(self, sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
        parser = sub.add_parser(self.name, help=self.help, description=self.help)
        self.config.add_arguments(parser, skip=self.skip + tuple(self.fixed))
        parser.set_defaults(func=self.call)
        return parser

    def call(self, args: argparse.Namespace) -> int:
        cfg = self.config.from_namespace(args, **self.fixed)
        # the libraries' chatter (the HF Trainer prints its log dicts) goes to stderr: stdout is the result
        with contextlib.redirect_stdout(sys.stderr):
            result = self.run(cfg)
        print_json(result.to_dict())
        return 0


def add_group(sub: argparse._SubParsersAction, name: str, help: str, commands: Sequence[Command],
              dest: str | None = None) -> argparse._SubParsersAction:
    """``langshift NAME COMMAND …`` for each command; returns the group's sub-parsers for hand-made extras."""
    group = sub.add_parser(name, help=help, description=help)
    cmds = group.add_subparsers(dest=dest or f"{name.replace('-', '_')}_command", metavar="ACTION", required=True)
    for command in commands:
        command.add_to(cmds)
    return cmds


def print_json(obj: Any) -> None:
    print(json.dumps(obj, indent=2, ensure_ascii=False, default=str))
