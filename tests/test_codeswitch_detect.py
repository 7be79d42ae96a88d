from __future__ import annotations

import json
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np
import pytest

from helpers import byte_level_bpe, save_model_folder, tiny_llama, write_lines
from langshift.cli import main
from langshift.codeswitch.classify import EndpointChooser, LocalChooser, parse_box, refine_tokens
from langshift.codeswitch.detect import (
    DetectConfig,
    HiddenStateEncoder,
    centred,
    detect,
    load_encoder,
    pair_similarity,
    predicted_sets,
    read_gold,
    score,
)
from langshift.codeswitch.measure import MeasureOptions
from langshift.errors import ConfigError, LangshiftError, MissingDependencyError
from langshift.evaluate.judge import Endpoint

# A toy cross-lingual encoder: words mapped to English through a small dictionary, then a bag of words.
ES_EN = {"el": "the", "hombre": "man", "viejo": "old", "dio": "gave", "libro": "book", "su": "his", "hija": "daughter",
         "a": "to", "médico": "doctor", "dijo": "said", "que": "that", "paciente": "patient", "necesita": "needs",
         "descanso": "rest", "y": "and", "agua": "water", "rey": "king", "habló": "spoke", "al": "to", "pueblo": "people"}


class DictionaryEncoder:
    def __init__(self):
        self.calls = 0

    def encode(self, texts):
        self.calls += 1
        vocab: dict[str, int] = {}
        bags = [[ES_EN.get(w, w) for w in re.findall(r"\w+", t.lower())] for t in texts]
        for b in bags:
            for w in b:
                vocab.setdefault(w, len(vocab))
        out = np.zeros((len(texts), max(len(vocab), 1)))
        for i, b in enumerate(bags):
            for w in b:
                out[i, vocab[w]] += 1
        return out


NO_CENTRE = DetectConfig(encoder=None, threshold=0.5, centre=False)
# heuristic: plain B sentence → sent-repl; parenthesised B sentence → sent-annt
PLAIN_PAIR = "The old man gave the book to his daughter. El hombre viejo dio el libro a su hija querida. The sun rose early."
PAREN_OTHER = ("The king spoke to the people in the house. (El médico dijo que el paciente necesita descanso y agua.) "
               "The sun rose early.")
PLAIN_OTHER = "The old man gave the book to his daughter. El médico dijo que el paciente necesita agua. The sun rose."


def test_encoder_decides_translation_pairs_not_parentheses():
    docs = [PLAIN_PAIR, PAREN_OTHER, PLAIN_OTHER]
    _, heur = detect(docs, MeasureOptions(), NO_CENTRE)
    got = {(r["doc"], r["label"]) for r in heur if r["label"] != "monolingual"}
    assert got == {(0, "sent-repl"), (1, "sent-annt"), (2, "sent-repl")}
    enc = DictionaryEncoder()
    rep, rows = detect(docs, MeasureOptions(), NO_CENTRE, encoder=enc)
    switched = {r["doc"]: r for r in rows if r["label"] != "monolingual"}
    assert {d: r["label"] for d, r in switched.items()} == {0: "sent-annt", 1: "sent-repl", 2: "sent-repl"}
    assert switched[0]["heuristic"] == "sent-repl" and switched[0]["similarity"] > 0.8
    assert switched[1]["similarity"] < 0.5
    assert enc.calls == 1 and rep["detectors"]["sentence"]["candidates"] == 3
    assert rep["counts"]["sent-annt"] == 1 and rep["counts"]["sent-repl"] == 2
    # the threshold decides: above every similarity, nothing is an annotation
    _, rows = detect(docs, MeasureOptions(), DetectConfig(threshold=0.99, centre=False), encoder=DictionaryEncoder())
    assert "sent-annt" not in {r["label"] for r in rows}


def test_centring_and_pair_similarity():
    rng = np.random.default_rng(0)
    offset = np.r_[10.0, np.zeros(7)]
    a = rng.normal(size=(10, 8))
    vecs = np.vstack([a + offset, a - offset])       # two "languages": same meanings, opposite offsets
    c = centred(vecs, [0] * 10 + [1] * 10, 5)
    assert np.allclose(c[:10], c[10:])
    assert centred(vecs, [0] * 10 + [1] * 10, 11) is None
    sims = pair_similarity(c[:3], c[10:14], owner=[0, 0, 1, 2], n_segments=4)
    assert sims[0] == pytest.approx(1.0) and sims[1] < 1 and sims[3] is None


def test_centring_needs_enough_texts_and_says_so(caplog):
    rep, rows = detect([PLAIN_PAIR], MeasureOptions(), DetectConfig(min_centre=8), encoder=DictionaryEncoder())
    assert rep["detectors"]["sentence"]["centred"] is False
    assert "too few" in caplog.text


def test_hidden_state_encoder_on_a_tiny_llama():
    texts = ["the king spoke to them", "el rey habló al pueblo", "water and bread"]
    tok = byte_level_bpe(texts * 5, vocab_size=300)
    model = tiny_llama(len(tok), layers=2)
    enc = HiddenStateEncoder(model, tok)
    v = enc.encode(texts)
    assert v.shape == (3, 16) and enc.layer == 1
    assert np.allclose(v, enc.encode(texts)) and not np.allclose(v[0], v[1])
    with pytest.raises(ConfigError, match="layer"):
        HiddenStateEncoder(model, tok, layer=3)


def test_encoder_errors_name_the_parameter(monkeypatch):
    with pytest.raises(ConfigError, match="encoder"):
        load_encoder("st:")
    import builtins

    real = builtins.__import__

    def no_st(name, *a, **k):
        if name.startswith("sentence_transformers"):
            raise ImportError(name)
        return real(name, *a, **k)

    monkeypatch.setattr(builtins, "__import__", no_st)
    with pytest.raises(MissingDependencyError, match="pip install sentence-transformers"):
        load_encoder("st:sentence-transformers/LaBSE")


@pytest.mark.parametrize(("kw", "param"), [({"threshold": 1.5}, "threshold"), ({"model_batch_size": 0}, "model_batch_size"),
                                           ({"llm": "http://127.0.0.1:1/v1"}, "llm_model"),
                                           ({"min_centre": 1}, "min_centre")])
def test_detect_config_errors(kw, param):
    with pytest.raises(ConfigError, match=param):
        DetectConfig(**kw)


# Token level ----------------------------------------------------------------------------------------

TOKEN_DOCS = ["Her brother wrote a letter (carta) about the river.", "The rey of the ciudad spoke to the pueblo.",
              "We walked across the plaza to the old mesa."]


def test_parse_box():
    assert parse_box("so it is annotation. Formatting result: \\box(1)") == 1
    assert parse_box("\\box(1) no wait, \\boxed{2}") == 2
    assert parse_box("I think replacement") is None and parse_box(None) is None


def test_llm_overrides_token_labels_and_filters_unrelated():
    _, heur = detect(TOKEN_DOCS, MeasureOptions())
    before = {r["doc"]: r["label"] for r in heur}
    assert before == {0: "token-annt", 1: "token-repl", 2: "token-repl"}   # loanwords fool the heuristic
    seen = []

    def choose(prompts):
        seen.extend(prompts)
        out = []
        for p in prompts:
            if "decide:" in p:          # the unrelated filter: the plaza/mesa sentence is loanwords
                out.append((2, "r") if "plaza" in p else (1, "r"))
            else:                       # flip the heuristic, to see that the LLM decides
                out.append((2, "r") if "(carta)" in p else (None, "no verdict") if "rey" in p else (1, "r"))
        return out

    rep, rows = detect(TOKEN_DOCS, MeasureOptions(), DetectConfig(), choose=choose)
    after = {r["doc"]: r["label"] for r in rows}
    assert after == {0: "token-repl",                  # the LLM said replacement
                     1: "token-repl",                  # no verdict: the heuristic label stays, counted
                     2: "unrelated"}                   # filtered out
    info = rep["detectors"]["token"]
    assert info == {"llm": "given", "candidates": 3, "unrelated": 1, "unparsed": 1, "unrelated_filter": True}
    assert rep["counts"]["unrelated"] == 1 and rows[0]["heuristic"] == "token-annt"
    assert any("[English Sentence]: Her brother wrote a letter (carta)" in p for p in seen)
    assert all("Spanish" in p for p in seen)
    # without the filter only the classification prompt is sent
    seen.clear()
    detect(TOKEN_DOCS, MeasureOptions(), DetectConfig(unrelated_filter=False), choose=choose)
    assert seen and not any("decide:" in p for p in seen)


class FakeLLM(BaseHTTPRequestHandler):
    def do_POST(self):  # noqa: N802
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        prompt = body["messages"][-1]["content"]
        reply = "It is explained in parentheses. Formatting result: \\box(1)" if "(carta)" in prompt else \
            "The word is used directly. Formatting result: \\box(2)"
        data = json.dumps({"choices": [{"message": {"content": reply}}]}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass


@pytest.fixture()
def llm_url():
    srv = ThreadingHTTPServer(("127.0.0.1", 0), FakeLLM)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{srv.server_address[1]}/v1"
    srv.shutdown()


def test_endpoint_chooser_through_a_fake_server(llm_url):
    choose = EndpointChooser(Endpoint(llm_url, "fake", retries=0))
    rows = [{"label": "token-repl", "text": TOKEN_DOCS[0], "doc_lang": "en"},
            {"label": "token-annt", "text": TOKEN_DOCS[1], "doc_lang": "en"}]
    info = refine_tokens(rows, choose, ["en", "es"], unrelated_filter=False)
    assert [r["label"] for r in rows] == ["token-annt", "token-repl"]
    assert info["unparsed"] == 0 and "box(1)" in rows[0]["llm_reply"]


def test_local_chooser_on_a_tiny_chat_model():
    tok = byte_level_bpe(["the king (rey) spoke 1 2 user assistant"] * 5, vocab_size=300)
    tok.chat_template = "{% for m in messages %}<{{ m.role }}>{{ m.content }}\n{% endfor %}<assistant>"
    model = tiny_llama(len(tok), layers=1)
    choose = LocalChooser(model, tok, batch_size=2)
    out = choose(["a prompt", "another, longer prompt", "third"])
    assert [v for v, _ in out] == [v for v, _ in choose(["a prompt", "another, longer prompt", "third"])]
    assert all(v in (1, 2) and reply.startswith("p(1)=") for v, reply in out)
    # a batch of one gives the same verdict as in a padded batch
    assert choose(["third"])[0][0] == out[2][0]
    tok.chat_template = None
    with pytest.raises(ConfigError, match="llm"):
        LocalChooser(model, tok)


# Scoring ----------------------------------------------------------------------------------------------

def test_score_counts_precision_and_recall():
    gold = ["sent-annt", "sent-annt", "sent-repl", "none", "token-repl"]
    pred = [frozenset({"sent-annt"}), frozenset({"sent-repl"}), frozenset({"sent-repl"}), frozenset(),
            frozenset({"token-repl", "token-annt"})]
    s = score(gold, pred, groups=["a", "a", "b", "c", "d"])
    pl = s["per_label"]
    assert pl["sent-annt"]["precision"]["value"] == 1.0 and pl["sent-annt"]["recall"]["value"] == 0.5
    assert pl["sent-repl"]["precision"]["value"] == 0.5 and pl["sent-repl"]["recall"]["value"] == 1.0
    assert pl["none"]["precision"]["value"] == 1.0 and pl["token-annt"]["precision"]["value"] == 0.0
    assert pl["token-annt"]["recall"] is None                 # no gold item of that type
    lo, hi = pl["sent-annt"]["recall"]["ci95"]
    assert lo < 0.5 < hi
    assert s["exact"]["value"] == 0.6 and s["exact_by_group"]["a"] == {"n": 2, "exact": 0.5}
    assert s["confusion"]["token-repl"] == {"token-annt+token-repl": 1}
    rows = [{"doc": 0, "label": "monolingual"}, {"doc": 1, "label": "unrelated"}, {"doc": 1, "label": "token-repl"}]
    assert predicted_sets(rows, 3) == [frozenset(), frozenset({"token-repl"}), frozenset()]
    with pytest.raises(ConfigError, match="gold"):
        score(gold[:2], pred)


def test_read_gold_rejects_unknown_labels(tmp_path):
    f = write_lines(tmp_path / "g.jsonl", [json.dumps({"text": "x", "label": "code-switch"})])
    with pytest.raises(LangshiftError, match="line 1 needs .* got label 'code-switch'"):
        read_gold(f)


def test_score_and_measure_cli(tmp_path, capsys):
    items = [(PLAIN_PAIR, "sent-annt"), (PAREN_OTHER, "sent-repl"), (TOKEN_DOCS[0], "token-annt"),
             ("The sun rose over the green hills and the people went home.", "none")]
    gold = write_lines(tmp_path / "gold.jsonl", [json.dumps({"text": t, "label": g}) for t, g in items])
    assert main(["codeswitch", "score", "--gold", str(gold), "--out", str(tmp_path / "s.json"),
                 "--rows-out", str(tmp_path / "rows.jsonl")]) == 0
    s = json.loads((tmp_path / "s.json").read_text())
    # the parentheses heuristic gets both sentence-level items wrong and the other two right
    assert s["per_label"]["sent-annt"]["recall"]["value"] == 0.0
    assert s["per_label"]["token-annt"]["recall"]["value"] == 1.0 and s["exact"]["value"] == 0.5
    assert s["detectors"] == {"sentence": "heuristic", "token": "heuristic"}
    assert len((tmp_path / "rows.jsonl").read_text().splitlines()) >= 4
    # --out may not overwrite the gold file
    assert main(["codeswitch", "score", "--gold", str(gold), "--out", str(gold), "--overwrite"]) == 2
    assert main(["codeswitch", "score", "--gold", str(gold), "--threshold", "2"]) == 2
    assert "threshold" in capsys.readouterr().err
    # measure with a causal-LM encoder folder: the sentence level is decided by it and reported
    tok = byte_level_bpe([t for t, _ in items] * 3, vocab_size=300)
    folder = save_model_folder(tiny_llama(len(tok)), tok, tmp_path / "enc")
    text = write_lines(tmp_path / "c.txt", [PLAIN_PAIR, PAREN_OTHER])
    assert main(["codeswitch", "measure", "--text", str(text), "--encoder", str(folder), "--min-centre", "2",
                 "--out", str(tmp_path / "r.json"), "--labels-out", str(tmp_path / "l.jsonl")]) == 0
    rep = json.loads((tmp_path / "r.json").read_text())
    assert rep["detectors"]["sentence"]["candidates"] == 2 and rep["detectors"]["token"] == "heuristic"
    labelled = [json.loads(x) for x in (tmp_path / "l.jsonl").read_text().splitlines()]
    assert all("similarity" in r for r in labelled if r["label"].startswith("sent"))
