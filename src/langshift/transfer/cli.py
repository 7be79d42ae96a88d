"""``langshift transfer``: the transfer stage's front door (``run.run_transfer``) as a command."""

from __future__ import annotations

from ..commands import Command
from .config import TransferConfig
from .run import run_transfer

COMMAND = Command("transfer", TransferConfig, run_transfer,
                  "give a model a new tokenizer; initialise new embeddings by a named method (random, mean, fvt, "
                  "focus, migrate, wechsel, salt), or try several (--candidates) and keep the best on held-out text")


def register(subparsers) -> None:
    COMMAND.add_to(subparsers)
