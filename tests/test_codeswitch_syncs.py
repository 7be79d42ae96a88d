from __future__ import annotations

import json
from collections import Counter

import pytest

from helpers import EN_TEXT, ES_TEXT, byte_level_bpe
from langshift.cli import main
from langshift.codeswitch.mixing import MixOptions, allocate, mix_side
from langshift.codeswitch.provenance import TokenCounter
from langshift.codeswitch.syncs import Stats, SyncsOptions, TypeCycle, syncs
from langshift.errors import ConfigError
from test_codeswitch_migrate import DOCS, NOUNS, FakeTagger, FakeTranslator

SENTS = {
    "The king of the city spoke to the people in the house.": "El rey de la ciudad habló al pueblo en la casa.",
    "The man gave the book to his daughter!": "¡El hombre dio el libro a su hija!",
    "Water and bread were brought to the table for the children.": "Trajeron agua y pan a la mesa para los niños.",
}


def run(docs=DOCS, tr=None, **kw):
    cfg = SyncsOptions(**{"batch_size": 3, "seed": 0, **kw})
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
    recs, stats, _ = run(docs, tr=es_en, source_lang="es", target_lang="en", words="random", word_share=1.0,
                         density=1.0, mix="extreme", type="token-repl")
    assert recs[0].text == "El king de la city habló al people en la house."
    with pytest.raises(ConfigError, match="tagger"):
        list(syncs(docs, es_en, SyncsOptions(words="nouns", mix="extreme", type="token-repl"), tagger=None))


# Mixing by new-token budget (SynCS §4.4) -------------------------------------------------------------

ES_EN = {"rey": "king", "ciudad": "city", "pueblo": "people", "casa": "house", "hombre": "man", "libro": "book",
         "hija": "daughter", "agua": "water", "pan": "bread", "mesa": "table", "niños": "children", "perro": "dog",
         "campo": "field", "luz": "light", "mundo": "world", "carta": "letter", "río": "river", "médico": "doctor"}


class WordByWord(FakeTranslator):
    """Translates any sentence word by word from its table (unknown words kept): every sentence translates."""

    def translate_sentences(self, sentences):
        super().translate_sentences(sentences)
        return [" ".join(self.table.get(w.lower().strip(".,!?¿¡"), w) for w in s.split()) for s in sentences]


@pytest.fixture(scope="module")
def target_tokenizer(tmp_path_factory):
    folder = tmp_path_factory.mktemp("tok")
    byte_level_bpe(EN_TEXT + ES_TEXT, vocab_size=300).save_pretrained(folder)
    return TokenCounter(str(folder))


def test_token_counter_folder_or_tokenizers_file(target_tokenizer, tmp_path):
    texts = ["El rey de la ciudad", "house", "niños y perros"]
    raw = TokenCounter(target_tokenizer.name + "/tokenizer.json")
    assert raw.counts(texts) == target_tokenizer.counts(texts)
    assert raw.counts(texts) != TokenCounter().counts(texts)
    (tmp_path / "bad.json").write_text("{}", encoding="utf-8")
    with pytest.raises(ConfigError, match="--tokenizer"):
        TokenCounter(str(tmp_path / "bad.json"))


def mixed(docs, side="source", counter=None, tr=None, **kw):
    cfg = MixOptions(**{"batch_size": 4, "seed": 0, "words": "random", "word_share": 0.5, **kw})
    tr = tr or WordByWord(table={k.lower(): v for k, v in NOUNS.items()} if side == "source" else ES_EN)
    return mix_side(docs, tr, cfg, side, None, counter or TokenCounter())


def test_allocation_per_strategy():
    assert allocate(1001, MixOptions(budget=1001, mix="equal").types("source")) == {
        "token-repl": 251, "token-annt": 250, "sent-repl": 250, "sent-annt": 250}
    assert allocate(1001, MixOptions(budget=1001).types("source")) == {"token-repl": 501, "sent-repl": 500}
    cfg = MixOptions(budget=70, target_budget=9, side="both", mix="extreme", type="sent-repl", target_type="token-annt")
    assert (cfg.types("source"), cfg.types("target")) == (["sent-repl"], ["token-annt"])
    assert (cfg.side_budget("source"), cfg.side_budget("target")) == (70, 9)
    with pytest.raises(ConfigError, match="target_budget"):
        MixOptions(budget=100, target_budget=3, side="both", mix="equal")
    with pytest.raises(ConfigError, match="share"):
        MixOptions(budget=100, share=1.5)


@pytest.mark.parametrize("mix", ["equal", "repl-equal", "extreme"])
def test_budget_spent_per_type_within_one_sentence(mix, target_tokenizer):
    docs = EN_TEXT * 10
    budget = 120
    recs, s = mixed(docs, counter=target_tokenizer, budget=budget, mix=mix, type="token-annt", share=1.0)
    assert s["allocation"] == allocate(budget, s["types"]) and sum(s["allocation"].values()) == budget
    for t in s["types"]:
        got = sum(r.new_tokens for r in recs if r.type == t)
        assert got == s["new_tokens"][t] <= s["allocation"][t]
        # stopped by its budget: short by less than the one modification that did not fit
        assert t not in s["ran_out"] and (s["short_by"][t] == 0 or 0 < s["short_by"][t] < s["stopped_at"][t])
    # new tokens are the inserted translations under the target tokenizer
    for r in recs:
        if r.type:
            assert r.new_tokens == sum(target_tokenizer.counts([e.translation for e in r.replacements]))
        assert s["modified"][t] == sum(r.type == t for r in recs)
    assert {r.type for r in recs} - {None} == {t for t in s["types"] if s["modified"][t]}
    assert sum(s["modified"].values()) >= len(s["types"]) * 2
    assert s["magnitude"] == sum(s["new_tokens"].values()) and 0 < s["density"] < 1


def test_share_of_documents_or_sentences_selected():
    docs = [f"The king spoke to the man number {i}. The man gave bread to the king." for i in range(50)]
    recs, s = mixed(docs, budget=10**6, share=0.2, mix="extreme", type="token-repl")
    assert s["selected_documents"] == 10 and s["selected_sentences"] == 20 and s["ran_out"] == ["token-repl"]
    touched = {r.doc for r in recs if r.type}
    # a sentence whose random words are all outside the dictionary stays as it is
    assert s["modified"]["token-repl"] + s["not_translated"] == 20 and s["modified"]["token-repl"] >= 15
    assert len(touched) <= 10 and s["density"] == s["modified"]["token-repl"] / 100
    recs, s = mixed(docs, budget=10**6, share=0.25, select="sentences", mix="extreme", type="sent-repl")
    assert s["selected_sentences"] == 25 and sum(r.type == "sent-repl" for r in recs) == 25
    assert len({r.doc for r in recs if r.type}) > 10  # sentences spread over more documents


def test_mix_seeded():
    docs = EN_TEXT * 4
    a, sa = mixed(docs, budget=60, mix="equal", share=0.5)
    b, sb = mixed(docs, budget=60, mix="equal", share=0.5)
    c, _ = mixed(docs, budget=60, mix="equal", share=0.5, seed=7)
    assert [r.text for r in a] == [r.text for r in b] != [r.text for r in c]
    assert sa["new_tokens"] == sb["new_tokens"]


def test_mix_both_sides_cli(tmp_path, monkeypatch, capsys):
    en, es = tmp_path / "en.txt", tmp_path / "es.txt"
    en.write_text("\n".join(EN_TEXT * 3) + "\n", encoding="utf-8")
    es.write_text("\n".join(ES_TEXT * 3) + "\n", encoding="utf-8")
    made = []

    def fake_get_translator(name, src, tgt, cache=None):
        made.append((src, tgt))
        return WordByWord(table={k.lower(): v for k, v in NOUNS.items()} if src == "en" else ES_EN)

    monkeypatch.setattr("langshift.translate.get_translator", fake_get_translator)
    out = tmp_path / "o"
    assert main(["codeswitch", "mix", "--text", str(en), "--target-text", str(es), "--side", "both",
                 "--budget", "40", "--target-budget", "12", "--mix", "extreme", "--type", "token-repl",
                 "--target-type", "token-annt", "--words", "random", "--share", "0.5", "--out", str(out)]) == 0
    s = json.loads((out / "summary.json").read_text())
    assert made == [("en", "es"), ("es", "en")]
    assert s["sides"]["source"]["allocation"] == {"token-repl": 40}
    assert s["sides"]["target"]["allocation"] == {"token-annt": 12}
    assert s["new_tokens"] == sum(v for side in s["sides"].values() for v in side["new_tokens"].values())
    target = [json.loads(x) for x in (out / "target.jsonl").read_text().splitlines()]
    annotated = [r for r in target if r.get("type") == "token-annt"]
    assert annotated and all(f"{e['source']} ({e['translation']})" in r["text"] and e["translation"] in
                             ES_EN.values() for r in annotated for e in r["replacements"])
    assert len((out / "source.txt").read_text().splitlines()) == len(EN_TEXT) * 3
    assert json.loads(capsys.readouterr().out) == {"out": str(out), **s}
    assert main(["codeswitch", "mix", "--side", "target", "--budget", "5", "--out", str(tmp_path / "p")]) == 2
