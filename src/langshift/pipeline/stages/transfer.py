"""The transfer stage: the model with the target tokenizer (one init method, or the best of several)."""

from __future__ import annotations

import dataclasses
import logging
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ...config import check_range, opt
from ...errors import ConfigError
from ...files import atomic_write_json
from ...transfer.config import TransferConfig
from .base import CANDIDATES_FILE, Context, Slot, Stage, add_stage, head_lines

log = logging.getLogger(__name__)


# 4. Embedding init (transfer) ----------------------------------------------------------------------

@dataclass
class TransferStageConfig(TransferConfig):
    candidates: list = opt([], "init methods to try side by side (e.g. [migrate, salt, focus, mean]); the model "
                               "with the lowest bits per byte on select_text is kept and `method` is not used. An "
                               "entry may be a mapping {method: NAME, FIELD: VALUE} changing this stage's fields "
                               "for that candidate (an input field only to null, e.g. aux_fasttext: null)")
    select_text: str | None = opt(None, "held-out target-language text (one document a line) that picks among "
                                        "the candidates; keep it apart from every training text")
    select_limit: int | None = opt(None, "score the candidates on the first N lines of select_text only")

    def validate(self) -> None:
        from ...transfer.methods import INIT_METHODS

        super().validate()
        if not isinstance(self.candidates, list):
            raise ConfigError("transfer.candidates", self.candidates, "give a list of init methods")
        names = [candidate_fields(c)["method"] for c in self.candidates]
        for name in names:
            INIT_METHODS.get(name, "transfer.candidates")
        if len(set(names)) != len(names):
            raise ConfigError("transfer.candidates", names, "list each method once")
        if self.candidates and self.select_text is None:
            raise ConfigError("transfer.select_text", None, "candidates are picked by bits per byte on held-out "
                                                            "text; give select_text (or inputs.select_text)")
        if self.select_limit is not None:
            check_range("transfer.select_limit", self.select_limit, 1)


_TRANSFER_INPUTS = ("model", "tokenizer", "aux_fasttext", "aux_text", "aux_model", "source_fasttext", "source_text",
                    "dictionary", "select_text")
_CANDIDATE_FIXED = ("out", "overwrite", "provenance", "candidates", "select_text", "select_limit")


def candidate_fields(entry: Any) -> dict[str, Any]:
    """``focus`` or ``{method: focus, aux_fasttext: null, …}`` → the fields that candidate changes."""
    if isinstance(entry, str):
        return {"method": entry}
    if not isinstance(entry, dict) or not isinstance(entry.get("method"), str):
        raise ConfigError("transfer.candidates", entry, "give a method name or a mapping with a 'method' name")
    fields = {f.name for f in dataclasses.fields(TransferConfig)}
    for key, value in entry.items():
        if key not in fields or key in _CANDIDATE_FIXED:
            raise ConfigError(f"transfer.candidates.{key}", value, "not a field a candidate can change; use "
                                                                   "method and the transfer options")
        if key in _TRANSFER_INPUTS and value is not None:
            raise ConfigError(f"transfer.candidates.{key}", value, "an input can only be switched off (null) per "
                                                                   "candidate; set the path on the stage itself")
    return dict(entry)


def run_transfer_stage(cfg: TransferStageConfig, ctx: Context) -> dict:
    if not cfg.candidates:
        return ctx.step("transfer", ("model",), lambda: _transfer_one(cfg, {}, str(ctx.work / "model")))
    # 4.1 Every candidate into its own folder, scored on the held-out text (each a resumable step).
    changes = {candidate_fields(c)["method"]: candidate_fields(c) for c in cfg.candidates}
    scores = {m: ctx.step(f"transfer.{m}", (f"candidates/{m}",),
                          lambda m=m: _score_candidate(cfg, changes[m], ctx.work / "candidates" / m))
              for m in changes}
    # 4.2 Keep the best (ties: the first listed). The rename comes first, so a kill during the clean-up
    # leaves a complete model/ that a continued attempt keeps.
    best = min(changes, key=lambda m: scores[m]["bits_per_byte"])

    def keep() -> dict:

        if not (ctx.work / "model").exists():
            os.replace(ctx.work / "candidates" / best / "model", ctx.work / "model")
        shutil.rmtree(ctx.work / "candidates", ignore_errors=True)
        chosen = {"method": best, "selected_by": f"lowest bits per byte on {cfg.select_text}",
                  "candidates": {m: {k: v for k, v in s.items() if k != "transfer"} for m, s in scores.items()}}
        atomic_write_json(ctx.work / "model" / CANDIDATES_FILE, chosen)  # the report shows the comparison
        return {**scores[best]["transfer"], **chosen}

    return ctx.step("select", (), keep)


def _transfer_one(cfg: TransferStageConfig, changes: dict[str, Any], out: str) -> dict:
    from ...transfer.apply import run_transfer

    base = {k: v for k, v in cfg.to_dict().items() if k not in ("candidates", "select_text", "select_limit")}
    summary = run_transfer(TransferConfig(**{**base, **changes, "out": out}))
    return {k: summary[k] for k in ("method", "tied", "counts", "overlap") if k in summary}


def _score_candidate(cfg: TransferStageConfig, changes: dict[str, Any], folder: Path) -> dict:
    from ...evaluate.bpb import bits_per_byte
    from ...models import load_model, load_tokenizer

    method = changes["method"]
    folder.mkdir(parents=True, exist_ok=True)
    summary = _transfer_one(cfg, changes, str(folder / "model"))
    model, tok = load_model(str(folder / "model"), "transfer.candidates"), load_tokenizer(str(folder / "model"))
    res = bits_per_byte(model, tok, head_lines(cfg.select_text, "transfer.select_text", cfg.select_limit))
    log.info("transfer candidate %s: %.4f bits per byte on the held-out text", method, res["bits_per_byte"])
    return {"bits_per_byte": res["bits_per_byte"], "bytes": res["bytes"], "counts": summary.get("counts"),
            **({"changes": changes} if len(changes) > 1 else {}), "transfer": summary}


add_stage(Stage("transfer", TransferStageConfig,
           (Slot("model", ("$model",), kind="model"), Slot("tokenizer", ("@tokenizer", "$target_tokenizer"),
                                                           kind="path"),
            Slot("aux_fasttext", ("@static",), required=False), Slot("aux_text", (), required=False, kind="file"),
            Slot("aux_model", (), required=False, kind="model"), Slot("source_fasttext", (), required=False),
            Slot("source_text", (), required=False, kind="file"), Slot("dictionary", (), required=False, kind="file"),
            Slot("select_text", ("$select_text",), required=False, kind="file")),
           "model", execute=lambda stage, cfg, ctx: run_transfer_stage(cfg, ctx),
           owned={"out": lambda w: str(w / "model"), "overwrite": lambda w: False, "provenance": lambda w: None},
           volatile=("block_size",), help="give the model the target tokenizer; initialise new rows (or try several "
                                          "init methods and keep the best on held-out text)"))
