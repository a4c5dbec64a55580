"""Which code and which weights made a record: what a reviewer needs to trust that two numbers compare.

- `code_versions()`: biobench's version, the git commit of its source (with `-dirty` when the
  package folder has uncommitted changes) and, always, a sha256 of the package's own source files
  (`biobench_source`), so that two records made by different code are told apart even outside git
  (a wheel install) or between two uncommitted states; then the versions of the libraries whose
  releases move scores: python, torch, transformers, datasets, numpy, scikit-learn, scipy, seqeval.
- `weights_sha256(model)`: a hash of the safetensors CONTENT of a local folder or of a hub id's
  cached snapshot (the same function of the same files), so that a hub id and a local copy of the
  same weights get the same hash. `models.model_sha` stays what resume compares (for a hub id: the
  snapshot's commit), this is what the leaderboard groups rows by.
"""

from __future__ import annotations

import hashlib
import platform
import subprocess
from functools import lru_cache
from importlib import metadata
from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent
LIBRARIES = {"torch": "torch", "transformers": "transformers", "datasets": "datasets", "numpy": "numpy",
             "scikit-learn": "scikit-learn", "scipy": "scipy", "seqeval": "seqeval"}


def source_sha256(root: Path = PACKAGE_DIR) -> str:
    """sha256 over the package's .py files (relative path + content, sorted): the code that ran.

    The same code gives the same hash installed (a wheel, `pip install --target`) or run from a checkout
    (`pip install -e`): pyproject maps `biobench.tasks` to the repository's top-level `tasks/`, so an
    installed package holds `tasks/__init__.py` and a checkout's `biobench/` does not; the checkout's is
    hashed under the installed path."""
    files = {p.relative_to(root).as_posix(): p for p in root.rglob("*.py") if "__pycache__" not in p.parts}
    mapped = root.parent / "tasks"  # the checkout layout: biobench/ and tasks/ side by side
    if not (root / "tasks").exists() and (mapped / "__init__.py").is_file():
        files.update({"tasks/" + p.relative_to(mapped).as_posix(): p for p in mapped.rglob("*.py")
                      if "__pycache__" not in p.parts})
    digest = hashlib.sha256()
    for rel in sorted(files, key=lambda r: r.split("/")):  # the order of sorted(Path) in the installed layout
        digest.update(rel.encode() + b"\0")
        digest.update(files[rel].read_bytes() + b"\0")
    return digest.hexdigest()


def git_commit(root: Path = PACKAGE_DIR) -> str:
    """The commit of the git work tree holding the package, `-dirty` when its files differ from it;
    "" outside git (an installed wheel) or without a git binary."""
    def git(*args: str) -> str:
        done = subprocess.run(["git", "-C", str(root), *args], capture_output=True, text=True, timeout=10)
        if done.returncode != 0:
            raise OSError(done.stderr)
        return done.stdout.strip()

    try:
        commit = git("rev-parse", "HEAD")
        dirty = git("status", "--porcelain", "--untracked-files=no", "--", ".")
    except (OSError, subprocess.SubprocessError):
        return ""
    return commit + ("-dirty" if dirty else "")


@lru_cache(maxsize=1)
def code_versions() -> dict[str, str]:
    """biobench version, commit and source hash, plus the library versions (computed once per process)."""
    import biobench

    out = {"biobench": biobench.__version__, "biobench_commit": git_commit(),
           "biobench_source": source_sha256(), "python": platform.python_version()}
    for key, dist in LIBRARIES.items():
        try:
            out[key] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            out[key] = ""
    return out


def code_identity(versions: dict[str, str] | None) -> str:
    """A short name for the code a record came from: its source hash (12 hex), else its commit, else
    its version; "unknown" for a record written before provenance was recorded."""
    v = versions or {}
    if v.get("biobench_source"):
        return "src " + v["biobench_source"][:12]
    if v.get("biobench_commit"):
        return "commit " + v["biobench_commit"][:12]
    return f"biobench {v['biobench']} (no commit recorded)" if v.get("biobench") else "unknown"


def weights_sha256(model: str) -> str:
    """sha256 of the safetensors files (name + content, sorted by name) of a local folder or of a hub
    id's snapshot in the local cache; "" when the weights cannot be found without the network."""
    from biobench import models

    folder = Path(model)
    if not models.is_local(model):
        try:
            from huggingface_hub import snapshot_download

            folder = Path(snapshot_download(model, local_files_only=True))
        except Exception:  # not cached, offline, malformed id: no hash rather than a guess
            return ""
    files = sorted(folder.glob("*.safetensors"))
    if not files:
        return ""
    return models._hash_files(tuple((str(f), f.stat().st_size, f.stat().st_mtime_ns) for f in files))
