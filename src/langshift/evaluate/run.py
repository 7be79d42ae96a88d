"""``run_eval(cfg) -> EvalResult``: the evaluation's one front door (`langshift eval TASK` and a recipe's eval
stage). Every asked task runs on every model (baseline → intermediate → model), each model loaded once; with a
run folder (``out``) each result is saved there, and one already there is kept (an interrupted evaluation
resumes) unless ``overwrite``.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from ..errors import ConfigError
from .config import EvalConfig, EvalResult
from .results import result_path, save_model_order, save_result
from .tasks import EVAL_TASKS, EvalTask


def selected(cfg: EvalConfig) -> list[EvalTask]:
    """The tasks to run: those named in ``cfg.tasks`` (default: every registered one) whose input is given."""
    named = cfg.tasks or EVAL_TASKS.names()
    tasks = [EVAL_TASKS.get(name, "--tasks") for name in named]
    chosen = [t for t in tasks if t.given(cfg) or (cfg.tasks and t.builtin_input)]
    if not chosen:
        inputs = sorted({t.fields[0] for t in tasks})
        raise ConfigError("eval", None, f"no evaluation asked for: give the input of a task ({', '.join(inputs)})")
    return chosen


def check_run_folder(cfg: EvalConfig) -> None:
    """Before anything loads: a bad run folder found after a long evaluation would throw it away."""
    if cfg.out is None:
        return
    from ..files import check_not_input

    out = Path(cfg.out)
    if out.exists() and not out.is_dir():
        raise ConfigError("--save", cfg.out, "is a file; give a run folder (created if missing) that `langshift "
                                             "report` reads")
    if any(p.exists() and not p.is_dir() for p in out.parents):
        raise ConfigError("--save", cfg.out, "lies under a file, not a folder; give a run folder path")
    check_not_input(out, {"--" + n.replace("_", "-"): getattr(cfg, n) for n in cfg.INPUTS}, "--save")


def run_eval(cfg: EvalConfig) -> EvalResult:
    tasks = selected(cfg)
    check_run_folder(cfg)
    with_model = [t for t in tasks if t.uses_model(cfg)]
    models = cfg.models() if with_model else []
    if with_model and not models:
        raise ConfigError("--model", None, f"needed by {', '.join(t.name for t in with_model)}; give the model to "
                                           "evaluate")
    result = EvalResult(out=cfg.out, models=[label for label, _ in models])
    created = bool(cfg.out) and not Path(cfg.out).exists()
    if cfg.out and models:
        Path(cfg.out).mkdir(parents=True, exist_ok=True)
        save_model_order(cfg.out, result.models)
    try:
        _run_all(cfg, tasks, with_model, models, result)
    except BaseException:
        if created and not result.files:  # a folder made for this run that holds no result: leave nothing
            shutil.rmtree(cfg.out, ignore_errors=True)
        raise
    return result


def _run_all(cfg: EvalConfig, tasks: list[EvalTask], with_model: list[EvalTask], models: list, result: EvalResult):
    full: dict[str, dict[str, dict]] = {}  # task → label → the whole result (for the tasks' ``after``)
    for label, name in models:
        loaded: list = []

        def load(label=label, name=name, loaded=loaded) -> tuple:
            if not loaded:
                loaded.extend(_load(cfg, name, label))
            return tuple(loaded)

        for task in with_model:
            _run_task(task, cfg, label, load, result, full)
    for task in tasks:
        if task not in with_model:
            _run_task(task, cfg, task.label(cfg), lambda: (None, None), result, full)
        if task.after is not None and task.name in full:
            task.after(cfg, full[task.name])


def _load(cfg: EvalConfig, name: str, label: str) -> tuple:
    import torch

    from ..models import load_model, load_tokenizer

    param = "--model" if name == cfg.model else f"eval.{label}"
    tok = load_tokenizer(cfg.tokenizer or name, "--tokenizer" if cfg.tokenizer else param)
    return load_model(name, param, dtype=getattr(torch, cfg.dtype)), tok


def _run_task(task: EvalTask, cfg: EvalConfig, label: str, load, result: EvalResult, full: dict) -> None:
    parts = task.each(cfg) if task.each else [cfg]
    for part in parts:
        tag = task.tag(part)
        key = task.name if len(parts) == 1 else f"{task.name}.{tag}"
        path = result_path(cfg.out, task.kind, label, tag) if cfg.out else None
        if path is not None and path.is_file() and not cfg.overwrite:  # finished earlier (written atomically)
            res = json.loads(path.read_text(encoding="utf-8"))["result"]
            result.kept.append(str(path))
        else:
            res, config = task.run(*load(), part)
            if path is not None and not res.get("skipped"):
                save_result(cfg.out, task.kind, res, label, config, tag=tag)
        if path is not None and path.is_file():
            result.files.append(str(path))
        full.setdefault(key, {})[label] = res
        result.results.setdefault(label, {})[key] = {k: v for k, v in res.items() if k not in task.bulky}
