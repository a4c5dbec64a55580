"""`biobench run`: planning and shards, claims, failures, resume, the CPU worker pool, concurrent sweeps
on one folder, and a sweep SIGKILLed twice and restarted.

Models are tiny random-init BERTs (2 layers, hidden 32) with the real MiniLM tokenizer; tasks are real
cards on the real corpus samples in tests/fixtures/data (biosses, ncbi_disease) cut down by a protocol file, so a
cell takes about a second.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from conftest import save_tiny_bert
import biobench.finetune as ft
from biobench import sweep
from biobench.cli import main
from biobench.leaderboard import load_records
from biobench.records import find_records, read_record, record_path

TASKS = ["biosses", "ncbi_disease"]
ENV = dict(os.environ, HF_HUB_OFFLINE="1", HF_DATASETS_OFFLINE="1", TRANSFORMERS_OFFLINE="1",
           OMP_NUM_THREADS="1", TOKENIZERS_PARALLELISM="false")


@pytest.fixture(autouse=True)
def _one_thread():
    """The shared 2-core machine: one torch thread per process avoids oversubscription."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory, minilm_path):
    return save_tiny_bert(tmp_path_factory.mktemp("sweep") / "tiny-bert", minilm_path)


@pytest.fixture(scope="module")
def broken(tiny, tmp_path_factory):
    """Passes the up-front model check (a *.safetensors file) but cannot load: every cell fails in training."""
    folder = tmp_path_factory.mktemp("sweep") / "broken-bert"
    shutil.copytree(tiny, folder)
    (folder / "model.safetensors").write_bytes(b"not a safetensors file")
    return str(folder)


@pytest.fixture(scope="module")
def proto(tmp_path_factory) -> str:
    path = tmp_path_factory.mktemp("sweep") / "tiny.yaml"
    path.write_text("name: tiny\nepochs: 1\nbatch_size: 16\nlr: 0.001\nwarmup_ratio: 0.0\nmax_length: 32\n"
                    "max_train_examples: 48\nmax_eval_examples: 32\n")
    return str(path)


def base_args(models, out, proto, fixture_data, seeds=2, tasks=TASKS):
    args = ["run", "--tasks", ",".join(tasks), "--seeds", str(seeds), "--out", str(out), "--protocol", proto,
            "--data-dir", str(fixture_data), "--device", "cpu"]
    for m in models:
        args += ["--model", m]
    return args


def records_of(out) -> dict[str, dict]:
    return {str(p): json.loads(p.read_text()) for p in find_records(out)}


def cli_json(argv, capsys) -> tuple[int, dict]:
    code = main(argv + ["--json"])
    return code, json.loads(capsys.readouterr().out)


# ---------------------------------------------------------------------------------------------- planning


def test_grid_is_sorted_deduplicated_and_shards_cover_it_exactly_once():
    a = sweep.plan_grid(["m2", "m1", "m1"], ["t2", "t1"], [2, 0, 1])
    b = sweep.plan_grid(["m1", "m2"], ["t1", "t2", "t1"], [0, 1, 2])
    assert a == b and len(a) == 12 and a == sorted(a)
    for n in range(1, 6):
        parts = [sweep.shard_cells(a, i, n) for i in range(n)]
        flat = [c for p in parts for c in p]
        assert sorted(flat) == a and len(flat) == len(set(flat))  # disjoint, complete
    assert sweep.parse_seeds(3) == [0, 1, 2] and sweep.parse_seeds(seed_list="3, 1,3") == [1, 3]
    assert sweep.parse_shard("1/4") == (1, 4) and sweep.parse_shard(None) == (0, 1)
    for bad in ("4/4", "1/0", "x", "-1/2"):
        with pytest.raises(ValueError, match="shard"):
            sweep.parse_shard(bad)
    with pytest.raises(ValueError):
        sweep.parse_seeds(0)


def test_worker_devices_one_per_visible_gpu_times_runs_per_gpu(monkeypatch):
    assert sweep.worker_devices("cpu") == ["cpu"] and sweep.worker_devices("cpu", cpu_workers=2) == ["cpu", "cpu"]
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "3,5")
    assert sweep.worker_devices(None, runs_per_gpu=2) == ["cuda:3", "cuda:3", "cuda:5", "cuda:5"]
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES")
    assert sweep.worker_devices("cuda") == ["cuda:0", "cuda:1"]
    with pytest.raises(ValueError):
        sweep.worker_devices("cuda", runs_per_gpu=0)


def test_claims_are_exclusive_and_stale_ones_are_taken_over(tmp_path):
    rec = tmp_path / "m" / "t" / "seed-0.json"
    first, second = sweep.Claim(rec, tmp_path), sweep.Claim(rec, tmp_path)
    assert first.acquire() and not second.acquire()  # live holder (this very process)
    assert str(os.getpid()) in second.holder()
    first.release()
    assert not sweep.claim_path(rec).exists() and second.acquire()
    second.release()

    # A holder on this host whose pid is dead (a SIGKILLed sweep): taken over at once.
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    sweep.claim_path(rec).write_text(json.dumps({"host": socket.gethostname(), "pid": dead.pid, "token": "x"}))
    (rec.parent / ".seed-0.json.abc.tmp").write_text("{trunc")  # a write killed halfway
    taker = sweep.Claim(rec, tmp_path)
    assert taker.acquire()
    assert json.loads(sweep.claim_path(rec).read_text())["token"] == taker.info["token"]
    assert not list(rec.parent.glob(".seed-0.json.*.tmp"))  # the partial write is cleaned up
    taker.release()

    # Another host: live while its heartbeat is fresh, stale when not touched for stale_after seconds.
    sweep.claim_path(rec).write_text(json.dumps({"host": "elsewhere", "pid": 1, "token": "y"}))
    assert not sweep.Claim(rec, tmp_path, stale_after=60).acquire()
    old = time.time() - 120
    os.utime(sweep.claim_path(rec), (old, old))
    late = sweep.Claim(rec, tmp_path, stale_after=60)
    assert late.acquire()
    late.release()

    # Releasing never removes a claim that is not ours any more.
    mine = sweep.Claim(rec, tmp_path)
    assert mine.acquire()
    sweep.claim_path(rec).write_text(json.dumps({"host": "h", "pid": 2, "token": "someone-else"}))
    mine.release()
    assert sweep.claim_path(rec).exists()


def test_heartbeat_keeps_a_claim_fresh(tmp_path):
    rec = tmp_path / "seed-0.json"
    c = sweep.Claim(rec, tmp_path, heartbeat=0.05)
    assert c.acquire()
    old = time.time() - 1000
    os.utime(sweep.claim_path(rec), (old, old))
    time.sleep(0.3)
    assert time.time() - sweep.claim_path(rec).stat().st_mtime < 5
    c.release()


# ---------------------------------------------------------------------------------------------- in process


def test_failed_cell_is_recorded_sweep_goes_on_and_resume_reruns_only_failures(tmp_path, tiny, proto, fixture_data,
                                                                              capsys, monkeypatch):
    out = tmp_path / "runs"
    real = ft.train_and_score

    def flaky(model, card, task_data, seed, protocol, **kw):
        if card.name == "ncbi_disease" and seed == 1:
            raise RuntimeError("boom: simulated training crash")
        return real(model, card, task_data, seed, protocol, **kw)

    monkeypatch.setattr(ft, "train_and_score", flaky)
    code, first = cli_json(base_args([tiny], out, proto, fixture_data), capsys)
    assert code == 1 and first["cells"] == 4 and first["done"] == 3 and first["failed"] == 1
    bad = read_record(record_path(out, tiny, "ncbi_disease", 1))
    assert bad.status == "failed" and "boom" in bad.error
    stamps = {p: (r["created_at"], Path(p).stat().st_mtime_ns) for p, r in records_of(out).items()}

    # --overwrite never: any existing record stands, even a failure; nothing runs.
    code, never = cli_json(base_args([tiny], out, proto, fixture_data) + ["--overwrite", "never"], capsys)
    assert code == 1 and never["skipped"] == 3 and never["failed"] == 1 and never["done"] == 0
    assert read_record(record_path(out, tiny, "ncbi_disease", 1)).status == "failed"

    # Default (= --resume): ok cells skipped and still reported with their scores; the failure re-runs.
    monkeypatch.setattr(ft, "train_and_score", real)
    code, second = cli_json(base_args([tiny], out, proto, fixture_data) + ["--resume"], capsys)
    assert code == 0 and second["skipped"] == 3 and second["done"] == 1 and second["failed"] == 0
    assert all(r["primary"] is not None for r in second["results"])
    for p, stamp in stamps.items():
        if "ncbi_disease/seed-1" not in p:
            assert (read_record(p).created_at, Path(p).stat().st_mtime_ns) == stamp  # not re-run
    assert read_record(record_path(out, tiny, "ncbi_disease", 1)).status == "ok"

    # --no-resume (= --overwrite always): runs again although the record is ok.
    code, again = cli_json(base_args([tiny], out, proto, fixture_data, seeds=1, tasks=["biosses"]) + ["--no-resume"],
                           capsys)
    assert code == 0 and again["done"] == 1
    assert main(base_args([tiny], out, proto, fixture_data) + ["--no-resume", "--overwrite", "never"]) == 2

    # --fast --compile: another protocol, so the ok cell runs again, with its speed options recorded.
    code, fast = cli_json(base_args([tiny], out, proto, fixture_data, seeds=1, tasks=["biosses"]) + ["--fast", "--compile"],
                          capsys)
    assert code == 0 and fast["done"] == 1
    protocol = read_record(record_path(out, tiny, "biosses", 0)).protocol
    assert protocol["length_grouping"] and protocol["cuda_graphs"] and protocol["compile_layers"]


def test_input_errors_stop_before_anything_trains(tmp_path, tiny, proto, fixture_data, capsys):
    out = tmp_path / "runs"
    assert main(base_args([tiny], out, proto, fixture_data, tasks=["ncbi_disease", "nope"])) == 2
    assert main(base_args([str(tmp_path / "missing-model")], out, proto, fixture_data)) == 2
    assert main(base_args([tiny], out, proto, fixture_data) + ["--shard", "2/2"]) == 2
    assert "unknown task 'nope'" in capsys.readouterr().err
    assert not out.exists()


def test_a_task_whose_data_is_missing_is_a_failed_record_not_a_crash(tmp_path, tiny, proto, capsys):
    out = tmp_path / "runs"
    empty = tmp_path / "no-data"
    empty.mkdir()
    code, summary = cli_json(base_args([tiny], out, proto, empty, seeds=1, tasks=["biosses"]), capsys)
    assert code == 1 and summary["failed"] == 1
    rec = read_record(record_path(out, tiny, "biosses", 0))
    assert rec.status == "failed" and rec.notes["stage"].startswith("setup") and rec.error


# ---------------------------------------------------------------------------------------------- processes


def launch(argv, log: Path) -> subprocess.Popen:
    """stdout to LOG.out, stderr to LOG."""
    return subprocess.Popen([sys.executable, "-m", "biobench"] + argv, stdout=open(log.with_suffix(".out"), "w"),
                            stderr=open(log, "w"), env=ENV, start_new_session=True)


def test_cpu_worker_pool_and_overlapping_sweeps_do_not_clash(tmp_path, tiny, broken, proto, fixture_data):
    out = tmp_path / "runs"
    # Two workers on CPU (the GPU path with another device list); a failing model does not stop the sweep.
    done = subprocess.run([sys.executable, "-m", "biobench"] + base_args([tiny, broken], out, proto, fixture_data)
                          + ["--workers", "2", "--json"], capture_output=True, text=True, env=ENV, timeout=240)
    assert done.returncode == 1, done.stderr[-3000:]
    summary = json.loads(done.stdout)
    assert summary["cells"] == 8 and summary["done"] == 4 and summary["failed"] == 4
    assert {r["worker"] for r in summary["results"]} == {"w0", "w1"}
    recs = {(Path(p).parent.parent.name, r["task"], r["seed"]): r for p, r in records_of(out).items()}
    assert len(recs) == 8
    assert all(r["status"] == "failed" for k, r in recs.items() if k[0] == "broken-bert")
    assert all(r["status"] == "ok" and r["device"].startswith("cpu") for k, r in recs.items() if k[0] == "tiny-bert")

    # Overlap: shard 0/2, shard 1/2 and the full sweep, all at once into one fresh folder (3 seeds now).
    out2 = tmp_path / "overlap"
    argv = base_args([tiny], out2, proto, fixture_data, seeds=3) + ["--json"]
    procs = [launch(argv + extra, tmp_path / f"p{k}.log") for k, extra in
             enumerate([["--shard", "0/2"], ["--shard", "1/2"], []])]
    for p in procs:
        assert p.wait(timeout=240) == 0, (tmp_path / "p0.log").read_text()[-2000:]
    summaries = [json.loads((tmp_path / f"p{k}.out").read_text()) for k in range(3)]
    ran = [(r["model"], r["task"], r["seed"]) for s in summaries for r in s["results"] if r["outcome"] == "done"]
    assert len(ran) == len(set(ran)) == 6  # every cell trained exactly once across the three sweeps
    assert summaries[2]["cells"] == 6 and summaries[2]["done"] + summaries[2]["skipped"] == 6  # full one saw all
    assert summaries[0]["cells"] + summaries[1]["cells"] == 6
    assert len(find_records(out2)) == 6 and not list(out2.rglob(".*.claim"))


def _children(pid: int) -> list[int]:
    kids = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        with open(task / "children") as fh:
            kids += [int(x) for x in fh.read().split()]
    return kids


def _wait_for(pred, timeout: float, what: str, proc=None):
    end = time.time() + timeout
    while time.time() < end:
        if pred():
            return
        if proc is not None and proc.poll() is not None:
            raise AssertionError(f"sweep exited ({proc.returncode}) before {what}")
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def test_sigkill_at_any_moment_loses_at_most_the_cells_in_flight(tmp_path, tiny, fixture_data):
    out = tmp_path / "runs"
    # Cells a few seconds long (on a quiet machine the shared `proto` cells end before a kill can land).
    proto = tmp_path / "slow.yaml"
    proto.write_text("name: slow\nepochs: 4\nbatch_size: 16\nlr: 0.001\nwarmup_ratio: 0.0\nmax_length: 32\n"
                     "max_train_examples: 160\nmax_eval_examples: 32\n")
    argv = base_args([tiny], out, str(proto), fixture_data, seeds=3)  # 6 cells

    # Kill 1: right after the first record lands.
    p = launch(argv, tmp_path / "run1.log")
    _wait_for(lambda: len(find_records(out)) >= 1, 120, "a first record", p)
    p.send_signal(signal.SIGKILL)
    p.wait()
    first = {path: (read_record(path).created_at, path.stat().st_mtime_ns) for path in find_records(out)}

    # Kill 2: a random moment in a later cell, with two worker processes (they must die with the sweep).
    p = launch(argv + ["--workers", "2"], tmp_path / "run2.log")
    _wait_for(lambda: len(find_records(out)) > len(first), 120, "one more record", p)
    kids = _children(p.pid)
    time.sleep(random.uniform(0.05, 0.5))
    p.send_signal(signal.SIGKILL)
    p.wait()
    _wait_for(lambda: not any(Path(f"/proc/{k}").exists() and "zombie" not in Path(f"/proc/{k}/status").read_text()
                              .lower() for k in kids), 15, "the workers to die with the sweep")
    for path in find_records(out):  # whatever is visible parses: no truncated record
        assert read_record(path).status == "ok"
    second = {path: (read_record(path).created_at, path.stat().st_mtime_ns) for path in find_records(out)}
    assert len(second) < 6, "the sweep finished before the second kill; the test needs slower cells"
    left = sorted(p.name for p in out.rglob(".*") if p.is_file() and p.name != ".claims.lock")
    print(f"after kill 1: {len(first)} record(s); after kill 2: {len(second)}; left behind: {left}")

    # Restart: completes the grid, takes over the dead sweeps' claims, re-runs nothing that was done.
    done = subprocess.run([sys.executable, "-m", "biobench"] + argv + ["--json"], capture_output=True, text=True,
                          env=ENV, timeout=240)
    assert done.returncode == 0, done.stderr[-3000:]
    summary = json.loads(done.stdout)
    assert summary["skipped"] == len(second) and summary["done"] == 6 - len(second)
    for path, stamp in second.items():
        assert (read_record(path).created_at, path.stat().st_mtime_ns) == stamp
    assert all(first[p] == second[p] for p in first)
    records, problems = load_records([out])
    assert problems == [] and len(records) == 6 and all(r.status == "ok" for r in records)
    cells = {(r.task, r.seed) for r in records}
    assert cells == {(t, s) for t in TASKS for s in range(3)}
    assert not list(out.rglob("*.tmp")) or all(p.name.startswith(".") for p in out.rglob("*.tmp"))
    assert not list(out.rglob(".*.claim"))
