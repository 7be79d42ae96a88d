"""Entry point that ``accelerate launch`` starts on every process for a pipeline training stage.

``python -m langshift.pipeline.launch STAGE CONFIG.json``: CONFIG.json is the stage's config (written by
the runner); every process calls the stage's front door from the STAGES table, as the runner does in its
own process. The training libraries build on ``transformers.Trainer``, which reads the process group that
accelerate set up, so the same call trains on one device or many.
"""

from __future__ import annotations

import json
import sys

from .stages import STAGES


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    training = [name for name in STAGES.names() if STAGES.get(name).training]
    if len(argv) != 2 or argv[0] not in training:
        print(f"usage: python -m langshift.pipeline.launch {'|'.join(training)} CONFIG.json", file=sys.stderr)
        return 2
    stage, path = STAGES.get(argv[0]), argv[1]
    with open(path, encoding="utf-8") as fh:
        cfg = stage.config.from_dict(json.load(fh))
    stage.run(cfg)
    return 0


if __name__ == "__main__":
    sys.exit(main())
