"""RunRecord: atomic writes, round trip, the resume identity rule."""

import json
import os
import re

import pytest

from biobench.records import (
    RecordError,
    RunRecord,
    existing_ok,
    find_records,
    model_slug,
    read_record,
    record_path,
    write_record,
)


def _record(**kw) -> RunRecord:
    base = dict(model="org/model", model_sha="abc", task="ncbi_disease", language="en", kind="token_ner", seed=1,
                protocol={"name": "paper", "lr": 5e-5}, metric="seqeval_f1", primary=80.0, card_version=1,
                card_hash="h", data_sha256="d")
    base.update(kw)
    return RunRecord(**base)


def test_path_layout_and_slug(tmp_path):
    assert model_slug("almanach/ModernBERT-bio-base") == "almanach__ModernBERT-bio-base"
    p = record_path(tmp_path, "almanach/ModernBERT-bio-base", "gad", 3)
    assert p == tmp_path / "almanach__ModernBERT-bio-base" / "gad" / "seed-3.json"
    local = tmp_path / "my-ckpt"
    local.mkdir()
    slug = model_slug(str(local) + "/")
    assert re.fullmatch(r"my-ckpt-[0-9a-f]{8}", slug) and model_slug(str(local)) == slug


def test_local_folders_of_the_same_name_get_their_own_record_paths(tmp_path):
    a, b = tmp_path / "run-a" / "final", tmp_path / "run-b" / "final"
    a.mkdir(parents=True)
    b.mkdir(parents=True)
    assert record_path(tmp_path, str(a), "gad", 1) != record_path(tmp_path, str(b), "gad", 1)


def test_round_trip_and_no_temp_files_left(tmp_path):
    rec = _record()
    path = write_record(rec, record_path(tmp_path, rec.model, rec.task, rec.seed))
    assert read_record(path) == rec
    assert [p.name for p in path.parent.iterdir()] == ["seed-1.json"]


def test_failed_write_keeps_the_old_record(tmp_path, monkeypatch):
    rec = _record()
    path = write_record(rec, tmp_path / "seed-1.json")
    before = path.read_bytes()

    def boom(*a, **k):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", boom)
    with pytest.raises(OSError):
        write_record(_record(primary=1.0), path)
    assert path.read_bytes() == before
    assert list(tmp_path.iterdir()) == [path]  # the temporary file was removed


def test_corrupt_record_names_the_file(tmp_path):
    bad = tmp_path / "seed-1.json"
    bad.write_text('{"model": "m", "task": ')
    with pytest.raises(RecordError, match="seed-1.json"):
        read_record(bad)
    bad.write_text(json.dumps({"model": "m"}))
    with pytest.raises(RecordError, match="field 'task' missing"):
        read_record(bad)


def test_resume_identity(tmp_path):
    rec = _record()
    path = write_record(rec, tmp_path / "r" / "seed-1.json")
    assert existing_ok(path, rec.identity()) == rec
    other = _record(protocol={"name": "paper", "lr": 1e-4})
    assert existing_ok(path, other.identity()) is None  # another protocol: run again
    assert existing_ok(path, _record(data_sha256="changed").identity()) is None
    write_record(_record(status="failed", error="boom"), path)
    assert existing_ok(path, rec.identity()) is None  # failed cells are retried
    assert existing_ok(tmp_path / "missing.json", rec.identity()) is None
    (tmp_path / "r" / ".seed-2.json.x.tmp").write_text("{")
    assert find_records(tmp_path) == [path]
