"""The tokenizer stage: train or extend the target-language tokenizer (``vocab.tokenizer.run_tokenizer``)."""

from __future__ import annotations

from ...vocab.tokenizer import TokenizerConfig, run_tokenizer
from .base import Slot, Stage, add_stage

add_stage(Stage("tokenizer", TokenizerConfig,
           (Slot("text", ("$target_text",), kind="file"), Slot("base", ("$model",), required=False, kind="model"),
            Slot("fertility_text", (), required=False, kind="file")),
           "tokenizer", run=run_tokenizer,
           owned={"out": lambda w: str(w / "tokenizer"), "overwrite": lambda w: False},
           volatile=("show_progress",), help="train (or extend) the target-language tokenizer"))
