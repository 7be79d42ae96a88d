from __future__ import annotations

import json
from pathlib import Path

import pytest

from langshift.cli import main
from langshift.codeswitch.ablate import AblateConfig, AblateOptions, Doc, build, read_corpus, run_ablate
from langshift.errors import ConfigError, LangshiftError

# A hand-built corpus, one document a line; the code-switched ones are known by construction.
CLEAN = [
    "The king of the city spoke to the people in the house.",
    "Water and bread were brought to the table for the children.",
    "Light came into the world and the darkness did not overcome it.",
    "A small dog runs across the green field every morning.",
    "The doctor said the patient needs rest and water.",
    "In the beginning God created the heaven and the earth.",
    "The old man gave the book to his daughter.",
    "The sun rose over the green hills.",
    "Her brother wrote a letter about the river and the mountains.",
]
SWITCHED = {
    2: "The rey of the ciudad spoke to the pueblo in the casa.",                         # token-repl
    5: "Her brother wrote a letter (carta) about the river.",                             # token-annt
    9: "The old man gave the book to his daughter. (El hombre viejo dio el libro a su hija.)",  # sent-annt
}
SPANISH = set("el la de los las y a su en al dio hombre viejo libro hija rey ciudad pueblo casa carta habló "
              "médico dijo que paciente necesita descanso agua".split())


def corpus() -> list[str]:
    docs, clean = [], iter(CLEAN)
    for i in range(len(CLEAN) + len(SWITCHED)):
        docs.append(SWITCHED[i] if i in SWITCHED else next(clean))
    return docs


def fake_detect(spans):
    """Language ID by a Spanish word list (fastText's lid.176 takes seconds to load; measure's own tests use it)."""
    out = []
    for s in spans:
        words = [w.strip(".,;:!?¿¡()").lower() for w in s.split()]
        out.append(("es" if 2 * sum(w in SPANISH for w in words) > len(words) else "en", 0.99))
    return out


def ablate(tmp_path, docs=None, clean=None, name="out", **kw):
    text = tmp_path / "corpus.txt"
    text.write_text("\n".join(docs or corpus()) + "\n", encoding="utf-8")
    return summary(run_ablate(AblateConfig(text=str(text), out=str(tmp_path / name), clean=clean, **kw),
                              detect=fake_detect))


def summary(result):
    """summary.json, which has the document ids that the result leaves out."""
    return json.loads((Path(result.out) / "summary.json").read_text(encoding="utf-8"))


def lines(path):
    return path.read_text(encoding="utf-8").splitlines()


def test_in_corpus_pool_replaces_exactly_the_switched_documents(tmp_path):
    docs = corpus()
    s = ablate(tmp_path)
    out = tmp_path / "out"
    assert s["code_switched"] == 3 and s["corpora"]["cs-free"]["replaced"] == ["2", "5", "9"]
    held = [int(i) for i in s["held_out"]]
    assert len(held) == 3 and not set(held) & set(SWITCHED)
    original, free, control = (lines(out / f"{n}.txt") for n in ("original", "cs-free", "control"))
    # M is the corpus less the holdout; every corpus has |M| documents
    assert original == [d for i, d in enumerate(docs) if i not in held]
    assert len(free) == len(control) == len(original) == len(docs) - 3
    # D_cs-free: no switched document left, each replaced in place by a held-out clean one
    assert not set(SWITCHED.values()) & set(free)
    assert sorted(free) == sorted([d for d in original if d not in SWITCHED.values()] + [docs[i] for i in held])
    assert [int(i) for i in s["replacements"]] != [] and sorted(int(i) for i in s["replacements"]) == held
    pos = original.index(SWITCHED[5])
    assert free[pos] == docs[int(s["replacements"][1])]
    # D_control keeps every switched document; as many clean documents replaced by the same S
    assert set(SWITCHED.values()) <= set(control)
    ctrl = [int(i) for i in s["corpora"]["control"]["replaced"]]
    assert len(ctrl) == 3 and not set(ctrl) & (set(SWITCHED) | set(held))
    assert sorted(control) == sorted([docs[i] for i in range(len(docs)) if i not in held and i not in ctrl]
                                     + [docs[i] for i in held])
    # token bookkeeping: each corpus = original - removed + added
    for name in ("cs-free", "control"):
        c = s["corpora"][name]
        assert c["tokens"] == s["corpora"]["original"]["tokens"] - c["tokens_removed"] + s["tokens_added"]
        assert c["tokens"] == sum(len(d.split()) for d in lines(out / f"{name}.txt"))
    assert json.loads((out / "summary.json").read_text()) == s
    assert s["sentence_labels"]["token-repl"] == 1 and s["sentence_labels"]["token-annt"] == 1


def test_clean_pool_file_and_jsonl_records_kept(tmp_path):
    docs = corpus()
    rows = [{"id": f"doc{i}", "text": d, "url": f"u{i}"} for i, d in enumerate(docs)]
    (tmp_path / "c.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    pool = ["The river runs to the sea.", "The rey spoke to the pueblo.", "Birds build nests in the spring.",
            "The farmer planted wheat in the field.", "A child read a story by the fire.", CLEAN[0]]
    (tmp_path / "pool.txt").write_text("\n".join(pool) + "\n", encoding="utf-8")
    s = summary(run_ablate(AblateConfig(text=str(tmp_path / "c.jsonl"), out=str(tmp_path / "o"),
                                        clean=str(tmp_path / "pool.txt"), control_from="any", seed=3),
                           detect=fake_detect))
    assert s["pool_clean"] == 4 and s["pool_code_switched"] == 1 and s["pool_in_corpus"] == 1
    assert s["held_out"] == []
    assert all(r.startswith("clean:") for r in s["replacements"]) and "clean:1" not in s["replacements"]
    orig = [json.loads(x) for x in lines(tmp_path / "o" / "original.jsonl")]
    assert orig == rows  # with a pool file, M is the whole corpus, records kept with all their fields
    free = [json.loads(x) for x in lines(tmp_path / "o" / "cs-free.jsonl")]
    assert [r["id"] for r in free if r["id"].startswith("clean:")] == s["replacements"]
    assert [i for i, r in enumerate(free) if r["id"].startswith("clean:")] == [2, 5, 9]
    assert {r["text"] for r in free if "url" not in r} <= set(pool) - {pool[1], CLEAN[0]}
    assert s["corpora"]["cs-free"]["replaced"] == ["doc2", "doc5", "doc9"]


def test_seeded_and_clear_errors(tmp_path):
    a = ablate(tmp_path, name="a", seed=1)
    b = ablate(tmp_path, name="b", seed=1)
    c = ablate(tmp_path, name="c", seed=2)
    assert a == b and (tmp_path / "a" / "control.txt").read_bytes() == (tmp_path / "b" / "control.txt").read_bytes()
    assert (a["held_out"], a["corpora"]["control"]["replaced"]) != (c["held_out"], c["corpora"]["control"]["replaced"])
    # three switched and four clean documents: no room to hold out three and draw three for the control
    few = [SWITCHED[2], SWITCHED[5], SWITCHED[9]] + CLEAN[:4]
    with pytest.raises(ConfigError, match="--clean"):
        ablate(tmp_path, docs=few, name="few")
    assert not (tmp_path / "few").exists()
    with pytest.raises(ConfigError, match="--out"):
        ablate(tmp_path, name="a")
    with pytest.raises(ConfigError, match="cs_labels"):
        AblateOptions(cs_labels=["monolingual"])
    (tmp_path / "bad.jsonl").write_text('{"id": 1, "body": "x"}\n', encoding="utf-8")
    with pytest.raises(LangshiftError, match="'text'"):
        read_corpus(tmp_path / "bad.jsonl")


def test_build_control_from_any_and_pool_size():
    docs = [Doc(str(i), f"d{i}") for i in range(6)]
    cs = [True, False, True, False, False, False]
    pool = [Doc(f"p{i}", f"p{i}") for i in range(2)]
    parts = build(docs, cs, pool, AblateOptions(control_from="any", seed=0))
    assert [d.id for d in parts["original"]] == [str(i) for i in range(6)]
    assert sorted(d.id for d in parts["cs-free"] if d.id.startswith("p")) == ["p0", "p1"]
    assert len(parts["control_ids"]) == 2
    with pytest.raises(ConfigError, match="--clean"):
        build(docs, cs, pool[:1], AblateOptions())


def test_ablate_cli(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr("langshift.text.langid.detect", fake_detect)
    f = tmp_path / "c.txt"
    f.write_text("\n".join(corpus()) + "\n", encoding="utf-8")
    assert main(["codeswitch", "ablate", "--text", str(f), "--out", str(tmp_path / "o"), "--langs", "en,es",
                 "--seed", "4", "--control-from", "any"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["code_switched"] == 3 and printed["corpora"]["control"]["drawn_from"] == "any"
    assert sorted(p.name for p in (tmp_path / "o").iterdir()) == ["control.txt", "cs-free.txt", "original.txt",
                                                                  "summary.json"]
    assert main(["codeswitch", "ablate", "--text", str(f), "--out", str(tmp_path / "o")]) == 2
