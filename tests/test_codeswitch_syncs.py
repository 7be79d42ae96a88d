from __future__ import annotations

from collections import Counter

import pytest

from langshift.codeswitch.provenance import TokenCounter
from langshift.codeswitch.syncs import Stats, SyncsConfig, TypeCycle, syncs
from langshift.errors import ConfigError
from test_codeswitch_migrate import DOCS, FakeTagger, FakeTranslator

SENTS = {
    "The king of the city spoke to the people in the house.": "El rey de la ciudad habló al pueblo en la casa.",
    "The man gave the book to his daughter!": "¡El hombre dio el libro a su hija!",
    "Water and bread were brought to the table for the children.": "Trajeron agua y pan a la mesa para los niños.",
}


def run(docs=DOCS, tr=None, **kw):
    cfg = SyncsConfig(**{"batch_size": 3, "seed": 0, **kw})
    tr = tr or FakeTranslator(sentences=SENTS)
    stats = Stats()
    recs = list(syncs(docs, tr, cfg, FakeTagger(), TokenCounter(), stats))
    return recs, stats, tr


def only(kind, docs=DOCS[:2], **kw):
    recs, _, _ = run(docs, mix="extreme", type=kind, density=1.0, **kw)
    return {r.original: r for r in recs}


def test_four_formats_exactly():
    s1 = "The king of the city spoke to the people in the house."
    s2 = "Water and bread were brought to the table for the children."
    assert only("sent-repl")[s1].text == "El rey de la ciudad habló al pueblo en la casa."
    assert only("sent-annt")[s1].text == f"{s1} (El rey de la ciudad habló al pueblo en la casa.)"
    assert only("token-repl", word_share=1.0)[s1].text == "The rey of the ciudad spoke to the pueblo in the casa."
    annt = only("token-annt", word_share=1.0)
    assert annt[s1].text == "The king (rey) of the city (ciudad) spoke to the people (pueblo) in the house (casa)."
    assert annt[s2].text == ("Water (agua) and bread (pan) were brought to the table (mesa) for the children "
                             "(niños).")
    rec = annt[s1]
    assert rec.type == "token-annt" and [(e.start, e.end, e.source) for e in rec.replacements][0] == (4, 8, "king")
    assert rec.new_tokens == 4  # four inserted one-word translations (whitespace counter)
    sent = only("sent-annt")[s1]
    assert sent.replacements[0].start == 0 and sent.replacements[0].end == len(s1)


def test_density_exact_and_types_mixed_evenly():
    docs = DOCS * 12
    recs, stats, _ = run(docs, density=0.5, mix="equal", word_share=1.0)
    n = len(recs)
    chosen = stats.modified + stats.not_translated
    assert abs(chosen - 0.5 * n) <= 1
    counts = Counter(r.type for r in recs if r.type)
    assert set(counts) <= {"token-repl", "token-annt", "sent-repl", "sent-annt"}
    # every sentence of DOCS has nouns; only the three SENTS have sentence translations
    assert abs(counts["token-repl"] - counts["token-annt"]) <= 1

    recs, stats, _ = run(docs, density=0.5, mix="repl-equal", word_share=1.0)
    assert {r.type for r in recs if r.type} <= {"token-repl", "sent-repl"}
    recs, _, _ = run(docs, density=0.3, mix="extreme", type="token-annt")
    assert {r.type for r in recs if r.type} == {"token-annt"}


def test_type_cycle_balanced():
    cyc = TypeCycle(["a", "b", "c", "d"], seed=5)
    dealt = [cyc.next() for _ in range(10)]
    c = Counter(dealt)
    assert max(c.values()) - min(c.values()) <= 1
    assert dealt != [TypeCycle(["a", "b", "c", "d"], seed=6).next() for _ in range(10)]


def test_magnitude_budget_within_one_sentence():
    docs = DOCS * 10
    _, free, _ = run(docs, density=1.0, mix="extreme", type="token-repl", word_share=1.0)
    budget = free.new_tokens // 3
    recs, stats, _ = run(docs, density=1.0, mix="extreme", type="token-repl", word_share=1.0, magnitude=budget)
    assert stats.budget_reached and stats.new_tokens <= budget
    largest = max(r.new_tokens for r in recs)
    assert budget - stats.new_tokens < largest
    assert len(recs) == free.sentences  # the corpus is kept whole; only modification stops
    assert sum(r.new_tokens for r in recs) == stats.new_tokens
    with pytest.raises(ConfigError, match="magnitude"):
        run(docs, density=1.0, mix="extreme", type="sent-repl", magnitude=2)


def test_seeded_and_distinct_translation_calls():
    a, _, tr = run(DOCS * 4, density=0.6, mix="equal")
    b, _, _ = run(DOCS * 4, density=0.6, mix="equal")
    c, _, _ = run(DOCS * 4, density=0.6, mix="equal", seed=9)
    assert [r.text for r in a] == [r.text for r in b] != [r.text for r in c]
    assert all(v == 1 for v in tr.asked.values())


def test_target_side_random_words():
    # Spanish text with English spans: the same code, the translator's direction reversed
    es_en = FakeTranslator(table={"rey": "king", "ciudad": "city", "pueblo": "people", "casa": "house"})
    docs = ["El rey de la ciudad habló al pueblo en la casa."]
    recs, stats, _ = run(docs, tr=es_en, src_lang="es", tgt_lang="en", words="random", word_share=1.0,
                         density=1.0, mix="extreme", type="token-repl")
    assert recs[0].text == "El king de la city habló al people en la house."
    with pytest.raises(ConfigError, match="tagger"):
        list(syncs(docs, es_en, SyncsConfig(words="nouns", mix="extreme", type="token-repl"), tagger=None))
