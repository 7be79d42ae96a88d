"""SynCS §4.1 distilled synthesiser: the filter, the teachers' plumbing, distillation and synthesis.

End to end (teach → distill → synth through the CLI) runs on a tiny random Llama; the student's
outputs are then garbage, so the positive path of synthesis is checked with a scripted student."""

from __future__ import annotations

import json

import pytest

from helpers import EN_TEXT, ES_TEXT, byte_level_bpe, save_model_folder, tiny_llama, write_lines
from langshift.cli import main
from langshift.codeswitch.distill import DistillConfig, read_rows, run_distill, sft_rows
from langshift.codeswitch.provenance import TokenCounter
from langshift.codeswitch.synth import SynthOptions, SynthStats, generate, synth
from langshift.codeswitch.teach import TeachOptions, clean_reply, prompt, read_pairs, teach
from langshift.codeswitch.teach_filter import FilterConfig, align, check_rows
from langshift.errors import ConfigError, LangshiftError

SRC = "And the king spoke to the people of the city."
TGT = "Y el rey habló al pueblo de la ciudad."
DICT = ["king\trey", "city\tciudad", "people\tpueblo", "book\tlibro", "daughter\thija", "water\tagua",
        "bread\tpan", "dog\tperro", "field\tcampo", "brother\thermano", "letter\tcarta", "river\trío", "man\thombre"]


# 1. The filter --------------------------------------------------------------------------------------

def test_align_replacement_keeps_other_words_and_offsets():
    a = align(SRC, "And the rey spoke to the pueblo of the city.", "token-repl")
    assert a.kept_in_order and a.reason is None
    assert [(s.source, s.target) for s in a.spans] == [("king", "rey"), ("people", "pueblo")]
    assert [SRC[s.start:s.end] for s in a.spans] == ["king", "people"]
    assert a.switched_share == pytest.approx(2 / 10)


def test_align_annotation_and_its_failures():
    a = align(SRC, "And the king (rey) spoke to the people (pueblo) of the city.", "token-annt")
    assert [(s.source, s.target) for s in a.spans] == [("king", "rey"), ("people", "pueblo")]
    # an annotation without parentheses, a replacement passed off as annotation, a dropped tail
    assert align(SRC, "And the king rey spoke to the people of the city.", "token-annt").reason
    assert align(SRC, "And the rey spoke to the people of the city.", "token-annt").reason
    dropped = align(SRC, "And the rey spoke to the people.", "token-repl")
    assert not dropped.kept_in_order and "dropped" in dropped.reason
    assert "added" in align(SRC, "And the king spoke loudly to the people of the city.", "token-repl").reason
    assert "nothing switched" in align(SRC, SRC, "token-repl").reason


def test_check_rows_rejects_what_it_should():
    rows = [{"source": SRC, "translation": TGT, "kind": "token-repl", "output": o} for o in (
        "And the rey spoke to the pueblo of the city.",            # good
        "And the monarca spoke to the people of the city.",        # not in the translation
        "Y el rey habló al pueblo de la ciudad.",                  # the whole sentence: not token-level
        "And the el rey spoke to the people of the city.",         # "the king" → "the el rey": fine
        None)]
    out = check_rows(rows, "en", "es", FilterConfig())
    assert out[0]["rejected"] is None and out[0]["span_pair_langs"] == ["es", "es"]
    assert "not in the translation" in out[1]["rejected"]
    assert "max_switch_share" in out[2]["rejected"]
    assert out[3]["rejected"] is None
    assert out[4]["rejected"] == "no output"
    # English words that do occur in a (mixed) "translation" are caught by language ID
    en = [{"source": SRC, "translation": "the monarch", "kind": "token-repl",
           "output": "And the monarch spoke to the people of the city."}]
    assert "span language" in check_rows(en, "en", "es", FilterConfig(min_target_spans=1.0))[0]["rejected"]
    assert check_rows(en, "en", "es", FilterConfig(min_target_spans=0.0))[0]["rejected"] is None


def test_prompts_follow_appendix_c1():
    p = prompt("token-repl", SRC, "en", "es", TGT)
    assert p.startswith("Given a pair of English-Spanish sentence, generate an English and Spanish code-switching")
    assert p.endswith(f"[English Sentence]: {SRC}\n[Spanish Sentence]: {TGT}")
    student = prompt("token-annt", SRC, "en", "es")
    assert "Spanish-annotated English sentence" in student and TGT not in student
    assert student.endswith(f"[English Sentence]: {SRC}")
    assert clean_reply('\n[English Sentence]: "And the rey spoke."\nmore') == "And the rey spoke."
    with pytest.raises(ConfigError, match="kind"):
        prompt("sent-repl", SRC, "en", "es")


# 2. Teaching ----------------------------------------------------------------------------------------

class ScriptedTeacher:
    def __init__(self, replies):
        self.replies, self.seen = replies, []

    def write(self, pairs, kinds):
        self.seen += list(kinds)
        return [self.replies[s] for s, _ in pairs]


def test_teach_deals_kinds_and_filters():
    pairs = [(SRC, TGT), ("The man gave the book.", "El hombre dio el libro.")]
    teacher = ScriptedTeacher({SRC: "And the rey spoke to the people of the city.",
                               "The man gave the book.": "The man gave the book (libro) to me."})
    rows, stats = teach(pairs, TeachOptions(), teacher=teacher)
    assert teacher.seen == ["token-repl", "token-annt"]
    assert rows[0]["rejected"] is None and rows[1]["rejected"]      # "to me" was added
    assert stats["kept"] == 1 and stats["per_kind"] == {"token-repl": 1, "token-annt": 0}


def test_rule_teacher_switches_only_words_of_the_translation(tmp_path):
    dic = write_lines(tmp_path / "d.tsv", DICT + ["spoke\thablaba"])   # "hablaba" is not in TGT
    cfg = TeachOptions(translator="dictionary", dictionary=str(dic), words="random", word_share=1.0,
                      kinds=["token-repl"])
    rows, _ = teach([(SRC, TGT)], cfg, FilterConfig(max_switch_share=1.0, min_target_spans=0.0))
    assert rows[0]["output"] == "And the rey spoke to the pueblo of the ciudad."


# 3. Generation and synthesis -------------------------------------------------------------------------

@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    tok = byte_level_bpe(EN_TEXT + ES_TEXT, vocab_size=300)
    model = tiny_llama(len(tok), eos_id=tok.convert_tokens_to_ids("<|im_end|>"))
    return save_model_folder(model, tok, tmp_path_factory.mktemp("tiny") / "model"), model, tok


def test_batched_left_padded_generation_equals_one_by_one(tiny):
    _, model, tok = tiny
    prompts = [prompt("token-repl", s, "en", "es") for s in EN_TEXT[:5]]
    batch, n = generate(model, tok, prompts, batch_size=5, max_new_tokens=6)
    single = [generate(model, tok, [p], batch_size=1, max_new_tokens=6)[0][0] for p in prompts]
    assert batch == single and n > 0
    assert tok.padding_side == "right" or tok.padding_side == "left"   # restored, whatever it was


class ScriptedStudent:
    def __init__(self, replies):
        self.replies, self.calls = replies, 0

    def write(self, sentences, kinds):
        self.calls += 1
        return [self.replies.get(s, s) for s in sentences], 7


def test_synth_splices_aligned_outputs_and_counts():
    docs = [f"{SRC} The man gave the book. The dog runs."]
    student = ScriptedStudent({SRC: "And the rey spoke to the pueblo of the city.",
                               "The man gave the book.": "The man (hombre) gave the book (libro).",
                               "The dog runs.": "El perro corre."})
    cfg = SynthOptions(model="unused", density=1.0, mix="token-equal", seed=0)
    stats = SynthStats()
    recs = list(synth(docs, cfg, student, TokenCounter(), stats))
    by = {r.original: r for r in recs}
    assert len(recs) == 3 and stats.sentences == 3 and stats.generated_tokens == 7
    kinds = {r.original: r.type for r in recs}
    good = [s for s in (SRC, "The man gave the book.") if kinds[s] is not None]
    for s in good:  # whichever kind each got, its text is the original with its edits spliced in
        r = by[s]
        assert all(s[e.start:e.end] == e.source for e in r.replacements)
        assert r.text in ("And the rey spoke to the pueblo of the city.", "The man (hombre) gave the book (libro).")
    assert by["The dog runs."].text == "The dog runs." and by["The dog runs."].type is None
    assert stats.rejected == 3 - stats.modified and stats.rejected >= 1


def test_synth_magnitude_budget_stops_switching():
    docs = [SRC, SRC, SRC]
    student = ScriptedStudent({SRC: "And the rey spoke to the pueblo of the city."})
    stats = SynthStats()
    recs = list(synth(docs, SynthOptions(model="x", density=1.0, magnitude=5), student, TokenCounter(), stats))
    assert [r.type for r in recs] == ["token-repl", "token-repl", None]   # 2 new words each; 6 > 5
    assert stats.budget_reached and stats.new_tokens == 4


# 4. End to end on a tiny model, through the CLI --------------------------------------------------------

def test_teach_distill_synth_end_to_end(tmp_path, tiny, capsys):
    folder, base, _ = tiny
    pairs = write_lines(tmp_path / "pairs.tsv", [f"{e}\t{s}" for e, s in zip(EN_TEXT, ES_TEXT[:8], strict=True)])
    dic = write_lines(tmp_path / "d.tsv", DICT)
    rows = tmp_path / "rows.jsonl"
    assert main(["codeswitch", "teach", "--pairs", str(pairs), "--out", str(rows), "--translator", "dictionary",
                 "--dictionary", str(dic), "--words", "random", "--word-share", "1.0", "--min-target-spans", "0"]) == 0
    kept = [json.loads(x) for x in rows.read_text().splitlines()]
    assert len(kept) >= 4 and all(r["rejected"] is None for r in kept)
    assert {r["kind"] for r in kept} == {"token-repl", "token-annt"}
    assert any("(rey)" in r["output"] for r in kept) or any(" rey " in r["output"] for r in kept)
    student = tmp_path / "student"
    assert main(["codeswitch", "distill", "--model", str(folder), "--data", str(rows), "--out", str(student),
                 "--max-steps", "2", "--batch-size", "4", "--save-steps", "1"]) == 0
    summary = json.loads((student / "train_summary.json").read_text())
    assert summary["global_step"] == 2 and summary["rows"] == len(kept)
    assert not (tmp_path / "student.work").exists()
    from safetensors.torch import load_file

    new = load_file(student / "model.safetensors")
    old = base.state_dict()
    changed = [k for k in new if "q_proj" in k and not (new[k] == old[k]).all()]
    assert changed  # LoRA merged into the attention weights
    corpus = write_lines(tmp_path / "corpus.txt", EN_TEXT[:3])
    out = tmp_path / "cs.jsonl"
    capsys.readouterr()
    assert main(["codeswitch", "synth", "--model", str(student), "--text", str(corpus), "--out", str(out),
                 "--density", "1.0", "--max-new-tokens", "8", "--batch-size", "2"]) == 0
    res = json.loads(capsys.readouterr().out)
    recs = [json.loads(x) for x in out.read_text().splitlines()]
    assert len(recs) == res["sentences"] == 3
    assert res["modified"] + res["rejected"] == 3 and res["generated_tokens"] > 0 and res["tokens_per_second"]
    for r in recs:  # a random student's garbage is refused, never spliced in
        assert r["text"] == r["original"] or r["replacements"]


def test_distill_cli_equals_library(tmp_path, tiny, capsys):
    folder, _, _ = tiny
    rows = tmp_path / "rows.jsonl"
    rows.write_text("".join(json.dumps({"id": str(i), "source": e, "kind": "token-repl", "output": e.replace(
        "the", "el")}) + "\n" for i, e in enumerate(EN_TEXT)), encoding="utf-8")
    options = {"max_steps": 2, "batch_size": 4, "save_steps": 1}
    lib = run_distill(DistillConfig(model=str(folder), data=str(rows), out=str(tmp_path / "lib"), **options))
    capsys.readouterr()
    assert main(["codeswitch", "distill", "--model", str(folder), "--data", str(rows), "--out", str(tmp_path / "cli"),
                 *[x for k, v in options.items() for x in ("--" + k.replace("_", "-"), str(v))]]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert (tmp_path / "lib" / "model.safetensors").read_bytes() == (tmp_path / "cli" / "model.safetensors").read_bytes()
    assert printed["global_step"] == lib.global_step == 2 and printed["out"] == str(tmp_path / "cli")
    with pytest.raises(ConfigError, match="--out"):  # the library checks its output too
        run_distill(DistillConfig(model=str(folder), data=str(rows), out=str(rows), overwrite=True))


# 5. Bad input ---------------------------------------------------------------------------------------

def test_bad_configs_name_the_parameter():
    with pytest.raises(ConfigError, match="--kinds"):
        TeachOptions(kinds=["sent-repl"])
    with pytest.raises(LangshiftError, match="nope"):
        TeachOptions(teacher="nope")
    with pytest.raises(ConfigError, match="--model"):
        TeachOptions(teacher="hf")
    with pytest.raises(ConfigError, match="--url"):
        TeachOptions(teacher="endpoint", model="m")
    with pytest.raises(ConfigError, match="--dictionary"):
        TeachOptions(dictionary="d.tsv")
    with pytest.raises(ConfigError, match="density"):
        SynthOptions(model="m", density=1.5)
    with pytest.raises(ConfigError, match="max_switch_share"):
        FilterConfig(max_switch_share=2)
    with pytest.raises(ConfigError, match="--lr"):
        DistillConfig(model="m", data="d", out="o", lr=0)
    with pytest.raises(LangshiftError, match="vllm"):
        SynthOptions(model="m", backend="vllm")


def test_bad_files(tmp_path):
    bad = write_lines(tmp_path / "p.tsv", ["only one column"])
    with pytest.raises(LangshiftError, match="line 1"):
        read_pairs(bad)
    rows = tmp_path / "r.jsonl"
    rows.write_text(json.dumps({"id": "0", "source": "a", "kind": "sent-repl", "output": "b"}) + "\n")
    with pytest.raises(LangshiftError, match="kind"):
        read_rows(str(rows))
    rows.write_text(json.dumps({"id": "0", "source": "a", "kind": "token-repl", "output": "b", "rejected": "x"}) + "\n")
    with pytest.raises(LangshiftError, match="rejected"):
        read_rows(str(rows))
    assert sft_rows([{"source": "a b", "kind": "token-repl", "output": "a c"}], "en", "es")[0]["completion"] == \
        [{"role": "assistant", "content": "a c"}]


def test_cli_errors_exit_2_and_write_nothing(tmp_path, capsys):
    out = tmp_path / "rows.jsonl"
    assert main(["codeswitch", "teach", "--pairs", str(tmp_path / "missing.tsv"), "--out", str(out)]) == 2
    assert main(["codeswitch", "teach", "--pairs", "x.tsv", "--out", str(out), "--target-lang", "zz"]) == 2
    assert main(["codeswitch", "synth", "--model", "m", "--text", str(tmp_path / "none.txt"), "--out", str(out),
                 "--density", "2"]) == 2
    assert not out.exists()
    assert "Traceback" not in capsys.readouterr().err
