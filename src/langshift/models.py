"""Loading models and tokenizers by built-in name, local folder or hub id (no remote code unless asked)."""

from __future__ import annotations

import os

from .errors import LangshiftError
from .resources import resolve_model


def load_tokenizer(name: str | os.PathLike, param: str = "--tokenizer", trust_remote_code: bool = False):
    from transformers import AutoTokenizer

    path = resolve_model(name, param) if _looks_like_model(name) else str(name)
    try:
        return AutoTokenizer.from_pretrained(path, trust_remote_code=trust_remote_code)
    except (OSError, ValueError) as exc:
        raise LangshiftError(f"{param}={str(name)!r}: cannot load a tokenizer there ({exc}). Give a tokenizer "
                             "folder (tokenizer.json), a model folder, a hub id or the built-in model name") from exc


def load_model(name: str | os.PathLike, param: str = "--model", dtype=None, trust_remote_code: bool = False):
    """An ``AutoModelForCausalLM`` in eval mode (float32 on CPU unless ``dtype`` is given)."""
    import torch
    from transformers import AutoModelForCausalLM

    path = resolve_model(name, param)
    try:
        model = AutoModelForCausalLM.from_pretrained(path, dtype=dtype or torch.float32,
                                                     trust_remote_code=trust_remote_code)
    except (OSError, ValueError) as exc:
        raise LangshiftError(f"{param}={str(name)!r}: cannot load a causal LM there ({exc})") from exc
    return model.eval()


def _looks_like_model(name: str | os.PathLike) -> bool:
    from pathlib import Path

    path = Path(str(name))
    return not path.exists() or (path / "config.json").is_file()
