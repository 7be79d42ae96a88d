"""Broken model files (truncated or corrupt safetensors, a bad or incomplete shard index) give a clear
error naming the parameter, exit code 2, no traceback, and nothing written — in every command that
loads a model (transfer, eval bpb, transplant)."""

from __future__ import annotations

import json

import pytest

import helpers
from langshift.cli import main
from langshift.models import INDEX_FILE


@pytest.fixture()
def folders(tmp_path, source_bpe, target_bpe):
    """A good single-file model, a good sharded one, a target tokenizer and a text file."""
    single = helpers.save_model_folder(helpers.tiny_llama(len(source_bpe), tied=False), source_bpe, tmp_path / "one")
    sharded = tmp_path / "sharded"
    sharded.mkdir()
    helpers.tiny_llama(len(source_bpe), tied=False).save_pretrained(sharded, max_shard_size="40KB")
    source_bpe.save_pretrained(sharded)
    target_bpe.save_pretrained(tmp_path / "tgt")
    text = helpers.write_lines(tmp_path / "es.txt", helpers.ES_TEXT)
    return {"single": single, "sharded": sharded, "tgt": tmp_path / "tgt", "text": text, "root": tmp_path}


def truncate(path, keep: float = 0.5):
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * keep)])


def shards(folder):
    return sorted(set(json.loads((folder / INDEX_FILE).read_text())["weight_map"].values()))


def break_single_truncated(f):
    truncate(f["single"] / "model.safetensors")
    return f["single"], "model.safetensors"


def break_single_header(f):
    (f["single"] / "model.safetensors").write_bytes(b"\xff" * 8 + b"{not json")
    return f["single"], "model.safetensors"


def break_single_empty(f):
    (f["single"] / "model.safetensors").write_bytes(b"")
    return f["single"], "model.safetensors"


def break_shard_truncated(f):
    name = shards(f["sharded"])[-1]
    truncate(f["sharded"] / name, 0.9)
    return f["sharded"], name


def break_index_json(f):
    truncate(f["sharded"] / INDEX_FILE)
    return f["sharded"], INDEX_FILE


def break_index_missing_shard(f):
    (f["sharded"] / shards(f["sharded"])[0]).unlink()
    return f["sharded"], "missing"


def break_index_wrong_shard(f):
    index = json.loads((f["sharded"] / INDEX_FILE).read_text())
    first, last = shards(f["sharded"])[0], shards(f["sharded"])[-1]
    key = next(k for k, v in index["weight_map"].items() if v == first)
    index["weight_map"][key] = last
    (f["sharded"] / INDEX_FILE).write_text(json.dumps(index))
    return f["sharded"], "do not hold"


def break_index_escape(f):
    index = json.loads((f["sharded"] / INDEX_FILE).read_text())
    index["weight_map"] = {k: "../../etc/passwd" for k in index["weight_map"]}
    (f["sharded"] / INDEX_FILE).write_text(json.dumps(index))
    return f["sharded"], "weight_map"


BREAKS = [break_single_truncated, break_single_header, break_single_empty, break_shard_truncated, break_index_json,
          break_index_missing_shard, break_index_wrong_shard, break_index_escape]


def check_clean(code, capsys, param, named, out):
    err = capsys.readouterr().err
    assert code == 2, err
    assert "Traceback" not in err
    assert f"{param}=" in err and named in err, err
    assert not out.exists()
    assert not [p for p in out.parent.iterdir() if p.name.startswith(f".{out.name}.")]  # no temporary left


@pytest.mark.parametrize("broken", BREAKS, ids=lambda b: b.__name__.removeprefix("break_"))
def test_transfer_refuses_a_broken_checkpoint(folders, broken, capsys):
    model, named = broken(folders)
    out = folders["root"] / "out"
    code = main(["transfer", "--model", str(model), "--tokenizer", str(folders["tgt"]), "--method", "mean",
                 "--out", str(out)])
    check_clean(code, capsys, "--model", named, out)


@pytest.mark.parametrize("broken", [break_single_truncated, break_shard_truncated, break_index_json],
                         ids=lambda b: b.__name__.removeprefix("break_"))
def test_eval_bpb_refuses_a_broken_checkpoint(folders, broken, capsys):
    model, named = broken(folders)
    run = folders["root"] / "run"
    code = main(["eval", "bpb", "--model", str(model), "--text", str(folders["text"]), "--save", str(run)])
    check_clean(code, capsys, "--model", named, run)


@pytest.mark.parametrize("side", ["--embeddings-from", "--body-from"])
@pytest.mark.parametrize("broken", [break_single_truncated, break_index_missing_shard],
                         ids=lambda b: b.__name__.removeprefix("break_"))
def test_transplant_refuses_a_broken_checkpoint(folders, broken, side, capsys):
    model, named = broken(folders)
    good = folders["sharded" if model == folders["single"] else "single"]
    a, b = (model, good) if side == "--embeddings-from" else (good, model)
    out = folders["root"] / "c"
    code = main(["transplant", "--embeddings-from", str(a), "--body-from", str(b), "--out", str(out)])
    check_clean(code, capsys, side, named, out)
