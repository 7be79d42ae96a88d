"""The engine's per-group step as datatrove tasks (``engine.run_groups`` with engine=datatrove): the groups
cut into one Parquet shard per task, each task running the step with ``Dataset.map`` on its shard, the
executor's completion markers making a rerun skip the finished tasks."""

from __future__ import annotations

import json
import logging
import os
import tempfile
from pathlib import Path

from .engine import EXECUTORS, SCALE_INSTALL, _datasets, _quiet, close_process_locals, map_groups
from .errors import ConfigError, LangshiftError

log = logging.getLogger(__name__)


# The same step as datatrove tasks: one Parquet shard per task, resumable --------------------------------

def _datatrove(module: str = "datatrove.executor"):
    from .optional import require

    return require(module, SCALE_INSTALL, "running data stages on datatrove executors (local, Slurm, Ray)")


def _shard_step_class():
    base = _datatrove("datatrove.pipeline.base").PipelineStep

    class GroupShardStep(base):
        """Task ``rank``: read input shard ``rank``, run the step over its groups, write output shard ``rank``
        atomically (a killed task leaves no output, and datatrove no completion marker: it is redone)."""

        name = "langshift group step"
        type = "🔀 - LANGSHIFT"

        def __init__(self, step, features, in_dir: str, out_dir: str):
            super().__init__()
            self.step, self.features, self.in_dir, self.out_dir = step, features, in_dir, out_dir

        def run(self, data=None, rank: int = 0, world_size: int = 1):
            ds = _datasets()
            with tempfile.TemporaryDirectory(dir=self.out_dir, prefix=f".task{rank:05d}.") as tmp:
                with _quiet():
                    groups = ds.Dataset.from_parquet(str(Path(self.in_dir) / f"{rank:05d}.parquet"), cache_dir=tmp)
                with self.track_time():
                    out = map_groups(groups, self.step, self.features, 1, tmp, "out", desc=f"task {rank}")
                part = Path(tmp) / "out.parquet"
                with _quiet():
                    out.to_parquet(str(part))
                os.replace(part, Path(self.out_dir) / f"{rank:05d}.parquet")
            self.stat_update("groups", value=len(groups))
            close_process_locals()
            if data:
                yield from data

    return GroupShardStep


def run_datatrove(groups, step, features, work: str | os.PathLike, tasks: int, workers: int,
                  executor: str = "local", options: dict | None = None):
    """``step`` over ``groups`` as ``tasks`` datatrove tasks (``workers`` at once), shards under ``work``.

    A rerun with the same ``work`` skips the tasks that completed (datatrove's completion markers) and
    redoes only the others. The input shards are written once; a rerun over different groups (another
    corpus or group size) is refused rather than mixed. Returns the output dataset in group order, or
    None when the executor only submitted the tasks (Slurm): rerun the same command once they finish."""
    executors = _datatrove()
    work = Path(work)
    in_dir, out_dir, logs = work / "input", work / "output", work / "logs"
    stamp = {"groups": len(groups), "tasks": tasks, "first_groups": groups[:1]["first"],
             "fingerprint": getattr(groups, "_fingerprint", None)}
    manifest = work / "manifest.json"
    if manifest.is_file():
        old = json.loads(manifest.read_text(encoding="utf-8"))
        if old["groups"] != stamp["groups"] or old["tasks"] != tasks:
            raise ConfigError("tasks", tasks, f"{work} holds shards of another run ({old['groups']} groups in "
                                              f"{old['tasks']} tasks); remove it or give the same corpus and tasks")
    else:
        in_dir.mkdir(parents=True, exist_ok=True)
        for rank in range(tasks):
            part = in_dir / f".{rank:05d}.parquet.tmp"
            with _quiet():
                groups.shard(tasks, rank, contiguous=True).to_parquet(str(part))
            os.replace(part, in_dir / f"{rank:05d}.parquet")
        manifest.write_text(json.dumps(stamp), encoding="utf-8")
    out_dir.mkdir(parents=True, exist_ok=True)
    pipeline = [_shard_step_class()(step, features, str(in_dir), str(out_dir))]
    options = dict(options or {})
    if executor == "local":
        ex = executors.LocalPipelineExecutor(pipeline=pipeline, tasks=tasks, workers=workers,
                                               logging_dir=str(logs), skip_completed=True,
                                               **{"start_method": "fork", **options})
    elif executor == "slurm":
        ex = executors.SlurmPipelineExecutor(pipeline=pipeline, tasks=tasks, workers=workers,
                                               logging_dir=str(logs), skip_completed=True, **options)
    elif executor == "ray":
        ex = executors.RayPipelineExecutor(pipeline=pipeline, tasks=tasks, workers=workers,
                                             logging_dir=str(logs), skip_completed=True, **options)
    else:
        raise ConfigError("executor", executor, f"choose one of {', '.join(EXECUTORS)}")
    if ex.get_incomplete_ranks():
        ex.run()
    missing = ex.get_incomplete_ranks()
    if missing:
        if executor == "slurm":
            return None
        raise LangshiftError(f"datatrove tasks {missing[:20]} did not complete; see {logs}/logs; rerun the same "
                             "command to redo only them")
    ds = _datasets()
    with _quiet():
        return ds.Dataset.from_parquet([str(out_dir / f"{r:05d}.parquet") for r in range(tasks)],
                                       features=features, cache_dir=str(work / "hf"))
