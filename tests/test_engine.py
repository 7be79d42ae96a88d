"""Data stages on the engine: datasets num_proc and datatrove tasks give the 1-worker output; shards resume."""

from __future__ import annotations

import json
import os
import sys

import pytest

from langshift.codeswitch.migrate import MigrateConfig, MigrateOptions, Stats, migrate, run_migrate
from langshift.codeswitch.provenance import TokenCounter
from langshift.errors import ConfigError, LangshiftError, MissingDependencyError

sys.path.insert(0, os.path.dirname(__file__))
from test_codeswitch_migrate import DOCS, FakeTagger, FakeTranslator  # noqa: E402

CORPUS = [d.replace("king", k) for k in ("king", "man", "book") for d in DOCS] * 3  # 36 documents


class FailingTagger(FakeTagger):
    """Raises on the sentences of one document: a task killed half-way."""

    def tag(self, words):
        if "Abraham" in words:
            raise RuntimeError("killed")
        return super().tag(words)


def records(cfg, tagger=None, work=None):
    return [r.to_json() for r in migrate(CORPUS, tagger or FakeTagger(), FakeTranslator(), cfg, TokenCounter(),
                                         Stats(), work)]


def test_datasets_num_proc_2_equals_1():
    one = records(MigrateOptions(batch_size=5, num_proc=1))
    two = records(MigrateOptions(batch_size=5, num_proc=2))
    assert two == one
    assert [r["id"] for r in one][:3] == ["0.0", "0.1", "1.0"] and len({r["id"] for r in one}) == len(one)
    assert sum(bool(r["replacements"]) for r in one) > 20


def test_datatrove_two_local_workers_equal_one_worker(tmp_path):
    one = records(MigrateOptions(batch_size=5))
    cfg = MigrateOptions(batch_size=5, num_proc=2, tasks=2, engine="datatrove", work_dir=str(tmp_path / "dt"))
    assert records(cfg) == one
    assert sorted(os.listdir(tmp_path / "dt" / "output")) == ["00000.parquet", "00001.parquet"]
    assert sorted(os.listdir(tmp_path / "dt" / "logs" / "completions")) == ["00000", "00001"]


def test_datatrove_resume_redoes_only_the_unfinished_shard(tmp_path):
    one = records(MigrateOptions(batch_size=5))
    work = tmp_path / "dt"
    # 36 documents in groups of 5 → 8 groups in 3 tasks (3, 3, 2 groups); one worker, so tasks run in turn
    cfg = MigrateOptions(batch_size=5, num_proc=1, tasks=3, engine="datatrove", work_dir=str(work))
    records(cfg)  # all three shards done
    done = {p: os.stat(work / "output" / p).st_ino for p in os.listdir(work / "output")}
    os.unlink(work / "logs" / "completions" / "00001")          # task 1 "killed": no completion marker,
    os.unlink(work / "output" / "00001.parquet")                # and no output (written atomically)
    with pytest.raises(RuntimeError, match="killed"):
        records(cfg, FailingTagger())                           # the rerun of task 1 is killed again
    assert sorted(os.listdir(work / "logs" / "completions")) == ["00000", "00002"]
    assert records(cfg) == one                                  # resumed: only task 1 ran
    after = {p: os.stat(work / "output" / p).st_ino for p in os.listdir(work / "output")}
    assert after["00000.parquet"] == done["00000.parquet"] and after["00002.parquet"] == done["00002.parquet"]
    assert after["00001.parquet"] != done["00001.parquet"]
    # a different corpus in the same work folder is refused, not mixed
    with pytest.raises(ConfigError, match="tasks"):
        list(migrate(CORPUS[:10], FakeTagger(), FakeTranslator(), cfg))


def test_run_migrate_reads_jsonl_and_parquet_writes_parquet(tmp_path, monkeypatch):
    import pyarrow as pa
    import pyarrow.parquet as pq


    monkeypatch.setattr("langshift.text.tagging.get_tagger", lambda name, lang: FakeTagger())
    monkeypatch.setattr("langshift.translate.get_translator", lambda *a, **k: FakeTranslator())
    txt, jsonl, parquet = tmp_path / "c.txt", tmp_path / "c.jsonl", tmp_path / "c.parquet"
    txt.write_text("\n".join(CORPUS[:6]) + "\n\n", encoding="utf-8")
    jsonl.write_text("".join(json.dumps({"text": d, "id": i}) + "\n" for i, d in enumerate(CORPUS[:6])),
                     encoding="utf-8")
    pq.write_table(pa.table({"text": CORPUS[:6]}), parquet)
    outs = {}
    for src in (txt, jsonl, parquet):
        out = tmp_path / f"out-{src.suffix[1:]}.jsonl"
        run_migrate(MigrateConfig(text=[str(src)], out=str(out), text_out=str(tmp_path / f"{src.suffix}.txt"),
                                batch_size=2, num_proc=2))
        outs[src.suffix] = out.read_text(encoding="utf-8")
    assert outs[".txt"] == outs[".jsonl"] == outs[".parquet"] and outs[".txt"].count("\n") == 8
    res = run_migrate(MigrateConfig(text=[str(parquet)], out=str(tmp_path / "o.parquet"), batch_size=2))
    table = pq.read_table(tmp_path / "o.parquet").to_pylist()
    assert len(table) == res.sentences == 8
    assert [json.loads(x)["text"] for x in outs[".txt"].splitlines()] == [r["text"] for r in table]
    assert table[0]["replacements"][0] == {"start": 4, "end": 8, "source": "king", "translation": "rey",
                                           "tag": "NN"}


def test_bad_inputs_and_missing_datatrove(tmp_path, monkeypatch):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"text": "The king."}\n{"txt": "x"}\n', encoding="utf-8")
    with pytest.raises(LangshiftError, match="line 2 has no string field 'text'"):
        run_migrate(MigrateConfig(text=[str(bad)], out=str(tmp_path / "o.jsonl")))
    nocol = tmp_path / "n.parquet"
    __import__("pyarrow.parquet").parquet.write_table(__import__("pyarrow").table({"body": ["x"]}), nocol)
    with pytest.raises(ConfigError, match="no 'text' column"):
        run_migrate(MigrateConfig(text=[str(nocol)], out=str(tmp_path / "o.jsonl")))
    assert not (tmp_path / "o.jsonl").exists() and not any(p.name.startswith(".o.") for p in tmp_path.iterdir())
    for name in ("datatrove", "datatrove.executor", "datatrove.pipeline.base"):
        monkeypatch.setitem(sys.modules, name, None)
    with pytest.raises(MissingDependencyError, match=r"langshift\[scale\]"):
        records(MigrateOptions(engine="datatrove", work_dir=str(tmp_path / "w")))
    with pytest.raises(ConfigError, match="tasks"):
        MigrateOptions(tasks=0)
    assert MigrateOptions(executor_options='{partition: cpu, time: "4:00:00"}').executor_options == {
        "partition": "cpu", "time": "4:00:00"}
    with pytest.raises(ConfigError, match="executor_options"):
        MigrateOptions(executor_options="[1, 2]")


# SynCS on the engine -------------------------------------------------------------------------------------

def syncs_records(cfg, docs=CORPUS):
    from langshift.codeswitch.syncs import Stats as SyncsStats
    from langshift.codeswitch.syncs import summary, syncs
    from test_codeswitch_syncs import SENTS

    stats, tr = SyncsStats(), FakeTranslator(sentences=SENTS)
    recs = [r.to_json() for r in syncs(docs, tr, cfg, FakeTagger(), TokenCounter(), stats)]
    out = summary(stats, cfg, TokenCounter())
    out.pop("seconds")
    return recs, out, dict(tr.asked)


@pytest.mark.parametrize("kw", [dict(density=0.5, mix="equal"),
                                dict(density=1.0, mix="extreme", type="token-repl", word_share=1.0, magnitude=40)])
def test_syncs_num_proc_2_and_datatrove_equal_1_worker(tmp_path, kw):
    from langshift.codeswitch.syncs import SyncsOptions

    one = syncs_records(SyncsOptions(batch_size=4, **kw))
    assert syncs_records(SyncsOptions(batch_size=4, num_proc=2, **kw)) == one
    dt = SyncsOptions(batch_size=4, num_proc=2, tasks=2, engine="datatrove", work_dir=str(tmp_path / "dt"), **kw)
    assert syncs_records(dt) == one
    assert sorted(os.listdir(tmp_path / "dt" / "sentences" / "output")) == ["00000.parquet", "00001.parquet"]
    recs, summary, asked = one
    assert summary["modified"] > 10 and len(recs) == summary["sentences"] == 45
    assert summary["budget_reached"] == ("magnitude" in kw) and all(v == 1 for v in asked.values())
    if "magnitude" in kw:  # the budget stops modification, not the corpus
        assert summary["new_tokens"] <= 40 and sum(r.get("new_tokens", 0) for r in recs) == summary["new_tokens"]


def test_run_syncs_reads_jsonl_like_text(tmp_path, monkeypatch):
    from langshift.codeswitch.syncs import SyncsConfig, run_syncs

    monkeypatch.setattr("langshift.text.tagging.get_tagger", lambda name, lang: FakeTagger())
    monkeypatch.setattr("langshift.translate.get_translator", lambda *a, **k: FakeTranslator())
    txt, jsonl = tmp_path / "c.txt", tmp_path / "c.jsonl"
    txt.write_text("\n".join(CORPUS[:9]) + "\n", encoding="utf-8")
    jsonl.write_text("".join(json.dumps({"text": d}) + "\n" for d in CORPUS[:9]), encoding="utf-8")
    cfg = dict(density=1.0, mix="extreme", type="token-repl", batch_size=2)
    a = run_syncs(SyncsConfig(text=[str(txt)], out=str(tmp_path / "a.jsonl"), **cfg)).to_dict()
    b = run_syncs(SyncsConfig(text=[str(jsonl)], out=str(tmp_path / "b.jsonl"), num_proc=2, **cfg)).to_dict()
    assert (tmp_path / "a.jsonl").read_text() == (tmp_path / "b.jsonl").read_text()
    for r in (a, b):
        r.pop("seconds"), r.pop("out")
    assert a == b and a["sentences"] == 12 and a["modified"] + a["not_translated"] == 12 and a["modified"] >= 8


# measure on the engine ---------------------------------------------------------------------------------

def test_measure_report_and_labels_equal_for_1_and_2_workers_and_datatrove(tmp_path):
    from langshift.codeswitch.measure import MeasureOptions, measure
    from langshift.resources import bible_verses
    from test_codeswitch_measure import CORPUS as LABELLED

    en, es = list(bible_verses("en").values())[:40], list(bible_verses("es").values())[:20]
    # short documents take the corpus's language (known only after every group), long ones their own
    docs = [t for t, _ in LABELLED] + en[:20] + [" ".join(en[i:i + 5]) for i in range(20, 40, 5)] + es + \
        [en[i] + " (" + es[i] + ")" for i in range(6)] + [en[i].replace(".", " (agua).", 1) for i in range(6, 12)]

    def run(**kw):
        tr = FakeTranslator(sentences={"agua": "the and of earth God"})
        rep, rows = measure(docs, MeasureOptions(batch_size=7, **kw), translator=tr)
        return rep, rows, dict(tr.asked)

    one = run()
    assert run(num_proc=2) == one
    assert run(num_proc=2, tasks=3, engine="datatrove", work_dir=str(tmp_path / "dt")) == one
    rep, rows, asked = one
    assert rep["sentences"] == len(rows) > len(docs) and rep["counts"]["sent-repl"] >= 20
    # (agua) confirmed beside some verses, not beside others; (carta) never: each segment translated once
    assert rep["counts"]["token-annt"] == 4 and rep["counts"]["token-repl"] == 4
    assert asked == {"carta": 1, "agua": 1}
    assert {r["doc_lang"] for r in rows[:len(LABELLED)]} == {"en"}


def test_run_measure_reads_jsonl_and_parquet_like_text(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    from langshift.codeswitch.measuring import MeasureConfig, run_measure
    from test_codeswitch_measure import CORPUS as LABELLED

    docs = [t for t, _ in LABELLED]
    txt, jsonl, parquet = tmp_path / "c.txt", tmp_path / "c.jsonl", tmp_path / "c.parquet"
    txt.write_text("\n".join(docs) + "\n", encoding="utf-8")
    jsonl.write_text("".join(json.dumps({"text": d}) + "\n" for d in docs), encoding="utf-8")
    pq.write_table(pa.table({"text": docs}), parquet)
    reports, labels = [], []
    for i, (src, n) in enumerate(((txt, 1), (jsonl, 2), (parquet, 2))):
        run_measure(MeasureConfig(text=[str(src)], num_proc=n, batch_size=3, out=str(tmp_path / f"r{i}.json"),
                                  labels_out=str(tmp_path / f"l{i}.jsonl")))
        reports.append(json.loads((tmp_path / f"r{i}.json").read_text(encoding="utf-8")))
        labels.append((tmp_path / f"l{i}.jsonl").read_text(encoding="utf-8"))
    assert reports[0] == reports[1] == reports[2] and labels[0] == labels[1] == labels[2]
    assert reports[0]["sentences"] == len(labels[0].splitlines()) == len(docs) + 1


def test_pipeline_codeswitch_stages_run_on_the_engine(tmp_path, monkeypatch):
    from langshift.pipeline.stages import STAGES, Context

    monkeypatch.setattr("langshift.text.tagging.get_tagger", lambda name, lang: FakeTagger())
    monkeypatch.setattr("langshift.translate.get_translator", lambda *a, **k: FakeTranslator())
    txt = tmp_path / "c.txt"
    txt.write_text("\n".join(CORPUS[:9]) + "\n", encoding="utf-8")
    for method, options in (("migrate", dict(num_proc=2, batch_size=2)),
                            ("syncs", dict(num_proc=2, density=1.0, mix="extreme", type="token-repl"))):
        stage, ctx = STAGES.get(method), Context(work=tmp_path / method)
        owned = {k: fn(ctx.work) for k, fn in stage.owned.items()}
        summary = stage(stage.config(text=str(txt), **owned, **options), ctx)
        lines = (ctx.work / "codeswitched.txt").read_text(encoding="utf-8").splitlines()
        assert len(lines) == 9 and lines[0] != CORPUS[0] and summary["sentences"] == 12
        assert sorted(os.listdir(ctx.work)) == [f".step.{method}.json", "codeswitched.jsonl",  # no corpus left behind
                                                "codeswitched.jsonl.summary.json", "codeswitched.txt"]
