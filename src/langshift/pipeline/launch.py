"""Entry point that ``accelerate launch`` starts on every process for a pipeline training stage.

``python -m langshift.pipeline.launch STAGE CONFIG.json``: CONFIG.json is the stage's library config
(written by the runner); the training libraries build on ``transformers.Trainer``, which reads the
process group that accelerate set up, so the same call trains on one device or many.
"""

from __future__ import annotations

import json
import sys


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 2 or argv[0] not in ("lapt", "clo"):
        print("usage: python -m langshift.pipeline.launch lapt|clo CONFIG.json", file=sys.stderr)
        return 2
    stage, path = argv
    with open(path, encoding="utf-8") as fh:
        data = json.load(fh)
    from transformers import set_seed

    set_seed(data.get("seed", 0))  # the adapter's random init happens before Trainer seeds
    if stage == "lapt":
        from ..train.lapt import LAPTConfig, train_lapt

        train_lapt(LAPTConfig.from_dict(data))
    else:
        from ..train.clo import CLOConfig, train_clo

        train_clo(CLOConfig.from_dict(data))
    return 0


if __name__ == "__main__":
    sys.exit(main())
