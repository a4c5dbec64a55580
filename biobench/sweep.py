"""The sweep: models x tasks x seeds, one `run_cell` per cell, resumable, parallel, shardable.

Plan. `plan_grid(models, tasks, seeds)` is the full grid sorted by (model, task, seed), duplicates
removed, so the same command plans the same list whatever the order of its flags. `--shard i/n`
(0-based) keeps the cells whose index in that sorted grid satisfies `index % n == i`: shards are
disjoint and together cover the grid exactly, so a SLURM array (`--shard $SLURM_ARRAY_TASK_ID/$N`) or
several nodes can share one output folder.

Resume (`--overwrite`, mteb's strategies; resuming is the default):
- `failed` (default, = `--resume`): a cell whose record is `ok` with the same identity (model weights,
  card version and hash, data hash, protocol: records.py) is skipped and its record still loaded into
  the summary; a missing, failed or stale record is run again.
- `never`: any readable record, ok or failed, stands (failures are not retried; nothing is loaded).
- `always` (= `--no-resume`): every cell runs again.

Claims. Each cell has its own record path, so no global lock is needed; but two processes must not
run the same cell at once (two overlapping sweeps, a restarted shard while the old one still runs).
Before running a cell a worker creates `<task dir>/.seed-<S>.claim` atomically and complete (written
to a private file, then hard-linked to that name: link() fails when the name exists, on local file
systems and NFS alike), holding its host, pid and a random token, and touches it every
`HEARTBEAT_S` seconds while it runs. A claim is stale, and taken over, when its holder is on this host
and its pid is dead (a killed sweep), or when it has not been touched for `stale_after` seconds
(default 600: a crashed node). A take-over happens under an flock on `<out>/.claims.lock` and only
removes the exact stale claim that was judged (same token), so two workers taking over the same
claim cannot both win. A cell claimed by a live worker is left to it; when the rest of the queue is
done the sweep waits for such cells and then loads their records. Claim files and the temporary
files of interrupted writes start with "." and are never read as records; leftovers of a killed
write of a cell are removed by the next worker that claims the cell.

Workers. On CPU one worker runs in this process (the hidden `--workers N` starts N processes on CPU,
which is how the pool is tested). With CUDA, one worker process per visible device times
`runs_per_gpu`, each seeing only its device through CUDA_VISIBLE_DEVICES, all fed by one queue.
Workers die with the parent (PR_SET_PDEATHSIG): a SIGKILLed sweep leaves no orphan training; a worker
that dies on its own (host OOM killer) gets a `failed` record for its cell and is replaced.
Killed at any moment, a sweep loses at most the cells in flight: records are written atomically by
`records.write_record`, and a restart skips what is done.
"""

from __future__ import annotations

import contextlib
import json
import os
import queue
import socket
import threading
import time
import uuid
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

from biobench.records import RecordError, RunRecord, read_record, record_path, write_record

OVERWRITE = ("never", "failed", "always")
HEARTBEAT_S = 30.0
STALE_AFTER_S = 600.0


# ----------------------------------------------------------------------------------------------
# Planning


@dataclass(frozen=True, order=True)
class Cell:
    model: str
    task: str  # card name
    seed: int

    def label(self) -> str:
        from biobench.records import model_slug

        return f"{model_slug(self.model)} · {self.task} · seed {self.seed}"


def parse_seeds(n: int | None = None, seed_list: str | None = None) -> list[int]:
    """`--seeds N` -> 0..N-1; `--seed-list 1,2,3` -> exactly those (sorted, unique)."""
    if (n is None) == (seed_list is None):
        raise ValueError("give either --seeds N (seeds 0..N-1) or --seed-list S1,S2,...")
    if seed_list is not None:
        try:
            seeds = sorted({int(s) for s in seed_list.split(",") if s.strip()})
        except ValueError:
            raise ValueError(f"--seed-list: expected comma-separated integers, got '{seed_list}'") from None
        if not seeds:
            raise ValueError("--seed-list is empty")
        return seeds
    if n < 1:
        raise ValueError(f"--seeds: expected at least 1, got {n}")
    return list(range(n))


def parse_shard(text: str | None) -> tuple[int, int]:
    """`i/n` (0-based i < n) -> (i, n); None -> (0, 1)."""
    if not text:
        return 0, 1
    try:
        i, n = (int(x) for x in text.split("/"))
    except ValueError:
        raise ValueError(f"--shard: expected i/n such as 0/4, got '{text}'") from None
    if n < 1 or not 0 <= i < n:
        raise ValueError(f"--shard {text}: need 0 <= i < n (shards are 0-based: 0/{max(n, 1)} .. {max(n, 1) - 1}/{max(n, 1)})")
    return i, n


def plan_grid(models: Iterable[str], tasks: Iterable[str], seeds: Iterable[int]) -> list[Cell]:
    """Every (model, task, seed), sorted and without duplicates: the same list for every shard."""
    return sorted({Cell(m, t, int(s)) for m in models for t in tasks for s in seeds})


def shard_cells(cells: Sequence[Cell], index: int, count: int) -> list[Cell]:
    return [c for k, c in enumerate(cells) if k % count == index]


# ----------------------------------------------------------------------------------------------
# Claims


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True


def claim_path(record: Path) -> Path:
    return record.with_name(f".{record.stem}.claim")


class Claim:
    """An exclusive, heart-beaten claim on one cell (see the module docstring)."""

    def __init__(self, record: Path, out: Path, stale_after: float = STALE_AFTER_S, heartbeat: float = HEARTBEAT_S):
        self.record, self.path, self.lock = Path(record), claim_path(Path(record)), Path(out) / ".claims.lock"
        self.stale_after, self.heartbeat = stale_after, heartbeat
        self.info = {"host": socket.gethostname(), "pid": os.getpid(), "token": uuid.uuid4().hex,
                     "since": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
        self.held = False
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # -- reading another holder's claim
    def _read(self) -> dict | None:
        try:
            raw = json.loads(self.path.read_text(encoding="utf-8"))
            return raw if isinstance(raw, dict) else None
        except (OSError, ValueError):
            return None  # gone, or being written right now

    def _is_stale(self, holder: dict | None) -> bool:
        try:
            age = time.time() - self.path.stat().st_mtime
        except FileNotFoundError:
            return False  # released meanwhile: simply try again
        if age > self.stale_after:
            return True
        if holder and holder.get("host") == self.info["host"] and isinstance(holder.get("pid"), int):
            return not _pid_alive(holder["pid"])
        return False

    def holder(self) -> str:
        h = self._read() or {}
        return f"{h.get('host', '?')}:{h.get('pid', '?')} since {h.get('since', '?')}"

    def _take_over(self, holder: dict | None) -> None:
        """Remove the stale claim `holder`, serialised with every other take-over of this output folder."""
        import fcntl

        self.lock.parent.mkdir(parents=True, exist_ok=True)
        with open(self.lock, "a+") as fh:
            fcntl.flock(fh, fcntl.LOCK_EX)
            try:
                now = self._read()
                same = (now == holder) if holder is not None else now is None
                if same and self._is_stale(now):
                    with contextlib.suppress(FileNotFoundError):
                        self.path.unlink()
            finally:
                fcntl.flock(fh, fcntl.LOCK_UN)

    # -- taking and giving back
    def acquire(self) -> bool:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # The claim appears complete or not at all: written to a private file, then hard-linked to its name
        # (link() fails if the name exists: atomic, also on NFS, the classic lock-file technique).
        mine = self.path.with_name(f"{self.path.name}.{self.info['token']}")
        mine.write_text(json.dumps(self.info), encoding="utf-8")
        try:
            for _ in range(5):
                try:
                    os.link(mine, self.path)
                except FileExistsError:
                    holder = self._read()
                    if not self._is_stale(holder):
                        return False
                    self._take_over(holder)
                    continue
                break
            else:
                return False
        finally:
            mine.unlink()
        self.held = True
        self._clean_partial_writes()
        self._thread = threading.Thread(target=self._beat, name=f"claim-{self.record.name}", daemon=True)
        self._thread.start()
        return True

    def _clean_partial_writes(self) -> None:
        """Temporary files of a record write that was killed (only this cell's; we hold its claim)."""
        for tmp in self.record.parent.glob(f".{self.record.name}.*.tmp"):
            with contextlib.suppress(OSError):
                tmp.unlink()

    def _beat(self) -> None:
        while not self._stop.wait(self.heartbeat):
            with contextlib.suppress(OSError):
                os.utime(self.path)

    def release(self) -> None:
        if not self.held:
            return
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        if (self._read() or {}).get("token") == self.info["token"]:
            with contextlib.suppress(FileNotFoundError):
                self.path.unlink()
        self.held = False

    def __enter__(self) -> "Claim":
        return self

    def __exit__(self, *exc) -> None:
        self.release()


# ----------------------------------------------------------------------------------------------
# One cell


@dataclass
class SweepOptions:
    out: str
    protocol: str = "paper"
    overrides: dict = field(default_factory=dict)
    data_dir: str | None = None
    overwrite: str = "failed"
    trust_remote_code: bool = False
    task_specs: dict = field(default_factory=dict)  # card name -> what get_card accepts (name or .yaml)
    stale_after: float = STALE_AFTER_S


@dataclass
class CellResult:
    model: str
    task: str
    seed: int
    outcome: str  # done | skipped | failed | busy
    path: str
    primary: float | None = None
    metric: str | None = None
    error: str | None = None
    duration_s: float = 0.0
    worker: str = ""

    @property
    def cell(self) -> Cell:
        return Cell(self.model, self.task, self.seed)


def _file_id(path: Path) -> tuple | None:
    try:
        st = path.stat()
    except FileNotFoundError:
        return None
    return st.st_ino, st.st_mtime_ns, st.st_size


def _result(cell: Cell, outcome: str, path: Path, rec: RunRecord | None, worker: str, seconds: float) -> CellResult:
    return CellResult(cell.model, cell.task, cell.seed, outcome, str(path),
                      primary=rec.primary if rec else None, metric=rec.metric if rec else None,
                      error=(rec.error or "").split("\n", 1)[0] or None if rec and rec.status != "ok" else None,
                      duration_s=round(seconds, 2), worker=worker)


def _kept(cell: Cell, path: Path, rec: RunRecord, worker: str) -> CellResult:
    """--overwrite never: an existing record stands; a failure stays a failure (counted as failed)."""
    res = _result(cell, "skipped" if rec.status == "ok" else "failed", path, rec, worker, 0.0)
    if rec.status != "ok":
        res.error = f"recorded earlier, not retried (--overwrite never): {res.error}"
    return res


def failed_record(cell: Cell, opts: SweepOptions, error: str) -> RunRecord:
    """A `failed` record for a cell that could not even start (missing data) or whose worker died."""
    from biobench.cards import get_card
    from biobench.provenance import code_versions as versions
    from biobench.protocols import resolve_protocol

    card = get_card(opts.task_specs.get(cell.task, cell.task))
    try:
        proto = resolve_protocol(opts.protocol, card.language, card.kind, card.protocol, opts.overrides).to_dict()
    except ValueError:
        proto = {"name": opts.protocol}
    return RunRecord(model=cell.model, model_sha="", task=card.name, language=card.language, kind=card.kind,
                     seed=cell.seed, protocol=proto, metric=card.metric_for(proto["name"]), card_version=card.version,
                     card_hash=card.card_hash, versions=versions(), status="failed", error=error)


def execute_cell(cell: Cell, opts: SweepOptions, *, device: str | None = None, progress: bool = False,
                 worker: str = "main") -> CellResult:
    """Claim, resume-or-run, release. Never raises for a problem of the cell itself (that is a record)."""
    path = record_path(opts.out, cell.model, cell.task, cell.seed)
    started = time.time()
    if opts.overwrite == "never" and path.exists():
        with contextlib.suppress(RecordError):  # unreadable: run it
            return _kept(cell, path, read_record(path), worker)
    claim = Claim(path, Path(opts.out), stale_after=opts.stale_after)
    if not claim.acquire():
        return CellResult(cell.model, cell.task, cell.seed, "busy", str(path), error=f"claimed by {claim.holder()}",
                          worker=worker)
    with claim:
        if opts.overwrite == "never" and path.exists():  # written by another worker while we looked
            with contextlib.suppress(RecordError):
                return _kept(cell, path, read_record(path), worker)
        from biobench.finetune import run_cell

        before = _file_id(path)
        try:
            rec = run_cell(cell.model, opts.task_specs.get(cell.task, cell.task), cell.seed, out=opts.out,
                           protocol=opts.protocol, overrides=opts.overrides, data_dir=opts.data_dir,
                           resume=opts.overwrite != "always", device=device,
                           trust_remote_code=opts.trust_remote_code, progress=progress)
        except Exception as exc:  # input errors raised before training (missing data...): recorded, sweep goes on
            from biobench.finetune import _describe

            rec = failed_record(cell, opts, _describe(exc))
            rec.notes = {"stage": "setup (before training)"}
            rec.duration_s = round(time.time() - started, 2)
            write_record(rec, path)
            return _result(cell, "failed", path, rec, worker, time.time() - started)
        after = _file_id(path)
        skipped = before is not None and before == after
        outcome = "skipped" if skipped else ("done" if rec.status == "ok" else "failed")
        return _result(cell, outcome, path, rec, worker, time.time() - started)


# ----------------------------------------------------------------------------------------------
# Workers


def worker_devices(device: str | None, runs_per_gpu: int = 1, cpu_workers: int = 1) -> list[str]:
    """One entry per worker: 'cpu', or a physical CUDA index ('cuda:<i>') repeated runs_per_gpu times."""
    if runs_per_gpu < 1 or cpu_workers < 1:
        raise ValueError("--runs-per-gpu and --workers need at least 1")
    use_cuda = device == "cuda"
    if device is None:
        try:
            import torch

            use_cuda = torch.cuda.is_available()
        except ImportError:
            use_cuda = False
    if not use_cuda:
        return ["cpu"] * cpu_workers
    import torch

    count = torch.cuda.device_count()
    if count == 0:
        raise ValueError("--device cuda requested but torch sees no CUDA device")
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    ids = [x.strip() for x in visible.split(",") if x.strip()][:count] if visible else [str(i) for i in range(count)]
    return [f"cuda:{i}" for i in ids for _ in range(runs_per_gpu)]


def _die_with_parent() -> None:
    """Linux: SIGKILL this process when its parent dies (no orphaned training after a kill -9)."""
    try:
        import ctypes
        import signal

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG = 1
    except Exception:  # not Linux: the worker's watchdog below still notices
        pass


def _worker_main(wid: str, device: str, opts: SweepOptions, tasks, results, threads: int | None) -> None:
    import signal

    _die_with_parent()
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle (it stops the pool)
    parent = os.getppid()
    if device.startswith("cuda:"):
        os.environ["CUDA_VISIBLE_DEVICES"] = device.split(":", 1)[1]  # before CUDA is initialised here
        run_device = "cuda"
    else:
        run_device = "cpu"

    def watchdog():  # PR_SET_PDEATHSIG's portable fallback
        while True:
            time.sleep(2)
            if os.getppid() != parent:
                os._exit(1)

    threading.Thread(target=watchdog, daemon=True).start()
    import torch

    if threads:
        torch.set_num_threads(threads)
    while True:
        item = tasks.get()
        if item is None:
            return
        cell = Cell(*item)
        try:
            res = execute_cell(cell, opts, device=run_device, progress=False, worker=wid)
        except BaseException as exc:  # a bug in the sweep itself: report it, keep the pool alive
            res = CellResult(cell.model, cell.task, cell.seed, "failed", "", error=f"{type(exc).__name__}: {exc}",
                             worker=wid)
        results.put((wid, asdict(res)))


class _Pool:
    """One process per device entry, each with its own inbox, so the parent always knows which cell a
    worker holds: a worker that dies (OOM killer, segfault) gets a `failed` record and a replacement."""

    def __init__(self, devices: list[str], opts: SweepOptions):
        import multiprocessing as mp

        self.ctx = mp.get_context("spawn")  # fresh interpreters: no inherited CUDA state
        self.opts = opts
        self.results = self.ctx.Queue()
        self.threads = max(1, (os.cpu_count() or 1) // len(devices))  # CPU threads shared out, no oversubscription
        self.procs: dict[str, tuple[Any, str, Any]] = {}  # wid -> (process, device, inbox)
        self.assigned: dict[str, tuple[Cell, float, tuple | None]] = {}  # wid -> (cell, since, record file id)
        for k, dev in enumerate(devices):
            self._spawn(f"w{k}", dev)

    def _spawn(self, wid: str, device: str) -> None:
        inbox = self.ctx.Queue()
        p = self.ctx.Process(target=_worker_main, name=f"biobench-{wid}", daemon=True,
                             args=(wid, device, self.opts, inbox, self.results, self.threads))
        p.start()
        self.procs[wid] = (p, device, inbox)

    def idle(self) -> list[str]:
        return [w for w in self.procs if w not in self.assigned]

    def assign(self, wid: str, cell: Cell) -> None:
        path = record_path(self.opts.out, cell.model, cell.task, cell.seed)
        self.assigned[wid] = (cell, time.time(), _file_id(path))
        self.procs[wid][2].put((cell.model, cell.task, cell.seed))

    def wait(self, timeout: float = 1.0) -> list[tuple[str, CellResult]]:
        """Finished cells (wid, result); includes cells whose worker died."""
        try:
            wid, payload = self.results.get(timeout=timeout)
        except queue.Empty:
            return self._reap()
        self.assigned.pop(wid, None)
        return [(wid, CellResult(**payload))]

    def _reap(self) -> list[tuple[str, CellResult]]:
        out = []
        for wid, (p, dev, _) in list(self.procs.items()):
            if p.is_alive():
                continue
            self._spawn(wid, dev)
            if wid not in self.assigned:
                continue
            cell, since, before = self.assigned.pop(wid)
            path = record_path(self.opts.out, cell.model, cell.task, cell.seed)
            rec = None
            if _file_id(path) != before:  # it wrote its record, then died before saying so
                with contextlib.suppress(RecordError):
                    rec = read_record(path)
            if rec is None:
                err = f"worker process {wid} on {dev} died with exit code {p.exitcode} (killed, e.g. out of memory?)"
                rec = failed_record(cell, self.opts, err)
                rec.duration_s = round(time.time() - since, 2)
                write_record(rec, path)
            with contextlib.suppress(FileNotFoundError):  # its claim: the holder is dead, free it now
                claim_path(path).unlink()
            outcome = "done" if rec.status == "ok" else "failed"
            out.append((wid, _result(cell, outcome, path, rec, wid, time.time() - since)))
        return out

    def close(self, kill: bool = False) -> None:
        """Stop the workers: politely when the queue is done; at once on an interrupt (their claims are then
        stale, pid dead, and the next sweep takes them over)."""
        for p, _, inbox in self.procs.values():
            if kill:
                p.kill()
            else:
                inbox.put(None)
        for p, _, _ in self.procs.values():
            p.join(timeout=2 if kill else 10)
            if p.is_alive():
                p.kill()


# ----------------------------------------------------------------------------------------------
# The sweep


@dataclass
class SweepSummary:
    results: list[CellResult]
    wall_s: float
    workers: list[str]

    def count(self, outcome: str) -> int:
        return sum(r.outcome == outcome for r in self.results)

    def line(self) -> str:
        n = len(self.results)
        m, s = divmod(round(self.wall_s), 60)
        return (f"{n} cells: {self.count('done')} done, {self.count('skipped')} skipped (already recorded), "
                f"{self.count('failed')} failed" + (f", {self.count('busy')} still claimed elsewhere" if self.count("busy") else "")
                + f" · wall {m}m{s:02d}s · {len(self.workers)} worker(s): {', '.join(sorted(set(self.workers)))}")

    def to_dict(self) -> dict:
        return {"cells": len(self.results), **{k: self.count(k) for k in ("done", "skipped", "failed", "busy")},
                "wall_s": round(self.wall_s, 2), "workers": self.workers, "results": [asdict(r) for r in self.results]}


def run_sweep(cells: Sequence[Cell], opts: SweepOptions, *, devices: Sequence[str] = ("cpu",),
              progress: bool = True, wait_busy: bool = True, poll_s: float = 5.0,
              on_result: Callable[[CellResult], None] | None = None) -> SweepSummary:
    """Run `cells` on `devices` (one worker each; one worker runs in this process)."""
    from rich import progress as rp

    started = time.time()
    results: dict[Cell, CellResult] = {}
    from rich.console import Console

    # Without bars (--json) the per-cell lines go to stderr: stdout is kept for the one JSON document.
    bar = rp.Progress(rp.SpinnerColumn(), rp.TextColumn("{task.description}"), rp.BarColumn(),
                      rp.MofNCompleteColumn(), rp.TimeElapsedColumn(), disable=not progress,
                      console=None if progress else Console(stderr=True))

    def finish(res: CellResult, grid_task) -> None:
        results[res.cell] = res
        if res.outcome != "busy":
            bar.update(grid_task, advance=1)
        if on_result:
            on_result(res)
        mark = {"done": "[green]done[/]", "skipped": "[dim]skipped[/]", "failed": "[red]FAILED[/]",
                "busy": "[yellow]busy[/]"}[res.outcome]
        score = f" {res.metric} {res.primary:.2f}" if res.primary is not None else ""
        why = f" - {res.error}" if res.error else ""
        bar.console.print(f"{mark} {res.cell.label()}{score} ({res.duration_s:.0f} s, {res.worker}){why}",
                          highlight=False)

    pending = list(cells)
    # A terminal gets each cell's live bar; a log file its plain per-epoch lines (run_cell decides which).
    run_bar = progress
    in_process = "cpu" if devices[0] == "cpu" else "cuda"  # one CUDA worker: the device this process sees
    with bar:
        grid = bar.add_task(f"grid ({len(cells)} cells)", total=len(cells))
        while pending:
            busy: list[Cell] = []
            if len(devices) == 1:
                for cell in pending:
                    bar.update(grid, description=f"grid · {cell.label()}")
                    res = execute_cell(cell, opts, device=in_process, progress=run_bar, worker="main")
                    finish(res, grid)
                    if res.outcome == "busy":
                        busy.append(cell)
            else:
                busy = _run_pool(pending, opts, list(devices), bar, grid, finish)
            pending = busy
            if pending and wait_busy:
                bar.update(grid, description=f"grid · waiting for {len(pending)} cell(s) claimed by other workers")
                time.sleep(poll_s)
            elif pending:
                break
        bar.update(grid, description="grid")
    order = {c: k for k, c in enumerate(cells)}
    return SweepSummary(sorted(results.values(), key=lambda r: order[r.cell]), time.time() - started, list(devices))


def _run_pool(cells: list[Cell], opts: SweepOptions, devices: list[str], bar, grid, finish) -> list[Cell]:
    pool = _Pool(devices, opts)
    rows = {wid: bar.add_task(f"  {wid} ({dev}) idle", total=None) for wid, (_, dev, _) in pool.procs.items()}
    busy: list[Cell] = []
    todo = list(cells)
    interrupted = True
    try:
        while todo or pool.assigned:
            for wid in pool.idle():
                if not todo:
                    break
                cell = todo.pop(0)
                pool.assign(wid, cell)
                bar.reset(rows[wid], description=f"  {wid} ({pool.procs[wid][1]}) {cell.label()}", total=None)
            for wid, res in pool.wait():
                bar.update(rows[wid], description=f"  {wid} ({pool.procs[wid][1]}) idle")
                finish(res, grid)
                if res.outcome == "busy":
                    busy.append(res.cell)
        interrupted = False
    finally:
        pool.close(kill=interrupted)
        for t in rows.values():
            bar.remove_task(t)
    return busy


__all__ = ["Cell", "Claim", "CellResult", "SweepOptions", "SweepSummary", "execute_cell", "failed_record",
           "parse_seeds", "parse_shard", "plan_grid", "run_sweep", "shard_cells", "worker_devices"]
