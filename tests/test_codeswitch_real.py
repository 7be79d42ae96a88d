"""The real path: apertium tagger + apertium translator on a few KJV verses, through the CLI."""

from __future__ import annotations

import json
import shutil

import pytest

from langshift.cli import main
from langshift.codeswitch.measure import MeasureOptions, measure

pytestmark = pytest.mark.skipif(shutil.which("apertium") is None or shutil.which("diatheke") is None,
                                reason="needs Debian apertium-eng-spa and diatheke (see OFFLINE_KIT.md)")


@pytest.fixture(scope="module")
def verses():
    from langshift.resources import bible_verses

    return list(bible_verses("en").values())[:40]


def test_migrate_and_syncs_on_kjv(tmp_path, verses, capsys):
    text = tmp_path / "kjv.txt"
    text.write_text("\n".join(verses) + "\n", encoding="utf-8")
    out = tmp_path / "cs.jsonl"
    assert main(["codeswitch", "migrate", "--text", str(text), "--out", str(out), "--text-out",
                 str(tmp_path / "cs.txt"), "--cache", str(tmp_path / "tr.sqlite")]) == 0
    summary = json.loads((tmp_path / "cs.jsonl.summary.json").read_text())
    recs = [json.loads(x) for x in out.read_text(encoding="utf-8").splitlines()]
    first = recs[0]
    assert first["original"] == "In the beginning God created the heaven and the earth."
    sources = {r["source"]: r["translation"] for r in first["replacements"]}
    assert sources.get("earth") == "tierra" and "God" in sources
    assert summary["replaced"] > 100 and summary["translator_calls"] == summary["distinct_nouns"]
    assert summary["translator_calls"] < summary["nouns"] / 2
    docs = (tmp_path / "cs.txt").read_text(encoding="utf-8").splitlines()
    assert len(docs) == len(verses) and docs[0].startswith("In the comienzo")

    # the same run again is answered from the sqlite cache: no backend call
    assert main(["codeswitch", "migrate", "--text", str(text), "--out", str(out), "--overwrite",
                 "--cache", str(tmp_path / "tr.sqlite")]) == 0
    assert json.loads((tmp_path / "cs.jsonl.summary.json").read_text())["translator_calls"] == 0

    assert main(["codeswitch", "syncs", "--text", str(text), "--out", str(tmp_path / "s.jsonl"), "--mix", "equal",
                 "--density", "0.5"]) == 0
    s = json.loads((tmp_path / "s.jsonl.summary.json").read_text())
    assert abs(s["modified"] + s["not_translated"] - 0.5 * s["sentences"]) <= 1
    assert all(s["per_type"][t] > 0 for t in ("token-repl", "token-annt", "sent-repl", "sent-annt"))
    capsys.readouterr()

    # measuring our own output finds what we put there
    switched = [json.loads(x)["text"] for x in (tmp_path / "s.jsonl").read_text(encoding="utf-8").splitlines()]
    report, _ = measure(switched, MeasureOptions(langs=["en", "es"]))
    assert report["counts"]["sent-annt"] > 0 and report["counts"]["token-repl"] > 0
    assert report["counts"]["monolingual"] > 0.3 * report["sentences"]


def test_migrate_same_output_with_worker_processes(verses):
    # workers are forked from a process whose tagger already keeps an analyser running: each must start
    # its own, and since each tagging call gets a fresh tagger, the output cannot depend on num_proc
    from langshift.codeswitch.migrate import MigrateOptions, migrate
    from langshift.text.tagging import get_tagger
    from langshift.translate import get_translator

    tagger = get_tagger("apertium")
    runs = []
    for num_proc in (1, 2, 1):
        cfg = MigrateOptions(num_proc=num_proc, batch_size=8)
        recs = migrate(verses, tagger, get_translator("apertium", "en", "es"), cfg)
        runs.append([(r.id, r.text, r.sep, r.original) for r in recs])
    assert runs[0] == runs[1] == runs[2]
    assert sum(text != original for _, text, _, original in runs[0]) > 20  # nouns were switched
    tagger.close()
