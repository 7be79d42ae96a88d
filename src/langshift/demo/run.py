"""``langshift demo``: make the inputs, run the shipped demo recipe, print the table and the report path.

Everything that trains or evaluates is the pipeline's (``recipes/demo.yaml``); this module only makes
the input files offline, wires them in as recipe inputs and reads the results back.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from ..errors import ConfigError, LangshiftError
from .inputs import NAMES, Sizes, make_inputs

# Evaluation sizes come from the 95% intervals they give: MC accuracy near 0.45 needs ~380 items for
# ±0.05 (intervals.items_for_half_width), ~190 for ±0.07; fidelity ≥ 64 prompts per language. --quick
# keeps 64 prompts per language but scores 64 MC items (±0.12): its MC row is a smoke check, the full
# demo's 400 items are the measurement (MC scoring is the slowest part of the evaluation on a CPU).
PROFILES: dict[str, tuple[str, Sizes]] = {
    "full": ("demo", Sizes(target_lines=None, source_verses=2000, select_verses=80, eval_verses=150, mc_items=200,
                           mexa_pairs=100, sft_pairs=256, prompts=96, dev_prompts=64, parallel_pairs=4000)),
    "quick": ("demo-quick", Sizes(target_lines=6000, source_verses=300, select_verses=30, eval_verses=40,
                                  mc_items=32, mexa_pairs=48, sft_pairs=64, prompts=64, dev_prompts=32,
                                  parallel_pairs=1000)),
}
ROWS = ("original", "transferred", "aligned")
# (column, task in the eval summary, key): each value with its 95% interval (key_low, key_high)
COLUMNS = (("bits/byte", "bpb", "bits_per_byte"), ("LPR es", "fidelity", "lpr"),
           ("WPR es", "fidelity", "wpr"),  # of the Spanish replies that pass LPR, the share with no English word
           ("LPR en", "fidelity_source", "lpr"), ("MEXA", "mexa", "mean"), ("MC acc", "mc", "acc"))


def check_out(out: Path, profile: str) -> None:
    """``out`` must be a folder (or absent) that holds no demo of the other size."""
    if out.exists() and not out.is_dir():
        raise ConfigError("--out", str(out), "is a file; give a folder for the demo run")
    manifest = out / "inputs" / "manifest.json"
    if manifest.is_file():
        sizes = json.loads(manifest.read_text(encoding="utf-8")).get("params", {}).get("sizes")
        for other, (_, other_sizes) in PROFILES.items():
            if other != profile and sizes == other_sizes.__dict__:
                flag = "add --quick" if other == "quick" else "leave out --quick"
                raise ConfigError("--out", str(out), f"holds a {other} demo run; {flag} to continue it, or choose "
                                                     "another --out")


def run_demo(out: str | Path, quick: bool = False, overrides: list[str] | None = None, dry_run: bool = False,
             progress=None) -> dict[str, Any]:
    """Run the demo into ``out`` (resumable); returns the pipeline result plus ``table`` and ``report``."""
    from ..pipeline import run_recipe
    from ..resources import BUILTIN_MODEL, resolve_model

    profile = "quick" if quick else "full"
    recipe, sizes = PROFILES[profile]
    out = Path(out).expanduser().resolve()
    check_out(out, profile)
    from ..pipeline import load_recipe, resolve

    resolve(load_recipe(recipe, overrides))  # a bad --set fails here, before any work
    # 1. Resources: the built-in model and the offline corpora, as input files of the recipe.
    resolve_model(BUILTIN_MODEL)
    cache = str(out / "inputs" / "translations.sqlite")
    paths = make_inputs(out / "inputs", sizes, translation_cache=cache)  # cheap: made on a dry run too
    # the made files as recipe inputs, as values (nothing to parse back); the dev prompts are for tuning only
    sets: list = [(f"inputs.{k}", str(v)) for k, v in paths.items() if k in NAMES]
    sets += [("migrate.cache", cache), ("clo_data.cache", cache)]
    # 2. The pipeline: every stage resumable, skipped when done.
    kwargs = {"progress": progress} if progress is not None else {}
    result = run_recipe(recipe, out, sets + list(overrides or []), dry_run=dry_run, **kwargs)
    if dry_run:
        return result
    # 3. What to print.
    result["table"] = results_table(result["stages"]["eval"]["summary"]["results"])
    result["paired"] = paired_differences(out / "eval" / "results")
    result["candidates"] = (result["stages"]["transfer"]["summary"] or {}).get("candidates", {})
    result["chosen"] = (result["stages"]["transfer"]["summary"] or {}).get("method")
    report = out / "report" / "report" / "index.html"
    if not report.is_file():
        raise LangshiftError(f"the report stage finished but {report} is missing")
    result["report"] = str(report)
    return result


def results_table(summary: dict) -> list[dict[str, Any]]:
    """One row per model (original, transferred, aligned) with the demo's four numbers."""
    rows = []
    for label in ROWS:
        if label not in summary:
            raise LangshiftError(f"the evaluation has no results for {label!r} (it has {', '.join(summary)})")
        row: dict[str, Any] = {"model": label}
        for col, task, key in COLUMNS:
            res = summary[label].get(task, {})
            row[col] = res.get(key)
            row[col + " 95%"] = (res[key + "_low"], res[key + "_high"]) if key + "_low" in res else None
        fid = summary[label].get("fidelity", {})
        if "n" in fid:  # replies with no line long enough to judge (e.g. empty) count as passes in LPR
            row["judged"] = f"{fid['n'] - fid.get('responses_without_judged_lines', 0)}/{fid['n']}"
        src = summary[label].get("fidelity_source", {})
        if "looping_responses" in fid:  # replies stuck in a loop, whose language ID is close to a coin toss
            row["loops es/en"] = f"{fid['looping_responses']}/{src.get('looping_responses', '–')}"
        rows.append(row)
    return rows


def paired_differences(results: Path, model: str = "aligned", against: str = "original") -> dict[str, tuple]:
    """``model`` − ``against`` on the same prompts / items of the run's results folder (paired 95%)."""
    from ..evaluate.report import paired_differences as paired
    from ..evaluate.results import load_results

    return paired(load_results(results), model, against)


def format_paired(paired: dict[str, tuple], model: str = "aligned", against: str = "original") -> str:
    from ..evaluate.report import format_difference

    parts = [f"{col} {format_difference(*diff)}" for col, diff in paired.items()]
    return f"{model} − {against}, same items (paired 95%): " + ", ".join(parts) if parts else ""


def format_table(rows: list[dict[str, Any]]) -> str:
    """One line per model; each number followed by its 95% interval in brackets."""
    extra = [c for c in ("judged", "loops es/en") if any(c in r for r in rows)]
    cols = ["model"] + [c for c, _, _ in COLUMNS] + extra

    def num(v) -> str:
        if isinstance(v, float):
            return "nan" if math.isnan(v) else f"{v:.3f}"
        return "–" if v is None else str(v)

    def cell(r: dict, c: str) -> str:
        ci = r.get(c + " 95%")
        return num(r.get(c)) + (f" [{num(ci[0])}, {num(ci[1])}]" if ci else "")

    cells = [[cell(r, c) for c in cols] for r in rows]
    widths = [max(len(c), *(len(line[i]) for line in cells)) for i, c in enumerate(cols)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(cols, widths, strict=True))]
    lines.append("  ".join("-" * w for w in widths))
    lines += ["  ".join(v.ljust(w) for v, w in zip(line, widths, strict=True)) for line in cells]
    return "\n".join(lines)


def format_candidates(candidates: dict, chosen: str | None) -> str:
    parts = [f"{m} {c['bits_per_byte']:.3f}" + (" ←" if m == chosen else "") for m, c in candidates.items()]
    return "init methods (held-out bits/byte before LAPT): " + ", ".join(parts)
