"""Code-switching: MIGRATE noun replacement, SynCS's four types, and measuring switching in a corpus."""

from __future__ import annotations

from .measure import MeasureConfig, measure, run_measure
from .migrate import MigrateConfig, migrate, run_migrate
from .provenance import TYPES, Edit, Record, TokenCounter, write_outputs
from .syncs import SyncsConfig, run_syncs, syncs

__all__ = ["TYPES", "Edit", "MeasureConfig", "MigrateConfig", "Record", "SyncsConfig", "TokenCounter", "measure",
           "migrate", "run_measure", "run_migrate", "run_syncs", "syncs", "write_outputs"]
