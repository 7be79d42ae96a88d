"""The tiny recipe end to end: a clean run, a rerun that skips, a run killed with SIGKILL in the middle
of LAPT and continued (same artefacts bit for bit), a config change that re-runs only what follows,
and a training stage under `accelerate launch`. Also the tiny recipe's inputs and a run-folder digest,
shared with the other pipeline tests."""

from __future__ import annotations

import fnmatch
import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

import helpers
from langshift.errors import ConfigError
from langshift.pipeline import run_recipe

TINY = Path(__file__).parent / "data" / "pipeline_tiny.yaml"
# Files whose bytes legitimately differ between two runs with the same results: records and step
# summaries (timings), training/transfer summaries and logs (timings), gensim pickles (timestamps in
# lifecycle_events), evaluation result files ("created"). Their numbers are compared separately.
VOLATILE = (".done.json", ".step.*.json", "train_summary.json", "train_log.jsonl", "langshift_transfer.json",
            "model.gensim*", "bpb.*.json", "*.lock", ".hashes.json")


def tiny_inputs(root: Path) -> list[str]:
    """Build the tiny model and texts under ``root``; returns the --set overrides for the tiny recipe."""
    root.mkdir(parents=True, exist_ok=True)
    if not (root / "model" / "config.json").is_file():
        tok = helpers.byte_level_bpe(helpers.EN_TEXT * 3, vocab_size=320)
        model = helpers.tiny_llama(len(tok), bos_id=tok.bos_token_id, eos_id=tok.eos_token_id)
        helpers.save_model_folder(model, tok, root / "model")
        helpers.write_lines(root / "es.txt", helpers.ES_TEXT * 5)
        helpers.write_lines(root / "eval.txt", helpers.ES_TEXT[:5])
    return [f"inputs.model={root / 'model'}", f"inputs.target_text={root / 'es.txt'}",
            f"inputs.eval_text={root / 'eval.txt'}"]


def digest_run(out: Path) -> dict[str, str]:
    """Relative path → SHA-256 of every artefact file of a run folder except the volatile ones."""
    files = {}
    for path in sorted(p for p in out.rglob("*") if p.is_file()):
        if any(fnmatch.fnmatch(path.name, pat) for pat in VOLATILE):
            continue
        files[path.relative_to(out).as_posix()] = hashlib.sha256(path.read_bytes()).hexdigest()
    return files


def static_vectors_digest(out: Path) -> str:
    from langshift.static import load_static

    space = load_static(out / "static" / "static")
    return hashlib.sha256(space.wv.vectors.tobytes() + space.wv.vectors_ngrams.tobytes()).hexdigest()


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    return tiny_inputs(tmp_path_factory.mktemp("tiny_inputs"))


@pytest.fixture(scope="module")
def reference(tmp_path_factory, inputs):
    """One uninterrupted run of the tiny recipe."""
    out = tmp_path_factory.mktemp("reference") / "out"
    lines: list[str] = []
    result = run_recipe(TINY, out, inputs, progress=lines.append)
    return {"out": out, "result": result, "lines": lines}


def test_tiny_recipe_runs_end_to_end(reference):
    result = reference["result"]
    assert list(result["stages"]) == ["tokenizer", "static", "transfer", "lapt", "eval"]
    assert all(s["status"] == "run" or s["status"] == "ran" for s in result["stages"].values())
    out = reference["out"]
    for stage, artefact in (("tokenizer", "tokenizer/tokenizer.json"), ("static", "static/static.json"),
                            ("transfer", "model/model.safetensors"), ("lapt", "model/model.safetensors")):
        assert (out / stage / artefact).is_file()
        assert (out / stage / ".done.json").is_file()
        assert not (out / f"{stage}.work").exists()
    bpb = result["stages"]["eval"]["summary"]["results"]["lapt"]["bpb"]["bits_per_byte"]
    assert 0 < bpb < 20
    assert result["stages"]["lapt"]["summary"]["global_step"] == 24
    assert any("lapt: done" in line for line in reference["lines"])


def test_each_stage_records_its_own_peak_memory(reference):
    """The record and the result carry the stage's peak RSS; the progress line says it."""
    for name, entry in reference["result"]["stages"].items():
        peak = entry["peak_memory"]
        assert peak == json.loads((reference["out"] / name / ".done.json").read_text())["peak_memory"]
        assert 50 < peak["rss_mib"] < 24 * 1024  # python + torch resident, below the machine
        if sys.platform == "linux":
            assert peak["rss_scope"] == "stage"
    assert any("lapt: done" in line and "peak RSS" in line for line in reference["lines"])


@pytest.mark.skipif(sys.platform != "linux", reason="a per-stretch peak needs Linux's resettable VmHWM")
def test_peak_memory_is_per_stretch_after_a_reset():
    from langshift.perf import peak_memory, reset_peak_memory

    marks = reset_peak_memory()
    block = bytearray(400 * 2**20)  # 400 MiB, every page written
    block[::4096] = b"x" * len(block[::4096])
    big = peak_memory(marks)["rss_mib"]
    del block
    small = peak_memory(reset_peak_memory())["rss_mib"]
    assert big - small > 300, (big, small)


def test_rerun_skips_everything(reference, inputs):
    result = run_recipe(TINY, reference["out"], inputs, progress=None)
    assert {s["status"] for s in result["stages"].values()} == {"skipped"}
    assert result["stages"]["eval"]["summary"] == reference["result"]["stages"]["eval"]["summary"]


def test_sigkill_in_the_middle_then_rerun_gives_the_same_artefacts(reference, inputs, tmp_path):
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "langshift.cli", "run", str(TINY), "--out", str(out)]
    for item in inputs:
        cmd += ["--set", item]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    checkpoints = out / "lapt.work" / "model.work"
    deadline = time.monotonic() + 100
    try:
        while time.monotonic() < deadline and proc.poll() is None:
            # kill once a checkpoint is complete (Trainer writes trainer_state.json last), mid-LAPT
            if checkpoints.is_dir() and any(checkpoints.glob("checkpoint-*/trainer_state.json")):
                break
            time.sleep(0.02)
        assert proc.poll() is None, "the run finished before it could be killed"
        os.killpg(proc.pid, signal.SIGKILL)
    finally:
        proc.wait()
    assert proc.returncode == -signal.SIGKILL
    # Killed inside LAPT: the stages before it are done, LAPT is not, nothing after it exists.
    for stage in ("tokenizer", "static", "transfer"):
        assert (out / stage / ".done.json").is_file()
    assert not (out / "lapt" / ".done.json").exists() and not (out / "eval").exists()

    dry = run_recipe(TINY, out, inputs, dry_run=True, progress=None)["stages"]
    assert [dry[s]["action"] for s in ("tokenizer", "static", "transfer")] == ["skip"] * 3
    assert dry["lapt"]["action"] == "continue"

    result = run_recipe(TINY, out, inputs, progress=None)
    stages = result["stages"]
    assert [stages[s]["status"] for s in ("tokenizer", "static", "transfer", "lapt", "eval")] == [
        "skipped", "skipped", "skipped", "continued", "ran"]
    assert stages["lapt"]["summary"]["resumed_from_step"] > 0  # LAPT resumed from its own checkpoint
    assert digest_run(out) == digest_run(reference["out"])
    assert static_vectors_digest(out) == static_vectors_digest(reference["out"])
    ref_eval = reference["result"]["stages"]["eval"]["summary"]
    assert stages["eval"]["summary"] == ref_eval


def test_changing_one_stage_reruns_it_and_the_ones_after(reference, inputs, tmp_path):
    import shutil

    out = tmp_path / "out"
    shutil.copytree(reference["out"], out)
    before = {s: json.loads((out / s / ".done.json").read_text())["hash"] for s in reference["result"]["stages"]}
    result = run_recipe(TINY, out, [*inputs, "transfer.method=fvt"], progress=None)
    status = {s: v["status"] for s, v in result["stages"].items()}
    assert status == {"tokenizer": "skipped", "static": "skipped", "transfer": "re-ran", "lapt": "re-ran",
                      "eval": "re-ran"}
    assert "method: 'focus' → 'fvt'" in result["stages"]["transfer"]["reason"]
    after = {s: json.loads((out / s / ".done.json").read_text())["hash"] for s in status}
    assert after["tokenizer"] == before["tokenizer"] and after["static"] == before["static"]
    assert after["transfer"] != before["transfer"] and after["lapt"] != before["lapt"]
    # A field that does not change the result (eval.batch_size) re-runs nothing.
    again = run_recipe(TINY, out, [*inputs, "transfer.method=fvt", "eval.batch_size=2"], progress=None)
    assert {v["status"] for v in again["stages"].values()} == {"skipped"}


def test_speed_only_training_settings_rerun_nothing(reference, inputs, tmp_path):
    """Gradient checkpointing and tokenising workers change time and memory, not the weights: turning
    them on skips every stage, and so does a record written while checkpointing was still hashed."""
    import shutil

    out = tmp_path / "out"
    shutil.copytree(reference["out"], out)
    speed = [*inputs, "lapt.gradient_checkpointing=true", "lapt.num_proc=2"]
    dry = run_recipe(TINY, out, speed, dry_run=True, progress=None)["stages"]
    assert {v["action"] for v in dry.values()} == {"skip"}
    # An older record: its config still holds gradient_checkpointing, so its key is another one.
    done = out / "lapt" / ".done.json"
    record = json.loads(done.read_text())
    assert "gradient_checkpointing" not in record["config"]
    record["config"]["gradient_checkpointing"] = None
    record["key"] = "0" * 64
    done.write_text(json.dumps(record))
    again = run_recipe(TINY, out, inputs, progress=None)["stages"]
    assert {v["status"] for v in again.values()} == {"skipped"}
    # A field that does change the weights still re-runs LAPT and what follows.
    changed = run_recipe(TINY, out, [*inputs, "lapt.lr=2e-3"], dry_run=True, progress=None)["stages"]
    assert [changed[s]["action"] for s in ("transfer", "lapt", "eval")] == ["skip", "re-run", "re-run"]
    assert changed["lapt"]["reason"] == "changed: lr: 0.001 → 0.002"  # not the old record's volatile field


def test_an_upstream_rerun_that_writes_the_same_artefact_reruns_nothing_after_it(reference, inputs, tmp_path):
    """Early cut-off: a tokenizer setting that only changes its summary (fertility_lines) re-runs the
    tokenizer; its files come out byte-identical, so transfer, LAPT and eval stay done."""
    import shutil

    out = tmp_path / "out"
    shutil.copytree(reference["out"], out)
    edit = [*inputs, "tokenizer.fertility_lines=3"]
    dry = run_recipe(TINY, out, edit, dry_run=True, progress=None)["stages"]
    assert dry["tokenizer"]["reason"] == "changed: fertility_lines: 2000 → 3"
    assert dry["transfer"]["action"] == "re-run"
    assert "skipped if what it reads comes out unchanged" in dry["transfer"]["reason"]
    result = run_recipe(TINY, out, edit, progress=None)["stages"]
    assert {s: v["status"] for s, v in result.items()} == {
        "tokenizer": "re-ran", "static": "skipped", "transfer": "skipped", "lapt": "skipped", "eval": "skipped"}
    assert digest_run(out) == digest_run(reference["out"])
    # A change that does reach the artefact still re-runs what reads it.
    again = run_recipe(TINY, out, [*edit, "tokenizer.vocab_size=380"], dry_run=True, progress=None)["stages"]
    assert again["tokenizer"]["action"] == "re-run" and again["lapt"]["action"] == "re-run"


def test_fields_the_settings_never_read_are_not_in_the_key(reference, inputs, tmp_path):
    """`add` is read only when the tokenizer is extended and the LoRA fields only by LoRA LAPT: setting them
    re-runs nothing; a record written while they were still hashed counts as done too."""
    import shutil

    from langshift.train.lapt import LAPTConfig
    from langshift.vocab.tokenizer import TokenizerConfig

    assert TokenizerConfig(text="t", out="o").unused_fields() == ("add",)
    assert "vocab_size" in TokenizerConfig(text="t", out="o", mode="extend", base="b").unused_fields()
    assert LAPTConfig(model="m", text="t", out="o").unused_fields() == ()
    assert "lora_r" in LAPTConfig(model="m", text="t", out="o", mode="full").unused_fields()
    out = tmp_path / "out"
    shutil.copytree(reference["out"], out)
    dry = run_recipe(TINY, out, [*inputs, "tokenizer.add=77"], dry_run=True, progress=None)["stages"]
    assert {v["action"] for v in dry.values()} == {"skip"}
    done = out / "tokenizer" / ".done.json"
    record = json.loads(done.read_text())
    assert "add" not in record["config"]
    record["config"]["add"], record["key"] = 1000, "0" * 64  # as an earlier version recorded it
    done.write_text(json.dumps(record))
    assert {v["action"] for v in run_recipe(TINY, out, inputs, dry_run=True, progress=None)["stages"].values()} == {
        "skip"}


def test_editing_a_file_a_stage_reads_through_a_field_reruns_it(reference, inputs, tmp_path):
    """LAPT's embedding_rows names a JSON file that is not a pipeline slot: its content is in the key."""
    import shutil

    out = tmp_path / "out"
    shutil.copytree(reference["out"], out)
    rows = tmp_path / "rows.json"
    rows.write_text("[300, 301, 302]")
    sets = [*inputs, f"lapt.embedding_rows={rows}"]
    first = run_recipe(TINY, out, sets, progress=None)["stages"]
    assert [first[s]["status"] for s in ("transfer", "lapt", "eval")] == ["skipped", "re-ran", "re-ran"]
    assert {v["action"] for v in run_recipe(TINY, out, sets, dry_run=True, progress=None)["stages"].values()} == {
        "skip"}
    rows.write_text("[300, 301, 303]")
    dry = run_recipe(TINY, out, sets, dry_run=True, progress=None)["stages"]
    assert dry["lapt"]["action"] == "re-run"
    assert dry["lapt"]["reason"] == f"changed: embedding_rows: the content of {rows} changed"
    # a record that holds the path alone (written before file fields were hashed) is trusted, as it was then
    done = out / "lapt" / ".done.json"
    record = json.loads(done.read_text())
    record["config"]["embedding_rows"], record["key"] = str(rows), "0" * 64
    done.write_text(json.dumps(record))
    assert run_recipe(TINY, out, sets, dry_run=True, progress=None)["stages"]["lapt"]["action"] == "skip"


def test_records_of_earlier_versions_still_count_as_done(reference, inputs, tmp_path):
    """Earlier versions keyed a stage on its upstream's record hash ("stage:…"), not on the artefact: such a
    run folder is not re-run by this version, and a stage that re-runs writes the new kind of record."""
    import shutil

    from langshift.pipeline.record import digest

    out = tmp_path / "out"
    shutil.copytree(reference["out"], out)
    records = {s: json.loads((out / s / ".done.json").read_text()) for s in reference["result"]["stages"]}
    producers = {("transfer", "tokenizer"): "tokenizer", ("transfer", "aux_fasttext"): "static",
                 ("lapt", "model"): "transfer", ("eval", "model"): "lapt"}  # the tiny recipe's data flow
    for name, record in records.items():
        inputs_by_field = record["input_hashes"]
        for field, value in inputs_by_field.items():
            if value.startswith("output:"):
                inputs_by_field[field] = "stage:" + records[producers[name, field]]["hash"]
        record["key"] = digest({"stage": name, "config": record["config"], "inputs": inputs_by_field})
        (out / name / ".done.json").write_text(json.dumps(record))
    assert any(v.startswith("stage:") for r in records.values() for v in r["input_hashes"].values())
    result = run_recipe(TINY, out, inputs, progress=None)["stages"]
    assert {v["status"] for v in result.values()} == {"skipped"}
    changed = run_recipe(TINY, out, [*inputs, "lapt.lr=2e-3"], progress=None)["stages"]
    assert [changed[s]["status"] for s in ("transfer", "lapt", "eval")] == ["skipped", "re-ran", "re-ran"]
    assert changed["lapt"]["reason"] == "changed: lr: 0.001 → 0.002"
    lapt = json.loads((out / "lapt" / ".done.json").read_text())
    assert lapt["input_hashes"]["model"].startswith("output:")


def test_partial_checkpoints_are_dropped_before_resuming(tmp_path):
    from langshift.pipeline.stages import drop_partial_checkpoints

    work = tmp_path / "model.work"
    good, cut, empty = work / "checkpoint-4", work / "checkpoint-8", work / "checkpoint-12"
    for folder in (good, cut, empty):
        folder.mkdir(parents=True)
    (good / "trainer_state.json").write_text(json.dumps({"global_step": 4}))
    (cut / "trainer_state.json").write_text('{"global_st')  # killed while writing
    assert drop_partial_checkpoints(work) == ["checkpoint-12", "checkpoint-8"]
    assert good.is_dir() and not cut.exists() and not empty.exists()


def test_training_stage_under_accelerate_launch_matches_in_process(inputs, tmp_path, capsys):
    """The launch path (`accelerate launch -m langshift.pipeline.launch`) on one CPU process gives the
    same LAPT weights as training in the runner's own process, and as `langshift train lapt`: all three
    call run_lapt (which seeds before the LoRA adapter is drawn)."""
    from langshift.cli import main

    cpu = tmp_path / "cpu.yaml"
    cpu.write_text("compute_environment: LOCAL_MACHINE\ndistributed_type: 'NO'\nnum_processes: 1\n"
                   "num_machines: 1\nmixed_precision: 'no'\nuse_cpu: true\n")
    recipe = {"name": "lapt-only", "inputs": {"model": None, "target_text": None},
              "stages": {"lapt": {"seq_len": 32, "batch_size": 2, "max_steps": 3, "save_steps": 2, "lora_r": 4,
                                  "lr": 1e-3, "warmup": 0}}}
    sets = inputs[:2]
    local = run_recipe(recipe, tmp_path / "local", sets, progress=None)
    launched = run_recipe(recipe, tmp_path / "launched", [*sets, f"launch.accelerate_config={cpu}",
                                                          "launch.num_processes=1"], progress=None)
    assert launched["stages"]["lapt"]["status"] == "ran"
    assert (tmp_path / "launched" / "lapt" / "lapt.launch.json").is_file()
    model, text = (item.split("=", 1)[1] for item in sets)
    assert main(["train", "lapt", "--model", model, "--text", text, "--out", str(tmp_path / "cli"), "--seq-len", "32",
                 "--batch-size", "2", "--max-steps", "3", "--save-steps", "2", "--lora-r", "4", "--lr", "1e-3",
                 "--warmup", "0"]) == 0
    printed = json.loads(capsys.readouterr().out)  # the result alone: the Trainer's log lines go to stderr
    assert printed["out"] == str(tmp_path / "cli") and printed["global_step"] == 3
    weights = [hashlib.sha256(path.read_bytes()).hexdigest() for path in (
        tmp_path / "local" / "lapt" / "model" / "model.safetensors",
        tmp_path / "launched" / "lapt" / "model" / "model.safetensors", tmp_path / "cli" / "model.safetensors")]
    assert weights[0] == weights[1] == weights[2]
    assert local["stages"]["lapt"]["summary"]["global_step"] == 3


def test_launcher_takes_the_training_stages_of_the_table(capsys, tmp_path):
    from langshift.pipeline import launch

    assert launch.main(["eval", str(tmp_path / "x.json")]) == 2
    assert "launch clo|lapt CONFIG.json" in capsys.readouterr().err
    config = tmp_path / "clo.launch.json"
    config.write_text(json.dumps({"modle": "m", "data": "d", "out": "o"}))
    with pytest.raises(ConfigError, match="did you mean model"):  # read by the stage's own config class
        launch.main(["clo", str(config)])
