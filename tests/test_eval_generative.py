from __future__ import annotations

import pytest

from helpers import tiny_llama
from langshift.evaluate import generative
from langshift.evaluate.generative import build_prompt, evaluate_generative_mc, extract_answer
from langshift.evaluate.mc import MCItem

TABLE = [
    ("Antwort:\n\nAntwort: C", "de", "C"),
    ("Respuesta: C", "es", "C"),
    ("Answer: (b)", "es", "B"),
    ("Respuesta: **D**", "es", "D"),
    ("I think **C** is right.", "en", "C"),
    ("Answer: B. On second thought the answer is D, since…", "en", "D"),
    ("The answer is B because of the flood. Then more text follows.", "en", "B"),
    ("Respuesta: A\nAnswer: C", "es", "C"),
    ("答案：C。", "zh", "C"),
    ("정답: B", "ko", "B"),
    ("Ответ: B", "ru", "B"),
    ("answer: c", "en", "C"),
    ("No idea at all.", "en", None),
    ("Answer: a bit unclear", "en", None),
    ("Answer: E", "en", None),  # only A–D exist
    ("", "es", None),
]


@pytest.mark.parametrize(("text", "lang", "expected"), TABLE)
def test_extraction_table(text, lang, expected):
    assert extract_answer(text, lang, n_choices=4) == expected


def test_prompt_is_native():
    item = MCItem("¿Quién?", ["uno", "dos", "tres", "cuatro"], 1, language="es")
    prompt = build_prompt(item, "en")
    assert prompt.startswith("Responde a la siguiente pregunta") and "'Respuesta: A'" in prompt
    assert "Pregunta: ¿Quién?\nA. uno\nB. dos" in prompt


def test_regenerations_and_failures(monkeypatch):
    items = [MCItem("q1", ["a", "b", "c", "d"], 1, language="es"), MCItem("q2", ["a", "b", "c", "d"], 2,
                                                                              language="es")]
    calls = []

    def fake_generate(model, tok, prompts, max_new_tokens=256, sample=False, seed=0, **kw):
        calls.append((len(prompts), sample, seed))
        if not sample:
            return ["Respuesta: B", "no lo sé"]
        return ["todavía no lo sé" if len(calls) < 3 else "Answer: (c)"] * len(prompts)

    monkeypatch.setattr(generative, "chat_generate", fake_generate)
    res = evaluate_generative_mc(None, None, items, regenerations=3, seed=7)
    assert res["acc"] == 1.0 and res["extraction_failures"] == 0 and res["regenerated"] == 1
    assert calls == [(2, False, 0), (1, True, 1007), (1, True, 2007)]
    assert [p["attempts"] for p in res["predictions"]] == [1, 3]

    calls.clear()
    monkeypatch.setattr(generative, "chat_generate",
                        lambda m, t, prompts, *a, **k: (calls.append(1), ["nada"] * len(prompts))[1])
    res = evaluate_generative_mc(None, None, items, regenerations=3)
    assert res["extraction_failures"] == 2 and res["acc"] == 0.0 and len(calls) == 4


def test_real_generation_is_reproducible(source_bpe):
    model = tiny_llama(len(source_bpe), bos_id=source_bpe.bos_token_id, eos_id=source_bpe.eos_token_id, seed=1)
    items = [MCItem("Who gave the book?", ["man", "dog", "king", "water"], 0, language="en")]
    a = evaluate_generative_mc(model, source_bpe, items, max_new_tokens=6, regenerations=2, seed=3, progress=False)
    b = evaluate_generative_mc(model, source_bpe, items, max_new_tokens=6, regenerations=2, seed=3, progress=False)
    assert a["predictions"] == b["predictions"]
    assert a["predictions"][0]["attempts"] == (1 if a["predictions"][0]["pred"] else 3)
