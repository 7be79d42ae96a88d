"""The results layout read by ``langshift report``.

A run folder holds one JSON file per evaluation, ``<kind>.<model-label>[.<tag>].json``, each an object
``{"kind", "model", "config", "result", "created"}`` where ``kind`` is one of bpb, mc, gen_mc, mexa,
fidelity, judge, fertility, and ``result`` is what the command printed. A training run may also hold
``trainer_state.json`` (Hugging Face Trainer) or ``train_log.jsonl`` (one object per logged step with
``step`` and ``loss``); the report plots their losses.
"""

from __future__ import annotations

import datetime as _dt
import json
import re
from pathlib import Path

from ..errors import LangshiftError
from ..files import atomic_write_json

KINDS = ("bpb", "mc", "gen_mc", "mexa", "fidelity", "judge", "fertility")


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", str(text).rstrip("/").split("/")[-1])[:80] or "model"


def save_result(run_dir, kind: str, result: dict, model: str, config: dict | None = None,
                tag: str | None = None) -> Path:
    """Write one result file into ``run_dir`` (atomic) and return its path."""
    path = result_path(run_dir, kind, model, tag)
    payload = {"kind": kind, "model": str(model), "config": config or {}, "result": result,
               "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")}
    return atomic_write_json(path, payload)


def result_path(run_dir, kind: str, model: str, tag: str | None = None) -> Path:
    """Where ``save_result`` writes the result of ``kind`` for ``model`` (and ``tag``)."""
    if kind not in KINDS:
        raise LangshiftError(f"kind={kind!r}: unknown result kind; known: {', '.join(KINDS)}")
    return Path(run_dir) / (f"{kind}.{_slug(model)}" + (f".{_slug(tag)}" if tag else "") + ".json")


ORDER_FILE = "models.json"  # {"models": [labels before → after]}: the report's row order (not a result)


def save_model_order(run_dir, labels: list[str]) -> None:
    """Record the order models were evaluated in, so the report lists them before → after (labels an
    earlier evaluation into the same folder recorded stay first)."""
    path = Path(run_dir) / ORDER_FILE
    known = json.loads(path.read_text(encoding="utf-8")).get("models", []) if path.is_file() else []
    atomic_write_json(path, {"models": known + [label for label in labels if label not in known]})


def load_results(run_dir) -> list[dict]:
    """Every result file of a run folder (files that are not results are ignored); adds ``path``, ``run``."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise LangshiftError(f"RUN_DIR={str(run_dir)!r}: no such folder; give folders written with --save")
    out = []
    for path in sorted(run_dir.glob("*.json")):
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise LangshiftError(f"{path}: not valid JSON ({exc}); remove or fix the file") from None
        if isinstance(data, dict) and data.get("kind") in KINDS and "result" in data:
            out.append({**data, "path": str(path), "run": run_dir.name})
    return out
