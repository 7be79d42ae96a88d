"""Builders for tiny models and tokenizers used across the tests (no network, seconds to build)."""

from __future__ import annotations

from pathlib import Path

EN_TEXT = [
    "The old man gave the book to his daughter.",
    "In the beginning God created the heaven and the earth.",
    "The king of the city spoke to the people in the house.",
    "A small dog runs across the green field every morning.",
    "Water and bread were brought to the table for the children.",
    "The doctor said the patient needs rest and water.",
    "Light came into the world and the darkness did not overcome it.",
    "Her brother wrote a letter about the river and the mountains.",
]
ES_TEXT = [
    "El hombre viejo dio el libro a su hija.",
    "En el principio creó Dios los cielos y la tierra.",
    "El rey de la ciudad habló al pueblo en la casa.",
    "Un perro pequeño corre por el campo verde cada mañana.",
    "Trajeron agua y pan a la mesa para los niños.",
    "El médico dijo que el paciente necesita descanso y agua.",
    "La luz vino al mundo y las tinieblas no la vencieron.",
    "Su hermano escribió una carta sobre el río y las montañas.",
    "¿Dónde está la biblioteca? Está cerca de la estación.",
    "Los años pasan y la canción sigue en el corazón.",
]

SPECIALS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
CHAT_TEMPLATE = (
    "{% for message in messages %}<|im_start|>{{ message['role'] }}\n{{ message['content'] }}<|im_end|>\n"
    "{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)


def byte_level_bpe(texts: list[str], vocab_size: int = 300, specials: list[str] | None = None):
    """A GPT-2-style byte-level BPE ``PreTrainedTokenizerFast`` (Ġ marks a leading space)."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    specials = SPECIALS if specials is None else specials
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=specials,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    tok.train_from_iterator(texts, trainer)
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, bos_token=specials[1] if len(specials) > 1 else None,
                                   eos_token=specials[2] if len(specials) > 2 else None,
                                   unk_token=specials[0], pad_token=specials[0])
    fast.chat_template = CHAT_TEMPLATE
    return fast


def sentencepiece_unigram(texts: list[str], vocab_size: int = 200, byte_fallback: bool = True):
    """A SentencePiece-style unigram tokenizer (▁ marks a word start; <0xNN> byte-fallback pieces)."""
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.Unigram())
    tok.normalizer = normalizers.Replace(" ", "▁")
    tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="first", split=True)
    tok.decoder = decoders.Sequence([decoders.Replace("▁", " "), decoders.ByteFallback(), decoders.Fuse(),
                                     decoders.Strip(" ", 1, 0)])
    specials = ["<unk>", "<s>", "</s>"]
    trainer = trainers.UnigramTrainer(vocab_size=vocab_size, special_tokens=specials, unk_token="<unk>",
                                      show_progress=False)
    tok.train_from_iterator(texts, trainer)
    if byte_fallback:
        # Byte pieces live in the model's vocabulary (as SentencePiece does), not as added tokens, with a very low
        # score so they are used only for characters no other piece covers.
        vocab = _unigram_vocab(tok)
        vocab += [(f"<0x{b:02X}>", -1e6) for b in range(256)]
        tok.model = models.Unigram(vocab, unk_id=0, byte_fallback=True)
    return PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="<unk>", bos_token="<s>", eos_token="</s>")


def _unigram_vocab(tok):
    import json

    return [tuple(x) for x in json.loads(tok.to_str())["model"]["vocab"]]


def wordpiece(texts: list[str], vocab_size: int = 200):
    """A BERT-style WordPiece tokenizer (## marks a continuation)."""
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.WordPiece(unk_token="[UNK]"))
    tok.normalizer = normalizers.NFC()
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tok.decoder = decoders.WordPiece()
    trainer = trainers.WordPieceTrainer(vocab_size=vocab_size, special_tokens=["[UNK]", "[CLS]", "[SEP]", "[PAD]"],
                                        show_progress=False)
    tok.train_from_iterator(texts, trainer)
    return PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="[UNK]", cls_token="[CLS]", sep_token="[SEP]",
                                   pad_token="[PAD]")


def tiny_llama(vocab_size: int, tied: bool = True, hidden: int = 16, layers: int = 2, seed: int = 0,
               pad_rows: int = 0, bos_id: int | None = None, eos_id: int | None = None):
    """A random 2-layer Llama with ``vocab_size + pad_rows`` embedding rows."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(seed)
    config = LlamaConfig(vocab_size=vocab_size + pad_rows, hidden_size=hidden, intermediate_size=2 * hidden,
                         num_hidden_layers=layers, num_attention_heads=2, num_key_value_heads=1,
                         max_position_embeddings=256, tie_word_embeddings=tied, bos_token_id=bos_id,
                         eos_token_id=eos_id, pad_token_id=eos_id)
    model = LlamaForCausalLM(config)
    if not tied:  # make the head clearly different from the input matrix
        with torch.no_grad():
            model.lm_head.weight.normal_(0, 0.5)
    return model.eval()


def save_model_folder(model, tokenizer, folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(folder, safe_serialization=True)
    tokenizer.save_pretrained(folder)
    return folder


def write_lines(path: Path, lines: list[str]) -> Path:
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path
