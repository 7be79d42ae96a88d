"""Failures: a missing or corrupt artefact names the stage that makes it; disk-full and permission
errors leave nothing marked done, and the next run completes."""

from __future__ import annotations

import errno
import os
import shutil

import pytest

from langshift.errors import LangshiftError
from langshift.pipeline import run_recipe
from test_pipeline_run import tiny_inputs

RECIPE = {"name": "two", "inputs": {"model": None, "target_text": None},
          "stages": {"tokenizer": {"vocab_size": 400, "min_frequency": 1, "show_progress": False},
                     "transfer": {"method": "fvt"}}}


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    return tiny_inputs(tmp_path_factory.mktemp("inputs"))[:2]


@pytest.fixture(scope="module")
def finished(tmp_path_factory, inputs):
    out = tmp_path_factory.mktemp("finished") / "out"
    run_recipe(RECIPE, out, inputs, progress=None)
    return out


def _copy(finished, tmp_path):
    out = tmp_path / "out"
    shutil.copytree(finished, out)
    return out


def test_missing_artefact_is_named_with_its_stage(finished, inputs, tmp_path):
    out = _copy(finished, tmp_path)
    (out / "tokenizer" / "tokenizer" / "tokenizer.json").unlink()
    with pytest.raises(LangshiftError, match=r"tokenizer\.json is missing; it is made by stage 'tokenizer'.*delete"):
        run_recipe(RECIPE, out, inputs, dry_run=True, progress=None)


def test_corrupt_artefact_is_named_with_its_stage(finished, inputs, tmp_path):
    out = _copy(finished, tmp_path)
    with open(out / "transfer" / "model" / "model.safetensors", "r+b") as fh:
        fh.seek(200)
        fh.write(b"\x00\x01\x02\x03")
    with pytest.raises(LangshiftError, match=r"model\.safetensors is corrupt.*stage 'transfer'"):
        run_recipe(RECIPE, out, inputs, progress=None)
    # the fix the message gives: delete the stage folder; it (alone) is made again
    shutil.rmtree(out / "transfer")
    result = run_recipe(RECIPE, out, inputs, progress=None)
    assert {k: v["status"] for k, v in result["stages"].items()} == {"tokenizer": "skipped", "transfer": "ran"}


def test_disk_full_while_writing_marks_nothing_done(inputs, tmp_path, monkeypatch):
    import langshift.vocab.tokenizer as vocab_tokenizer

    out = tmp_path / "out"

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device", str(out / "tokenizer.work" / "tokenizer"))

    monkeypatch.setattr(vocab_tokenizer, "save_tokenizer", full)
    with pytest.raises(LangshiftError, match=r"stage 'tokenizer' could not write .*the disk is full.*Nothing"):
        run_recipe(RECIPE, out, inputs, progress=None)
    assert not list(out.rglob(".done.json"))
    monkeypatch.undo()
    result = run_recipe(RECIPE, out, inputs, progress=None)
    assert [v["status"] for v in result["stages"].values()] == ["continued", "ran"]  # the kept attempt


def test_disk_full_when_writing_the_record_marks_nothing_done(inputs, tmp_path, monkeypatch):
    import langshift.pipeline.runner as runner

    out = tmp_path / "out"
    real = runner.write_record

    def full_on_transfer(stage_dir, record):
        if record["stage"] == "transfer":
            raise OSError(errno.ENOSPC, "No space left on device", str(stage_dir / ".done.json"))
        return real(stage_dir, record)

    monkeypatch.setattr(runner, "write_record", full_on_transfer)
    with pytest.raises(LangshiftError, match=r"stage 'transfer' could not write .*disk is full"):
        run_recipe(RECIPE, out, inputs, progress=None)
    assert (out / "tokenizer" / ".done.json").is_file() and not (out / "transfer" / ".done.json").exists()
    monkeypatch.undo()
    plan = run_recipe(RECIPE, out, inputs, dry_run=True, progress=None)["stages"]
    assert plan["tokenizer"]["action"] == "skip" and plan["transfer"]["action"] == "run"
    assert "no completion record" in plan["transfer"]["reason"]


def test_permission_denied_marks_nothing_done(inputs, tmp_path, monkeypatch):
    import pathlib

    out = tmp_path / "out"
    real_mkdir = pathlib.Path.mkdir

    def denied(self, *args, **kwargs):
        if self.name == "transfer.work":
            raise PermissionError(errno.EACCES, "Permission denied", str(self))
        return real_mkdir(self, *args, **kwargs)

    monkeypatch.setattr(pathlib.Path, "mkdir", denied)
    with pytest.raises(LangshiftError, match=r"stage 'transfer' could not write .*transfer\.work: permission denied"):
        run_recipe(RECIPE, out, inputs, progress=None)
    assert not (out / "transfer").exists()


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders")
def test_read_only_folder_marks_nothing_done(inputs, tmp_path):
    out = tmp_path / "ro"
    out.mkdir()
    out.chmod(0o555)
    try:
        with pytest.raises(LangshiftError, match=r"permission denied"):
            run_recipe(RECIPE, out, inputs, progress=None)
        assert not list(out.rglob(".done.json"))
    finally:
        out.chmod(0o755)
