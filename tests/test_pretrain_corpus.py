"""Corpus readers, packing with separators, rank sharding, and one-line refusals of bad corpora."""

from __future__ import annotations

import itertools
import json

import pytest

from biobench.pretrain.config import PretrainError
from biobench.pretrain.corpus import (
    check_readable, corpus_files, micro_batches, packed_sequences, read_documents, token_stream)


@pytest.fixture(scope="module")
def tokenizer(minilm_path):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(minilm_path)


def test_readers_txt_jsonl_json_parquet_and_folders(tmp_path, fixture_data):
    import pyarrow as pa
    import pyarrow.parquet as pq

    (tmp_path / "a.txt").write_text("first doc\n\n  second doc \n")
    (tmp_path / "b.jsonl").write_text(json.dumps({"text": "third"}) + "\n\n" + json.dumps({"text": ""}) + "\n")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "c.json").write_text(json.dumps([{"text": "fourth"}, {"text": "fifth"}]))
    pq.write_table(pa.table({"text": ["sixth", None]}), tmp_path / "sub" / "d.parquet")
    files = corpus_files([str(tmp_path)])
    assert [f.name for f in files] == ["a.txt", "b.jsonl", "c.json", "d.parquet"]
    docs = [d for f in files for d in read_documents(f)]
    assert docs == ["first doc", "second doc", "third", "fourth", "fifth", "sixth"]
    # the real corpus sample: one abstract per line
    pubmed = corpus_files([str(fixture_data / "pretrain/en/pubmed_abstracts_1MB")])
    lines = pubmed[0].read_text(encoding="utf-8").split("\n")
    assert len(pubmed) == 1 and len([x for x in lines if x.strip()]) == 60
    assert [d.strip() for d in read_documents(pubmed[0])] == [x.strip() for x in lines if x.strip()]


def test_readers_on_the_full_pretraining_corpora(shared_data):
    # one abstract per line; E3C layer 3 is one JSON object per file
    pubmed = corpus_files([str(shared_data / "pretrain/en/pubmed_abstracts_1MB")])
    assert sum(1 for f in pubmed for _ in read_documents(f)) == 725
    e3c = corpus_files([str(shared_data / "pretrain/fr/e3c-layer3")])
    assert len(e3c) == 1470 and next(read_documents(e3c[0])).strip()


def test_packing_puts_a_separator_between_documents_and_continues_long_ones(tmp_path, tokenizer):
    (tmp_path / "c.txt").write_text("alpha beta gamma\ndelta\n" + "word " * 40 + "\n")
    stream = token_stream(corpus_files([str(tmp_path / "c.txt")]), tokenizer, seed=0, shuffle_buffer=0)
    seqs = list(itertools.islice(packed_sequences(stream, 16), 6))
    assert all(len(s) == 16 for s in seqs)
    flat = [t for s in seqs for t in s]
    cls, sep = tokenizer.cls_token_id, tokenizer.sep_token_id
    first = tokenizer("alpha beta gamma")["input_ids"]
    assert flat[: len(first)] == first and first[0] == cls and first[-1] == sep
    assert flat[len(first): len(first) + 3] == [cls, tokenizer.convert_tokens_to_ids("delta"), sep]
    assert flat.count(sep) >= 3  # the 40-word document spans sequences; the stream wraps into epoch 2


def test_stream_is_seeded_and_sharded_round_robin(tmp_path, tokenizer):
    (tmp_path / "c.txt").write_text("\n".join(f"document number {i} about cells" for i in range(50)))
    files = corpus_files([str(tmp_path / "c.txt")])

    def batches(seed, rank=0, world=1, start=0):
        seqs = packed_sequences(token_stream(files, tokenizer, seed=seed, shuffle_buffer=8), 12)
        return list(itertools.islice(micro_batches(seqs, 2, start=start, rank=rank, world=world), 6 // world))

    one = batches(0)
    assert [i for i, _ in one] == list(range(6))
    assert all(a.equal(b) for (_, a), (_, b) in zip(one, batches(0))), "same seed, same stream"
    assert not all(a.equal(b) for (_, a), (_, b) in zip(one, batches(1))), "the seed shuffles documents"
    r0, r1 = batches(0, 0, 2), batches(0, 1, 2)
    merged = sorted(r0 + r1, key=lambda x: x[0])
    assert [i for i, _ in merged] == list(range(6)) and all(a.equal(b) for (_, a), (_, b) in zip(one, merged))
    assert batches(0, start=2)[0][1].equal(one[2][1]), "resume skips to the data position"


def test_bad_corpora_are_refused_in_one_line(tmp_path):
    (tmp_path / "empty.txt").write_text("")
    (tmp_path / "blank.txt").write_text("\n  \n")
    (tmp_path / "x.csv").write_text("a,b\n")
    (tmp_path / "nofield.jsonl").write_text(json.dumps({"body": "x"}) + "\n")
    (tmp_path / "pack").mkdir()
    (tmp_path / "pack" / "pretokenized.json").write_text("{}")
    cases = {
        str(tmp_path / "pack"): "pre-tokenized corpus is read alone",
        str(tmp_path / "missing.txt"): "no such file",
        str(tmp_path / "empty.txt"): "file is empty",
        str(tmp_path / "x.csv"): "unsupported format",
    }
    for path, message in cases.items():
        with pytest.raises(PretrainError, match=message) as info:
            corpus_files([path])
        assert str(info.value).startswith(f"--corpus {path}") and "\n" not in str(info.value)
    for name in ("blank.txt", "nofield.jsonl"):
        with pytest.raises(PretrainError, match="no documents"):
            check_readable(corpus_files([str(tmp_path / name)]), "text")
    assert corpus_files(["someorg/some-corpus"]) == ["someorg/some-corpus"], "a hub dataset id"
