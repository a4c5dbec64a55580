"""Download a task's public corpus from the release its card pins (`data.fetch`).

Every file the task folder receives must match the sha256 in the card, so a fetched corpus is byte for
byte the one the published numbers were produced on. Three sources (biobench.cards.FetchSpec):
- raw files at a commit-pinned URL, one by one. A download is streamed into a temporary file beside its
  destination and renamed into place only once complete and verified: an interrupted or corrupted download
  never leaves a half file where a reader would take it for the corpus;
- one zip archive (DDI, MANTRA GSC), itself pinned by sha256: downloaded and extracted into a temporary
  folder beside the task folder, each kept member checked, then renamed into place, so an interrupted fetch
  leaves no half corpus. Members the card does not list (another language, macOS `__MACOSX/` and
  `.DS_Store` junk) are skipped; a member with an absolute path or '..' refuses the whole archive (zip slip);
- a folder of the biobench package (BIOSSES: the table biobench derived from the release's .rar of .docx
  tables, which the standard library cannot open), copied and checked the same way.

`BIOBENCH_FETCH_MIRROR=http://host:port[/prefix]` replaces the scheme and host of every URL (the path is
kept), for a local mirror of the releases, an internal proxy, or the tests' 127.0.0.1 server.
"""

from __future__ import annotations

import hashlib
import http.client
import os
import shutil
import tempfile
import urllib.error
import urllib.parse
import urllib.request
import zipfile
from dataclasses import dataclass, field
from importlib import resources
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
    downloaded: list[str] = field(default_factory=list)  # new in the folder (downloaded, extracted or copied)
    present: list[str] = field(default_factory=list)  # already there with the pinned sha256
    how: str = "downloaded"  # how the new files came: "downloaded", "extracted from X.zip", "copied from ..."

    def summary(self) -> str:
        """One line for the user: `3 files, sha256 verified (3 downloaded) -> /data/en/NCBI-disease-IOB`."""
        total = len(self.downloaded) + len(self.present)
        done = f"{len(self.downloaded)} {self.how}" + (f", {len(self.present)} already there" if self.present else "")
        return f"{total} file{'s' if total != 1 else ''}, sha256 verified ({done}) -> {self.folder}"


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
    fetched again; a file there with other bytes is an error (never overwritten)."""
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
    present = set(result.present)
    missing = {rel: sha for rel, sha in spec.files.items() if rel not in present}
    if spec.archive:
        result.how = f"extracted from {Path(spec.archive).name}"
        if missing:
            fetch_archive(spec, folder, missing, partial=bool(result.present), mirror=mirror)
    elif spec.packaged:
        result.how = "copied from the biobench package"
        root = Path(str(resources.files("biobench"))) / spec.packaged
        for rel, sha256 in missing.items():  # urllib reads file:// URLs: the same streamed, verified copy
            if not (root / rel).is_file():
                raise FetchError(f"{root / rel}: missing from the installed biobench package; reinstall biobench")
            download((root / rel).resolve().as_uri(), folder / rel, sha256)
    else:
        for rel, sha256 in missing.items():
            download(file_url(spec.base, rel, mirror), folder / rel, sha256)
    result.downloaded = list(missing)
    return result


def fetch_archive(spec, folder: Path, files: dict[str, str], partial: bool = False,
                  mirror: str | None = None) -> None:
    """Download `spec.archive` (sha256-checked), extract `files` into a temporary folder beside `folder`,
    then rename it into place: `folder` itself if it does not exist yet, else each top-level entry (which
    must not exist). Nothing is written into `folder` before every file is extracted and verified."""
    name = Path(spec.archive).name
    if partial:  # never mix a release's files with another copy's: the reader would take it for the corpus
        raise FetchError(f"{folder}: holds only some of the files of {name} (e.g. {next(iter(files))} is missing); "
                         f"move it away and fetch again")
    tops = sorted({rel.split("/")[0] for rel in files})
    for top in tops:
        if (folder / top).exists():
            raise FetchError(f"{folder / top}: already there but holds none of the files of {name}; move it away "
                             f"and fetch again")
    folder.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", suffix=".part", dir=folder.parent))
    try:
        archive = work / name
        download(file_url(spec.base, spec.archive, mirror), archive, spec.archive_sha256)
        extract(archive, work / "tree", files)
        if not folder.exists():
            os.replace(work / "tree", folder)  # one rename: the whole corpus appears at once
        else:
            for top in tops:
                os.replace(work / "tree" / top, folder / top)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _escapes(member: str) -> bool:
    """A zip member path that would land outside the extraction folder: absolute, a drive, or with '..'."""
    parts = member.replace("\\", "/").split("/")
    return member.startswith(("/", "\\")) or (member[:1].isalpha() and member[1:2] == ":") or ".." in parts


def extract(archive: Path, dest: Path, files: dict[str, str]) -> None:
    """Extract the members named in `files` (zip path -> sha256) into `dest`, checking each sha256.

    The whole archive is refused if any member is absolute or climbs out with '..' (zip slip), even one that
    is not kept. Members not named are skipped: other parts of the release, `__MACOSX/`, `.DS_Store`."""
    try:
        with zipfile.ZipFile(archive) as zf:
            members = {}
            for info in zf.infolist():
                if _escapes(info.filename):
                    raise FetchError(f"{archive.name}: member {info.filename!r} is an absolute path or climbs out "
                                     f"with '..' (zip slip); refused, nothing extracted")
                if not info.is_dir():
                    members[info.filename] = info
            absent = [rel for rel in files if rel not in members]
            if absent:
                raise FetchError(f"{archive.name}: no member {absent[0]!r}, which the card pins ({len(absent)} of "
                                 f"{len(files)} pinned files absent)")
            for rel, sha256 in files.items():
                out = dest / rel
                out.parent.mkdir(parents=True, exist_ok=True)
                h = hashlib.sha256()
                with zf.open(members[rel]) as src, out.open("wb") as sink:
                    for chunk in iter(lambda: src.read(CHUNK), b""):
                        h.update(chunk)
                        sink.write(chunk)
                if h.hexdigest() != sha256:
                    raise FetchError(f"{archive.name}: member {rel}: sha256 {h.hexdigest()}, the card pins {sha256}")
    except zipfile.BadZipFile as exc:  # a bad CRC, a truncated central directory, not a zip at all
        raise FetchError(f"{archive.name}: not a readable zip archive ({exc})") from None
