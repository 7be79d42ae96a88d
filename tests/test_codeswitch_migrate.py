from __future__ import annotations

import json
from collections import Counter

import pytest

from langshift.codeswitch.migrate import MigrateConfig, MigrateOptions, Stats, migrate, run_migrate, summary
from langshift.codeswitch.provenance import Quota, TokenCounter, splice, write_outputs
from langshift.errors import ConfigError, LangshiftError

NOUNS = {"king": "rey", "house": "casa", "book": "libro", "water": "agua", "people": "pueblo", "city": "ciudad",
         "daughter": "hija", "man": "hombre", "bread": "pan", "table": "mesa", "children": "niños",
         "Abraham": "Abraham"}
DOCS = [
    "The king of the city spoke to the people in the house.  The man gave the book to his daughter!",
    "Water and bread were brought to the table for the children.",
    "The king  gave water to the man, and the man gave bread to the king.",
    "Abraham took the book and the zorblax.",
]


class FakeTagger:
    """Penn-ish tags from a word list: NN for known nouns (and 'zorblax'), '.' for punctuation."""

    def __init__(self):
        self.batches = 0

    def tag(self, words):
        self.batches += 1
        return ["NNP" if w == "Abraham" else "NNS" if w in ("children", "people") else
                "NN" if w in NOUNS or w.lower() in NOUNS or w == "zorblax" else
                "." if not any(c.isalnum() for c in w) else "DT" for w in words]


class FakeTranslator:
    """A dictionary translator that counts every word it is asked for (the backend-call counter)."""

    def __init__(self, table=None, sentences=None):
        self.table = table if table is not None else {k.lower(): v for k, v in NOUNS.items()}
        self.sentences = sentences or {}
        self.asked = Counter()
        self.calls = 0
        self.requests = 0

    def translate_words(self, words, tags=None):
        assert tags is None or len(tags) == len(words)
        self.asked.update(words)
        self.calls += len(words)
        self.requests += 1
        return [self.table.get(w.lower()) for w in words]

    def translate_sentences(self, sentences):
        self.asked.update(sentences)
        self.calls += len(sentences)
        self.requests += 1
        return [self.sentences.get(s) for s in sentences]


def run(docs=DOCS, **kw):
    cfg = MigrateOptions(**{"batch_size": 2, **kw})
    tr, stats = FakeTranslator(), Stats()
    recs = list(migrate(docs, FakeTagger(), tr, cfg, TokenCounter(), stats))
    return recs, stats, tr


def test_nouns_replaced_in_place_rest_byte_identical():
    recs, stats, _ = run()
    by_text = {r.original: r for r in recs}
    r = by_text["The king  gave water to the man, and the man gave bread to the king."]
    assert r.text == "The rey  gave agua to the hombre, and the hombre gave pan to the rey."
    for rec in recs:
        # rebuild the output from the original and the recorded spans: everything else is copied
        assert splice(rec.original, [(e.start, e.end, e.translation) for e in rec.replacements]) == rec.text
        pos, rest_in = 0, []
        for e in rec.replacements:
            assert rec.original[e.start:e.end] == e.source
            rest_in.append(rec.original[pos:e.start])
            pos = e.end
        rest_in.append(rec.original[pos:])
        out = rec.text
        for piece, e in zip(rest_in, rec.replacements + [None], strict=True):
            assert out.startswith(piece)
            out = out[len(piece):]
            if e is not None:
                assert out.startswith(e.translation)
                out = out[len(e.translation):]
        assert out == ""
    assert stats.untranslated == 1     # zorblax
    assert stats.unchanged == 1        # Abraham -> Abraham is not a replacement
    assert stats.nouns == stats.replaced + stats.untranslated + stats.unchanged


def test_each_distinct_noun_translated_once_across_batches():
    recs, stats, tr = run(DOCS * 3)
    distinct = {(e.source) for r in recs for e in r.replacements} | {"zorblax", "Abraham"}
    assert set(tr.asked) == distinct
    assert all(n == 1 for n in tr.asked.values()), tr.asked
    assert stats.translator_calls == tr.calls == stats.distinct_nouns
    assert stats.nouns > 2 * stats.distinct_nouns


def test_half_share_exact_and_seeded():
    docs = DOCS * 10
    full, s_full, _ = run(docs)
    half, s_half, _ = run(docs, share=0.5, seed=1)
    again, _, _ = run(docs, share=0.5, seed=1)
    other, _, _ = run(docs, share=0.5, seed=2)
    assert abs(s_half.selected - 0.5 * s_full.nouns) <= 1
    assert [r.text for r in half] == [r.text for r in again]
    assert [r.text for r in half] != [r.text for r in other]
    assert 0 < s_half.replaced < s_full.replaced


def test_quota_exact_over_uneven_batches():
    q = Quota(0.3, seed=0)
    total = picked = 0
    for n in [1, 7, 0, 3, 11, 2, 1, 1, 5]:
        idx = q.pick(n, str(total))
        assert len(set(idx)) == len(idx) and all(0 <= i < n for i in idx)
        total += n
        picked += len(idx)
        assert abs(picked - 0.3 * total) <= 1


def test_token_budget_within_one_sentence():
    recs_all, _, _ = run(DOCS * 5)
    sizes = [len(r.text.split()) for r in recs_all]
    budget = sum(sizes[:7]) + sizes[7] // 2
    recs, stats, _ = run(DOCS * 5, budget=budget)
    assert len(recs) == 7 and stats.tokens == sum(sizes[:7]) <= budget
    assert stats.tokens + sizes[7] > budget and stats.budget_reached
    with pytest.raises(ConfigError, match="budget.*first sentence"):
        run(budget=3)


def test_summary_and_outputs(tmp_path):
    cfg = MigrateOptions(batch_size=2)
    stats = Stats()
    recs = migrate(DOCS, FakeTagger(), FakeTranslator(), cfg, TokenCounter(), stats)
    write_outputs(recs, tmp_path / "cs.jsonl", tmp_path / "cs.txt")
    lines = [json.loads(x) for x in (tmp_path / "cs.jsonl").read_text(encoding="utf-8").splitlines()]
    assert lines[0]["id"] == "0.0" and set(lines[0]) >= {"id", "original", "text", "replacements"}
    rep = lines[0]["replacements"][0]
    assert rep == {"start": 4, "end": 8, "source": "king", "translation": "rey", "tag": "NN"}
    docs_out = (tmp_path / "cs.txt").read_text(encoding="utf-8").splitlines()
    assert docs_out[0] == ("The rey of the ciudad spoke to the pueblo in the casa.  The hombre gave the libro to "
                           "his hija!")  # the double space between sentences survives
    assert len(docs_out) == len(DOCS)
    s = summary(stats, cfg, TokenCounter())
    assert s["sentences"] == 5 and s["documents"] == 4 and s["translator_calls"] == s["distinct_nouns"]
    with pytest.raises(ConfigError, match="--out"):
        write_outputs(iter([]), tmp_path / "cs.jsonl")


def test_bad_input_errors(tmp_path):
    bad = tmp_path / "bad.txt"
    bad.write_bytes(b"The king spoke.\nThe \xe9 house.\n")
    with pytest.raises(LangshiftError, match="line 2 is not UTF-8"):
        run_migrate(MigrateConfig(text=[str(bad)], out=str(tmp_path / "o.jsonl")))
    empty = tmp_path / "empty.txt"
    empty.write_text("\n  \n", encoding="utf-8")
    with pytest.raises(ConfigError, match="no text"):
        run_migrate(MigrateConfig(text=[str(empty)], out=str(tmp_path / "o.jsonl")))
    assert not (tmp_path / "o.jsonl").exists()
    with pytest.raises(ConfigError, match="share"):
        MigrateOptions(share=1.5)
