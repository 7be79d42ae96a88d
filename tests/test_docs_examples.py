"""docs/architecture.md's worked examples run as written, and do what the text says."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import torch

import helpers

DOC = Path(__file__).parent.parent / "docs" / "architecture.md"


def _blocks() -> list[str]:
    return re.findall(r"```python\n(.*?)```", DOC.read_text(encoding="utf-8"), flags=re.S)


@pytest.fixture
def registered():
    from langshift.transfer.methods.base import INIT_METHODS
    from langshift.translate import TRANSLATORS

    yield
    INIT_METHODS._items.pop("first-piece", None)
    TRANSLATORS._items.pop("glossary", None)


def test_examples_are_there():
    blocks = _blocks()
    assert len(blocks) == 2 and "first-piece" in blocks[0] and "glossary" in blocks[1]


def test_init_method_example_transfers(registered, source_bpe, target_bpe):
    from langshift.transfer.apply import transfer
    from langshift.transfer.methods.base import INIT_METHODS

    exec(compile(_blocks()[0], str(DOC), "exec"), {})
    assert "first-piece" in INIT_METHODS.names()
    model = helpers.tiny_llama(len(source_bpe), bos_id=source_bpe.bos_token_id, eos_id=source_bpe.eos_token_id)
    before = model.get_input_embeddings().weight.detach().clone()
    model, prov = transfer(model, source_bpe, target_bpe, "first-piece")
    after = model.get_input_embeddings().weight.detach()
    made = [t for t in prov.tokens if t["how"] == "first-piece"]
    assert len(made) > 20
    for t in made:  # each new row is its first source piece's row, exactly
        assert torch.equal(after[t["id"]], before[t["sources"][0]["id"]])


def test_translator_example_runs(registered):
    exec(compile(_blocks()[1], str(DOC), "exec"), {})  # its own assert checks the answers
    from langshift.translate import get_translator

    assert get_translator("glossary", "en", "es", entries={"a": "b"}).translate_sentences(["x"]) == [None]
