"""``langshift report RUN_DIR… --out DIR`` and a recipe's report stage (``run_report``): one HTML page (plus PNGs and a markdown table) that puts
models and methods side by side. Inputs follow the layout of ``results.py``: result JSON files written
with ``--save``, and training logs (``trainer_state.json`` or ``train_log.jsonl``) anywhere up to two
folders deep in a run folder."""

from __future__ import annotations

import html
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar

from ..config import Result, StageConfig, opt
from ..errors import ConfigError
from ..files import atomic_dir
from .plots import save_axes
from .results import ORDER_FILE, load_results

# 1. Metrics per result kind: {column name: (value, stderr or 95% interval or None)} ----------------


def _ci(res: dict, key: str) -> tuple[float, float] | None:
    """The 95% interval the evaluation stored as ``key_low``/``key_high`` (results before them have none)."""
    return (res[key + "_low"], res[key + "_high"]) if key + "_low" in res and key + "_high" in res else None


def _tag(rec: dict) -> str:
    cfg = rec.get("config") or {}
    if cfg.get("tag"):
        return str(cfg["tag"])
    for key in ("text", "tasks", "pairs", "prompts", "outputs_b"):
        if cfg.get(key):
            value = cfg[key]
            value = value if isinstance(value, str) else ",".join(map(str, value))
            return Path(value).stem if "/" in value or value.endswith((".jsonl", ".txt")) else value
    return ""


def metrics(rec: dict) -> dict[str, tuple[float, float | tuple[float, float] | None]]:
    kind, res, tag = rec["kind"], rec["result"], _tag(rec)
    sfx = f" [{tag}]" if tag else ""
    if kind == "bpb":
        return {f"bits/byte{sfx}": (res["bits_per_byte"], _ci(res, "bits_per_byte"))}
    if kind == "mc" and "acc" in res:
        return {f"acc{sfx}": (res["acc"], _ci(res, "acc") or res.get("acc_stderr")),
                f"acc_norm{sfx}": (res["acc_norm"], res.get("acc_norm_stderr"))}
    if kind == "mc":  # lm-eval: {"results": {task: {"acc,none": …, "acc_stderr,none": …}}}
        out = {}
        for task, vals in res.get("results", {}).items():
            for key, value in vals.items():
                name, _, _filter = key.partition(",")
                if isinstance(value, (int, float)) and not name.endswith("_stderr") and name != "sample_len":
                    se = vals.get(f"{name}_stderr,{_filter}")
                    out[f"{task} {name}"] = (value, se if isinstance(se, (int, float)) else None)
        return out
    if kind == "gen_mc":
        return {f"gen acc{sfx}": (res["acc"], res.get("acc_stderr")),
                f"gen extraction failures{sfx}": (res["extraction_failures"], None)}
    if kind == "mexa":
        return {f"MEXA mean{sfx}": (res["mean"], _ci(res, "mean")), f"MEXA max{sfx}": (res["max"], None)}
    if kind == "fidelity":
        out = {f"{m.upper()}{sfx}": (res[m], _ci(res, m)) for m in ("lpr", "wpr", "lcpr")}
        if "looping_responses" in res and res.get("n"):  # loops: language ID on them is close to a coin toss
            from .intervals import wilson

            ci = ((res["looping_low"], res["looping_high"]) if "looping_low" in res  # over prompts with draws
                  else wilson(res["looping_responses"], res["n"]))
            out[f"looping{sfx}"] = (res["looping_responses"] / res["n"], ci)
        return out
    if kind == "judge" and not res.get("skipped"):
        against = (rec.get("config") or {}).get("against", "B")
        return {f"win rate vs {against}": (res["win_rate_a"], res.get("stderr"))}
    if kind == "fertility":
        return {f"{k}{sfx}": (v, None) for k, v in res.items() if isinstance(v, (int, float))
                and not isinstance(v, bool)}
    return {}


def _fmt(value: float, se: float | tuple[float, float] | None) -> str:
    """``value ± stderr``, or ``value [low, high]`` when ``se`` is a 95% interval."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    text = f"{value:.4g}" if isinstance(value, float) else str(value)
    if isinstance(se, tuple):
        return text + f" [{se[0]:.3g}, {se[1]:.3g}]"
    if se is not None and not (isinstance(se, float) and math.isnan(se)):
        text += f" ± {se:.2g}"
    return text


def model_order(run_dir: Path) -> list[str]:
    """The order a run's models were evaluated in (before → after), when the run recorded it."""
    path = run_dir / ORDER_FILE
    return json.loads(path.read_text(encoding="utf-8")).get("models", []) if path.is_file() else []


def in_order(records: list[dict], order: dict[str, list[str]]) -> list[dict]:
    """By kind, then each run's models in its recorded order (else by file name); stable, so runs keep
    the order given."""
    from .results import KINDS

    def rank(r: dict) -> tuple:
        known = order.get(r["run"], [])
        return (KINDS.index(r["kind"]), known.index(r["model"]) if r["model"] in known else len(known))

    return sorted(records, key=rank)


def table(records: list[dict], multi_run: bool) -> tuple[list[str], list[str], dict]:
    """Rows (models) and columns (metrics) of ``records``, in the order given."""
    rows, cols, cells = [], [], {}
    for rec in records:
        row = f"{rec['run']}/{rec['model']}" if multi_run else rec["model"]
        for col, (value, se) in metrics(rec).items():
            rows += [row] if row not in rows else []
            cols += [col] if col not in cols else []
            cells[row, col] = _fmt(value, se)
    return rows, cols, cells


def markdown_table(rows, cols, cells) -> str:
    head = "| model | " + " | ".join(cols) + " |\n|---|" + "---|" * len(cols) + "\n"
    return head + "".join("| " + r + " | " + " | ".join(cells.get((r, c), "") for c in cols) + " |\n" for r in rows)


def per_item(rec: dict) -> tuple[str, list[float]] | None:
    """The column (named as in the side-by-side table) and one score per prompt or item (1 pass / 0 fail),
    for the kinds that keep them: fidelity, mc."""
    res, tag = rec["result"], _tag(rec)
    sfx = f" [{tag}]" if tag else ""
    if rec["kind"] == "fidelity" and "per_response" in res:
        from .fidelity import share_per_prompt  # several draws: each prompt's share of passing replies

        return f"LPR{sfx}", share_per_prompt(res["per_response"])
    if rec["kind"] == "mc" and "predictions" in res:
        return f"acc{sfx}", [float(p["pred"] == p["answer"]) for p in res["predictions"]]
    return None


def paired_differences(records: list[dict], model: str, against: str) -> dict[str, tuple[float, float, float]]:
    """``model`` − ``against`` on the same prompts / items, per column both have (a paired bootstrap 95%
    interval: the rows' own intervals can overlap while one model wins on most of the same items)."""
    from .intervals import paired_difference

    scores: dict[tuple[str, str], list[float]] = {}
    for r in records:
        if r["model"] in (model, against) and (item := per_item(r)) is not None:
            scores[r["model"], item[0]] = item[1]
    return {col: paired_difference(a, scores[against, col]) for (m, col), a in scores.items()
            if m == model and (against, col) in scores and len(a) == len(scores[against, col]) >= 2}


def format_difference(diff: float, low: float, high: float) -> str:
    return f"{diff:+.3f} [{low:+.3f}, {high:+.3f}]"


def paired_table(records: list[dict], baselines: dict[str, str], multi_run: bool) -> tuple[list[str], list[str], dict]:
    """Every model against its run's baseline (the first model the run evaluated), as table cells."""
    rows, cols, cells = [], [], {}
    for run, base in baselines.items():
        mine = [r for r in records if r["run"] == run]
        for model in dict.fromkeys(r["model"] for r in mine if r["model"] != base):
            row = f"{run}/{model} − {base}" if multi_run else f"{model} − {base}"
            for col, diff in paired_differences(mine, model, base).items():
                rows += [row] if row not in rows else []
                cols += [col] if col not in cols else []
                cells[row, col] = format_difference(*diff)
    return rows, cols, cells


# 2. Training logs ------------------------------------------------------------------------------------

def training_curves(run_dir: Path, label: str | None = None) -> dict[str, tuple[list[float], list[float]]]:
    """label → (steps, losses) from trainer_state.json / train_log.jsonl up to two levels deep; with
    ``label``, the folder's own log is called that (a model folder named e.g. ``model``)."""
    curves = {}
    for path in sorted([*run_dir.glob("trainer_state.json"), *run_dir.glob("*/trainer_state.json"),
                        *run_dir.glob("*/*/trainer_state.json")]):
        logs = json.loads(path.read_text(encoding="utf-8")).get("log_history", [])
        pts = [(e["step"], e["loss"]) for e in logs if "loss" in e and "step" in e]
        if pts:
            curves[f"{run_dir.name}/{path.parent.relative_to(run_dir)}"] = tuple(map(list, zip(*pts, strict=True)))
    for path in sorted([*run_dir.glob("train_log.jsonl"), *run_dir.glob("*/train_log.jsonl"),
                        *run_dir.glob("*/*/train_log.jsonl")]):
        pts = []
        for line in path.read_text(encoding="utf-8").splitlines():
            if line.strip():
                e = json.loads(line)
                if "loss" in e and "step" in e:
                    pts.append((e["step"], e["loss"]))
        if pts:
            curves[f"{run_dir.name}/{path.parent.relative_to(run_dir)}"] = tuple(map(list, zip(*pts, strict=True)))
    if label is not None:
        rels = {key: key[len(run_dir.name) + 1:] for key in curves}
        curves = {label + ("" if rels[key] == "." else f"/{rels[key]}"): v for key, v in curves.items()}
    return curves


def _plot_curves(curves: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4))
    for label, (steps, losses) in curves.items():
        ax.plot(steps, losses, label=label.rstrip("/."))
    save_axes(fig, ax, path, "step", "training loss")


# 3. The page -----------------------------------------------------------------------------------------

_CSS = ("body{font-family:sans-serif;margin:2em;max-width:1100px;color:#222}table{border-collapse:collapse;"
        "font-size:14px}td,th{border:1px solid #ccc;padding:4px 8px;text-align:right}td{white-space:nowrap}th{background:#f0f0f0}"
        "td:first-child,th:first-child{text-align:left}img{max-width:100%;border:1px solid #eee}"
        ".note{color:#666;font-size:13px}pre{background:#f7f7f7;padding:8px;white-space:pre-wrap}")


def build_report(run_dirs: list[str | Path], out: str | Path, overwrite: bool = False,
                 title: str = "langshift report", training: dict[str, str | Path] | None = None,
                 candidates: str | Path | None = None, science: str | Path | None = None) -> dict:
    """Write ``index.html``, ``results.md`` and PNGs into ``out``; returns what it wrote.

    ``training``: label → a folder with a training log (e.g. a trained model folder), plotted
    with the logs found in the run folders. ``candidates``: the JSON file in which the pipeline's
    transfer stage recorded the init methods it compared (shown when it exists). ``science``: a folder holding
    ``bench/science.py``'s results (the convergence plot and the CLO data-size table are added)."""
    from .mexa import plot_mexa
    from .plots import science_sections

    if not run_dirs:
        raise ConfigError("RUN_DIR", [], "give at least one run folder")
    dirs = [Path(d) for d in run_dirs]
    orders = {d.name: model_order(d) for d in dirs}
    records = in_order([r for d in dirs for r in load_results(d)], orders)
    curves = {k: v for d in dirs for k, v in training_curves(d).items()}
    for name, folder in (training or {}).items():
        curves.update(training_curves(Path(folder), label=name))
    if not records and not curves:
        raise ConfigError("RUN_DIR", [str(d) for d in dirs], "holds no result files (*.json written with --save) "
                                                             "and no training logs")
    multi = len({d.name for d in dirs}) > 1
    rows, cols, cells = table(records, multi)
    md = markdown_table(rows, cols, cells) if rows else "(no evaluation results)\n"
    label = (lambda r: f"{r['run']}/{r['model']}") if multi else (lambda r: r["model"])
    parts = [f"<h1>{html.escape(title)}</h1>",
             f"<p class=note>Runs: {', '.join(html.escape(str(d)) for d in dirs)}. Values ± standard error "
             "where known. Bits per byte: lower is better; everything else: higher is better.</p>"]
    written = ["index.html", "results.md"]
    with atomic_dir(out, overwrite=overwrite) as tmp:
        parts.append("<h2>Side by side</h2>" + _html_table(rows, cols, cells))
        baselines = {run: order[0] for run, order in orders.items() if order}
        prows, pcols, pcells = paired_table(records, baselines, multi)
        if prows:
            parts.append("<h2>Against the first model, on the same items</h2><p class=note>Difference in the share "
                         "of prompts / items passed, with its paired bootstrap 95% interval: an interval clear of "
                         "0 separates the two models on these items.</p>" + _html_table(prows, pcols, pcells))
            md += "\n" + markdown_table(prows, pcols, pcells)
        parts += _init_comparison(candidates)
        science_parts, science_files = science_sections(science, tmp)
        parts += science_parts
        written += science_files
        mexa = {label(r) + (f" [{_tag(r)}]" if _tag(r) else ""): r["result"] for r in records if r["kind"] == "mexa"}
        if mexa:
            plot_mexa(mexa, tmp / "mexa.png")
            written.append("mexa.png")
            parts.append("<h2>MEXA alignment per layer</h2><img src='mexa.png' alt='MEXA per layer'>")
        if curves:
            _plot_curves(curves, tmp / "training_loss.png")
            written.append("training_loss.png")
            parts.append("<h2>Training loss</h2><img src='training_loss.png' alt='training loss'>")
        for r in records:
            if r["kind"] == "fidelity" and (r["result"].get("line_failures") or r["result"].get("word_failures")):
                ex = (r["result"].get("line_failures") or r["result"]["word_failures"])[0]["response"]
                parts.append(f"<h3>Fidelity failure example — {html.escape(label(r))}</h3>"
                             f"<pre>{html.escape(ex[:800])}</pre>")
        for png in sorted({p for d in dirs for p in d.glob("*.png")}):
            target = f"{png.parent.name}__{png.name}"
            (tmp / target).write_bytes(png.read_bytes())
            written.append(target)
            parts.append(f"<h2>{html.escape(png.stem)} ({html.escape(png.parent.name)})</h2><img src='{target}'>")
        (tmp / "results.md").write_text(md, encoding="utf-8")
        page = (f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
                f"<style>{_CSS}</style></head><body>{''.join(parts)}</body></html>\n")
        (tmp / "index.html").write_text(page, encoding="utf-8")
    return {"out": str(out), "files": written, "models": rows, "columns": cols}


def _init_comparison(candidates: str | Path | None) -> list[str]:
    """The init methods the transfer stage compared (bits per byte on held-out text, before training)."""
    path = Path(candidates) if candidates else None
    if path is None or not path.is_file():
        return []
    data = json.loads(path.read_text(encoding="utf-8"))
    ranked = sorted(data["candidates"].items(), key=lambda kv: kv[1]["bits_per_byte"])
    rows = [m + (" (kept)" if m == data["method"] else "") for m, _ in ranked]
    cells = {(r, "bits/byte"): f"{c['bits_per_byte']:.4g}" for r, (_, c) in zip(rows, ranked, strict=True)}
    return ["<h2>Init methods compared</h2>",
            f"<p class=note>Each transferred with no training yet; {html.escape(data['selected_by'])}.</p>",
            _html_table(rows, ["bits/byte"], cells).replace("<th>model</th>", "<th>init method</th>")]


def _html_table(rows, cols, cells) -> str:
    if not rows:
        return "<p>(no evaluation results)</p>"
    head = "<tr><th>model</th>" + "".join(f"<th>{html.escape(c)}</th>" for c in cols) + "</tr>"
    body = "".join("<tr><td>" + html.escape(r) + "</td>" + "".join(
        f"<td>{html.escape(cells.get((r, c), ''))}</td>" for c in cols) + "</tr>" for r in rows)
    return f"<table>{head}{body}</table>"


# 4. The front door: ``run_report(cfg)`` --------------------------------------------------------------

@dataclass
class ReportConfig(StageConfig):
    INPUTS: ClassVar = ("runs", "transfer", "lapt", "clo", "science")
    runs: list[str] = opt(help="run folders of evaluation results (`langshift eval … --save`, a recipe's eval stage)")
    out: str = opt(help="folder to write index.html, results.md and PNGs into")
    overwrite: bool = opt(False, "replace --out if it exists")
    title: str = opt("langshift report", "page title")
    transfer: str | None = opt(None, "transferred model folder whose init-method comparison is shown (a recipe: the "
                                     "transfer stage's, when it compared candidates)")
    lapt: str | None = opt(None, "trained model folder whose training loss is plotted (a recipe: the lapt stage's)")
    clo: str | None = opt(None, "trained model folder whose training loss is plotted (a recipe: the clo stage's)")
    science: str | None = opt(None, "folder of bench/science.py's results (convergence plot, CLO data-size table)")

    def validate(self) -> None:
        if isinstance(self.runs, str):  # a recipe's slot gives one folder
            self.runs = [self.runs]


@dataclass
class ReportResult(Result):
    files: list[str] = field(default_factory=list)
    models: list[str] = field(default_factory=list)


def run_report(cfg: ReportConfig) -> ReportResult:
    # where the transfer stage records the init methods it compared
    from ..transfer.run import CANDIDATES_FILE

    cfg.check_output()
    training = {name: folder for name, folder in (("lapt", cfg.lapt), ("clo", cfg.clo)) if folder}
    candidates = Path(cfg.transfer) / CANDIDATES_FILE if cfg.transfer else None
    res = build_report(cfg.runs, cfg.out, cfg.overwrite, cfg.title, training=training, candidates=candidates,
                       science=cfg.science)
    return ReportResult(out=res["out"], files=res["files"], models=res["models"])
