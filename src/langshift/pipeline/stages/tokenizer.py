"""The tokenizer stage: train or extend the target-language tokenizer."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from ...config import check_range, opt
from ...errors import ConfigError
from ...vocab.train import TokenizerConfig
from .base import Context, Slot, Stage, add_stage, head_lines

log = logging.getLogger(__name__)


# 1. Tokenizer --------------------------------------------------------------------------------------

@dataclass
class TokenizerStageConfig(TokenizerConfig):
    mode: Literal["train", "extend"] = opt("train", "train a new target tokenizer, or extend the base one")
    add: int = opt(1000, "extend: how many target-language tokens to add")
    text: str | None = opt(None, "target-language text (UTF-8 file, one text a line)")
    base: str | None = opt(None, "model or tokenizer whose special tokens and chat template are kept "
                                 "(extend: the tokenizer that is extended)")
    limit: int | None = opt(None, "train on the first N lines only")

    def validate(self) -> None:
        super().validate()
        if self.mode not in ("train", "extend"):
            raise ConfigError("tokenizer.mode", self.mode, "choose train or extend")
        check_range("tokenizer.add", self.add, 1)


def run_tokenizer(cfg: TokenizerStageConfig, ctx: Context) -> dict:
    return ctx.step("tokenizer", ("tokenizer",), lambda: _make_tokenizer(cfg, ctx.work / "tokenizer"))


def _make_tokenizer(cfg: TokenizerStageConfig, out: Path) -> dict:
    from ...models import load_tokenizer
    from ...vocab.fertility import fertility
    from ...vocab.frame import frame_report
    from ...vocab.train import extend_tokenizer, save_tokenizer, train_tokenizer

    texts = head_lines(cfg.text, "tokenizer.text", cfg.limit)
    base = load_tokenizer(cfg.base, "tokenizer.base") if cfg.base else None
    if cfg.mode == "extend":
        if base is None:
            raise ConfigError("tokenizer.base", None, "mode extend needs the tokenizer to extend; set tokenizer.base "
                                                      "or inputs.model")
        tok = extend_tokenizer(base, texts, cfg.add, min_frequency=cfg.min_frequency, show_progress=cfg.show_progress)
    else:
        tok = train_tokenizer(texts, cfg.kind, cfg.vocab_size, base, min_frequency=cfg.min_frequency,
                              show_progress=cfg.show_progress, keep_chat_frame=cfg.keep_chat_frame)
    save_tokenizer(tok, out)
    sample = texts[:2000]
    summary = {"vocab_size": len(tok), "fertility": fertility(tok, sample)}
    if base is not None:
        summary["base_fertility"] = fertility(base, sample)
        summary["chat_frame"] = frame_report(base, tok)
    return summary


add_stage(Stage("tokenizer", TokenizerStageConfig,
           (Slot("text", ("$target_text",), kind="file"), Slot("base", ("$model",), required=False, kind="model")),
           "tokenizer", execute=lambda stage, cfg, ctx: run_tokenizer(cfg, ctx), volatile=("show_progress",),
           help="train (or extend) the target-language tokenizer"))
