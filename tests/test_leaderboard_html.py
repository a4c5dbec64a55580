"""The HTML page opens in a real headless browser and draws its tables and plots."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from biobench.leaderboard import build, load_records
from biobench.leaderboard_render import render_board

from test_leaderboard import write_runs

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (apt-get install -y chromium)")
def test_html_page_in_headless_chromium(tmp_path):
    pytest.importorskip("matplotlib", reason="plots need matplotlib (pip install 'biobench[plots]')")
    runs = write_runs(tmp_path / "runs")
    published = Path(__file__).resolve().parents[1] / "results" / "published" / "ModernBERT-base"
    records, problems = load_records([runs, published])
    page = tmp_path / "board.html"
    page.write_text(render_board(build(records, baseline="base/A", problems=problems), "html"), encoding="utf-8")
    shot = tmp_path / "board.png"
    cmd = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
           "--disable-component-update", "--disable-sync", "--no-first-run", "--hide-scrollbars",
           f"--user-data-dir={tmp_path / 'profile'}", f"--screenshot={shot}", "--window-size=1400,2200",
           page.as_uri()]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert shot.is_file()
    from matplotlib.image import imread

    pixels = imread(str(shot))
    assert pixels.shape[:2] == (2200, 1400)
    # not a blank page: the tables and the two figures put plenty of non-white pixels on it
    non_white = (pixels[..., :3].min(axis=2) < 0.9).mean()
    assert non_white > 0.02, f"screenshot looks blank ({non_white:.3%} non-white)"
