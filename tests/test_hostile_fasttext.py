"""Hostile static-embedding inputs: malformed fastText .bin headers, pickles that would run code, bad
.vec files, wrong encodings, empty files and folders — through `static continue --init` and
`transfer --aux-fasttext`. Each must exit 2 with a one-line error naming the parameter, in well under a
second and without a large allocation, run no pickled code, and write nothing at --out."""

from __future__ import annotations

import pathlib
import pickle
import struct
import tracemalloc

import numpy as np
import pytest

import helpers
from langshift.cli import main
from langshift.errors import ConfigError
from langshift.static import load_static

MAGIC = 793712314
BASE_WORDS = ("a", "bc", "déf")
INT32_MAX = 2**31 - 1


def fb_bin(path: pathlib.Path, words=BASE_WORDS, cut: int | None = None, extra: bytes = b"",
           entries: bytes | None = None, **over) -> pathlib.Path:
    """A small, valid Facebook fastText .bin (dim 4, 8 buckets, char 3..6-grams) with any header field
    replaced by ``over``; ``cut`` truncates the file to that many bytes, ``extra`` appends bytes."""
    f = dict(magic=MAGIC, version=12, dim=4, ws=5, epoch=1, min_count=1, neg=5, word_ngrams=1, loss=2, model=1,
             bucket=8, minn=3, maxn=6, lr_update_rate=100, t=1e-4, nlabels=0, ntokens=10, prune=-1, quant_in=0,
             quant_out=0)
    f.update(size=len(words), nwords=len(words), rows=len(words) + 8, cols=4, out_rows=len(words), out_cols=4)
    f.update(over)
    rng = np.random.default_rng(0)
    data = struct.pack("@2i", f["magic"], f["version"])
    data += struct.pack("@12i", *(f[k] for k in ("dim", "ws", "epoch", "min_count", "neg", "word_ngrams", "loss",
                                                 "model", "bucket", "minn", "maxn", "lr_update_rate")))
    data += struct.pack("@d", f["t"])
    data += struct.pack("@3i", f["size"], f["nwords"], f["nlabels"]) + struct.pack("@2q", f["ntokens"], f["prune"])
    if entries is None:
        entries = b"".join(w.encode() + b"\0" + struct.pack("@qb", 3, 0) for w in words)
    data += entries
    data += struct.pack("@B", f["quant_in"]) + struct.pack("@2q", f["rows"], f["cols"])
    data += rng.standard_normal((len(words) + 8) * 4).astype(np.float32).tobytes()
    data += struct.pack("@B", f["quant_out"]) + struct.pack("@2q", f["out_rows"], f["out_cols"])
    data += rng.standard_normal(len(words) * 4).astype(np.float32).tobytes()
    data = (data[:cut] if cut is not None else data) + extra
    path.write_bytes(data)
    return path


class Payload:
    """Unpickling this creates ``marker``: proof that a file was unpickled."""

    def __init__(self, marker: pathlib.Path):
        self.marker = marker

    def __reduce__(self):
        return pathlib.Path.touch, (self.marker,)


def pickle_file(path: pathlib.Path, marker: pathlib.Path) -> pathlib.Path:
    path.write_bytes(pickle.dumps(Payload(marker), protocol=4))  # protocol 4, as gensim saves
    return path


def _header_size() -> int:
    return struct.calcsize("@2i12id3i") + struct.calcsize("@2q")


# (name, builder(tmp) -> path, words expected in the error message). Every builder writes under tmp.
BIN_CASES = {
    "maxn_2^31-1": (lambda d: fb_bin(d / "m.bin", maxn=INT32_MAX), "maxn"),
    "minn_gt_maxn": (lambda d: fb_bin(d / "m.bin", minn=6, maxn=3), "minn"),
    "minn_huge": (lambda d: fb_bin(d / "m.bin", minn=1000, maxn=1000), "minn"),
    "giant_bucket": (lambda d: fb_bin(d / "m.bin", bucket=INT32_MAX, rows=3 + INT32_MAX), "needs"),
    "bucket_negative": (lambda d: fb_bin(d / "m.bin", bucket=-8), "bucket"),
    "dim_negative": (lambda d: fb_bin(d / "m.bin", dim=-4), "dim"),
    "dim_zero": (lambda d: fb_bin(d / "m.bin", dim=0), "dim"),
    "dim_huge": (lambda d: fb_bin(d / "m.bin", dim=INT32_MAX, cols=INT32_MAX), "dim"),
    "ws_negative": (lambda d: fb_bin(d / "m.bin", ws=-5), "ws"),
    "epoch_negative": (lambda d: fb_bin(d / "m.bin", epoch=-1), "epoch"),
    "min_count_negative": (lambda d: fb_bin(d / "m.bin", min_count=-1), "min_count"),
    "neg_huge": (lambda d: fb_bin(d / "m.bin", neg=INT32_MAX), "neg"),
    "word_ngrams_huge": (lambda d: fb_bin(d / "m.bin", word_ngrams=INT32_MAX), "word_ngrams"),
    "loss_unknown": (lambda d: fb_bin(d / "m.bin", loss=9), "loss"),
    "model_unknown": (lambda d: fb_bin(d / "m.bin", model=0), "model"),
    "lr_update_rate_negative": (lambda d: fb_bin(d / "m.bin", lr_update_rate=-1), "lr_update_rate"),
    "t_nan": (lambda d: fb_bin(d / "m.bin", t=float("nan")), "sampling threshold"),
    "t_above_one": (lambda d: fb_bin(d / "m.bin", t=7.0), "sampling threshold"),
    "2^31-1_words": (lambda d: fb_bin(d / "m.bin", size=INT32_MAX, nwords=INT32_MAX), "claims 2147483647 entries"),
    "nwords_negative": (lambda d: fb_bin(d / "m.bin", nwords=-3, nlabels=6), "inconsistent"),
    "size_not_words_plus_labels": (lambda d: fb_bin(d / "m.bin", size=5), "inconsistent"),
    "ntokens_negative": (lambda d: fb_bin(d / "m.bin", ntokens=-1), "inconsistent"),
    "pruned": (lambda d: fb_bin(d / "m.bin", prune=5), "pruned"),
    "pruneidx_negative": (lambda d: fb_bin(d / "m.bin", prune=-7), "pruneidx"),
    "wrong_magic": (lambda d: fb_bin(d / "m.bin", magic=12345), "magic"),
    "wrong_version": (lambda d: fb_bin(d / "m.bin", version=99), "version"),
    "quantised_input": (lambda d: fb_bin(d / "m.bin", quant_in=1), "quantised"),
    "quantised_flag_garbage": (lambda d: fb_bin(d / "m.bin", quant_in=7), "quantised"),
    "quantised_output": (lambda d: fb_bin(d / "m.bin", quant_out=1), "quantised"),
    "matrix_rows_mismatch": (lambda d: fb_bin(d / "m.bin", rows=12), "input matrix"),
    "matrix_cols_2^40": (lambda d: fb_bin(d / "m.bin", cols=2**40), "input matrix"),
    "matrix_rows_negative": (lambda d: fb_bin(d / "m.bin", rows=-11), "input matrix"),
    "output_matrix_mismatch": (lambda d: fb_bin(d / "m.bin", out_rows=2**40), "output matrix"),
    "truncated_matrix": (lambda d: fb_bin(d / "m.bin", cut=_header_size() + 37 + 17 + 40), "truncated"),
    "truncated_output": (lambda d: fb_bin(d / "m.bin", cut=-5), "truncated"),
    "truncated_dictionary": (lambda d: fb_bin(d / "m.bin", cut=_header_size() + 7), "truncated"),
    "truncated_header": (lambda d: fb_bin(d / "m.bin", cut=20), "too short"),
    "trailing_data": (lambda d: fb_bin(d / "m.bin", extra=b"\0" * 12), "trailing data"),
    "entry_type_garbage": (lambda d: fb_bin(d / "m.bin", entries=b"a\0" + struct.pack("@qb", 3, 5)
                                            + b"bc\0" + struct.pack("@qb", 3, 0) + "déf".encode() + b"\0"
                                            + struct.pack("@qb", 3, 0)), "malformed"),
    "entry_count_negative": (lambda d: fb_bin(d / "m.bin", entries=b"a\0" + struct.pack("@qb", -3, 0)
                                              + b"bc\0" + struct.pack("@qb", 3, 0) + "déf".encode() + b"\0"
                                              + struct.pack("@qb", 3, 0)), "malformed"),
    "duplicate_word": (lambda d: fb_bin(d / "m.bin", words=("a", "a", "b")), "twice"),
    "word_without_end": (lambda d: fb_bin(d / "m.bin", entries=b"x" * 200_000), "longer than"),
}

VEC_CASES = {
    "vec_header_not_numbers": (lambda d: _w(d / "v.vec", b"hello world\nking 0.1 0.2\n"), "first line"),
    "vec_header_giant": (lambda d: _w(d / "v.vec", b"2000000000 300\nking " + b"0.1 " * 300 + b"\n"), "ends after"),
    "vec_header_dim_huge": (lambda d: _w(d / "v.vec", b"1 2000000000\nking 0.1\n"), "out of range"),
    "vec_header_negative": (lambda d: _w(d / "v.vec", b"-1 4\n"), "out of range"),
    "vec_wrong_width": (lambda d: _w(d / "v.vec", b"2 3\nking 0.1 0.2 0.3\nqueen 0.1 0.2\n"), "line 3 has 2"),
    "vec_not_a_number": (lambda d: _w(d / "v.vec", b"1 2\nking 0.1 zebra\n"), "not a number"),
    "vec_nan": (lambda d: _w(d / "v.vec", b"1 2\nking 0.1 nan\n"), "inf or nan"),
    "vec_truncated": (lambda d: _w(d / "v.vec", b"3 2\nking 0.1 0.2\n"), "ends after 1 of the 3"),
    "vec_extra_lines": (lambda d: _w(d / "v.vec", b"1 2\nking 0.1 0.2\nqueen 0.3 0.4\n"), "more lines"),
    "vec_duplicate_word": (lambda d: _w(d / "v.vec", b"2 2\nking 0.1 0.2\nking 0.3 0.4\n"), "twice"),
    "vec_latin1": (lambda d: _w(d / "v.vec", "2 2\nrey 0.1 0.2\nañ 0.3 0.4\n".encode("latin-1")), "not UTF-8"),
    "vec_utf16": (lambda d: _w(d / "v.vec", "1 2\nrey 0.1 0.2\n".encode("utf-16")), "first line"),
    "vec_binary": (lambda d: _w(d / "v.vec", bytes(range(256)) * 40), "first line"),
    "vec_endless_line": (lambda d: _w(d / "v.vec", b"1 2\nking " + b"1" * 100_000), "longer than"),
    "empty_vec": (lambda d: _w(d / "v.vec", b""), "empty"),
    "empty_bin": (lambda d: _w(d / "m.bin", b""), "empty"),
    "text_named_bin": (lambda d: _w(d / "m.bin", b"1 2\nking 0.1 0.2\n" * 20), "magic"),
    "utf16_named_bin": (lambda d: _w(d / "m.bin", ("1 2\nking 0.1 0.2\n" * 20).encode("utf-16")), "magic"),
    "latin1_text_no_suffix": (lambda d: _w(d / "model", "añ añ\n".encode("latin-1") * 10), "first line"),
}

FOLDER_CASES = {
    "directory_named_bin": (lambda d: _mkdir(d / "m.bin"), "no model.bin"),
    "empty_directory": (lambda d: _mkdir(d / "space"), "no model.bin"),
    "model_bin_is_a_directory": (lambda d: _mkdir(_mkdir(d / "space") / "model.bin"), "no model.bin"),
    "static_json_garbage": (lambda d: _folder(d, {"static.json": b"{not json", "model.bin": None}), "static.json"),
    "static_json_latin1": (lambda d: _folder(d, {"static.json": '{"a": "ñ"}'.encode("latin-1")}), "static.json"),
    "static_json_a_list": (lambda d: _folder(d, {"static.json": b"[1, 2]"}), "JSON object"),
    "folder_with_hostile_bin": (lambda d: _folder(d, {"model.bin": "maxn"}), "maxn"),
    "safetensors_garbage": (lambda d: _folder(d, {"vectors.safetensors": b"\xff" * 64, "words.json": b"[]"}),
                            "cannot be read"),
    "safetensors_header_lies": (lambda d: _folder(d, {"vectors.safetensors": struct.pack("<Q", 2**60) + b"{}",
                                                      "words.json": b"[]"}), "cannot be read"),
    "words_json_mismatch": (lambda d: _folder(d, {"vectors.safetensors": "ok", "words.json": b'["a"]'}),
                            "one row per word"),
}


def _w(path: pathlib.Path, data: bytes) -> pathlib.Path:
    path.write_bytes(data)
    return path


def _mkdir(path: pathlib.Path) -> pathlib.Path:
    path.mkdir()
    return path


def _folder(d: pathlib.Path, files: dict) -> pathlib.Path:
    from safetensors.numpy import save_file

    folder = _mkdir(d / "space")
    for name, data in files.items():
        if data == "maxn":
            fb_bin(folder / name, maxn=INT32_MAX)
        elif data == "ok":
            save_file({"vectors_vocab": np.zeros((3, 4), np.float32)}, str(folder / name))
        elif data is None:
            fb_bin(folder / name)
        else:
            (folder / name).write_bytes(data)
    return folder


PICKLE_CASES = {  # each returns what is given as --model / --aux-fasttext
    "pickle_file": lambda d, m: pickle_file(d / "model.gensim", m),
    "pickle_named_vec": lambda d, m: pickle_file(d / "model.vec", m),
    "pickle_named_bin": lambda d, m: pickle_file(d / "model.bin", m),
    "pickle_in_folder_model": lambda d, m: pickle_file(_mkdir(d / "space") / "model.gensim", m).parent,
    "pickle_in_folder_vectors": lambda d, m: pickle_file(_mkdir(d / "space") / "vectors.kv", m).parent,
}

ALL_CASES = {**BIN_CASES, **VEC_CASES, **FOLDER_CASES}


@pytest.fixture(scope="module")
def transfer_inputs(tmp_path_factory, source_bpe, target_bpe):
    root = tmp_path_factory.mktemp("hostile_transfer")
    model = helpers.tiny_llama(len(source_bpe), bos_id=source_bpe.bos_token_id, eos_id=source_bpe.eos_token_id)
    model_dir = helpers.save_model_folder(model, source_bpe, root / "src")
    target_bpe.save_pretrained(root / "tgt")
    return {"model": str(model_dir), "tokenizer": str(root / "tgt"), "es": str(helpers.write_lines(
        root / "es.txt", helpers.ES_TEXT * 2))}


def _run(argv: list[str], capsys) -> tuple[int, str]:
    capsys.readouterr()
    code = main(argv)
    return code, capsys.readouterr().err


def _static_continue(x: pathlib.Path, out: pathlib.Path, inputs, *extra) -> list[str]:
    return ["static", "continue", "--init", str(x), "--codeswitched", inputs["es"], "--out", str(out), "--min-count", "1",
            "--workers", "1", *extra]


def _transfer(x: pathlib.Path, out: pathlib.Path, inputs, *extra) -> list[str]:
    return ["transfer", "--model", inputs["model"], "--tokenizer", inputs["tokenizer"], "--method", "focus",
            "--aux-fasttext", str(x), "--out", str(out), *extra]


COMMANDS = {"static continue": (_static_continue, "--init"), "transfer": (_transfer, "--aux-fasttext")}


def test_crafted_bin_writer_makes_a_valid_model(tmp_path):
    """Positive control: without overrides the crafted file is a model both readers accept, so each
    hostile case below fails for its one changed field."""
    path = fb_bin(tmp_path / "m.bin")
    mapped, full = load_static(path), load_static(path, trainable=True)
    assert mapped.wv.index_to_key == list(BASE_WORDS) == full.wv.index_to_key
    np.testing.assert_allclose(mapped.vectors(["déf", "abcd"]), full.vectors(["déf", "abcd"]), atol=1e-6)


def test_pickle_payload_is_live(tmp_path):
    """Positive control: the payload does run when unpickled, so 'marker absent' below means something."""
    marker = tmp_path / "MARKER"
    pickle.loads(pickle_file(tmp_path / "p", marker).read_bytes())
    assert marker.exists()


@pytest.mark.parametrize("case", sorted(ALL_CASES))
def test_hostile_file_fails_fast_and_small(case, tmp_path):
    """The loader itself: a ConfigError naming the parameter, without allocating by what the header
    claims (tracemalloc sees numpy's allocations; no wall-clock bound, which depends on the machine's load)."""
    build, expect = ALL_CASES[case]
    path = build(tmp_path)
    for trainable in (False, True):
        tracemalloc.start()
        with pytest.raises(ConfigError) as info:
            load_static(path, param="--aux-fasttext", trainable=trainable)
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        assert info.value.param == "--aux-fasttext" and expect in str(info.value), str(info.value)
        assert peak < 32 * 2**20, peak


@pytest.mark.parametrize("command", sorted(COMMANDS))
@pytest.mark.parametrize("case", sorted(ALL_CASES))
def test_hostile_file_through_the_cli(case, command, tmp_path, capsys, transfer_inputs):
    build, expect = ALL_CASES[case]
    argv_of, param = COMMANDS[command]
    out = tmp_path / "out"
    code, err = _run(argv_of(build(tmp_path), out, transfer_inputs), capsys)
    assert code == 2, err
    assert "Traceback" not in err and param in err and expect in err, err
    assert not out.exists()


@pytest.mark.parametrize("command", sorted(COMMANDS))
@pytest.mark.parametrize("case", sorted(PICKLE_CASES))
def test_pickle_is_never_run_without_allow_pickle(case, command, tmp_path, capsys, transfer_inputs):
    marker = tmp_path / "MARKER"
    path = PICKLE_CASES[case](tmp_path, marker)
    argv_of, param = COMMANDS[command]
    out = tmp_path / "out"
    code, err = _run(argv_of(path, out, transfer_inputs), capsys)
    assert code == 2 and "Traceback" not in err and param in err and "--allow-pickle" in err, err
    assert not marker.exists(), "the pickle ran"
    assert not out.exists()


def _legacy_folder(tmp_path: pathlib.Path) -> pathlib.Path:
    from langshift.static import StaticConfig, tokenise_lines, train_static

    space = train_static(tokenise_lines(helpers.ES_TEXT * 5), StaticConfig(dim=16, bucket=2000, min_count=1,
                                                                             epochs=2, workers=1))
    folder = _mkdir(tmp_path / "legacy")
    space.model.save(str(folder / "model.gensim"))  # gensim's pickle, as langshift saved before
    return folder


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_allow_pickle_loads_a_legitimate_gensim_model_with_a_warning(command, tmp_path, capsys, caplog,
                                                                     transfer_inputs):
    legacy = _legacy_folder(tmp_path)
    argv_of, param = COMMANDS[command]
    code, err = _run(argv_of(legacy, tmp_path / "refused", transfer_inputs), capsys)
    assert code == 2 and "--allow-pickle" in err and not (tmp_path / "refused").exists()
    code, err = _run(argv_of(legacy, tmp_path / "out", transfer_inputs, "--allow-pickle"), capsys)
    assert code == 0, err
    assert "arbitrary code" in caplog.text and "--allow-pickle" in caplog.text
    assert (tmp_path / "out" / "config.json" if command == "transfer" else tmp_path / "out" / "model.bin").is_file()


def test_static_convert_rewrites_a_pickle_once(tmp_path, capsys):
    legacy = _legacy_folder(tmp_path)
    code, err = _run(["static", "convert", "--init", str(legacy), "--out", str(tmp_path / "safe")], capsys)
    assert code == 2 and "--allow-pickle" in err and not (tmp_path / "safe").exists()
    assert main(["static", "convert", "--init", str(legacy), "--out", str(tmp_path / "safe"),
                 "--allow-pickle"]) == 0
    old, new = load_static(legacy, allow_pickle=True), load_static(tmp_path / "safe", trainable=True)
    np.testing.assert_array_equal(new.wv.vectors_vocab, old.wv.vectors_vocab)
    np.testing.assert_array_equal(new.model.syn1neg, old.model.syn1neg)
