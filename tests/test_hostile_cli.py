"""Hostile input across the sub-commands: each case exits 2 with a message naming the parameter, no
traceback, and leaves every file as it was (nothing written, nothing destroyed)."""

from __future__ import annotations

import fcntl
import hashlib
import os
from pathlib import Path

import pytest

import helpers
from langshift.cli import main

BAD_FILES = {
    "missing": None,
    "empty": b"",
    "binary": bytes(range(256)) * 4,
    "latin1": "El niño comió café en la mañana.\n".encode("latin-1"),
    "utf16": "The king went home.\nEl rey volvió.\n".encode("utf-16"),
    "directory": "dir",
}


@pytest.fixture(scope="module")
def assets(tmp_path_factory):
    """A tiny model folder, a target tokenizer folder with the model's specials and one without."""
    root = tmp_path_factory.mktemp("assets")
    source = helpers.byte_level_bpe(helpers.EN_TEXT * 3, vocab_size=320)
    model = helpers.tiny_llama(len(source), bos_id=source.bos_token_id, eos_id=source.eos_token_id)
    helpers.save_model_folder(model, source, root / "model")
    helpers.byte_level_bpe(helpers.ES_TEXT * 3, vocab_size=330).save_pretrained(root / "target")
    bare = helpers.byte_level_bpe(helpers.ES_TEXT * 3, vocab_size=330, specials=["<unk>"])
    bare.chat_template = None
    bare.save_pretrained(root / "bare")
    return root


@pytest.fixture
def ws(tmp_path, monkeypatch):
    """A working folder with a good text file, a JSONL file and a run folder; cwd is set to it."""
    monkeypatch.chdir(tmp_path)
    helpers.write_lines(tmp_path / "t.txt", helpers.EN_TEXT)
    (tmp_path / "rows.jsonl").write_text('{"id": 1}\n{"id": 2}\n', encoding="utf-8")
    from langshift.evaluate.results import save_result

    save_result(tmp_path / "runs" / "a", "bpb", {"bits_per_byte": 2.5, "tokens": 10, "bytes": 40}, "m", {})
    return tmp_path


def snapshot(root: Path) -> dict[str, str]:
    """Every file and folder under ``root`` with a hash of its bytes."""
    out = {}
    for dirpath, dirs, files in os.walk(root):
        for d in dirs:
            out[os.path.relpath(os.path.join(dirpath, d), root)] = "dir"
        for f in files:
            path = os.path.join(dirpath, f)
            out[os.path.relpath(path, root)] = hashlib.sha256(Path(path).read_bytes()).hexdigest()
    return out


def refused(argv: list[str], root: Path, capsys, param: str, *needles: str) -> str:
    """Run ``argv``; assert exit 2, no traceback, ``param`` named, and ``root`` unchanged."""
    before = snapshot(root)
    code = main([str(a) for a in argv])
    err = capsys.readouterr().err
    assert code == 2, err
    assert "Traceback" not in err
    assert param in err, err
    for needle in needles:
        assert needle in err, err
    assert snapshot(root) == before
    return err


def bad_file(ws: Path, kind: str) -> Path:
    path = ws / f"bad.{kind}"
    data = BAD_FILES[kind]
    if data == "dir":
        path.mkdir()
    elif data is not None:
        path.write_bytes(data)
    return path


# 1. Bad text files, each command that reads one -------------------------------------------------------

TEXT_COMMANDS = {
    "codeswitch migrate": (["codeswitch", "migrate", "--text", "{f}", "--out", "o.jsonl"], "--text"),
    "codeswitch measure": (["codeswitch", "measure", "--text", "{f}"], "--text"),
    "tokenizer train": (["tokenizer", "train", "--text", "{f}", "--out", "tk", "--vocab-size", "300"], "--text"),
    "static train": (["static", "train", "--text", "{f}", "--out", "st", "--dim", "8"], "--text"),
    "eval bpb": (["eval", "bpb", "--model", "{model}", "--text", "{f}"], "--text"),
    "translate": (["translate", "--backend", "dictionary", "--source-lang", "en", "--target-lang", "es", "--in", "{f}",
                   "--out", "o.txt"], "--in"),
    "train lapt": (["train", "lapt", "--model", "{model}", "--text", "{f}", "--out", "o"], "--text"),
}


@pytest.mark.parametrize("kind", list(BAD_FILES))
@pytest.mark.parametrize("command", list(TEXT_COMMANDS))
def test_bad_text_file(command, kind, ws, assets, capsys):
    argv, param = TEXT_COMMANDS[command]
    f = bad_file(ws, kind)
    argv = [a.format(f=f, model=assets / "model") for a in argv]
    refused(argv, ws, capsys, param)
    assert not (ws / "o.work").exists()  # a refused training start leaves no empty work folder


# 2. --out that is an input, or holds one --------------------------------------------------------------

OUT_IS_INPUT = {
    "codeswitch migrate": ["codeswitch", "migrate", "--text", "t.txt", "--out", "t.txt", "--overwrite"],
    "codeswitch syncs --text-out": ["codeswitch", "syncs", "--text", "t.txt", "--out", "o.jsonl", "--text-out",
                                    "t.txt", "--overwrite"],
    "codeswitch measure": ["codeswitch", "measure", "--text", "t.txt", "--out", "t.txt", "--overwrite"],
    "report": ["report", "runs", "--out", "runs", "--overwrite"],
    "tokenizer train": ["tokenizer", "train", "--text", "t.txt", "--out", "t.txt", "--overwrite"],
    "tokenizer extend": ["tokenizer", "extend", "--base", "{model}", "--text", "t.txt", "--out", "{model}",
                         "--overwrite"],
    "static train": ["static", "train", "--text", "t.txt", "--out", "./t.txt", "--overwrite"],
    "translate": ["translate", "--backend", "dictionary", "--source-lang", "en", "--target-lang", "es", "--in", "t.txt",
                  "--out", "t.txt"],
    "transfer": ["transfer", "--model", "{model}", "--tokenizer", "{target}", "--out", "{model}", "--overwrite"],
    "train lapt": ["train", "lapt", "--model", "{model}", "--text", "t.txt", "--out", "{model}", "--overwrite"],
    "train sft": ["train", "sft", "--model", "{model}", "--data", "rows.jsonl", "--out", "rows.jsonl",
                  "--overwrite"],
    "train clo": ["train", "clo", "--model", "{model}", "--data", "rows.jsonl", "--out", "rows.jsonl",
                  "--overwrite"],
    "transplant": ["transplant", "--embeddings-from", "{model}", "--body-from", "{model}", "--out", "{model}",
                   "--overwrite"],
    "clo data": ["clo", "data", "--sft", "rows.jsonl", "--translator", "dictionary", "--target-lang", "es",
                 "--out", "rows.jsonl", "--overwrite"],
    "eval judge --verdicts": ["eval", "judge", "--outputs-a", "rows.jsonl", "--outputs-b", "rows.jsonl",
                              "--verdicts", "rows.jsonl"],
}


@pytest.mark.parametrize("command", list(OUT_IS_INPUT))
def test_out_is_an_input(command, ws, assets, capsys):
    argv = [a.format(model=assets / "model", target=assets / "target") for a in OUT_IS_INPUT[command]]
    before = snapshot(assets)
    param = "--verdicts" if "--verdicts" in argv else "--text-out" if "--text-out" in argv else "--out"
    refused(argv, ws, capsys, param, "destroy the input")
    assert snapshot(assets) == before


INPUT_INSIDE_OUT = {
    "report": (["report", "runs/a", "--out", "runs", "--overwrite"], None),
    "tokenizer train": (["tokenizer", "train", "--text", "runs/t.txt", "--out", "runs", "--overwrite"], "runs/t.txt"),
    "static train": (["static", "train", "--text", "runs/t.txt", "--out", "runs", "--overwrite"], "runs/t.txt"),
    "transfer": (["transfer", "--model", "{model}", "--tokenizer", "runs/tok", "--out", "runs", "--overwrite"],
                 None),
    "train lapt": (["train", "lapt", "--model", "{model}", "--text", "runs/t.txt", "--out", "runs",
                    "--overwrite"], "runs/t.txt"),
}


@pytest.mark.parametrize("command", list(INPUT_INSIDE_OUT))
def test_input_inside_out_when_overwriting(command, ws, assets, capsys):
    argv, text = INPUT_INSIDE_OUT[command]
    if text:
        helpers.write_lines(ws / text, helpers.ES_TEXT)
    if "runs/tok" in argv:
        (ws / "runs" / "tok").mkdir()
        for f in (assets / "target").iterdir():
            (ws / "runs" / "tok" / f.name).write_bytes(f.read_bytes())
    argv = [a.format(model=assets / "model") for a in argv]
    refused(argv, ws, capsys, "--out", "holds the input")


# 3. One writer per --out; stale temporaries of a killed save ------------------------------------------

WRITERS = {
    "tokenizer train": ["tokenizer", "train", "--text", "t.txt", "--out", "o", "--vocab-size", "300"],
    "codeswitch migrate": ["codeswitch", "migrate", "--text", "t.txt", "--out", "o"],
    "report": ["report", "runs/a", "--out", "o"],
    "transfer": ["transfer", "--model", "{model}", "--tokenizer", "{target}", "--out", "o", "--method", "mean"],
    "train lapt": ["train", "lapt", "--model", "{model}", "--text", "t.txt", "--out", "o"],
    "run": ["run", "demo-quick", "--out", "o"],
}


@pytest.mark.parametrize("command", list(WRITERS))
def test_second_writer_is_refused(command, ws, assets, capsys):
    argv = [a.format(model=assets / "model", target=assets / "target") for a in WRITERS[command]]
    fd = os.open(ws / ".o.lock", os.O_RDWR | os.O_CREAT)  # the first writer, still running
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        refused(argv, ws, capsys, "--out", "another langshift process")
    finally:
        os.close(fd)
    assert not (ws / "o").exists()


def test_lock_is_released_and_removed(ws, capsys):
    assert main(["report", "runs/a", "--out", "o"]) == 0
    assert not (ws / ".o.lock").exists()
    assert main(["report", "runs/a", "--out", "o", "--overwrite"]) == 0  # the lock died with the first run
    assert (ws / "o" / "index.html").is_file()


def test_lock_parent_folders_are_not_left_behind(ws, capsys):
    refused(["tokenizer", "train", "--text", "missing.txt", "--out", "new/deep/o"], ws, capsys, "--text")
    assert not (ws / "new").exists()


@pytest.mark.parametrize("command", ["tokenizer train", "report"])
def test_stale_temporaries_of_a_killed_save_are_cleaned(command, ws, capsys):
    # what kill -9 during a save leaves: atomic_dir's temporary folder, a file's temporary and an .old
    (ws / ".o.k3x9_a0q.tmp").mkdir()
    (ws / ".o.k3x9_a0q.tmp" / "model.safetensors").write_bytes(b"\0" * 4096)
    (ws / ".o.zz81nq4p.tmp").write_bytes(b"half")
    (ws / ".o.old").mkdir()
    (ws / ".other.k3x9_a0q.tmp").mkdir()  # another output's: not ours to remove
    argv = WRITERS[command]
    assert main(argv) == 0, capsys.readouterr().err
    left = sorted(p.name for p in ws.iterdir() if p.name.startswith("."))
    assert left == [".other.k3x9_a0q.tmp"]
    assert (ws / "o").is_dir()


# 4. Numbers and paths checked before any work -----------------------------------------------------------

NUMBERS = {
    "lapt --max-steps -5": (["train", "lapt", "--model", "{model}", "--text", "t.txt", "--out", "o",
                             "--max-steps", "-5"], "--max-steps"),
    "lapt --epochs 0": (["train", "lapt", "--model", "{model}", "--text", "t.txt", "--out", "o",
                         "--epochs", "0"], "--epochs"),
    "sft --epochs -1": (["train", "sft", "--model", "{model}", "--data", "rows.jsonl", "--out", "o",
                         "--epochs", "-1"], "--epochs"),
    "dpo --max-steps 0": (["train", "dpo", "--model", "{model}", "--data", "rows.jsonl", "--out", "o",
                           "--max-steps", "0"], "--max-steps"),
    "clo --max-steps -1": (["train", "clo", "--model", "{model}", "--data", "rows.jsonl", "--out", "o",
                            "--max-steps", "-1"], "--max-steps"),
    "build-sft --n 0": (["train", "build-sft", "--out", "o.jsonl", "--n", "0"], "--n"),
    "overlap --examples -3": (["tokenizer", "overlap", "--source", "{model}", "--target", "{target}",
                               "--examples", "-3"], "--examples"),
    "overlap --report folder": (["tokenizer", "overlap", "--source", "{model}", "--target", "{target}",
                                 "--report", "runs"], "--report"),
    "tokenizer --vocab-size huge": (["tokenizer", "train", "--text", "t.txt", "--out", "tk",
                                     "--vocab-size", "99999999999"], "vocab_size"),
    "tokenizer extend --add 0": (["tokenizer", "extend", "--base", "{model}", "--text", "t.txt", "--out", "tk",
                                  "--add", "0"], "add"),
    "recipe lapt.max_steps=-5": (["recipes", "demo-quick", "--set", "lapt.max_steps=-5"], "lapt.max_steps"),
    "recipe clo.epochs=-1": (["recipes", "clo", "--set", "clo.epochs=-1"], "clo.epochs"),
    "recipe tokenizer.vocab_size": (["recipes", "demo-quick", "--set", "tokenizer.vocab_size=99999999999"],
                                    "tokenizer.vocab_size"),
    "eval bpb --save a file": (["eval", "bpb", "--model", "{model}", "--text", "t.txt", "--save", "t.txt"],
                               "--save"),
    "eval bpb --batch-size 0": (["eval", "bpb", "--model", "{model}", "--text", "t.txt", "--batch-size", "0"],
                                "--batch-size"),
    "eval bpb --limit -1": (["eval", "bpb", "--model", "{model}", "--text", "t.txt", "--limit", "-1"], "--limit"),
    "eval gen-mc --regenerations -1": (["eval", "gen-mc", "--model", "{model}", "--tasks", "rows.jsonl",
                                        "--regenerations", "-1"], "--regenerations"),
    "eval hidden --out a folder": (["eval", "hidden", "--model", "{model}", "--out", "runs"], "--out"),
    "eval build --out a folder": (["eval", "build", "--task", "parallel", "--out", "runs"], "--out"),
    "measure --out a folder": (["codeswitch", "measure", "--text", "t.txt", "--out", "runs"], "--out"),
    "measure --labels-out a folder": (["codeswitch", "measure", "--text", "t.txt", "--labels-out", "runs"],
                                      "--labels-out"),
    "measure --langs one": (["codeswitch", "measure", "--text", "t.txt", "--langs", "en"], "langs"),
    "measure --langs not codes": (["codeswitch", "measure", "--text", "t.txt", "--langs", "English,1"],
                                  "--langs"),
    "lapt --embedding-rows JSONL": (["train", "lapt", "--model", "{model}", "--text", "t.txt", "--out", "o",
                                     "--embedding-rows", "rows.jsonl"], "--embedding-rows"),
    "transfer target without specials": (["transfer", "--model", "{model}", "--tokenizer", "{bare}", "--out",
                                          "o", "--method", "mean"], "--tokenizer"),
    "translate --out a folder": (["translate", "--backend", "dictionary", "--source-lang", "en", "--target-lang", "es",
                                  "--in", "t.txt", "--out", "runs"], "--out"),
}


@pytest.mark.parametrize("case", list(NUMBERS))
def test_bad_number_or_path(case, ws, assets, capsys):
    argv, param = NUMBERS[case]
    argv = [a.format(model=assets / "model", target=assets / "target", bare=assets / "bare") for a in argv]
    refused(argv, ws, capsys, param)
    assert not (ws / "o.work").exists()


def test_fidelity_unknown_language_lists_the_labels(ws, capsys):
    (ws / "r.jsonl").write_text('{"response": "Hola, ¿cómo estás hoy?"}\n', encoding="utf-8")
    err = refused(["eval", "fidelity", "--responses", "r.jsonl", "--target-lang", "xx"], ws, capsys, "--target-lang")
    assert "es" in err


def test_target_without_specials_names_the_missing_tokens(ws, assets, capsys):
    err = refused(["transfer", "--model", assets / "model", "--tokenizer", assets / "bare", "--out", "o",
                   "--method", "mean"],
                  ws, capsys, "--tokenizer", "eos", "bos")
    assert "<|im_end|>" in err and "tokenizer train --base" in err
