"""Static word embeddings (fastText via gensim): train, continue training, load, look up."""

from __future__ import annotations

from .fasttext import (
           StaticConfig,
           StaticSpace,
           continue_static,
           load_static,
           tokenise,
           tokenise_lines,
           train_static,
)

__all__ = ["StaticConfig", "StaticSpace", "continue_static", "load_static", "tokenise", "tokenise_lines",
           "train_static"]
