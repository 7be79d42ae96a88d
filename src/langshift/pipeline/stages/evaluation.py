"""The evaluation and report stages: rows over ``evaluate.run_eval`` and ``evaluate.report.run_report``."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from ...evaluate.config import EvalConfig
from ...evaluate.report import ReportConfig, run_report
from ...evaluate.run import run_eval
from .base import MODEL_STAGES, Context, Slot, Stage, add_stage

# 8. Evaluation and report --------------------------------------------------------------------------


def _evaluate(stage: Stage, cfg: EvalConfig, ctx: Context) -> dict:
    """Pipeline-specific: a model without a label is labelled by the stage that made it ("lapt", "clo"); the
    record names the result files relative to the stage folder (the work folder is renamed when done), and
    an interrupted attempt's kept results are not told apart from fresh ones."""
    cfg = dataclasses.replace(cfg, name=cfg.name or ctx.labels.get("model", "model"),
                              intermediate_name=cfg.intermediate_name or ctx.labels.get("intermediate",
                                                                                        "intermediate"))
    res = stage.run(cfg)
    return {**stage.record(res, ctx), "files": [Path(f).name for f in res.files], "kept": []}


FILES = ("bpb_text", "mc_tasks", "gen_mc_tasks", "mexa_pairs", "fidelity_prompts", "source_prompts", "responses",
         "outputs_a", "outputs_b")
add_stage(Stage("eval", EvalConfig,
                (Slot("model", tuple(f"@{s}" for s in MODEL_STAGES) + ("$model",), kind="model"),
                 Slot("baseline", (), required=False, kind="model"),
                 Slot("intermediate", (), required=False, kind="model"),
                 *(Slot(f, ("$eval_text",) if f == "bpb_text" else (), required=False, kind="file") for f in FILES)),
                "results", run=run_eval, execute=_evaluate, owned={"out": lambda w: str(w / "results"), "overwrite": lambda w: False},
                volatile=("batch_size",),
                help="any registered evaluation task (bits per byte, multiple choice, lm-eval, MEXA, language "
                     "fidelity, judge, …) on the model, and the baseline and intermediate models if given"))

add_stage(Stage("report", ReportConfig, (Slot("runs", ("@eval",), kind="dir"),
                                         Slot("transfer", ("@transfer",), required=False, kind="dir"),
                                         Slot("lapt", ("@lapt",), required=False, kind="dir"),
                                         Slot("clo", ("@clo",), required=False, kind="dir")),
                "report", run=run_report, owned={"out": lambda w: str(w / "report"), "overwrite": lambda w: False},
                help="HTML report: evaluation results, the init methods compared, training losses"))
