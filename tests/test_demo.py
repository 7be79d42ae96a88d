"""`langshift demo --quick` end to end on the real SmolLM2-135M-Instruct (offline), then a rerun that
skips every stage. Budget: about 5 minutes on 2 otherwise idle cores (CI runs it)."""

from __future__ import annotations

import json
import math
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.real_model


_CELL = re.compile(r"(\d+\.\d+) \[(\d+\.\d+), (\d+\.\d+)\]")


def _cells(line: str) -> list[tuple[float, float, float]]:
    """(value, low, high) of every ``value [low, high]`` cell of a table line."""
    return [tuple(map(float, m)) for m in _CELL.findall(line)]


def _demo(out: Path) -> tuple[list[str], str]:
    res = subprocess.run([sys.executable, "-m", "langshift.cli", "demo", "--quick", "--out", str(out)],
                         capture_output=True, text=True, timeout=1800,
                         env={**os.environ, "TOKENIZERS_PARALLELISM": "false"})
    assert res.returncode == 0, res.stderr[-3000:]
    return res.stdout.strip().splitlines(), res.stderr


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory):
    """A fresh quick demo; or, where LANGSHIFT_TEST_DEMO_RUN names a folder a quick demo already
    finished in (.ci/run's smoke run), that run: the same command, resumed, prints the same table
    from the same artefacts, so CI does not pay for a second identical run."""
    given = os.environ.get("LANGSHIFT_TEST_DEMO_RUN")
    out = Path(given) if given else tmp_path_factory.mktemp("demo") / "run"
    lines, err = _demo(out)
    return out, lines, err


def test_quick_demo_report_table_and_models(demo_run):
    out, lines, err = demo_run
    # The report's path is the last line printed, and the page exists.
    report = Path(lines[-1])
    assert report.is_absolute() and report.is_file() and report.name == "index.html"
    assert report.is_relative_to(out)
    page = report.read_text(encoding="utf-8")
    table = page[page.index("<table>"):page.index("</table>")]
    assert table.index(">original<") < table.index(">transferred<") < table.index(">aligned<")  # before → after
    assert "training_loss.png" in page and (report.parent / "training_loss.png").is_file()  # LAPT and CLO losses
    assert "Init methods compared" in page and " (kept)" in page
    # The table: header, rule, then the three models in order.
    head = next(i for i, line in enumerate(lines) if line.startswith("model "))
    assert lines[head].split()[:2] == ["model", "bits/byte"] and all(c in lines[head] for c in ("LPR es", "WPR es",
                                                                                                 "LPR en"))
    rows = {line.split()[0]: _cells(line) for line in lines[head + 2:head + 5]}
    assert list(rows) == ["original", "transferred", "aligned"]
    for cells in rows.values():  # bits/byte, LPR es, WPR es, LPR en, MEXA, MC acc: each inside its 95% interval
        assert len(cells) == 6 and all(lo <= v <= hi for v, lo, hi in cells)
    bpb = {m: c[0][0] for m, c in rows.items()}
    assert math.isfinite(bpb["transferred"]) and 0 < bpb["transferred"] < 10
    # The four inits were compared and the lowest kept.
    init_line = next(line for line in lines if line.startswith("init methods"))
    for method in ("migrate", "salt", "focus", "mean"):
        assert method in init_line
    scores = {p.split()[0]: float(p.split()[1]) for p in init_line.split(": ", 1)[1].split(", ")}
    chosen = next(p.split()[0] for p in init_line.split(": ", 1)[1].split(", ") if p.endswith("←"))
    assert chosen == min(scores, key=scores.get)
    assert "[1/9] tokenizer" in err  # stage progress goes to stderr
    assert not any(line.startswith("{'") for line in lines)  # so do the trainers' logs
    assert "'loss'" in err or "0 of 9 stages ran" in lines[-2]  # (a resumed, finished run trains nothing)


def test_aligned_model_reloads_and_generates(demo_run):
    from langshift.models import load_model, load_tokenizer

    out = demo_run[0]
    folder = str(out / "clo" / "model")
    model, tok = load_model(folder), load_tokenizer(folder)
    assert model.get_input_embeddings().weight.shape[0] >= len(tok)
    ids = tok.apply_chat_template([{"role": "user", "content": "Hola, ¿cómo estás?"}], add_generation_prompt=True,
                                  return_tensors="pt", return_dict=True)
    gen = model.generate(**ids, max_new_tokens=4, do_sample=False)
    assert gen.shape[1] > ids["input_ids"].shape[1]


def test_heldout_text_is_not_in_training_text(demo_run):
    inputs = demo_run[0] / "inputs"
    train = set((inputs / "target.es.txt").read_text(encoding="utf-8").splitlines())
    pairs = [json.loads(line)["text"].split("\n") for line in (inputs / "parallel.jsonl").open(encoding="utf-8")]
    assert pairs and all(len(p) == 2 for p in pairs)
    paired = {line for p in pairs for line in p}
    for name in ("heldout.es.txt", "select.es.txt"):
        held = set((inputs / name).read_text(encoding="utf-8").splitlines())
        assert held and not (held & train) and not (held & paired), name


def test_rerun_skips_every_stage(demo_run):
    """Every stage is skipped as done (how long that takes is load-dependent: no wall-clock bound here)."""
    out, first_lines, _ = demo_run
    lines, err = _demo(out)
    assert "9 of 9" not in lines[-2] and "0 of 9 stages ran" in lines[-2]
    assert err.count(": skip — done") == 9
    assert lines[-1] == first_lines[-1]


def test_fidelity_replies_saved_in_both_languages_on_prompts_held_out_of_clo(demo_run):
    import json

    out = demo_run[0]
    clo_prompts = {json.loads(line)["x_t"] for line in (out / "clo_data" / "clo.jsonl").read_text().splitlines()}
    clo_prompts |= {json.loads(line)["x_en"] for line in (out / "clo_data" / "clo.jsonl").read_text().splitlines()}
    for name, lang in (("fidelity.aligned.json", "es"), ("fidelity.aligned.en.json", "en")):
        res = json.loads((out / "eval" / "results" / name).read_text(encoding="utf-8"))["result"]
        assert res["lang"] == lang and res["n"] >= 64 and len(res["responses"]) == res["n"]
        assert res["lpr_low"] <= res["lpr"] <= res["lpr_high"]
        assert not {" ".join(r["prompt"].split()) for r in res["responses"]} & {" ".join(p.split()) for p in clo_prompts}
