import os
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import helpers  # noqa: E402


@pytest.fixture(scope="session")
def en_text():
    return list(helpers.EN_TEXT)


@pytest.fixture(scope="session")
def es_text():
    return list(helpers.ES_TEXT)


@pytest.fixture(scope="session")
def source_bpe():
    """An 'English' byte-level BPE with chat specials (stands in for the LLM's tokenizer)."""
    return helpers.byte_level_bpe(helpers.EN_TEXT * 3, vocab_size=320)


@pytest.fixture(scope="session")
def target_bpe():
    """A 'Spanish' byte-level BPE sharing the specials."""
    return helpers.byte_level_bpe(helpers.ES_TEXT * 3, vocab_size=330)


@pytest.fixture(scope="session")
def target_unigram():
    return helpers.sentencepiece_unigram(helpers.ES_TEXT * 3, vocab_size=120)


@pytest.fixture(scope="session")
def real_model_path():
    """The built-in SmolLM2-135M-Instruct folder (materialised once into the cache)."""
    from langshift.resources import materialise_smollm2

    return materialise_smollm2()
