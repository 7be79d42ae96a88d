"""The pipeline's stages: the table in ``base`` and one module of stage rows per part of the data flow."""

from .base import CANDIDATES_FILE, GROUPS, MODEL_STAGES, ORDER, STAGES, Context, Slot, Stage, add_stage
from .codeswitch import MigrateStageConfig, SyncsStageConfig, _switch
from .static import StaticStageConfig
from .tokenizer import TokenizerStageConfig
from .training import drop_partial_checkpoints, launch_command, train_in_process
from .transfer import TransferStageConfig, candidate_fields

__all__ = ["CANDIDATES_FILE", "GROUPS", "MODEL_STAGES", "ORDER", "STAGES", "Context",
           "MigrateStageConfig", "Slot", "Stage", "StaticStageConfig", "SyncsStageConfig",
           "TokenizerStageConfig", "TransferStageConfig", "_switch", "add_stage", "candidate_fields",
           "drop_partial_checkpoints", "launch_command", "train_in_process"]
