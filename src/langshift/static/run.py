"""The static-embedding stage's front door: ``run_static(cfg)`` trains fastText vectors on target text, or
loads a model (MIGRATE: cc.<lang>.300.bin), then continues it on code-switched text (MIGRATE eq. 6).

``langshift static train|continue`` and the pipeline's static stage call it with the same config.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import ClassVar, Literal

from ..config import Result, StageConfig, opt
from ..errors import ConfigError
from ..files import read_lines
from .fasttext import StaticConfig, continue_static, tokenise_lines, train_static
from .load import load_static

log = logging.getLogger(__name__)


@dataclass(kw_only=True)
class StaticFiles(StageConfig):
    """Where a static space comes from and goes to."""

    INPUTS: ClassVar[tuple[str, ...]] = ("init", "text", "codeswitched")

    init: str | None = opt(None, "fastText model to start from: a folder from `static train`, a Facebook .bin "
                                 "(MIGRATE: cc.<lang>.300.bin) or a .vec; default: train on --text")
    text: list[str] | None = opt(None, "target-language text files (one document or sentence a line) to train "
                                       "from scratch on when no --init is given")
    codeswitched: list[str] | None = opt(None, "text files to continue training on (MIGRATE eq. 6: the "
                                               "code-switched text)")
    out: str = opt(help="output folder (written atomically)")
    overwrite: bool = opt(False, "replace --out if it exists")
    allow_pickle: bool = opt(False, "also load gensim's own pickled format (model.gensim, vectors.kv). Unpickling "
                                    "runs any code the file carries: use only for files you trust, and `static "
                                    "convert` them once")
    on_bad: Literal["fail", "skip"] = opt("fail", "a line that is not UTF-8: fail naming it, or skip it with a "
                                                  "warning")

    def validate(self) -> None:
        super().validate()
        for name in ("text", "codeswitched"):
            value = getattr(self, name)
            if isinstance(value, str):  # a recipe gives one path
                setattr(self, name, [value])
        if self.init is None and not self.text:
            raise ConfigError("init", None, "give a fastText model to start from (--init; recipe: static.init or "
                                            "inputs.static_init) or target text to train on (--text; recipe: "
                                            "inputs.target_text)")
        if self.on_bad not in ("fail", "skip"):
            raise ConfigError("on_bad", self.on_bad, "choose fail or skip")


@dataclass(kw_only=True)
class StaticRunConfig(StaticConfig, StaticFiles):
    """``static train|continue|convert`` and the pipeline's static stage: the files with the fastText options."""


@dataclass
class StaticResult(Result):
    words: int
    dim: int
    steps: list[str] = field(default_factory=list)   # loaded or trained, then continued on code-switched text
    words_per_second: int = 0                          # of the last training pass (0 when nothing was trained)


def _sentences(paths: list[str], param: str, on_bad: str, lowercase: bool) -> list[list[str]]:
    return tokenise_lines([line for path in paths for line in read_lines(path, param, on_bad=on_bad)], lowercase)


def run_static(cfg: StaticRunConfig) -> StaticResult:
    """Load ``cfg.init`` (trainable when it is to be continued) or train on ``cfg.text``; continue on
    ``cfg.codeswitched`` if given; save the space to ``cfg.out``."""
    cfg.check_output()
    steps = []
    if cfg.init is not None:
        space = load_static(cfg.init, param="--init", trainable=cfg.codeswitched is not None,
                            allow_pickle=cfg.allow_pickle)
        steps.append("loaded")
    else:
        space = train_static(_sentences(cfg.text, "--text", cfg.on_bad, cfg.lowercase), cfg)
        steps.append("trained")
    if cfg.codeswitched is not None:
        space = continue_static(space, _sentences(cfg.codeswitched, "--codeswitched", cfg.on_bad, space.lowercase),
                                cfg)
        steps.append("continued on code-switched text")
    space.save(cfg.out, overwrite=cfg.overwrite)
    log.info("static space: %d words, dim %d (%s)", len(space), space.dim, ", ".join(steps))
    return StaticResult(out=str(cfg.out), words=len(space), dim=space.dim, steps=steps,
                        words_per_second=round(getattr(space.model, "langshift_words_per_second", 0.0)))
