"""A user's own GGUF file as a plain Hugging Face folder: dequantised once through transformers' GGUF
support and kept in the cache (keyed by the file's path, size and mtime), so every later run reads
safetensors like any other model."""

from __future__ import annotations

import hashlib
import os
import shutil
from pathlib import Path

from .errors import ConfigError


def gguf_in(name: str | os.PathLike, param: str = "--model") -> Path | None:
    """The GGUF file ``name`` names: the file itself, or the one ``.gguf`` in a folder without a
    config.json; None when ``name`` is something else (a model folder, a hub id)."""
    path = Path(str(name)).expanduser()
    if path.is_file():
        return path if path.suffix.lower() == ".gguf" else None
    if not path.is_dir() or (path / "config.json").is_file():
        return None
    found = sorted(path.glob("*.gguf"))
    if len(found) > 1:
        raise ConfigError(param, str(name), f"this folder holds {len(found)} GGUF files "
                                            f"({', '.join(p.name for p in found[:5])}); give the one to use as "
                                            "--model FOLDER/FILE.gguf")
    return found[0] if found else None


def _cache_folder(path: Path) -> Path:
    from .resources import cache_dir

    stat = path.stat()
    key = hashlib.sha256(f"{path.resolve()}\0{stat.st_size}\0{stat.st_mtime_ns}".encode()).hexdigest()[:16]
    return cache_dir() / "models" / "gguf" / f"{path.stem}-{key}"


def gguf_architecture(path: Path, param: str = "--model") -> str:
    """``general.architecture`` from the file's header (memory-mapped, nothing dequantised)."""
    from gguf import GGUFReader

    try:
        field = GGUFReader(path).fields["general.architecture"]
        return bytes(field.parts[field.data[0]]).decode("utf-8")
    except (KeyError, ValueError, IndexError, OSError) as exc:
        raise ConfigError(param, str(path), f"is not a readable GGUF file ({exc}); give a complete .gguf file "
                                            "(llama.cpp's format)") from None


def supported_architectures() -> list[str]:
    from transformers.modeling_gguf_pytorch_utils import GGUF_SUPPORTED_ARCHITECTURES

    return sorted(GGUF_SUPPORTED_ARCHITECTURES)


def materialise_gguf(path: str | os.PathLike, param: str = "--model", force: bool = False) -> Path:
    """The plain HF folder (float32 safetensors, tokenizer, config) of the GGUF file ``path``."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from .files import atomic_dir

    path = Path(path).expanduser()
    out = _cache_folder(path)
    if (out / "config.json").is_file() and not force:
        return out
    arch = gguf_architecture(path, param)
    supported = supported_architectures()
    if arch not in supported and arch.replace("-", "_") not in supported:
        raise ConfigError(param, str(path), f"its architecture {arch!r} is not one transformers can read from GGUF "
                                            f"(it reads: {', '.join(supported)}); convert the model to a Hugging "
                                            "Face folder with the tool that made it, or give another file")
    try:
        tokenizer = AutoTokenizer.from_pretrained(path.parent, gguf_file=path.name)
        gguf_model = AutoModelForCausalLM.from_pretrained(path.parent, gguf_file=path.name, dtype=torch.float32)
    except (OSError, ValueError, KeyError, NotImplementedError) as exc:
        raise ConfigError(param, str(path), f"transformers cannot read this GGUF file ({exc}); it reads the "
                                            f"architectures {', '.join(supported)}") from None
    # save_pretrained refuses a GGUF-loaded model: rebuild the same class without the quantisation entry,
    # on the meta device, and move the dequantised tensors in (no second copy of the weights).
    config_dict = gguf_model.config.to_dict()
    config_dict.pop("quantization_config", None)
    config = type(gguf_model.config).from_dict(config_dict)
    with torch.device("meta"):
        model = type(gguf_model)(config)
    model.load_state_dict(gguf_model.state_dict(), strict=True, assign=True)
    model.tie_weights()
    for role in ("bos", "eos", "pad"):
        setattr(model.generation_config, f"{role}_token_id", getattr(config, f"{role}_token_id", None))
    if out.exists():
        shutil.rmtree(out)
    with atomic_dir(out, overwrite=True) as tmp:
        model.save_pretrained(tmp, safe_serialization=True)
        tokenizer.save_pretrained(tmp)
        (tmp / "langshift_source.txt").write_text(f"{path.resolve()}\n", encoding="utf-8")
    return out
