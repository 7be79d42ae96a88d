"""``langshift eval TASK …`` and ``langshift report``: commands over the evaluation's front doors.

``langshift eval NAME`` is ``run_eval`` with ``tasks`` fixed to the registered tasks of that command
(``mc`` runs the JSONL files and the lm-eval names of ``--tasks``, ``fidelity`` the target and source
prompts); each offers the config fields its tasks read. ``hidden`` and ``build`` are their own commands.
"""

from __future__ import annotations

import dataclasses

from ..commands import Command, add_group
from .builders import BuildConfig, run_build
from .config import EvalConfig
from .hidden import HiddenConfig, run_hidden
from .report import ReportConfig, run_report
from .tasks import EVAL_TASKS, MODEL_FIELDS, EvalTask

ALWAYS = ("out", "overwrite")  # every eval command saves into a run folder when asked
SKIP = {"mc": ("lm_eval_tasks",)}  # `eval mc --tasks` takes lm-eval names as well as files


def eval_commands() -> list[Command]:
    """One command per ``command_name`` of the registered tasks (entry-point tasks included)."""
    groups: dict[str, list[EvalTask]] = {}
    for _, task in EVAL_TASKS.items():
        groups.setdefault(task.command_name, []).append(task)
    fields = [f.name for f in dataclasses.fields(EvalConfig)]
    commands = []
    for name, tasks in groups.items():
        own = set(ALWAYS).union(*(t.fields for t in tasks))
        if any(t.uses_model(EvalConfig()) for t in tasks):
            own |= set(MODEL_FIELDS)
        skip = tuple(f for f in fields if f not in own or f in SKIP.get(name, ()))
        main = next((t for t in tasks if t.name.replace("_", "-") == name), tasks[0])
        commands.append(Command(name, EvalConfig, _run_eval, main.help, skip=skip,
                                fixed={"tasks": [t.name for t in tasks]}))
    return commands


def _run_eval(cfg: EvalConfig):
    from .run import run_eval

    return run_eval(cfg)


def register(sub) -> None:
    cmds = add_group(sub, "eval", "evaluate a model (bits per byte, multiple choice, MEXA, fidelity, judge, …)",
                     eval_commands(), dest="eval_command")
    Command("hidden", HiddenConfig, run_hidden, "PCA / t-SNE view of middle-layer sentence vectors (PNG)").add_to(cmds)
    Command("build", BuildConfig, run_build, "build an offline (synthetic) evaluation set from the parallel "
                                             "Bible").add_to(cmds)
    report = Command("report", ReportConfig, run_report, "HTML report (plus PNGs and markdown) of evaluation run "
                                                         "folders", skip=("runs",)).add_to(sub)
    # argparse flags come from the config; the run folders stay positional as users have typed them
    report.add_argument("runs", nargs="+", metavar="RUN_DIR", help="folders holding result JSON written with --save")
