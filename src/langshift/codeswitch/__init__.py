"""Code-switching: MIGRATE noun replacement, SynCS's four types and budgets, measuring switching in a corpus,
and the ablation corpora of SynCS §3.2."""

from __future__ import annotations

from .ablate import AblateConfig, AblateOptions, AblateResult, run_ablate
from .detect import DetectConfig, detect
from .measure import MeasureOptions, measure
from .measuring import MeasureConfig, MeasureResult, ScoreConfig, ScoreResult, run_measure, run_score
from .migrate import MigrateConfig, MigrateOptions, MigrateResult, migrate, run_migrate
from .mixing import MixConfig, MixOptions, MixResult, allocate, mix_side, run_mix
from .provenance import TYPES, Edit, Record, TokenCounter, write_outputs
from .syncs import SyncsConfig, SyncsOptions, SyncsResult, run_syncs, syncs

__all__ = ["TYPES", "AblateConfig", "AblateOptions", "AblateResult", "DetectConfig", "Edit", "MeasureConfig",
           "MeasureOptions", "MeasureResult", "ScoreConfig", "ScoreResult", "MigrateConfig", "MigrateOptions",
           "MigrateResult", "MixConfig", "MixOptions",
           "MixResult", "Record", "SyncsConfig", "SyncsOptions", "SyncsResult",
           "TokenCounter", "allocate", "detect", "measure", "migrate", "mix_side", "run_ablate", "run_measure", "run_migrate",
           "run_mix", "run_score", "run_syncs", "syncs", "write_outputs"]
