"""The transfer stage's front door: ``run_transfer(cfg) -> TransferResult``, for the CLI and the pipeline.

One method: the model with the target tokenizer, its new rows made by ``cfg.method``. Several
(``cfg.candidates``): each candidate is transferred into ``OUT.candidates/<method>/model`` and scored
by bits per byte on the held-out ``select_text``; the lowest is kept as ``OUT`` (ties: the first
listed), with ``langshift_candidates.json`` beside it saying how each scored, and the candidates'
folder is removed. A candidate finished by an interrupted run with the same options (its score
written, its model there) is kept, so a rerun does only what is left.

torch and transformers load inside the functions (``langshift --help`` builds this command).
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import shutil
from pathlib import Path
from typing import Any

from ..config import Result
from ..files import atomic_write_json, check_out_file, put_in_place, read_lines
from .config import TransferConfig, candidate_fields

log = logging.getLogger(__name__)

# the init methods the transfer compared, written beside the model it kept (the report shows them)
CANDIDATES_FILE = "langshift_candidates.json"
_STAMP, _SCORE = "candidate.json", "score.json"   # a candidate's options, then its score (written last)
_SUMMARY_KEYS = ("method", "tied", "counts", "overlap", "seconds", "dtype", "rewritten_files")


@dataclasses.dataclass
class TransferResult(Result):
    method: str                                  # the init method of the model in ``out``
    tied: bool                                   # the model ties its input and output embeddings
    counts: dict[str, int]                       # rows copied, new, fallbacks, total rows, special ids
    overlap: dict[str, Any]                      # byte-exact overlap of the two vocabularies
    seconds: dict[str, float]
    dtype: str | None = None                     # the checkpoint's dtype when edited on its files
    rewritten_files: list[str] | None = None     # the checkpoint files that hold vocabulary matrices
    selected_by: str | None = None               # candidates: how the kept one was chosen
    candidates: dict[str, dict[str, Any]] | None = None  # candidates: method -> bits per byte, bytes, counts

    @classmethod
    def of(cls, out: str, summary: dict[str, Any], **chosen: Any) -> TransferResult:
        return cls(out=str(out), **{k: summary.get(k) for k in _SUMMARY_KEYS}, **chosen)


def candidates_folder(out: str | os.PathLike) -> Path:
    """Where the candidates are made: beside ``out``, so the kept one moves into place in one rename."""
    out = Path(out)
    return out.with_name(out.name + ".candidates")


def run_transfer(cfg: TransferConfig) -> TransferResult:
    cfg.check_output()
    inputs = {"--" + name.replace("_", "-"): getattr(cfg, name) for name in cfg.INPUTS}
    if cfg.provenance:
        check_out_file(cfg.provenance, True, "--provenance", inputs)
    options = [_candidate_config(cfg, candidate_fields(c)) for c in cfg.candidates] or [cfg]
    for each in options:
        each.check_inputs()
    if cfg.check_specials:
        _check_specials(cfg)
    if not cfg.candidates:
        from .apply import transfer_files

        return TransferResult.of(cfg.out, transfer_files(cfg))
    return _choose(cfg, options)


def _check_specials(cfg: TransferConfig) -> None:
    """The target tokenizer holds the model's eos/bos/pad and chat markers (before the model loads)."""
    from ..models import load_tokenizer
    from ..vocab.specials import check_target_specials

    check_target_specials(load_tokenizer(cfg.model, "--model"), load_tokenizer(cfg.tokenizer, "--tokenizer"),
                          "--tokenizer", cfg.tokenizer)


# Candidates -----------------------------------------------------------------------------------------

def _candidate_config(cfg: TransferConfig, changes: dict[str, Any]) -> TransferConfig:
    folder = candidates_folder(cfg.out) / changes["method"]
    fixed = {"candidates": [], "select_text": None, "select_limit": None, "overwrite": False,
             "out": str(folder / "model"), "provenance": str(folder / "provenance.json") if cfg.provenance else None}
    return TransferConfig(**{**cfg.to_dict(), **changes, **fixed})


def _choose(cfg: TransferConfig, options: list[TransferConfig]) -> TransferResult:
    work = candidates_folder(cfg.out)
    lines = read_lines(cfg.select_text, "--select-text")[:cfg.select_limit]
    changes = [candidate_fields(c) for c in cfg.candidates]
    scores = {c.method: _score(c, ch, lines) for c, ch in zip(options, changes, strict=True)}
    best = min(scores, key=lambda m: scores[m]["bits_per_byte"])
    chosen = {"selected_by": f"lowest bits per byte on {cfg.select_text}",
              "candidates": {m: {k: v for k, v in s.items() if k != "transfer"} for m, s in scores.items()}}
    kept = work / best
    atomic_write_json(kept / "model" / CANDIDATES_FILE, {"method": best, **chosen})  # the report shows them
    if cfg.provenance:
        shutil.move(kept / "provenance.json", cfg.provenance)
    put_in_place(kept / "model", Path(cfg.out))
    shutil.rmtree(work, ignore_errors=True)
    return TransferResult.of(cfg.out, scores[best]["transfer"], **chosen)


def _score(cfg: TransferConfig, changes: dict[str, Any], lines: list[str]) -> dict[str, Any]:
    """Transfer one candidate and score it on ``lines``; a candidate finished with these options is kept."""
    from ..evaluate.bpb import bits_per_byte
    from ..models import load_model, load_tokenizer
    from .apply import transfer_files

    folder = Path(cfg.out).parent
    stamp, score = folder / _STAMP, folder / _SCORE
    want = cfg.to_dict()
    if stamp.is_file() and json.loads(stamp.read_text(encoding="utf-8")) == want:
        if score.is_file() and Path(cfg.out).is_dir():
            log.info("transfer candidate %s: kept from an earlier run", cfg.method)
            return json.loads(score.read_text(encoding="utf-8"))
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    atomic_write_json(stamp, want)
    summary = transfer_files(cfg)
    res = bits_per_byte(load_model(cfg.out, "--candidates"), load_tokenizer(cfg.out, "--candidates"), lines)
    log.info("transfer candidate %s: %.4f bits per byte on the held-out text", cfg.method, res["bits_per_byte"])
    result = {"bits_per_byte": res["bits_per_byte"], "bytes": res["bytes"], "counts": summary.get("counts"),
              **({"changes": changes} if len(changes) > 1 else {}),
              "transfer": {k: summary.get(k) for k in _SUMMARY_KEYS}}
    atomic_write_json(score, result)
    return result

