"""The README's five-minute tour runs, command by command, exactly as written (issue 17, item 8).

The fenced block under "## A five-minute tour" is parsed from README.md, so an edit to either the README
or a command's flags that breaks the tour fails here. Substituted, and only these: a tiny random-init BERT
(with MiniLM's tokenizer) for `minilm`, smoke sizes below the `smoke` preset (`--max-steps 2 --max-length
32`; pretraining 2,048 tokens of 64), the repository's corpus samples (tests/fixtures/data) as the data
directory, and `data fetch`, which runs in its own test against a 127.0.0.1 server holding the mirror's
files at their pinned URLs (no internet at test time).
"""

from __future__ import annotations

import hashlib
import os
import re
import shlex
from pathlib import Path

import pytest

from conftest import save_tiny_bert
from biobench.cli import main

REPO = Path(__file__).resolve().parents[1]
TINY = {"--max-steps": "2", "--max-length": "32"}  # fine-tuning: below the smoke preset
TINY_PRETRAIN = {"--tokens": "2048", "--seq-len": "64", "--micro-batch": "2"}


def tour() -> list[str]:
    """The tour's lines (comments stripped), in order."""
    text = (REPO / "README.md").read_text(encoding="utf-8")
    section = text.split("## A five-minute tour", 1)[1]
    block = re.search(r"```bash\n(.*?)```", section, re.S).group(1)
    return [line for line in (" ".join(shlex.split(raw, comments=True)) for raw in block.splitlines()) if line]


def test_the_tour_covers_the_first_hour():
    lines = tour()
    assert all(line.startswith(("biobench ", "export ")) for line in lines), lines
    wanted = ["biobench tasks", "biobench data fetch", "biobench finetune --model minilm", "biobench run --model minilm",
              "biobench leaderboard results/published", "--objective mlm", "--objective detour",
              "biobench run --model ckpt/mlm --model ckpt/detour"]
    for piece in wanted:
        assert any(piece in line for line in lines), piece


def _set(argv: list[str], values: dict[str, str]) -> list[str]:
    """Replace the value of each flag present in argv, append the others."""
    argv = list(argv)
    for flag, value in values.items():
        if flag in argv:
            argv[argv.index(flag) + 1] = value
        else:
            argv += [flag, value]
    return argv


def _shrink(argv: list[str], model: str) -> list[str]:
    argv = [model if a == "minilm" and i and argv[i - 1] in ("--model", "--init") else a for i, a in enumerate(argv)]
    if argv[0] in ("finetune", "run"):
        return _set(argv, TINY) + ["--device", "cpu"]
    if argv[0] == "pretrain":
        return _set(argv, TINY_PRETRAIN)
    return argv


@pytest.fixture
def tiny_bert(tmp_path, minilm_path) -> str:
    return save_tiny_bert(tmp_path / "tiny-bert", minilm_path)


def test_every_tour_command_runs(tmp_path, tiny_bert, fixture_data, monkeypatch, capsys):
    work = tmp_path / "clone"
    work.mkdir()
    (work / "results").symlink_to(REPO / "results")  # `results/published` as in a clone
    monkeypatch.chdir(work)
    ran = []
    for line in tour():
        argv = shlex.split(line)
        if argv[0] == "export":  # the data directory: the repository's samples instead of a fetched copy
            name, _ = argv[1].split("=", 1)
            monkeypatch.setenv(name, str(fixture_data))
            continue
        if argv[1:3] == ["data", "fetch"]:
            continue  # test_the_tour_fetch_step
        code = main(_shrink(argv[1:], tiny_bert))
        out = capsys.readouterr()
        assert code == 0, f"{line}\n{out.out[-2000:]}\n{out.err[-2000:]}"
        ran.append((argv[1], out.out))
    assert [cmd for cmd, _ in ran] == ["tasks", "data", "finetune", "run", "leaderboard", "corpus", "pretrain",
                                      "pretrain", "run", "leaderboard"]
    # What the tour says it leaves behind.
    assert len(list((work / "runs").rglob("seed-*.json"))) == 2 * 2 * 3  # 3 models x 2 tasks x 2 seeds (seed 1 shared)
    assert (work / "corpus" / "corpus.txt").stat().st_size > 0
    for arm in ("mlm", "detour"):
        assert list((work / "ckpt" / arm).glob("*.safetensors"))
    board = ran[-1][1]
    assert "ckpt/detour" in board or "detour" in board


def test_the_tour_fetch_step(tmp_path, shared_data, monkeypatch, capsys):
    """`export BIOBENCH_DATA_DIR=$PWD/biobench-data` then `biobench data fetch ...`, verbatim, from a local
    server holding the mirror's files at their pinned URLs."""
    from biobench.cards import get_card
    from test_data_fetch import Server

    server = Server(tmp_path / "www")
    monkeypatch.setenv("BIOBENCH_FETCH_MIRROR", server.url)
    work = tmp_path / "clone"
    work.mkdir()
    monkeypatch.chdir(work)
    lines = tour()
    export = next(line for line in lines if line.startswith("export BIOBENCH_DATA_DIR="))
    fetch = shlex.split(next(line for line in lines if line.startswith("biobench data fetch")))
    name, value = export.split(" ", 1)[1].split("=", 1)
    monkeypatch.setenv(name, value.replace("$PWD", str(work)))
    cards = [get_card(t) for t in fetch[3:]]
    for card in cards:
        for rel in card.data.fetch.files:
            server.put(f"{card.data.fetch.base}/{rel}", shared_data / card.data.local.dir / rel)
    try:
        assert main(fetch[1:]) == 0, capsys.readouterr().err
    finally:
        server.httpd.shutdown()
        server.httpd.server_close()
    for card in cards:
        for rel, sha in card.data.fetch.files.items():
            got = work / "biobench-data" / card.data.local.dir / rel
            assert hashlib.sha256(got.read_bytes()).hexdigest() == sha, got
    assert os.environ[name] in capsys.readouterr().out
