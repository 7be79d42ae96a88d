"""The tokenizer stage's front door: ``run_tokenizer(cfg) -> TokenizerResult``, for the CLI
(``langshift tokenizer train|extend``) and the pipeline's tokenizer stage alike.

``mode: train`` trains a target-language tokenizer keeping the base's special tokens and chat template
(``train.train_tokenizer``); ``mode: extend`` adds target-language tokens to the base tokenizer
(``extend.extend_tokenizer``). Either way the tokenizer is saved in one rename and measured: fertility
of the new and base tokenizers on the same sample, byte-exact overlap with the base, and whether the
chat frame is spelt as the base spells it.
"""

from __future__ import annotations

import dataclasses
from typing import Any, ClassVar, Literal

from ..config import Result, check_range, opt
from ..errors import ConfigError
from ..files import read_lines
from .build import ExtendOptions, TrainOptions, save_tokenizer
from .extend import extend_tokenizer
from .fertility import fertility
from .frame import frame_report
from .overlap import compute_overlap
from .train import train_tokenizer


@dataclasses.dataclass
class TokenizerConfig(TrainOptions, ExtendOptions):
    INPUTS: ClassVar[tuple[str, ...]] = ("text", "base", "fertility_text")
    TRAIN_ONLY: ClassVar[tuple[str, ...]] = ("kind", "vocab_size", "keep_chat_frame")
    EXTEND_ONLY: ClassVar[tuple[str, ...]] = ("add",)

    mode: Literal["train", "extend"] = opt("train", "train a new target tokenizer, or extend the base one")
    text: list[str] = opt(help="target-language text file(s) (UTF-8, one text a line)", kw_only=True)
    base: str | None = opt(None, "base model or tokenizer (folder, hub id or built-in name) whose special tokens and "
                                 "chat template are kept (extend: the tokenizer that is extended)")
    out: str = opt(help="folder to write the tokenizer to", kw_only=True)
    overwrite: bool = opt(False, "replace --out if it exists")
    limit: int | None = opt(None, "train on the first N lines of the text only")
    fertility_text: list[str] | None = opt(None, "text file(s) to measure fertility on (default: the training text)")
    fertility_lines: int = opt(2000, "measure fertility on the first N lines of that text (0: all)")

    def validate(self) -> None:
        TrainOptions.validate(self)
        ExtendOptions.validate(self)
        if self.mode not in ("train", "extend"):
            raise ConfigError("--mode", self.mode, "choose train or extend")
        # the pipeline gives one path per slot; the command line one or more
        self.text = [self.text] if isinstance(self.text, str) else list(self.text)
        if isinstance(self.fertility_text, str):
            self.fertility_text = [self.fertility_text]
        if not self.text:
            raise ConfigError("--text", self.text, "give at least one text file")
        if self.mode == "extend" and self.base is None:
            raise ConfigError("--base", None, "mode extend needs the tokenizer to extend; give --base (a recipe: "
                                              "tokenizer.base or inputs.model)")
        if self.limit is not None:
            check_range("--limit", self.limit, 1)
        check_range("--fertility-lines", self.fertility_lines, 0)

    def unused_fields(self) -> tuple[str, ...]:
        return self.TRAIN_ONLY if self.mode == "extend" else self.EXTEND_ONLY


@dataclasses.dataclass
class TokenizerResult(Result):
    vocab_size: int
    fertility: dict[str, dict[str, Any]]        # "new" (and "base" when there is one): fertility.fertility
    overlap: dict[str, Any] | None = None       # with a base: matched, matched_share, new, by_kind
    chat_frame: dict[str, Any] | None = None    # with a base: vocab.frame.frame_report
    added: int | None = None                    # extend: tokens added to the base


def run_tokenizer(cfg: TokenizerConfig) -> TokenizerResult:
    from ..models import load_tokenizer

    cfg.check_output()  # before training: an --out that is (or holds) an input would destroy it
    base = load_tokenizer(cfg.base, "--base") if cfg.base else None
    texts = _lines(cfg.text, "--text")[:cfg.limit]
    if cfg.mode == "extend":
        tok = extend_tokenizer(base, texts, cfg.add, min_frequency=cfg.min_frequency, show_progress=cfg.show_progress)
    else:
        tok = train_tokenizer(texts, cfg.kind, cfg.vocab_size, base, min_frequency=cfg.min_frequency,
                              show_progress=cfg.show_progress, keep_chat_frame=cfg.keep_chat_frame)
    save_tokenizer(tok, cfg.out, cfg.overwrite)
    sample = _lines(cfg.fertility_text, "--fertility-text") if cfg.fertility_text else texts
    sample = sample[:cfg.fertility_lines or None]
    result = TokenizerResult(str(cfg.out), len(tok), {"new": fertility(tok, sample)})
    if base is not None:
        result.fertility["base"] = fertility(base, sample)
        report = compute_overlap(base, tok).report(examples=0)
        result.overlap = {k: report[k] for k in ("matched", "matched_share", "new", "by_kind")}
        result.chat_frame = frame_report(base, tok)
    if cfg.mode == "extend":
        result.added = len(tok) - len(base)
    return result


def _lines(paths: list[str], param: str) -> list[str]:
    return [line for path in paths for line in read_lines(path, param)]
