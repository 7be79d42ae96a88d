"""The static-embedding stage: fastText vectors trained or continued on code-switched text."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from ...config import opt
from ...errors import ConfigError
from ...files import read_lines
from ...static.fasttext import StaticConfig, tokenise_lines
from .base import Context, Slot, Stage, add_stage

log = logging.getLogger(__name__)


# 3. Static embeddings ------------------------------------------------------------------------------

@dataclass
class StaticStageConfig(StaticConfig):
    init: str | None = opt(None, "fastText model of the target language to continue (MIGRATE: cc.<lang>.300.bin)")
    text: str | None = opt(None, "target-language text to train from scratch on when no init is given")
    codeswitched: str | None = opt(None, "code-switched text to continue training on (MIGRATE eq. 6)")

    def validate(self) -> None:
        super().validate()


def run_static(cfg: StaticStageConfig, ctx: Context) -> dict:
    return ctx.step("static", ("static",), lambda: _make_static(cfg, ctx.work / "static"))


def _make_static(cfg: StaticStageConfig, out: Path) -> dict:
    from ...static.fasttext import continue_static, load_static, train_static

    if cfg.init is None and cfg.text is None:
        raise ConfigError("static.init", None, "give a fastText model to continue (static.init) or target text "
                                               "to train on (static.text / inputs.target_text)")
    steps = []
    if cfg.init is not None:
        space = load_static(cfg.init, param="static.init", trainable=cfg.codeswitched is not None)
        steps.append("loaded")
    else:
        space = train_static(tokenise_lines(read_lines(cfg.text, "static.text"), cfg.lowercase), cfg)
        steps.append("trained")
    if cfg.codeswitched is not None:
        space = continue_static(space, tokenise_lines(read_lines(cfg.codeswitched, "static.codeswitched"),
                                                      space.lowercase), cfg)
        steps.append("continued on code-switched text")
    space.save(out)
    return {"words": len(space), "dim": space.dim, "steps": steps}


add_stage(Stage("static", StaticStageConfig,
           (Slot("init", ("$static_init",), required=False, kind="path"),
            Slot("text", ("$target_text",), required=False, kind="file"),
            Slot("codeswitched", ("@migrate", "@syncs"), required=False, kind="file")),
           "static", execute=lambda stage, cfg, ctx: run_static(cfg, ctx), help="fastText static embeddings: train or continue on code-switched text"))
