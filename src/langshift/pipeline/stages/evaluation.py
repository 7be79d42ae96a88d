"""The evaluation and report stages."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from ...config import StageConfig, check_range, opt
from ...errors import ConfigError
from ...files import read_lines
from ...transfer.run import CANDIDATES_FILE
from .base import MODEL_STAGES, Context, Slot, Stage, add_stage, head_lines

log = logging.getLogger(__name__)


# 8. Evaluation and report --------------------------------------------------------------------------

@dataclass
class EvalStageConfig(StageConfig):
    model: str | None = opt(None, "model to evaluate (default: the recipe's last model)")
    baseline: str | None = opt(None, "also evaluate this model (e.g. $model, the source) for comparison")
    intermediate: str | None = opt(None, "also evaluate a model made on the way (e.g. @lapt when the recipe goes "
                                         "on to clo)")
    names: dict = opt({}, "labels of the evaluated models in results and report, by role: {baseline: original, "
                          "intermediate: adapted, model: aligned} (default: producing stage; 'baseline')")
    lang: str = opt("es", "target language (templates, fidelity)")
    bpb_text: str | None = opt(None, "bits per byte on this text file (one document a line)")
    bpb_limit: int | None = opt(None, "score only the first N lines of bpb_text")
    mc_tasks: str | None = opt(None, "multiple choice by log-likelihood on this JSONL task file")
    mc_format: Literal["text", "letters"] = opt("text", "score each choice's text or its letter")
    lm_eval_tasks: list[str] = opt([], "lm-eval task names (e.g. arc_es, truthfulqa_es_mc1, m_mmlu_es)")
    lm_eval_include_path: str | None = opt(None, "folder of extra lm-eval task YAMLs")
    num_fewshot: int | None = opt(None, "lm-eval few-shot examples")
    mexa_pairs: str | None = opt(None, "MEXA on this JSONL of {en, xx} parallel sentences")
    mexa_n: int = opt(100, "MEXA: number of pairs")
    fidelity_prompts: str | None = opt(None, "language fidelity of chat replies to these prompts (one a line)")
    source_prompts: str | None = opt(None, "language fidelity in the source language too: prompts in source_lang "
                                           "(one a line), replies expected in it (does the model keep English?)")
    source_lang: str = opt("en", "language of source_prompts")
    max_new_tokens: int = opt(128, "fidelity: tokens generated per reply")
    limit: int | None = opt(None, "evaluate only the first N items of each task")
    max_length: int | None = opt(None, "longest window in tokens (default: min(model limit, 1024))")
    batch_size: int = opt(8, "sequences per forward pass")

    def validate(self) -> None:
        check_range("eval.batch_size", self.batch_size, 1)
        check_range("eval.mexa_n", self.mexa_n, 2)
        if self.limit is not None:
            check_range("eval.limit", self.limit, 1)
        if self.bpb_limit is not None:
            check_range("eval.bpb_limit", self.bpb_limit, 1)
        for role, label in self.names.items():
            if role not in ("model", "intermediate", "baseline"):
                raise ConfigError(f"eval.names.{role}", label, "name a role: model, intermediate or baseline")
            if not isinstance(label, str) or not label.strip() or "/" in label:
                raise ConfigError(f"eval.names.{role}", label, "give a short label without '/'")


def run_eval(cfg: EvalStageConfig, ctx: Context) -> dict:
    from ...evaluate.results import save_model_order, save_result
    from ...models import load_model, load_tokenizer

    tasks = [t for t, on in (("bpb", cfg.bpb_text), ("mc", cfg.mc_tasks), ("lm_eval", cfg.lm_eval_tasks),
                             ("mexa", cfg.mexa_pairs), ("fidelity", cfg.fidelity_prompts),
                             ("fidelity_source", cfg.source_prompts)) if on]
    if not tasks:
        raise ConfigError("eval", None, "no evaluation asked for; set eval.bpb_text, mc_tasks, lm_eval_tasks, "
                                        "mexa_pairs or fidelity_prompts (or inputs.eval_text)")
    results_dir = ctx.work / "results"
    # Before → after: the baseline, then the intermediate model, then the recipe's model.
    roles = [("baseline", cfg.baseline, "baseline"), ("intermediate", cfg.intermediate,
                                                      ctx.labels.get("intermediate", "intermediate")),
             ("model", cfg.model, ctx.labels.get("model", "model"))]
    models = [(cfg.names.get(role, default), name) for role, name, default in roles if name]
    labels = [label for label, _ in models]
    if len(set(labels)) != len(labels):
        raise ConfigError("eval.names", cfg.names, f"two evaluated models share a label ({', '.join(labels)}); "
                                                   "give each role its own label")
    save_model_order(results_dir, labels)
    summary: dict[str, dict] = {}
    for label, name in models:
        loaded = None
        for task in tasks:
            kind = {"lm_eval": "mc", "fidelity_source": "fidelity"}.get(task, task)
            tag = {"lm_eval": "lm_eval", "fidelity_source": cfg.source_lang}.get(task)
            path = results_dir / (f"{kind}.{label}" + (f".{tag}" if tag else "") + ".json")
            if not path.is_file():  # an earlier attempt may have finished this one (written atomically)
                if loaded is None:
                    loaded = (load_model(name, f"eval.{label}"), load_tokenizer(name, f"eval.{label}"))
                result, config = _evaluate(task, cfg, *loaded)
                save_result(results_dir, kind, result, label, config, tag=tag)
            stored = json.loads(path.read_text(encoding="utf-8"))["result"]
            summary.setdefault(label, {})[task] = {k: v for k, v in stored.items()
                                                  if isinstance(v, (int, float, str, bool)) or v is None}
    return summary


def _evaluate(task: str, cfg: EvalStageConfig, model, tok) -> tuple[dict, dict]:
    def cut(items):
        return items[:cfg.limit] if cfg.limit else items

    if task == "bpb":
        from ...evaluate.bpb import bits_per_byte

        texts = head_lines(cfg.bpb_text, "eval.bpb_text", cfg.bpb_limit)
        res = bits_per_byte(model, tok, texts, max_length=cfg.max_length, batch_size=cfg.batch_size)
        res.pop("per_document")
        return res, {"text": cfg.bpb_text, "limit": cfg.bpb_limit}
    if task == "mc":
        from ...evaluate.mc import evaluate_mc, load_items

        res = evaluate_mc(model, tok, cut(load_items(cfg.mc_tasks, "eval.mc_tasks")), cfg.lang, cfg.mc_format,
                          cfg.batch_size, cfg.max_length or 1024)
        return res, {"tasks": cfg.mc_tasks, "format": cfg.mc_format, "lang": cfg.lang}
    if task == "lm_eval":
        from ...evaluate.mc import run_lm_eval

        res = run_lm_eval(model, tok, list(cfg.lm_eval_tasks), cfg.lm_eval_include_path, cfg.limit,
                          cfg.batch_size, cfg.num_fewshot)
        return res, {"tasks": list(cfg.lm_eval_tasks)}
    if task == "mexa":
        from ...evaluate.mexa import mexa, read_pairs

        pairs = read_pairs(cfg.mexa_pairs, "eval.mexa_pairs", cfg.mexa_n)
        return mexa(model, tok, pairs, cfg.batch_size, cfg.max_length or 128), {"pairs": cfg.mexa_pairs,
                                                                                 "n": len(pairs)}
    from ...evaluate.fidelity import evaluate_fidelity

    param, path, lang = (("eval.source_prompts", cfg.source_prompts, cfg.source_lang) if task == "fidelity_source"
                         else ("eval.fidelity_prompts", cfg.fidelity_prompts, cfg.lang))
    prompts = cut(read_lines(path, param))
    res = evaluate_fidelity(model, tok, prompts, lang, cfg.max_new_tokens, cfg.batch_size)
    return res, {"prompts": path, "lang": lang}


add_stage(Stage("eval", EvalStageConfig,
           (Slot("model", tuple(f"@{s}" for s in MODEL_STAGES) + ("$model",), kind="model"),
            Slot("baseline", (), required=False, kind="model"),
            Slot("intermediate", (), required=False, kind="model"),
            Slot("bpb_text", ("$eval_text",), required=False, kind="file"),
            Slot("mc_tasks", (), required=False, kind="file"), Slot("mexa_pairs", (), required=False, kind="file"),
            Slot("fidelity_prompts", (), required=False, kind="file"),
            Slot("source_prompts", (), required=False, kind="file")),
           "results", execute=lambda stage, cfg, ctx: run_eval(cfg, ctx), volatile=("batch_size",),
           help="bits per byte, multiple choice, lm-eval tasks, MEXA, language fidelity"))


@dataclass
class ReportStageConfig(StageConfig):
    runs: str | None = opt(None, "folder of evaluation results (default: the eval stage's)")
    title: str = opt("langshift report", "page title")
    transfer: str | None = opt(None, "transferred model folder whose init-method comparison is shown (default: the "
                                     "transfer stage's, when it compared candidates)")
    lapt: str | None = opt(None, "trained model folder whose training loss is plotted (default: the lapt stage's)")
    clo: str | None = opt(None, "trained model folder whose training loss is plotted (default: the clo stage's)")


def run_report(cfg: ReportStageConfig, ctx: Context) -> dict:
    from ...evaluate.report import build_report

    def make() -> dict:
        training = {name: folder for name, folder in (("lapt", cfg.lapt), ("clo", cfg.clo)) if folder}
        candidates = Path(cfg.transfer) / CANDIDATES_FILE if cfg.transfer else None
        res = build_report([cfg.runs], ctx.work / "report", title=cfg.title, training=training,
                           candidates=candidates)
        return {"files": res["files"], "models": res["models"]}

    return ctx.step("report", ("report",), make)


add_stage(Stage("report", ReportStageConfig, (Slot("runs", ("@eval",), kind="dir"),
                                         Slot("transfer", ("@transfer",), required=False, kind="dir"),
                                         Slot("lapt", ("@lapt",), required=False, kind="dir"),
                                         Slot("clo", ("@clo",), required=False, kind="dir")), "report", execute=lambda stage, cfg, ctx: run_report(cfg, ctx),
           help="HTML report: evaluation results, the init methods compared, training losses"))
