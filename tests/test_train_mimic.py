"""Mimic: matched positions across two tokenizations, the state and likelihood losses, the teacher path, which
rows train, resume, bad input."""

from __future__ import annotations

import json
import shutil

import pytest
import torch

import helpers
from langshift.errors import ConfigError
from langshift.train import mimic, mimic_data, mimic_loss
from langshift.train.lapt import unwrap
from langshift.train.runtime import work_dir
from langshift.vocab.overlap import compute_overlap


@pytest.fixture()
def pair(source_bpe, target_bpe):
    """A teacher on the 'English' tokenizer and a student on the 'Spanish' one with the teacher's body and
    the teacher's rows copied for every shared token (what a transfer does), new rows random."""
    teacher = helpers.tiny_llama(len(source_bpe), seed=3)
    student = helpers.tiny_llama(len(target_bpe), seed=4)
    state = {k: v for k, v in teacher.state_dict().items() if "embed_tokens" not in k and "lm_head" not in k}
    student.load_state_dict(state, strict=False)
    overlap = compute_overlap(source_bpe, target_bpe)
    with torch.no_grad():
        for t, s in overlap.pairs.items():
            student.model.embed_tokens.weight[t] = teacher.model.embed_tokens.weight[s]
    return teacher, student, overlap.new_ids


def _cfg(tmp_path, text, **kw):
    base = dict(model="unused", teacher="unused", text=str(text), out=str(tmp_path / "out"), seq_len=24,
                batch_size=4, max_steps=2, lr=5e-2, warmup=0.0, save_steps=1, lm_weight=0.0)
    base.update(kw)
    return mimic.MimicConfig(**base)


def _matrix(model):
    return model.get_input_embeddings().weight.detach().clone()


def _vocab(model):
    """What ``teacher_matrices`` reads for a tied model: (input matrix, LM head), one tensor."""
    matrix = _matrix(model)
    return matrix, matrix


def _batch_loss(student, teacher, batch):
    """The state loss on ``batch``, the teacher run as itself (not through the student's body)."""
    with torch.no_grad():
        s = student(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"],
                    output_hidden_states=True).hidden_states
        t = teacher(input_ids=batch["teacher_ids"], attention_mask=batch["teacher_mask"],
                    output_hidden_states=True).hidden_states
    return mimic_loss.state_loss(s[1:], t[1:], batch["student_pos"], batch["teacher_pos"]).item()


def test_matched_positions_take_the_last_token_ending_at_each_shared_offset():
    # student ends 3, 8, 9; teacher ends 2, 3, 5, 8 and twice 9 (two bytes of one character)
    assert mimic_data.matched_positions([3, 8, 9], [2, 3, 5, 8, 9, 9]) == [(0, 1), (1, 3), (2, 5)]
    assert mimic_data.matched_positions([4], [2, 5]) == []


def test_examples_pair_positions_that_have_read_the_same_text(tmp_path, source_bpe, target_bpe):
    text = helpers.write_lines(tmp_path / "es.txt", helpers.ES_TEXT * 3)
    examples = list(mimic_data.mimic_examples(str(text), target_bpe, source_bpe, seq_len=96))
    assert len(examples) > 3 and all(len(ex["student_ids"]) <= 96 for ex in examples)
    for ex in examples:
        # both start with the shared start token; each matched pair has decoded the same characters
        assert ex["student_ids"][0] == target_bpe.bos_token_id and ex["teacher_ids"][0] == source_bpe.bos_token_id
        assert len(ex["student_pos"]) > 1
        for p, q in zip(ex["student_pos"], ex["teacher_pos"], strict=True):
            assert target_bpe.decode(ex["student_ids"][1:p + 1]) == source_bpe.decode(ex["teacher_ids"][1:q + 1])
    # the chunks cover the text in order, lines joined by newlines, several lines a chunk
    chunks = [target_bpe.decode(ex["student_ids"][1:]) for ex in examples]
    assert "\n".join(chunks) == "\n".join(helpers.ES_TEXT * 3) and len(chunks) < len(helpers.ES_TEXT * 3)


def test_state_loss_is_zero_for_the_same_model_and_tokenizer(tmp_path, source_bpe):
    text = helpers.write_lines(tmp_path / "es.txt", helpers.ES_TEXT * 2)
    examples = list(mimic_data.mimic_examples(str(text), source_bpe, source_bpe, seq_len=24))
    # each position pairs with itself; a byte token that ends inside a character (é over two tokens) waits
    # for the token that completes it
    assert all(ex["student_pos"] == ex["teacher_pos"] for ex in examples)
    assert sum(len(ex["student_pos"]) for ex in examples) > 0.8 * sum(len(ex["student_ids"]) - 1 for ex in examples)
    model = helpers.tiny_llama(len(source_bpe), seed=3)
    batch = mimic_data.collate_mimic(examples[:4], 0, 0)
    assert _batch_loss(model, model, batch) == pytest.approx(0.0, abs=1e-10)
    # padding (-1) and position 0 never count: a differing state there changes nothing
    s = [torch.zeros(1, 3, 2)]
    t = [torch.tensor([[[9.0, 9.0], [1.0, 0.0], [5.0, 5.0]]])]
    t_only_first_differs = [torch.tensor([[[9.0, 9.0], [0.0, 0.0], [0.0, 0.0]]])]
    assert mimic_loss.state_loss(s, t_only_first_differs, torch.tensor([[0, 1, -1]]), torch.tensor([[0, 1, -1]])) == 0
    assert mimic_loss.state_loss(s, t, torch.tensor([[1, -1]]), torch.tensor([[1, -1]])).item() == pytest.approx(1.0)


def test_only_new_rows_train_and_the_states_come_closer(tmp_path, pair, source_bpe, target_bpe):
    teacher, student, new_ids = pair
    text = helpers.write_lines(tmp_path / "es.txt", helpers.ES_TEXT * 3)
    batch = mimic_data.collate_mimic(list(mimic_data.mimic_examples(str(text), target_bpe, source_bpe, 24))[:8], 0, 0)
    before_loss = _batch_loss(student, teacher, batch)
    before = {k: v.clone() for k, v in student.state_dict().items()}
    out = mimic.train_mimic(_cfg(tmp_path, text, max_steps=30), model=student, tokenizer=target_bpe,
                            teacher=_vocab(teacher), teacher_tokenizer=source_bpe)
    after = student.state_dict()
    changed = {k for k in before if not torch.equal(before[k], after[k])}
    assert changed <= {"model.embed_tokens.weight", "lm_head.weight"} and changed
    emb_before, emb_after = before["model.embed_tokens.weight"], after["model.embed_tokens.weight"]
    moved = (emb_before != emb_after).any(dim=1).nonzero().flatten().tolist()
    assert moved and set(moved) <= set(new_ids)
    assert _batch_loss(student, teacher, batch) < 0.8 * before_loss
    summary = json.loads((out / "train_summary.json").read_text())
    assert summary["stage"] == "mimic" and summary["trained_rows"] == len(new_ids) and summary["layers"] == [1, 2]
    assert summary["trainable_parameters"] == len(new_ids) * 16  # a delta for the rows, not the whole matrix


@pytest.mark.parametrize("tied", [True, False])
def test_trained_rows_reach_input_and_head_and_merge_into_the_matrices(tied):
    # the wrapped model (deltas for the rows) computes what the merged, saved model computes: a tied head
    # reads the embedding's deltas, an untied head trains its own; every other row is left as it was
    model = helpers.tiny_llama(40, tied=tied, seed=1)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    rows = [30, 31, 35]
    wrapped, count = mimic.freeze_but_rows(model, rows)
    deltas = [p for p in wrapped.parameters() if p.requires_grad]
    assert count == len(rows) * 16 * (1 if tied else 2) == sum(p.numel() for p in deltas)
    with torch.no_grad():
        for p in deltas:
            p.add_(torch.randn_like(p))
        ids = torch.tensor([[1, 30, 2, 35, 31]])
        logits = wrapped(input_ids=ids).logits
        merged = unwrap(wrapped)
        torch.testing.assert_close(merged(input_ids=ids).logits, logits)
    assert (merged.lm_head.weight is merged.model.embed_tokens.weight) == tied
    for key, value in merged.state_dict().items():
        moved = (value != before[key]).reshape(len(value), -1).any(dim=1).nonzero().flatten().tolist()
        assert moved == (rows if key in ("model.embed_tokens.weight", "lm_head.weight") else []), key


def test_resume_after_interruption(tmp_path, pair, source_bpe, target_bpe):
    teacher, student, _ = pair
    text = helpers.write_lines(tmp_path / "es.txt", helpers.ES_TEXT * 3)
    mimic.train_mimic(_cfg(tmp_path, text, keep_work=True), model=student, tokenizer=target_bpe,
                      teacher=_vocab(teacher), teacher_tokenizer=source_bpe)
    shutil.rmtree(tmp_path / "out")  # died after checkpoint-2, before the final save
    out = mimic.train_mimic(_cfg(tmp_path, text, max_steps=3), model=helpers.tiny_llama(len(target_bpe), seed=4),
                            tokenizer=target_bpe, teacher=_vocab(teacher), teacher_tokenizer=source_bpe)
    summary = json.loads((out / "train_summary.json").read_text())
    assert summary["resumed_from_step"] == 2 and summary["global_step"] == 3


def test_bad_inputs(tmp_path, pair, source_bpe, target_bpe):
    teacher, student, _ = pair
    text = helpers.write_lines(tmp_path / "es.txt", helpers.ES_TEXT)
    for layers in ("0", "x", ""):
        with pytest.raises(ConfigError, match="--layers"):
            _cfg(tmp_path, text, layers=layers)
    with pytest.raises(ConfigError, match="--lm-weight"):
        _cfg(tmp_path, text, lm_weight=-1.0)
    runs = [({"layers": "3"}, {}, "--layers"), ({"rows": "none"}, {}, "--rows"),
            ({}, {"teacher": _vocab(helpers.tiny_llama(len(source_bpe), hidden=32))}, "--teacher"),
            ({}, {"teacher_tokenizer": target_bpe}, "--teacher"),  # 330 tokens, 320 teacher rows
            ({"rows": "new"}, {"teacher_tokenizer": target_bpe, "teacher": _vocab(student)}, "--rows"),
            ({"text": str(helpers.write_lines(tmp_path / "blank.txt", ["", " "]))}, {}, "--text")]  # no text
    with pytest.raises(ConfigError, match="--text"):  # the front door: before any model loads
        mimic.run_mimic(_cfg(tmp_path, tmp_path / "missing.txt"))
    for fields, objects, name in runs:
        kw = {"model": student, "tokenizer": target_bpe, "teacher": _vocab(teacher),
              "teacher_tokenizer": source_bpe, **objects}
        with pytest.raises(ConfigError, match=name):
            mimic.train_mimic(_cfg(tmp_path, **{"text": text, **fields}), **kw)
        assert not (tmp_path / "out").exists() and not work_dir(tmp_path / "out").exists()
        assert not any("trainable_tokens" in n for n, _ in student.named_parameters())  # the model as given


def test_teacher_states_are_the_teachers_own(tmp_path, pair, source_bpe, target_bpe):
    # the teacher is the model's body on the teacher's rows: the same states as the teacher model itself
    teacher, student, _ = pair
    text = helpers.write_lines(tmp_path / "es.txt", helpers.ES_TEXT)
    batch = mimic_data.collate_mimic(list(mimic_data.mimic_examples(str(text), target_bpe, source_bpe, 24))[:4], 0, 0)
    student.train()
    got, last = mimic.teacher_states(student, _matrix(teacher), batch["teacher_ids"], batch["teacher_mask"])
    with torch.no_grad():
        want = teacher(input_ids=batch["teacher_ids"], attention_mask=batch["teacher_mask"],
                       output_hidden_states=True)
    assert student.training and len(got) == len(want.hidden_states) == 3
    for g, w in zip(got, want.hidden_states, strict=True):
        torch.testing.assert_close(g, w)
    torch.testing.assert_close(last @ _matrix(teacher).T, want.logits)  # the teacher's logits from its head


def test_likelihood_loss_compares_the_text_between_shared_token_ends():
    ids = torch.tensor([[0, 1, 2]])
    logits = torch.log(torch.tensor([[[0.5, 0.25, 0.25], [0.1, 0.1, 0.8], [1 / 3, 1 / 3, 1 / 3]]]))
    torch.testing.assert_close(mimic_loss.token_logprobs(logits, ids, torch.ones_like(ids)),
                               torch.log(torch.tensor([[1.0, 0.25, 0.8]])))
    model = helpers.tiny_llama(7, seed=1)
    ids, mask = torch.tensor([[1, 4, 2, 6], [3, 5, 0, 0]]), torch.tensor([[1, 1, 1, 1], [1, 1, 0, 0]])
    with torch.no_grad():
        out = model(input_ids=ids, attention_mask=mask, labels=ids.masked_fill(mask == 0, -100))
    torch.testing.assert_close(mimic_loss.next_token_loss(mimic_loss.token_logprobs(out.logits, ids, mask), mask),
                               out.loss)
    # student tokens 1..3, matched at 2 and 3; teacher tokens 1..4, matched at 3 and 4 (-1: padding)
    s_lp, t_lp = torch.tensor([[0.0, -1.0, -2.0, -3.0]]), torch.tensor([[0.0, -0.5, -0.5, -1.0, -4.0]])
    got = mimic_loss.likelihood_loss(s_lp, t_lp, torch.tensor([[2, 3, -1]]), torch.tensor([[3, 4, -1]]))
    assert got.item() == pytest.approx(((-3.0 - -2.0) ** 2 + (-3.0 - -4.0) ** 2) / 2)


def test_likelihood_objective_brings_the_models_text_probabilities_closer(tmp_path, pair, source_bpe, target_bpe):
    teacher, student, new_ids = pair
    text = helpers.write_lines(tmp_path / "es.txt", helpers.ES_TEXT * 3)
    batch = mimic_data.collate_mimic(list(mimic_data.mimic_examples(str(text), target_bpe, source_bpe, 24))[:8], 0, 0)

    def loss():
        with torch.no_grad():
            s = student(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
            t = teacher(input_ids=batch["teacher_ids"], attention_mask=batch["teacher_mask"]).logits
        s_lp = mimic_loss.token_logprobs(s, batch["input_ids"], batch["attention_mask"])
        t_lp = mimic_loss.token_logprobs(t, batch["teacher_ids"], batch["teacher_mask"])
        return mimic_loss.likelihood_loss(s_lp, t_lp, batch["student_pos"], batch["teacher_pos"]).item()

    before = loss()
    out = mimic.train_mimic(_cfg(tmp_path, text, max_steps=30, objective="likelihood"), model=student,
                            tokenizer=target_bpe, teacher=_vocab(teacher), teacher_tokenizer=source_bpe)
    assert loss() < 0.8 * before
    log = [json.loads(line) for line in (out / "train_log.jsonl").read_text().splitlines()]
    assert "likelihood_loss" in log[0] and "state_loss" not in log[0]


def test_teacher_matrices_move_to_the_models_dtype_once(tmp_path, pair):
    # the teacher's matrices come in the checkpoint's dtype (here float64); the trainer moves them to the model's
    # once and keeps them (not a copy every step), a tied pair as one tensor
    from langshift.train.runtime import training_arguments

    teacher, student, _ = pair
    cfg = _cfg(tmp_path, tmp_path / "unused.txt")
    matrix = _matrix(teacher).double()
    trainer = mimic.make_mimic_trainer(student, (matrix, matrix), training_arguments(tmp_path / "w", **cfg.schedule()),
                                       None, None, cfg, None)
    weight = student.get_input_embeddings().weight
    embed, head = trainer.teacher_on(weight)
    assert embed.dtype == weight.dtype and head is embed and torch.equal(embed, matrix.float())
    assert trainer.teacher_on(weight)[0] is embed
