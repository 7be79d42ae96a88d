"""Static word embeddings (fastText via gensim): train, continue training, load, look up."""

from __future__ import annotations

from .fasttext import StaticConfig, StaticSpace, continue_static, tokenise, tokenise_lines, train_static
from .load import load_static
from .run import StaticResult, StaticRunConfig, run_static

__all__ = ["StaticConfig", "StaticResult", "StaticRunConfig", "StaticSpace", "continue_static", "load_static",
           "run_static", "tokenise", "tokenise_lines", "train_static"]
