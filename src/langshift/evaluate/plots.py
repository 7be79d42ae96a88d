"""Figures and tables of the science benchmarks (``bench/science.py``) for the report.

Inputs are the JSON files that bench writes: ``science_convergence.json`` (held-out bits/byte with a
95% interval at each evaluated LAPT step, per init method, and the original model's own score) and
``science_clo.json`` (language fidelity per method and data size: mean and standard error across
seeds, and each method's paired difference from SFT; ``science_clo_<name>.json`` for a grid run from
another starting model: one section each) and ``science_syncs.json`` (MEXA and held-out bits/byte
after the same continued training on each SynCS type). Each function reads only what it draws, so a
partial results file (some inits, sizes or arms still missing) still plots.
"""

from __future__ import annotations

import html
import json
from pathlib import Path

from ..errors import ConfigError

CONVERGENCE_FILE = "science_convergence.json"
CLO_FILE = "science_clo.json"
SYNCS_FILE = "science_syncs.json"


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def convergence_series(result: dict) -> dict[str, tuple[list[int], list[float], list[float], list[float]]]:
    """init -> (steps, bits/byte, interval low, interval high), steps ascending."""
    try:
        curves = result["curves"]
    except (KeyError, TypeError):
        raise ConfigError("convergence result", str(result)[:60], "has no 'curves'; give the JSON that "
                                                                  "`bench/science.py convergence` writes") from None
    out = {}
    for name, curve in curves.items():
        pts = sorted((int(s), v) for s, v in curve["points"].items())
        out[name] = ([s for s, _ in pts], [v[0] for _, v in pts], [v[1] for _, v in pts], [v[2] for _, v in pts])
    return out


def convergence_markdown(result: dict) -> str:
    """One row per init: bits/byte [95% interval] at each evaluated step, and the steps to reach the
    original model's own bits/byte; the original model first."""
    series = convergence_series(result)
    steps = sorted({s for st, *_ in series.values() for s in st})
    lines = ["| init | " + " | ".join(f"step {s}" for s in steps) + " | steps to reach original |",
             "|---|" + "---:|" * (len(steps) + 1)]
    orig = result.get("original", {}).get("bits_per_byte")
    if orig:
        lines.append(f"| original model, own tokenizer | {orig[0]:.3f} [{orig[1]:.3f}, {orig[2]:.3f}] |"
                     + " |" * len(steps))
    for name, (st, mid, lo, hi) in series.items():
        at = {s: f"{m:.3f} [{a:.3f}, {b:.3f}]" for s, m, a, b in zip(st, mid, lo, hi, strict=True)}
        reach = result["curves"][name].get("steps_to_reach_original")
        lines.append(f"| {name} | " + " | ".join(at.get(s, "") for s in steps)
                     + f" | {reach if reach is not None else 'not reached'} |")
    return "\n".join(lines) + "\n"


def plot_convergence(result: dict, path: str | Path) -> Path:
    """Held-out bits/byte against LAPT step, one line per init with its 95% band, and the original
    model's own bits/byte as a dashed line (the level 'steps to reach' refers to)."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7, 4.2))
    for name, (steps, mid, lo, hi) in convergence_series(result).items():
        (line,) = ax.plot(steps, mid, marker="o", ms=3, label=name)
        ax.fill_between(steps, lo, hi, color=line.get_color(), alpha=0.12)
    orig = result.get("original", {}).get("bits_per_byte")
    if orig:
        ax.axhline(orig[0], color="k", ls="--", lw=1, label=f"original model ({orig[0]:.3f})")
    return save_axes(fig, ax, path, "LAPT step", "held-out bits/byte (95% interval)")


def clo_size_rows(result: dict) -> list[tuple[str, int, int, list[float], list[float]]]:
    """(method, pairs, seeds, [mean, se] target-in-target, [mean, se] English-in-English), sorted."""
    try:
        summary = result["summary"]
    except (KeyError, TypeError):
        raise ConfigError("CLO result", str(result)[:60], "has no 'summary'; give the JSON that "
                                                          "`bench/science.py clo` writes") from None
    rows = [(m, int(n), g["seeds"], g["target_in_target"], g["english_in_english"])
            for m, by_n in summary.items() for n, g in by_n.items()]
    return sorted(rows, key=lambda r: (r[0], r[1]))


def _pm(v: list[float]) -> str:
    mean, se = v
    return f"{mean:.3f} ± {se:.3f}" if se == se else f"{mean:.3f}"  # se is NaN with one seed


def _paired(cell: dict | None, method: str) -> str:
    """``vs_sft`` of a summary cell: Δ ± s.e. across seeds, its 95% bootstrap interval over prompts, and
    (prompts only this method / only SFT answered in the target language, pooled over seeds)."""
    if not cell:
        return "—"
    lo, hi = (x + 0.0 for x in cell["prompt_bootstrap_95"])  # + 0.0: no "-0.000"
    return (f"{cell['difference'][0]:+.3f}" + (f" ± {cell['difference'][1]:.3f}" if cell["seeds"] > 1 else "")
            + f" [{lo:+.3f}, {hi:+.3f}] ({cell[f'only_{method}']}:{cell['only_sft']})")


def clo_size_markdown(result: dict) -> str:
    """The data-size table: fidelity mean ± standard error across seeds, the untrained model first, and
    each method's paired difference from SFT on the same seeds' subsets and prompts."""
    lines = ["| method | pairs | seeds | target prompts → target | English prompts → English | "
             "vs SFT, paired: Δ [95% over prompts] (only it : only SFT) |",
             "|---|---:|---:|---:|---:|---:|"]
    base = result.get("runs", {}).get("base")
    if base:
        lines.append(f"| no alignment | — | — | {base['target_prompts_answered_in_target']['share']:.3f} | "
                     f"{base['english_prompts_answered_in_english']['share']:.3f} | — |")
    summary = result["summary"]
    lines += [f"| {m} | {n} | {s} | {_pm(t)} | {_pm(e)} | {_paired(summary[m][str(n)].get('vs_sft'), m)} |"
              for m, n, s, t, e in clo_size_rows(result)]
    return "\n".join(lines) + "\n"


def plot_clo_sizes(result: dict, path: str | Path) -> Path:
    """Share of prompts answered in the prompt's language against training pairs, one colour per method:
    target-language prompts solid, English prompts dashed (what alignment may cost the source language);
    error bars = standard error across seeds; the untrained model as grey horizontal lines."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6, 4))
    by_method: dict[str, list] = {}
    for m, n, _, t, e in clo_size_rows(result):
        by_method.setdefault(m, []).append((n, t, e))
    se = lambda v: v[1] if v[1] == v[1] else 0.0  # noqa: E731 — NaN with one seed
    for m, pts in by_method.items():
        xs = [p[0] for p in pts]
        line = ax.errorbar(xs, [p[1][0] for p in pts], yerr=[se(p[1]) for p in pts], marker="o", capsize=3,
                           label=f"{m}: target prompts")
        ax.errorbar(xs, [p[2][0] for p in pts], yerr=[se(p[2]) for p in pts], marker="s", capsize=3, ls="--",
                    mfc="none", color=line.lines[0].get_color(), label=f"{m}: English prompts")
    base = result.get("runs", {}).get("base")
    if base:
        ax.axhline(base["target_prompts_answered_in_target"]["share"], color="0.3", ls="-", lw=1,
                   label="no alignment: target prompts")
        ax.axhline(base["english_prompts_answered_in_english"]["share"], color="0.3", ls="--", lw=1,
                   label="no alignment: English prompts")
    ax.set_xscale("log", base=2)
    sizes = sorted({n for pts in by_method.values() for n, *_ in pts})
    ax.set_xticks(sizes, [str(n) for n in sizes])  # the pair counts trained on, not powers of two
    ax.minorticks_off()
    ax.set_ylim(0, 1.02)
    return save_axes(fig, ax, path, "training pairs", "answered in the prompt's language (± s.e.)")


def _ci(v: list[float]) -> str:
    return f"{v[0]:.3f} [{v[1]:.3f}, {v[2]:.3f}]"


def _signed(v: list[float]) -> str:
    return f"{v[0] + 0.0:+.3f} [{v[1] + 0.0:+.3f}, {v[2] + 0.0:+.3f}]"


def syncs_markdown(result: dict) -> str:
    """Per arm: MEXA (mean over layers, 95% over pairs; best layer), held-out bits/byte in the target
    language and in English (95% over verses); then the paired differences (same pairs and verses)."""
    summary = result.get("summary") or {}
    order = ("base", "none", "mono", "token-repl", "token-annt", "sent-repl", "sent-annt")
    arms = sorted((a for a in summary if a != "paired"), key=lambda a: (order + (a,)).index(a))
    lines = ["| continued training on | seeds | MEXA mean [95%] | MEXA best layer | target bits/byte [95%] | "
             "English bits/byte [95%] |", "|---|---:|---:|---:|---:|---:|"]
    names = {"base": "nothing (the model as it is)", "none": "English only", "mono": "English + plain target text"}
    for a in arms:
        c = summary[a]
        lines.append(f"| {names.get(a, a)} | {c['seeds']} | {_ci(c['mexa_mean'])} | {c['mexa_max_layer']:.3f} | "
                     f"{_ci(c['bits_es'])} | {_ci(c['bits_en'])} |")
    lines += ["", "| paired difference | MEXA mean | target bits/byte | English bits/byte |", "|---|---:|---:|---:|"]
    lines += [f"| {k} | {_signed(v['mexa_mean'])} | {_signed(v['bits_es'])} | {_signed(v['bits_en'])} |"
              for k, v in summary.get("paired", {}).items()]
    return "\n".join(lines) + "\n"


def plot_syncs_layers(result: dict, path: str | Path) -> Path:
    """MEXA per layer (0 = embeddings) for each arm, averaged over seeds."""
    import numpy as np

    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6, 4))
    arms: dict[str, list] = {}
    for key, run in result.get("runs", {}).items():
        arms.setdefault(key.split("|")[0], []).append(run["mexa_layers"])
    for arm, layers in arms.items():
        ys = np.mean(layers, axis=0)
        ax.plot(range(len(ys)), ys, marker=".", ls="--" if arm in ("base", "none", "mono") else "-", label=arm)
    return save_axes(fig, ax, path, "layer (0 = embeddings)", "MEXA alignment")


def start_label(model: object) -> str:
    """How a grid's starting model is named in a heading: hub ids and relative paths as given, an absolute
    path by its last three parts (the machine-specific, often temporary, prefix says nothing to a reader)."""
    text = str(model)
    parts = Path(text).parts
    return "…/" + "/".join(parts[-3:]) if Path(text).is_absolute() and len(parts) > 4 else text


def science_sections(folder: str | Path | None, out: Path) -> tuple[list[str], list[str]]:
    """HTML parts and file names written into ``out`` for the science results found in ``folder``
    (nothing when ``folder`` is None or holds neither file)."""
    if folder is None:
        return [], []
    folder = Path(folder)
    parts, files = [], []
    conv, clo = folder / CONVERGENCE_FILE, folder / CLO_FILE
    if conv.is_file():
        data = json.loads(conv.read_text(encoding="utf-8"))
        plot_convergence(data, out / "convergence.png")
        files.append("convergence.png")
        reach = {k: v.get("steps_to_reach_original") for k, v in data["curves"].items()}
        note = ", ".join(f"{k}: {v if v is not None else 'not reached'}" for k, v in reach.items())
        parts.append("<h2>Convergence during LAPT</h2><p class=note>Held-out bits/byte with 95% bootstrap "
                     f"intervals over verses. Steps to reach the original model: {html.escape(note)}.</p>"
                     "<img src='convergence.png' alt='convergence'>")
    # science_clo.json, and science_clo_<name>.json for grids run from other starting models
    for path in sorted(folder.glob(clo.stem + "*.json")):
        data = json.loads(path.read_text(encoding="utf-8"))
        if not clo_size_rows(data):  # a file with only the untrained model has nothing to plot
            continue
        name = "clo_sizes" + path.stem[len(clo.stem):] + ".png"
        plot_clo_sizes(data, out / name)
        files.append(name)
        start = start_label(data.get("settings", {}).get("model", "?"))
        parts.append(f"<h2>Alignment vs training pairs, from {html.escape(start)}</h2><pre>"
                     + html.escape(clo_size_markdown(data)) + f"</pre><img src='{name}' alt='fidelity against "
                     "training pairs'>")
    syncs = folder / SYNCS_FILE
    if syncs.is_file():
        data = json.loads(syncs.read_text(encoding="utf-8"))
        if data.get("summary"):
            plot_syncs_layers(data, out / "syncs_mexa.png")
            files.append("syncs_mexa.png")
            n = len(data["runs"]["base"]["mexa_pair_rate"])
            parts.append("<h2>SynCS: replacement vs annotation</h2><p class=note>The same continued training "
                         f"(LoRA LAPT, same steps) on English documents code-switched by each type at one budget "
                         f"of new target tokens; MEXA on {n} held-out verse pairs.</p><pre>"
                         + html.escape(syncs_markdown(data)) + "</pre><img src='syncs_mexa.png' alt='MEXA per layer'>")
    return parts, files


def save_axes(fig, ax, path, xlabel: str, ylabel: str) -> Path:
    """Label, grid and legend one plot the way every report figure is drawn, write it, close it."""
    import matplotlib.pyplot as plt

    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return Path(path)
