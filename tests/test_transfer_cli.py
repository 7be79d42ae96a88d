"""`langshift transfer` end to end on a tiny model folder."""

from __future__ import annotations

import json

import pytest
import torch

import helpers
from langshift.cli import main


def test_cli_transfer_end_to_end(source_bpe, target_bpe, tmp_path, capsys):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model = helpers.tiny_llama(len(source_bpe), tied=False, pad_rows=3, bos_id=source_bpe.bos_token_id,
                               eos_id=source_bpe.eos_token_id)
    model_dir = helpers.save_model_folder(model, source_bpe, tmp_path / "src")
    tok_dir = tmp_path / "tgt"
    target_bpe.save_pretrained(tok_dir)
    es = helpers.write_lines(tmp_path / "es.txt", helpers.ES_TEXT * 4)
    out, prov = tmp_path / "out", tmp_path / "prov.json"
    argv = ["transfer", "--model", str(model_dir), "--tokenizer", str(tok_dir), "--method", "focus",
            "--aux-text", str(es), "--aux-dim", "16", "--aux-epochs", "2", "--out", str(out),
            "--provenance", str(prov), "--pad-to-multiple-of", "8", "--seed", "3"]
    assert main(argv) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["method"] == "focus" and summary["tied"] is False
    assert summary["overlap"]["matched"] + summary["overlap"]["new"] == len(target_bpe)
    assert summary["counts"]["rows"] == 336 and "method" in summary["seconds"]
    tokens = json.loads(prov.read_text(encoding="utf-8"))["tokens"]
    assert len(tokens) == len(target_bpe)
    assert {t["how"] for t in tokens} == {"copied", "focus"}
    loaded = AutoModelForCausalLM.from_pretrained(out)
    tok = AutoTokenizer.from_pretrained(out)
    assert loaded.get_input_embeddings().weight.shape[0] == 336
    ids = tok("El rey habló", return_tensors="pt")
    assert loaded.generate(**ids, max_new_tokens=3, do_sample=False).shape[1] == ids["input_ids"].shape[1] + 3
    before = loaded.get_input_embeddings().weight.clone()

    # the folder exists: refused without --overwrite, replaced with it
    assert main(argv) == 2
    assert "--overwrite" in capsys.readouterr().err
    assert main([*argv, "--overwrite"]) == 0
    capsys.readouterr()
    again = AutoModelForCausalLM.from_pretrained(out).get_input_embeddings().weight
    assert torch.equal(before, again)   # same seed, same rows


def test_cli_unknown_method_suggests_close_names(tmp_path, capsys):
    code = main(["transfer", "--model", str(tmp_path), "--tokenizer", str(tmp_path), "--out", str(tmp_path / "o"),
                 "--method", "wechsle"])
    assert code == 2
    err = capsys.readouterr().err
    assert "Did you mean 'wechsel'" in err
    assert not (tmp_path / "o").exists()


def test_ls_lists_the_init_methods(capsys):
    assert main(["ls"]) == 0
    out = capsys.readouterr().out
    for name in ("random", "mean", "fvt", "focus", "migrate", "wechsel", "salt"):
        assert f"  {name} " in out


def _candidates_inputs(tmp_path, source_bpe, target_bpe) -> list[str]:
    model = helpers.tiny_llama(len(source_bpe), bos_id=source_bpe.bos_token_id, eos_id=source_bpe.eos_token_id)
    model_dir = helpers.save_model_folder(model, source_bpe, tmp_path / "src")
    target_bpe.save_pretrained(tmp_path / "tgt")
    held = helpers.write_lines(tmp_path / "held.txt", helpers.ES_TEXT[:4])
    return ["transfer", "--model", str(model_dir), "--tokenizer", str(tmp_path / "tgt"), "--out", str(tmp_path / "out"),
            "--candidates", "random", "mean", "--select-text", str(held)]


def test_cli_candidates_keep_the_lowest_bits_per_byte(source_bpe, target_bpe, tmp_path, capsys):
    from langshift.evaluate.bpb import bits_per_byte
    from langshift.models import load_model, load_tokenizer
    from langshift.transfer.run import CANDIDATES_FILE

    assert main(_candidates_inputs(tmp_path, source_bpe, target_bpe)) == 0
    summary = json.loads(capsys.readouterr().out)
    scores = {m: c["bits_per_byte"] for m, c in summary["candidates"].items()}
    assert list(scores) == ["random", "mean"] and summary["method"] == min(scores, key=scores.get)
    assert summary["selected_by"].startswith("lowest bits per byte on")
    out = tmp_path / "out"
    assert json.loads((out / CANDIDATES_FILE).read_text())["method"] == summary["method"]
    assert not (tmp_path / "out.candidates").exists()   # only the kept model stays
    again = bits_per_byte(load_model(str(out)), load_tokenizer(str(out)), helpers.ES_TEXT[:4], progress=False)
    assert again["bits_per_byte"] == pytest.approx(scores[summary["method"]], rel=1e-5)


def test_cli_candidates_resume_keeps_a_finished_candidate(source_bpe, target_bpe, tmp_path, capsys, monkeypatch):
    import langshift.evaluate.bpb as bpb
    import langshift.transfer.apply as apply

    argv = _candidates_inputs(tmp_path, source_bpe, target_bpe)
    real_score, real_transfer = bpb.bits_per_byte, apply.transfer_files
    scored: list[int] = []

    def killed_on_the_second(*args, **kwargs):
        scored.append(1)
        if len(scored) == 2:
            raise KeyboardInterrupt  # an interrupted run
        return real_score(*args, **kwargs)

    monkeypatch.setattr(bpb, "bits_per_byte", killed_on_the_second)
    assert main(argv) != 0  # the command reports the interruption
    assert (tmp_path / "out.candidates" / "random" / "score.json").is_file() and not (tmp_path / "out").exists()
    made: list[str] = []
    monkeypatch.setattr(bpb, "bits_per_byte", real_score)
    monkeypatch.setattr(apply, "transfer_files", lambda cfg: made.append(cfg.method) or real_transfer(cfg))
    assert main(argv) == 0
    assert made == ["mean"]   # random was finished: kept, not made again
    assert set(json.loads(capsys.readouterr().out)["candidates"]) == {"random", "mean"}


def test_cli_refuses_a_target_without_the_model_specials_unless_told(source_bpe, tmp_path, capsys):
    model = helpers.tiny_llama(len(source_bpe), bos_id=source_bpe.bos_token_id, eos_id=source_bpe.eos_token_id)
    model_dir = helpers.save_model_folder(model, source_bpe, tmp_path / "src")
    helpers.byte_level_bpe(helpers.ES_TEXT * 3, vocab_size=300, specials=["<unk>"]).save_pretrained(tmp_path / "tgt")
    argv = ["transfer", "--model", str(model_dir), "--tokenizer", str(tmp_path / "tgt"), "--method", "mean",
            "--out", str(tmp_path / "out")]
    assert main(argv) == 2
    assert "lacks special token" in capsys.readouterr().err and not (tmp_path / "out").exists()
    assert main([*argv, "--no-check-specials"]) == 0
    assert json.loads(capsys.readouterr().out)["method"] == "mean"
