"""The pipeline's stages: the table in ``base`` and one module of stage rows per part of the data flow."""

from .base import GROUPS, MODEL_STAGES, ORDER, STAGES, Context, Slot, Stage, add_stage, data_flow
from .codeswitch import MigrateStageConfig, SyncsStageConfig, _switch
from .evaluation import EvalStageConfig, ReportStageConfig
from .static import StaticStageConfig
from .training import drop_partial_checkpoints, launch_command, train_in_process

__all__ = ["GROUPS", "MODEL_STAGES", "ORDER", "STAGES", "Context", "EvalStageConfig", "MigrateStageConfig",
           "ReportStageConfig", "Slot", "Stage", "StaticStageConfig", "SyncsStageConfig", "_switch", "add_stage",
           "data_flow", "drop_partial_checkpoints", "launch_command", "train_in_process"]
