"""``langshift static train|continue|convert``: fastText vectors from text files, or a model rewritten."""

from __future__ import annotations

import argparse
import dataclasses

from ..commands import Command, add_group
from ..errors import ConfigError
from .fasttext import StaticConfig
from .run import StaticRunConfig, run_static

TRAINING = tuple(f.name for f in dataclasses.fields(StaticConfig))
# continuing keeps the model's architecture: these options come from the model, not the command line
ARCHITECTURE = ("dim", "sg", "minn", "maxn", "window", "negative", "bucket", "lowercase")



def run_continue(cfg: StaticRunConfig):
    """``static continue`` continues on something: without text it would only re-save the model."""
    if not cfg.codeswitched:
        raise ConfigError("--codeswitched", cfg.codeswitched, "give the text files to continue training on "
                                                              "(`static convert` re-saves a model unchanged)")
    return run_static(cfg)


COMMANDS = [
    Command("train", StaticRunConfig, run_static, "train fastText vectors from scratch on text files",
            skip=("init", "codeswitched", "allow_pickle")),
    Command("continue", StaticRunConfig, run_continue, "continue training a fastText model (e.g. on code-switched "
            "text)", skip=("text",) + ARCHITECTURE),
    Command("convert", StaticRunConfig, run_static, "rewrite a static space (e.g. an old gensim pickle, with "
            "--allow-pickle) as a folder that loads without unpickling",
            skip=("text", "codeswitched", "on_bad") + TRAINING),
]


def register(sub: argparse._SubParsersAction) -> None:
    add_group(sub, "static", "static (fastText) embeddings: train, continue training, convert", COMMANDS)
