"""Download a task's public corpus from the release its card pins (`data.fetch`), file by file.

Each file comes from a commit-pinned URL and must match the sha256 in the card, so a fetched corpus is
byte for byte the one the published numbers were produced on. A download is streamed into a temporary
file beside its destination and renamed into place only once complete and verified: an interrupted or
corrupted download never leaves a half file where a reader would take it for the corpus.

`BIOBENCH_FETCH_MIRROR=http://host:port[/prefix]` replaces the scheme and host of every URL (the path is
kept), for a local mirror of the releases, an internal proxy, or the tests' 127.0.0.1 server.
"""

from __future__ import annotations

import hashlib
import http.client
import os
import tempfile
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from biobench.data.errors import DataError

MIRROR_ENV = "BIOBENCH_FETCH_MIRROR"
CHUNK = 1 << 16


class FetchError(DataError):
    """A download failed or did not match its pinned sha256. The message names the file."""


@dataclass
class Fetched:
    task: str
    folder: Path
    downloaded: list[str] = field(default_factory=list)
    present: list[str] = field(default_factory=list)  # already there with the pinned sha256


def file_url(base: str, rel: str, mirror: str | None = None) -> str:
    """The URL of `rel` below `base`; with a mirror, its scheme and host (and path prefix) replace base's."""
    url = f"{base.rstrip('/')}/{urllib.parse.quote(rel, safe='/')}"
    mirror = mirror if mirror is not None else os.environ.get(MIRROR_ENV)
    if not mirror:
        return url
    m = urllib.parse.urlsplit(mirror)
    if m.scheme not in ("http", "https") or not m.netloc:
        raise FetchError(f"{MIRROR_ENV}={mirror!r}: expected a URL such as http://127.0.0.1:8000")
    u = urllib.parse.urlsplit(url)
    return urllib.parse.urlunsplit((m.scheme, m.netloc, m.path.rstrip("/") + u.path, u.query, ""))


def sha256_of(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(CHUNK), b""):
            h.update(chunk)
    return h.hexdigest()


def download(url: str, dest: Path, sha256: str, timeout: float = 60.0) -> None:
    """Stream `url` to `dest`, hashing on the way; `dest` appears only if the whole file matches `sha256`."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".part", dir=dest.parent)
    tmp = Path(tmp_name)
    try:
        h, received = hashlib.sha256(), 0
        request = urllib.request.Request(url, headers={"User-Agent": "biobench-data-fetch"})
        with os.fdopen(fd, "wb") as out, urllib.request.urlopen(request, timeout=timeout) as response:
            promised = response.headers.get("Content-Length")
            for chunk in iter(lambda: response.read(CHUNK), b""):
                h.update(chunk)
                out.write(chunk)
                received += len(chunk)
        # http.client ends a short body quietly when reading by chunks: say so rather than "sha256 mismatch".
        if promised is not None and promised.isdigit() and received != int(promised):
            raise FetchError(f"{dest.name}: download cut short: {received} of {promised} bytes ({url})")
        got = h.hexdigest()
        if got != sha256:
            raise FetchError(f"{dest.name}: sha256 mismatch (from {url}): expected {sha256}, got {got}")
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp's 0600 would make the corpus private to one user
        os.replace(tmp, dest)
    except FetchError:
        raise
    except urllib.error.HTTPError as exc:
        raise FetchError(f"{dest.name}: download failed: HTTP {exc.code} {exc.reason} for {url}") from None
    except urllib.error.URLError as exc:
        raise FetchError(f"{dest.name}: download failed: {exc.reason} ({url}); offline? "
                         f"set {MIRROR_ENV} to a local mirror of the release") from None
    except (OSError, http.client.HTTPException) as exc:  # a dropped connection, a short body, a full disk
        raise FetchError(f"{dest.name}: download failed: {type(exc).__name__}: {exc} ({url})") from None
    finally:
        tmp.unlink(missing_ok=True)


def fetch_task(card, to: Path | str, mirror: str | None = None) -> Fetched:
    """Fetch one task's pinned files into `<to>/<data.local.dir>`; files already there are verified, not
    downloaded again; a file there with other bytes is an error (never overwritten)."""
    spec = card.data.fetch
    if spec is None:
        raise DataError(f"{card.name}: the card pins no public files to fetch (data.fetch); obtain it by hand: "
                        f"{card.data.obtain}")
    folder = Path(to) / card.data.local.dir
    result = Fetched(card.name, folder)
    for rel, sha256 in spec.files.items():
        dest = folder / rel
        if dest.exists():
            got = sha256_of(dest)
            if got != sha256:
                raise FetchError(f"{dest}: already there but not the pinned release file (sha256 {got}, "
                                 f"expected {sha256}); move it away and fetch again")
            result.present.append(rel)
            continue
        download(file_url(spec.base, rel, mirror), dest, sha256)
        result.downloaded.append(rel)
    return result
