"""Loading models and tokenizers by built-in name, local folder, GGUF file or hub id (no remote code
unless asked), and reading a safetensors checkpoint without loading it: every loader checks the
shards first, so a truncated or corrupt file is a clear error instead of a traceback."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

from .errors import ConfigError, LangshiftError
from .resources import resolve_model

SINGLE_FILE = "model.safetensors"
INDEX_FILE = "model.safetensors.index.json"


def model_path(name: str | os.PathLike, param: str = "--model") -> str:
    """A local folder for a built-in name, a folder, or a ``.gguf`` file / folder holding one (converted
    once into the cache); a hub id is returned as given (or its cached snapshot's folder when present)."""
    from .gguf import gguf_in, materialise_gguf

    gguf = gguf_in(name, param)
    if gguf is not None:
        return str(materialise_gguf(gguf, param))
    path = resolve_model(name, param)
    if Path(path).is_dir():
        return path
    return _hub_snapshot(path) or path


def _hub_snapshot(repo_id: str) -> str | None:
    """The cached snapshot folder of a hub id (downloaded when online), or None when there is none."""
    try:
        from huggingface_hub import snapshot_download

        return snapshot_download(repo_id, allow_patterns=["*.json", "*.safetensors", "*.model", "*.txt", "*.jinja"])
    except Exception:  # noqa: BLE001 - offline, unknown id, gated: the caller's from_pretrained says why
        return None


def load_tokenizer(name: str | os.PathLike, param: str = "--tokenizer", trust_remote_code: bool = False):
    from transformers import AutoTokenizer

    path = model_path(name, param) if _looks_like_model(name) else str(name)
    try:
        return AutoTokenizer.from_pretrained(path, trust_remote_code=trust_remote_code)
    except (OSError, ValueError) as exc:
        raise LangshiftError(f"{param}={str(name)!r}: cannot load a tokenizer there ({exc}). Give a tokenizer "
                             "folder (tokenizer.json), a model folder, a hub id or the built-in model name") from exc


def load_model(name: str | os.PathLike, param: str = "--model", dtype=None, trust_remote_code: bool = False):
    """An ``AutoModelForCausalLM`` in eval mode (float32 on CPU unless ``dtype`` is given)."""
    import torch
    from transformers import AutoModelForCausalLM

    path = model_path(name, param)
    if Path(path).is_dir():
        read_checkpoint(path, param, name)
    try:
        model = AutoModelForCausalLM.from_pretrained(path, dtype=dtype or torch.float32,
                                                     trust_remote_code=trust_remote_code)
    except (OSError, ValueError) as exc:
        raise LangshiftError(f"{param}={str(name)!r}: cannot load a causal LM there ({exc})") from exc
    return model.eval()


def _looks_like_model(name: str | os.PathLike) -> bool:
    path = Path(str(name))
    return (not path.exists() or (path / "config.json").is_file() or path.suffix == ".gguf"
            or (path.is_dir() and not (path / "tokenizer.json").is_file() and any(path.glob("*.gguf"))))


# Checkpoints read without loading them ----------------------------------------------------------

@dataclass
class Checkpoint:
    """The safetensors files of a model folder: ``weight_map`` maps every tensor key to its file."""

    folder: Path
    index: dict | None          # the parsed model.safetensors.index.json of a sharded model
    weight_map: dict[str, str]

    @property
    def files(self) -> list[str]:
        return sorted(set(self.weight_map.values()))


def read_checkpoint(folder: str | os.PathLike, param: str = "--model", shown: object = None) -> Checkpoint | None:
    """Check every safetensors file of ``folder`` (header, size, the keys its index names) and describe
    it; None when the folder holds no safetensors (a pytorch ``.bin`` model: transformers reads it)."""
    from safetensors import safe_open

    folder = Path(folder)
    shown = str(shown if shown is not None else folder)
    index_path = folder / INDEX_FILE
    index = None
    if index_path.is_file():
        index = _read_index(index_path, param, shown)
        files = sorted(set(index["weight_map"].values()))
    elif (folder / SINGLE_FILE).is_file():
        files = [SINGLE_FILE]
    else:
        return None
    weight_map: dict[str, str] = {}
    for name in files:
        path = folder / name
        if not path.is_file():
            raise ConfigError(param, shown, f"{INDEX_FILE} names the shard {name}, which is missing; download or "
                                            "copy the complete model folder again")
        try:
            with safe_open(path, framework="pt") as fh:
                keys = list(fh.keys())
        except Exception as exc:  # noqa: BLE001 - safetensors' own error type is not importable portably
            raise ConfigError(param, shown, f"{name} is not a complete safetensors file ({exc}; "
                                            f"{path.stat().st_size} bytes): it is truncated or corrupt; "
                                            "download or copy the model again") from None
        weight_map.update(dict.fromkeys(keys, name))
    if index is not None:
        lost = sorted(k for k, f in index["weight_map"].items() if weight_map.get(k) != f)
        if lost:
            raise ConfigError(param, shown, f"{INDEX_FILE} places {len(lost)} tensor(s) in shards that do not hold "
                                            f"them (first: {lost[0]!r}); the folder mixes files of different "
                                            "models: download or copy it again")
        weight_map = dict(index["weight_map"])
    return Checkpoint(folder, index, weight_map)


def _read_index(path: Path, param: str, shown: str) -> dict:
    try:
        index = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ConfigError(param, shown, f"{path.name} is not valid JSON ({exc}); it is truncated or corrupt: "
                                        "download or copy the model again") from None
    weight_map = index.get("weight_map") if isinstance(index, dict) else None
    if not isinstance(weight_map, dict) or not weight_map or not all(
            isinstance(k, str) and isinstance(v, str) and "/" not in v and v not in ("", ".", "..")
            for k, v in weight_map.items()):
        raise ConfigError(param, shown, f"{path.name} has no valid weight_map (tensor name → shard file in the same "
                                        "folder); download or copy the model again")
    return index


@dataclass
class VocabKeys:
    """Checkpoint keys of the vocabulary matrices."""

    embed: str            # the input-embedding matrix
    head: str             # the LM head's key (for a tied model: where an untied head would be saved)
    tied: bool            # the model ties its head to the input embeddings
    head_stored: bool     # the checkpoint holds a tensor under ``head``


def vocab_keys(folder: str | os.PathLike, ckpt: Checkpoint, param: str = "--model") -> VocabKeys:
    """Find the embedding and head tensors by asking the architecture itself, instantiated on the meta
    device (no weights allocated), for ``get_input_embeddings`` / ``get_output_embeddings``."""
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM

    try:
        config = AutoConfig.from_pretrained(folder)
        with torch.device("meta"):
            model = AutoModelForCausalLM.from_config(config)
    except (OSError, ValueError, KeyError) as exc:
        raise ConfigError(param, str(folder), f"transformers cannot build this architecture ({exc}); give a "
                                              "causal LM folder that transformers supports") from None
    params = list(model.named_parameters(remove_duplicate=False))
    emb = model.get_input_embeddings()
    head = model.get_output_embeddings()
    if emb is None or head is None:
        raise ConfigError(param, str(folder), f"{type(model).__name__} exposes no input embeddings or LM head")
    if getattr(head, "bias", None) is not None:
        raise LangshiftError(f"{param}={str(folder)!r}: its LM head has a bias; only bias-free heads are supported")
    tied = head.weight is emb.weight
    embed_key = _checkpoint_key([n for n, p in params if p is emb.weight], model.base_model_prefix, ckpt)
    head_names = [n for n, p in params if p is head.weight and n not in (embed_key,)]
    head_key = _checkpoint_key(head_names, model.base_model_prefix, ckpt) if head_names else None
    if embed_key is None:
        raise ConfigError(param, str(folder), "none of the input-embedding names "
                                              f"{[n for n, p in params if p is emb.weight]} is a tensor of the "
                                              "checkpoint; give a model saved with save_pretrained")
    if head_key is None and not tied:
        raise ConfigError(param, str(folder), f"its LM head ({head_names}) is untied but not in the checkpoint; "
                                              "give a complete model folder")
    # tied models name their head after the module (lm_head.weight) when it is not stored
    fallback = next((n for n in head_names if "embed" not in n), head_names[0] if head_names else embed_key)
    return VocabKeys(embed_key, head_key or fallback, tied, head_key is not None)


def _checkpoint_key(names: list[str], prefix: str, ckpt: Checkpoint) -> str | None:
    for name in names:
        for key in (name, name.removeprefix(prefix + "."), f"{prefix}.{name}"):
            if key in ckpt.weight_map:
                return key
    return None
