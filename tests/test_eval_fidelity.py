from __future__ import annotations

import pytest

from langshift.errors import ConfigError
from langshift.evaluate.fidelity import english_words, harmonic, judge_lines, loops, score_responses

# hand-labelled responses expected in Spanish; the fake detector returns the label written after '#'
RESPONSES = [
    "El perro corre por el campo verde #es\nok",                               # pass, pass
    "La casa es muy grande y bonita #es\nThe house is very big indeed #en",    # line fail
    "El rey habló con el pueblo en la plaza #es\nSí.",                         # pass, pass ('Sí.' too short)
    "El médico dijo que the patient necesita descanso #es",                    # line pass, word fail (the, patient)
    "Hola",                                                                    # no judged line: passes both
]


def fake_detect(lines):
    return [(ln.rsplit("#", 1)[1].strip(), 0.99) for ln in lines]


def test_lpr_wpr_lcpr_on_hand_labelled():
    res = score_responses(RESPONSES, "es", detect=fake_detect, english=frozenset({"the", "patient", "house"}))
    assert res["lpr"] == pytest.approx(4 / 5)
    assert res["wpr"] == pytest.approx(3 / 4)
    assert res["lcpr"] == pytest.approx(harmonic(4 / 5, 3 / 4))
    assert res["responses_without_judged_lines"] == 1
    assert res["line_failures"][0]["lines"] == [{"line": "The house is very big indeed #en", "lang": "en"}]
    assert res["word_failures"][0]["english_words"] == ["patient", "the"]
    assert [p["line_pass"] for p in res["per_response"]] == [True, False, True, True, True]


@pytest.mark.parametrize(("reply", "looping"), [
    ("El verso dice: Y te dice: Y te dice: Y te dice: Y te", True),    # a phrase three times and more
    ("Mateo, te te te te te te te te te te te te te", True),            # a word
    ("Laaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", True),                         # a letter over 24 characters
    ("El número es 64000000, no, no, no.", False),                     # short runs are ordinary text
    ("El perro corre por el campo verde y la casa es muy grande.", False),
    ("Línea uno del texto.\nLínea dos del texto.\nLínea tres.", False),
])
def test_loops_flags_replies_that_repeat_a_unit(reply, looping):
    assert loops(reply) is looping


def test_looping_replies_are_counted_beside_lpr():
    replies = ["El perro corre por el campo verde #es", "Y te dice: Y te dice: Y te dice: #es",
               "yhre, yhre, yhre, yhre, yhre, yhre #fi"]
    res = score_responses(replies, "es", detect=fake_detect, english=frozenset())
    assert res["looping_responses"] == 2
    assert [p["loops"] for p in res["per_response"]] == [False, True, True]
    assert [p["line_pass"] for p in res["per_response"]] == [True, True, False]  # LPR itself is unchanged
    from langshift.evaluate.intervals import wilson

    assert (res["looping_low"], res["looping_high"]) == wilson(2, 3)
    twice = score_responses(replies + replies[::-1], "es", detect=fake_detect, english=frozenset(), draws=2)
    assert twice["looping_responses"] == 4 and twice["looping_low"] <= 2 / 3 <= twice["looping_high"]


def test_short_lines_dropped():
    assert judge_lines("uno dos tres cuatro\nuno dos tres cuatro cinco\n\n", 5) == ["uno dos tres cuatro cinco"]


def test_english_word_list_excludes_target_words():
    words = english_words("es")
    assert {"the", "which", "would", "is"} <= words
    assert not {"no", "me", "a", "de", "he", "hotel", "once", "come"} & words
    assert english_words("en") == frozenset()


def test_real_language_id():
    res = score_responses(["El hombre viejo dio el libro a su hija en la casa.",
                           "The old man gave the book to his daughter in the house."], "es")
    assert res["lpr"] == 0.5 and res["per_response"][1]["line_langs"] == ["en"]


def test_an_empty_response_fails_fidelity():
    res = score_responses(RESPONSES + ["", "  \n "], "es", detect=fake_detect,
                          english=frozenset({"the", "patient", "house"}))
    assert res["lpr"] == pytest.approx(4 / 7)
    assert res["empty_responses"] == 2
    assert [p["line_pass"] for p in res["per_response"]][-2:] == [False, False]


def test_draws_group_replies_by_prompt():
    """Two draws of three prompts: LPR over all six replies, its interval a bootstrap over the three prompts, and
    each prompt's share of passing draws is what a paired comparison uses."""
    from langshift.evaluate.fidelity import share_per_prompt

    draw0 = ["El perro corre por el campo verde #es", "The dog runs in the green field now #en",
             "La casa es muy grande y bonita #es"]
    draw1 = ["El perro corre por el campo verde #es", "El perro corre por el campo verde #es",
             "The house is very big and nice #en"]
    res = score_responses(draw0 + draw1, "es", detect=fake_detect, english=frozenset(), draws=2)
    assert res["lpr"] == pytest.approx(4 / 6) and (res["n"], res["prompts"], res["draws"]) == (6, 3, 2)
    assert [(p["prompt"], p["draw"]) for p in res["per_response"]] == [(0, 0), (1, 0), (2, 0), (0, 1), (1, 1), (2, 1)]
    assert share_per_prompt(res["per_response"]) == [1.0, 0.5, 0.5]
    assert res["lpr_low"] >= 0.5 - 1e-9 and res["lpr_high"] <= 1.0  # prompt means lie in [0.5, 1]
    assert res["looping_responses"] == 0 and (res["looping_low"], res["looping_high"]) == (0.0, 0.0)
    one = score_responses(draw0, "es", detect=fake_detect, english=frozenset())
    assert "prompt" not in one["per_response"][0] and one["draws"] == 1
    assert share_per_prompt(one["per_response"]) == [1.0, 0.0, 1.0]
    with pytest.raises(ConfigError, match="whole draws") as info:
        score_responses(draw0 + draw1[:2], "es", detect=fake_detect, english=frozenset(), draws=2)
    assert info.value.param == "draws"


def test_wpr_interval_is_a_bootstrap_of_the_ratio_over_prompts():
    """WPR's interval resamples prompts with a passing reply; one prompt's draws move together, a prompt whose
    replies all fail LPR adds to neither count, and too few prompts give no interval (none is stored)."""
    from langshift.evaluate.fidelity import wpr_interval

    clean, mixed, english = ("El perro corre por el campo verde #es", "El médico dijo que the patient descansa #es",
                             "The dog runs in the green field now #en")
    draw0, draw1 = [clean, mixed, clean, english], [clean, mixed, mixed, english]
    res = score_responses(draw0 + draw1, "es", detect=fake_detect, english=frozenset({"the"}), draws=2)
    assert res["wpr"] == pytest.approx(3 / 6)
    assert res["wpr_low"] <= res["wpr"] <= res["wpr_high"]
    # prompt shares of clean among passing: 1, 0, 1/2 -> every resample's ratio lies in [0, 1], both ends reachable
    assert res["wpr_low"] == pytest.approx(0.0, abs=0.2) and res["wpr_high"] == pytest.approx(1.0, abs=0.2)
    assert res["wpr_low"] < res["wpr_high"]
    same = [{"prompt": i % 3, "word_pass": True, "line_pass": True} for i in range(6)]
    assert wpr_interval(same) == (1.0, 1.0)
    assert wpr_interval([{"word_pass": False, "line_pass": True}, {"word_pass": False, "line_pass": False}]) is None
    one = score_responses([clean], "es", detect=fake_detect, english=frozenset())
    assert "wpr_low" not in one and one["wpr"] == 1.0
