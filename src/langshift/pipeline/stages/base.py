"""The pipeline's stage table: what a stage is (its config, the artefacts it reads and makes, the
library function it calls) and the registry the recipe resolves stage names through.

Slots are config fields naming an input artefact. A recipe may set one to a path (or model name),
to ``@stage`` (that stage's artefact) or to ``$name`` (an entry of the recipe's ``inputs``); left
unset, it takes the first of its default sources present in the recipe. Given paths are hashed by
content; ``@stage`` inputs by the producing stage's record.

A stage's run function may be called again on a work folder left by an interrupted attempt of the
same config and inputs: every sub-artefact is written atomically by the libraries, so one that
exists is complete and is kept (training stages resume from their own checkpoints there).
"""


from __future__ import annotations

import dataclasses
import json
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from ...config import Result, StageConfig
from ...errors import LangshiftError
from ...files import atomic_write_json
from ...registry import Registry


@dataclass(frozen=True)
class Slot:
    field: str
    sources: tuple[str, ...] = ()          # "@stage" / "$input" tried in order when the recipe sets nothing
    required: bool = True
    kind: Literal["file", "dir", "path", "model"] = "path"  # model: a folder, a built-in name or a hub id


@dataclass
class Context:
    work: Path                                # the stage's work folder (becomes OUT/<stage>)
    launch: dict[str, Any] | None = None      # accelerate settings for training stages
    labels: dict[str, str] = dataclasses.field(default_factory=dict)  # slot field -> label (producing stage)

    def step(self, name: str, outputs: tuple[str, ...], fn: Callable[[], dict]) -> dict:
        """Run ``fn`` once per attempt: a finished step (its marker exists) is not redone when an
        interrupted attempt is continued; a step cut short is redone from the start."""
        marker = self.work / f".step.{name}.json"
        if marker.is_file():
            return json.loads(marker.read_text(encoding="utf-8"))
        for rel in outputs:  # leftovers of a step cut short
            path = self.work / rel
            if path.is_dir():
                shutil.rmtree(path)
            elif path.exists():
                path.unlink()
        result = fn()
        atomic_write_json(marker, result)
        return result


@dataclass(frozen=True)
class Stage:
    name: str
    config: type[StageConfig]                  # the stage's complete config (the same class its CLI command takes)
    slots: tuple[Slot, ...]
    output: str                                # the artefact, relative to OUT/<stage>
    run: Callable[[Any], Result] | None = None  # the stage's front door, the same function its CLI command calls
    # How the pipeline calls it when one step is not enough (candidates, `accelerate launch`): (stage, cfg, ctx)
    execute: Callable[[Stage, Any, Context], dict] | None = None
    owned: dict[str, Callable[[Path], Any]] = dataclasses.field(default_factory=dict)  # fields the pipeline sets
    volatile: tuple[str, ...] = ()             # fields that do not change the result (not hashed)
    # files in the artefact that describe the run, not its result (timings, logs, paths; glob patterns on the
    # file name): left out of the hash that stages reading it as a model key on, so a re-run with the same
    # weights re-runs nothing after it (a folder slot, the report's, still sees them)
    reports: tuple[str, ...] = ()
    leftovers: tuple[str, ...] = ()            # what a step cut short leaves in the work folder (default: output)
    training: bool = False
    help: str = ""
    after: str | None = None                   # a plugin stage (not in ORDER) runs right after this stage

    def slot(self, field: str) -> Slot | None:
        return next((s for s in self.slots if s.field == field), None)

    def __call__(self, cfg: Any, ctx: Context) -> dict:
        """Run the stage into ``ctx.work``: by default one resumable step calling the front door."""
        if self.execute is not None:
            return self.execute(self, cfg, ctx)
        return ctx.step(self.name, self.leftovers or (self.output,), lambda: self.record(self.run(cfg), ctx))

    @staticmethod
    def record(result: Result, ctx: Context) -> dict:
        """The result as the pipeline records it: ``out`` relative to the stage folder (the work folder is
        renamed to OUT/<stage> when the stage finishes)."""
        summary = result.to_dict()
        if isinstance(summary.get("out"), str) and Path(summary["out"]).is_relative_to(ctx.work):
            summary["out"] = Path(summary["out"]).relative_to(ctx.work).as_posix()
        return summary


GROUPS = ("tokenizer", "codeswitch", "static", "transfer", "training", "evaluation")  # modules of stage rows
STAGES: Registry[Stage] = Registry("pipeline stage", modules=[f"{__package__}.{m}" for m in GROUPS])
# The order of the data flow (README, "Concepts and data flow"): a recipe's stages always run in this order.
ORDER = ("tokenizer", "migrate", "syncs", "static", "transfer", "lapt", "transplant", "clo_data", "clo",
         "eval", "report")
MODEL_STAGES = ("clo", "transplant", "lapt", "transfer")  # newest first: what "the model" of a recipe is


def data_flow() -> tuple[str, ...]:
    """ORDER with every registered plugin stage placed right after the stage it names in ``after``."""
    order = list(ORDER)
    extra = [name for name in STAGES.names() if name not in ORDER]
    while extra:
        placed = [n for n in extra if STAGES.get(n).after in order]
        if not placed:
            name = extra[0]
            raise LangshiftError(f"pipeline stage {name!r} (a plugin) names after={STAGES.get(name).after!r}, which "
                                 f"is not a stage; set after= to one of {', '.join(order)}")
        for name in placed:
            position = order.index(STAGES.get(name).after) + 1
            while position < len(order) and order[position] in placed:  # two after the same: registry order
                position += 1
            order.insert(position, name)
            extra.remove(name)
    return tuple(order)


def add_stage(stage: Stage) -> Stage:
    STAGES.register(stage.name)(stage)
    return stage
