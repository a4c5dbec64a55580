"""`biobench data fetch` for releases published as one zip (DDI, MANTRA GSC) and for BIOSSES, whose table
biobench ships. Archives are built in the test, from the in-repo samples (default run) or from the full
mirror the way upstream laid them out (full-corpus run), and served from 127.0.0.1 through
BIOBENCH_FETCH_MIRROR. Covers: only the pinned members land in the card's folder (macOS junk and other
parts of the release skipped), sha256 of the archive and of each member, zip slip, an interrupted download
or extraction leaving nothing, a folder already there, and the card fields."""

from __future__ import annotations

import hashlib
import shutil
import zipfile
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import yaml

from biobench.cards import CardError, get_card, load_registry, parse_card
from biobench.cli import main
from biobench.data import load_task
from test_data_fetch import Server
from test_data_fetch import server  # noqa: F401  (the 127.0.0.1 server fixture)
from test_data_readers import make_card

BASE = "https://raw.githubusercontent.com/example/ncbi-release/0123456789abcdef0123456789abcdef01234567"
JUNK = {".DS_Store": b"\0\0\0\1Bud1", "__MACOSX/._NCBI-disease-IOB": b"\0\5\26\7",
        "__MACOSX/NCBI-disease-IOB/._train.tsv": b"\0\5\26\7", "NCBI-disease-IOB/.DS_Store": b"\0\0\0\1Bud1"}
SPLIT_FILES = {"train": "train.tsv", "validation": "devel.tsv", "test": "test.tsv"}


def sha256(data: bytes | Path) -> str:
    return hashlib.sha256(data.read_bytes() if isinstance(data, Path) else data).hexdigest()


def make_zip(path: Path, members: dict[str, bytes]) -> bytes:
    """A zip of `members` (name -> bytes) in order, with folder entries as macOS's Archive Utility writes them."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        folders: set[str] = set()
        for name, data in members.items():
            parts = name.split("/")[:-1]
            plain = not name.startswith("/") and ":" not in name and "\\" not in name and ".." not in parts
            for i in range(1, len(parts) + 1 if plain else 1):
                folder = "/".join(parts[:i]) + "/"
                if folder not in folders:
                    folders.add(folder)
                    zf.writestr(folder, b"")
            zf.writestr(zipfile.ZipInfo(name, date_time=(2013, 1, 1, 0, 0, 0)), data, zipfile.ZIP_DEFLATED)
    return path.read_bytes()


@pytest.fixture
def served(server: Server) -> Server:  # noqa: F811  (test_data_fetch's 127.0.0.1 server)
    return server


class ZipRelease:
    """The in-repo NCBI-disease sample packed as an upstream release would be: a top folder
    `NCBI-disease-IOB/` (kept), another corpus `Other-corpus/` (not pinned) and macOS junk; the card
    `ncbi_zip` (the ncbi_disease card reading `en/NCBI-zip/NCBI-disease-IOB/*.tsv`) pins the zip's sha256 and
    each kept member's."""

    def __init__(self, tmp_path: Path, fixture_data: Path, server: Server, monkeypatch):  # noqa: F811
        self.src = fixture_data / "en/NCBI-disease-IOB"
        self.kept = {f"NCBI-disease-IOB/{n}": (self.src / n).read_bytes() for n in SPLIT_FILES.values()}
        self.server, self.cards = server, tmp_path / "cards"
        self.url = f"{BASE}/ncbi.zip"
        self.served = server.root / urlsplit(self.url).path.lstrip("/")
        self.to = tmp_path / "data"
        self.folder = self.to / "en/NCBI-zip"
        self.cards.mkdir()
        monkeypatch.setenv("BIOBENCH_TASKS_PATH", str(self.cards))
        self.publish({**JUNK, **self.kept, "Other-corpus/train.tsv": b"x\tO\n"})

    def publish(self, members: dict[str, bytes], pins: dict[str, str] | None = None,
                archive_sha256: str | None = None) -> None:
        """Serve a zip of `members` and write the card pinning it (by default: its sha256, the kept files)."""
        data = make_zip(self.served, members)
        raw = yaml.safe_load(Path(get_card("ncbi_disease").path).read_text(encoding="utf-8"))
        raw["name"] = "ncbi_zip"
        raw["data"]["local"]["dir"] = "en/NCBI-zip"
        raw["data"]["local"]["files"] = {s: f"NCBI-disease-IOB/{n}" for s, n in SPLIT_FILES.items()}
        raw["data"]["fetch"] = {"base": BASE, "archive": "ncbi.zip", "sha256": archive_sha256 or sha256(data),
                                "files": pins or {rel: sha256(b) for rel, b in self.kept.items()}}
        (self.cards / "ncbi_zip.yaml").write_text(yaml.safe_dump(raw, allow_unicode=True), encoding="utf-8")

    def fetch(self) -> int:
        return main(["data", "fetch", "ncbi_zip", "--to", str(self.to)])

    def left_in_data_dir(self) -> list[str]:
        return sorted(p.relative_to(self.to).as_posix() for p in self.to.rglob("*")) if self.to.exists() else []


@pytest.fixture
def release(tmp_path, fixture_data, served, monkeypatch) -> ZipRelease:
    return ZipRelease(tmp_path, fixture_data, served, monkeypatch)


def test_an_archive_is_fetched_checked_and_only_its_pinned_members_kept(release, capsys):
    assert release.fetch() == 0
    out = capsys.readouterr().out
    assert f"ncbi_zip: 3 files, sha256 verified (3 extracted from ncbi.zip) -> {release.folder}" in out
    assert release.server.requests == [urlsplit(release.url).path]  # one download: the archive
    # Exactly the pinned members, at their paths in the zip: no junk, no other corpus, no temporary folder.
    assert release.left_in_data_dir() == ["en", "en/NCBI-zip", "en/NCBI-zip/NCBI-disease-IOB",
                                          *(f"en/NCBI-zip/{rel}" for rel in sorted(release.kept))]
    assert all((release.folder / rel).read_bytes() == data for rel, data in release.kept.items())
    task = load_task(get_card("ncbi_zip"), release.to)
    assert [len(task.splits[s]) for s in SPLIT_FILES] == [400, 150, 150]  # the sample's sentences, as read in place
    sample = load_task(get_card("ncbi_disease"), release.src.parents[1])  # the same files read where they lie
    for s in SPLIT_FILES:  # the same sentences (ids name the file: NCBI-disease-IOB/train.tsv:1 vs train.tsv:1)
        assert (task.splits[s]["tokens"], task.splits[s]["tags"]) == (sample.splits[s]["tokens"], sample.splits[s]["tags"])

    # Again: the files are there and verified; the archive is not downloaded.
    release.server.requests.clear()
    assert release.fetch() == 0
    assert "(0 extracted from ncbi.zip, 3 already there)" in capsys.readouterr().out
    assert release.server.requests == []


def test_an_archive_with_other_bytes_is_one_line_and_leaves_nothing(release, capsys):
    pinned = sha256(release.served)
    release.publish({**release.kept, "NCBI-disease-IOB/test.tsv": release.kept["NCBI-disease-IOB/test.tsv"] + b"\n"},
                    pins={rel: sha256(b) for rel, b in release.kept.items()}, archive_sha256=pinned)
    assert release.fetch() == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert err.startswith("ncbi_zip: error: ncbi.zip: sha256 mismatch")
    assert f"expected {pinned}, got {sha256(release.served)}" in err
    assert release.left_in_data_dir() == ["en"]  # no folder, no temporary download or extraction


def test_a_member_that_differs_from_its_pin_leaves_nothing(release, capsys):
    pins = {rel: sha256(b) for rel, b in release.kept.items()}
    pins["NCBI-disease-IOB/devel.tsv"] = "0" * 64
    release.publish(release.kept, pins=pins)
    assert release.fetch() == 1
    err = capsys.readouterr().err.strip()
    assert err == (f"ncbi_zip: error: ncbi.zip: member NCBI-disease-IOB/devel.tsv: sha256 "
                   f"{sha256(release.kept['NCBI-disease-IOB/devel.tsv'])}, the card pins {'0' * 64}")
    assert release.left_in_data_dir() == ["en"]


def test_a_pinned_member_absent_from_the_archive_is_named(release, capsys):
    pins = {rel: sha256(b) for rel, b in release.kept.items()} | {"NCBI-disease-IOB/extra.tsv": "a" * 64}
    release.publish(release.kept, pins=pins)
    assert release.fetch() == 1
    assert capsys.readouterr().err.strip() == ("ncbi_zip: error: ncbi.zip: no member 'NCBI-disease-IOB/extra.tsv', "
                                               "which the card pins (1 of 4 pinned files absent)")
    assert release.left_in_data_dir() == ["en"]


@pytest.mark.parametrize("evil", ["../escaped.tsv", "NCBI-disease-IOB/../../escaped.tsv", "/tmp/escaped.tsv",
                                  "C:/escaped.tsv", "..\\escaped.tsv"])
def test_a_zip_slip_member_refuses_the_whole_archive(release, tmp_path, capsys, evil):
    release.publish({**release.kept, evil: b"pwned\n"})  # pinned as it is: the sha256 is not what stops it
    assert release.fetch() == 1
    err = capsys.readouterr().err.strip()
    assert err == (f"ncbi_zip: error: ncbi.zip: member {evil!r} is an absolute path or climbs out with '..' "
                   "(zip slip); refused, nothing extracted")
    assert release.left_in_data_dir() == ["en"]
    assert not [p for p in tmp_path.rglob("escaped.tsv")] and not Path("/tmp/escaped.tsv").exists()


def test_a_download_cut_short_leaves_nothing(release, capsys):
    release.server.truncate.add(urlsplit(release.url).path)
    assert release.fetch() == 1
    assert capsys.readouterr().err.startswith("ncbi_zip: error: ncbi.zip: download cut short: ")
    assert release.left_in_data_dir() == ["en"]


def test_an_extraction_interrupted_halfway_leaves_no_half_corpus(release, monkeypatch, capsys):
    """Ctrl-C after the first member is written: the task folder never appears, the temporary one is gone."""
    import biobench.data.fetch as fetch_module

    real = fetch_module.extract

    def interrupted(archive, dest, files):
        first = dict(list(files.items())[:1])
        real(archive, dest, first)
        assert (dest / next(iter(first))).is_file()  # one member was on disk when the interrupt came
        raise KeyboardInterrupt

    monkeypatch.setattr(fetch_module, "extract", interrupted)
    assert release.fetch() == 130
    assert capsys.readouterr().err.strip() == "biobench data: interrupted"
    assert release.left_in_data_dir() == ["en"]


def test_a_folder_holding_part_of_the_release_is_refused_and_left_as_it_is(release, capsys):
    assert release.fetch() == 0
    (release.folder / "NCBI-disease-IOB/test.tsv").unlink()
    before = release.left_in_data_dir()
    assert release.fetch() == 1
    err = capsys.readouterr().err.strip()
    assert err == (f"ncbi_zip: error: {release.folder}: holds only some of the files of ncbi.zip (e.g. "
                   "NCBI-disease-IOB/test.tsv is missing); move it away and fetch again")
    assert release.left_in_data_dir() == before

    (release.folder / "NCBI-disease-IOB/devel.tsv").write_text("mine\tO\n")  # other bytes: never overwritten
    assert release.fetch() == 1
    assert f"{release.folder / 'NCBI-disease-IOB/devel.tsv'}: already there but not the pinned release file" in \
        capsys.readouterr().err
    assert (release.folder / "NCBI-disease-IOB/devel.tsv").read_text() == "mine\tO\n"


def test_a_folder_there_without_the_release_gets_it_beside_its_own_files(release, capsys):
    release.folder.mkdir(parents=True)
    (release.folder / "NOTES.md").write_text("my notes\n")
    assert release.fetch() == 0
    assert release.left_in_data_dir() == sorted(["en", "en/NCBI-zip", "en/NCBI-zip/NCBI-disease-IOB",
                                                 "en/NCBI-zip/NOTES.md", *(f"en/NCBI-zip/{rel}" for rel in release.kept)])
    # A top folder of the release already there (empty, or another copy) is never merged into.
    shutil.rmtree(release.folder / "NCBI-disease-IOB")
    (release.folder / "NCBI-disease-IOB").mkdir()
    assert release.fetch() == 1
    assert capsys.readouterr().err.strip() == (f"ncbi_zip: error: {release.folder / 'NCBI-disease-IOB'}: already there but "
                                               "holds none of the files of ncbi.zip; move it away and fetch again")
    assert list((release.folder / "NCBI-disease-IOB").iterdir()) == []


def test_biosses_is_copied_from_the_package_checked_by_sha256(tmp_path, monkeypatch, capsys):
    """No release biobench can read is online (a .rar of .docx tables): the card copies the packaged table."""
    monkeypatch.setenv("BIOBENCH_FETCH_MIRROR", "http://127.0.0.1:9")  # nothing listens there: no download
    card = get_card("biosses")
    packaged = Path(__file__).resolve().parents[1] / "biobench" / card.data.fetch.packaged / "biosses.tsv"
    assert card.data.fetch.files == {"biosses.tsv": sha256(packaged)}
    assert main(["data", "fetch", "biosses", "--to", str(tmp_path)]) == 0
    folder = tmp_path / "en/BIOSSES"
    assert f"biosses: 1 file, sha256 verified (1 copied from the biobench package) -> {folder}" in \
        capsys.readouterr().out
    assert [p.name for p in folder.iterdir()] == ["biosses.tsv"]
    assert (folder / "biosses.tsv").read_bytes() == packaged.read_bytes()
    task = load_task(card, tmp_path)
    assert [len(task.splits[s]) for s in ("train", "validation", "test")] == [64, 16, 20]


def _fetch_card(tmp_path: Path, **fetch) -> Path:
    data = {"local": {"dir": "d", "format": "conll", "files": {"train": "a.tsv", "validation": "a.tsv",
                                                                "test": "a.tsv"}}, "obtain": "x", "fetch": fetch}
    return make_card(tmp_path, data=data)


FILES = {"files": {"a.tsv": "a" * 64}}


@pytest.mark.parametrize("fetch, field, needle", [
    ({"base": "https://e.org", "archive": "r.zip", **FILES}, "data.fetch.sha256", "the archive's sha256"),
    ({"base": "https://e.org", "sha256": "b" * 64, **FILES}, "data.fetch.sha256", "an 'archive' beside it"),
    ({"base": "https://e.org", "archive": "r.tar.gz", "sha256": "b" * 64, **FILES}, "data.fetch.archive", ".zip"),
    ({"base": "https://e.org", "archive": "../r.zip", "sha256": "b" * 64, **FILES}, "data.fetch.archive", ".zip"),
    ({"base": "https://e.org", "archive": "r.zip", "sha256": "B" * 64, **FILES}, "data.fetch.sha256", "64 lower"),
    ({"base": "https://e.org", "packaged": "demo_data/en/biosses", **FILES}, "data.fetch", "exactly one of 'base'"),
    ({**FILES}, "data.fetch", "exactly one of 'base'"),
    ({"packaged": "demo_data/en/nothing-here", **FILES}, "data.fetch.packaged", "a folder of the installed biobench"),
    ({"packaged": "../biobench", **FILES}, "data.fetch.packaged", "a folder of the installed biobench"),
    ({"packaged": "demo_data/en/biosses", "archive": "r.zip", "sha256": "b" * 64, **FILES}, "data.fetch.archive",
     "no archive with 'packaged'"),
    ({"base": "https://e.org", "archive": "r.zip", "sha256": "b" * 64}, "data.fetch", "exactly one of 'files'"),
])
def test_archive_and_packaged_field_errors_name_the_card_and_field(tmp_path, fetch, field, needle):
    with pytest.raises(CardError) as err:
        parse_card(_fetch_card(tmp_path, **fetch))
    assert f"t.yaml: field '{field}'" in str(err.value) and needle in str(err.value) and "\n" not in str(err.value)


def test_an_archive_card_parses_into_the_spec(tmp_path):
    spec = parse_card(_fetch_card(tmp_path, base="https://e.org/x/", archive="sub/r.zip", sha256="b" * 64,
                                  **FILES)).data.fetch
    assert (spec.base, spec.archive, spec.archive_sha256, spec.packaged, spec.files) == \
        ("https://e.org/x", "sub/r.zip", "b" * 64, None, {"a.tsv": "a" * 64})


# --- against the full mirror: the real cards, from archives laid out as upstream's -------------------------

def _upstream_zip(path: Path, mirror_folder: Path, files: list[str], extra: dict[str, bytes]) -> str:
    """The zip as upstream published it: the pinned files at their paths, plus what the card does not keep."""
    return sha256(make_zip(path, {**{rel: (mirror_folder / rel).read_bytes() for rel in files}, **extra}))


def _repinned_registry(tmp_path: Path, monkeypatch, name: str, archive_sha256: str) -> None:
    """The packaged cards, with `name`'s archive sha256 replaced by the rebuilt zip's (the upstream zip itself is
    not in the mirror; its sha256 in the card was checked against the upstream repository by hand)."""
    import biobench.cards

    tasks = tmp_path / "tasks"
    shutil.copytree(biobench.cards.packaged_dir(), tasks)
    card = next(tasks.rglob(f"{name}.yaml"))
    text = card.read_text(encoding="utf-8")
    pinned = get_card(name).data.fetch.archive_sha256
    assert text.count(pinned) == 1
    card.write_text(text.replace(pinned, archive_sha256), encoding="utf-8")
    monkeypatch.setattr(biobench.cards, "packaged_dir", lambda: tasks)
    monkeypatch.delenv("BIOBENCH_TASKS_PATH", raising=False)


@pytest.mark.parametrize("name, extra, sizes", [
    ("ddi", {"DDICorpus/.DS_Store": b"\0\0\0\1Bud1", "DDICorpus/Train/.DS_Store": b"\0\0\0\1Bud1"},
     {"train": 25719, "validation": 2072, "test": 5716}),  # 27,791 train pairs with validation, as published
    ("mantra_gsc", {"__MACOSX/Mantra-GSC/French/._EMEA": b"\0\5\26\7", "Mantra-GSC/English/EMEA/0001.txt": b"x",
                    "Mantra-GSC/English/EMEA/0001.ann": b""},
     {"train": 186, "validation": 28, "test": 53}),
])
def test_the_real_cards_fetch_a_release_zip_into_the_mirror_layout(shared_data, served, tmp_path, monkeypatch,
                                                                    capsys, name, extra, sizes):
    card = load_registry()[name]
    spec, mirror = card.data.fetch, shared_data / card.data.local.dir
    zip_sha = _upstream_zip(served.root / urlsplit(f"{spec.base}/{spec.archive}").path.lstrip("/"), mirror,
                            list(spec.files), extra)
    _repinned_registry(tmp_path, monkeypatch, name, zip_sha)
    to = tmp_path / "data"
    assert main(["data", "fetch", name, "--to", str(to)]) == 0
    folder = to / card.data.local.dir
    out = capsys.readouterr().out
    assert f"{name}: {len(spec.files)} files, sha256 verified ({len(spec.files)} extracted from {spec.archive}) " \
           f"-> {folder}" in out and f"export BIOBENCH_DATA_DIR={to}" in out
    got = sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file())
    on_mirror = sorted(p.relative_to(mirror).as_posix() for p in mirror.rglob("*") if p.is_file()
                       and p.parent != mirror)  # the mirror's own notes (SOURCE.md, README.upstream.md) aside
    assert got == on_mirror == sorted(spec.files)
    assert all((folder / rel).read_bytes() == (mirror / rel).read_bytes() for rel in got)
    fetched, staged = load_task(get_card(name), to), load_task(get_card(name), shared_data)
    assert {s: len(rows) for s, rows in fetched.splits.items()} == sizes
    assert fetched.data_sha256 == staged.data_sha256
    assert all(fetched.splits[s][:] == staged.splits[s][:] for s in sizes)


def test_the_ddi_archive_pin_is_the_one_the_mirror_was_extracted_from(shared_data):
    """The zip itself is not in the mirror; its SOURCE.md records the sha256 of the zip it was extracted from."""
    source = (shared_data / "en/DDI/SOURCE.md").read_text(encoding="utf-8")
    spec = get_card("ddi").data.fetch
    assert f"`{spec.archive}` (sha256 {spec.archive_sha256})" in source
    assert "819b0fa538ed83ab2a8b4f5417bba3c03249b7f3" in source and spec.base.endswith("/819b0fa538ed83ab2a8b4f5417bba3c03249b7f3")
