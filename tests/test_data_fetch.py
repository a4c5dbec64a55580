"""`biobench data fetch` against a local HTTP server on 127.0.0.1 (no internet at test time): files served
at the paths of their pinned URLs, the URLs' host replaced through BIOBENCH_FETCH_MIRROR. Covers the layout
the card expects, sha256 checks, files already there, a mismatch, a download cut short (never a half file
in place), corpora that cannot be fetched, the `data.fetch` card field, and (given the mirror) every pin."""

from __future__ import annotations

import hashlib
import http.server
import shutil
import threading
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import yaml

from biobench.cards import CardError, load_registry, parse_card
from biobench.cli import main
from biobench.data import load_task
from biobench.data.fetch import FetchError, download, file_url
from test_data_readers import make_card


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


class Server:
    """A static file server on 127.0.0.1 that counts requests and can cut one file's body short."""

    def __init__(self, root: Path):
        self.root, self.requests, self.truncate = root, [], set()
        server = self

        class Handler(http.server.SimpleHTTPRequestHandler):
            def __init__(self, *args, **kwargs):
                super().__init__(*args, directory=str(server.root), **kwargs)

            def log_message(self, *args):  # keep pytest's output clean
                pass

            def do_GET(self):
                server.requests.append(self.path)
                if self.path in server.truncate:  # promise the whole file, send half, hang up
                    body = Path(self.translate_path(self.path)).read_bytes()
                    self.send_response(200)
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body[: len(body) // 2])
                    self.wfile.flush()
                    self.close_connection = True
                    return
                super().do_GET()

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def put(self, url: str, src: Path) -> Path:
        """Serve `src` at the path of `url` (its host is ignored: BIOBENCH_FETCH_MIRROR replaces it)."""
        dest = self.root / urlsplit(url).path.lstrip("/")
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(src, dest)
        return dest


@pytest.fixture
def server(tmp_path, monkeypatch):
    s = Server(tmp_path / "www")
    monkeypatch.setenv("BIOBENCH_FETCH_MIRROR", s.url)
    yield s
    s.httpd.shutdown()
    s.httpd.server_close()


@pytest.fixture
def sample_task(tmp_path, fixture_data, server, monkeypatch):
    """The ncbi_disease card as `ncbi_sample`, pinned to the in-repo sample's files, served at the real URLs."""
    from biobench.cards import get_card

    raw = yaml.safe_load(Path(get_card("ncbi_disease").path).read_text(encoding="utf-8"))
    raw["name"] = "ncbi_sample"
    src = fixture_data / "en/NCBI-disease-IOB"
    raw["data"]["fetch"]["files"] = {name: sha256(src / name) for name in raw["data"]["fetch"]["files"]}
    cards = tmp_path / "cards"
    cards.mkdir()
    (cards / "ncbi_sample.yaml").write_text(yaml.safe_dump(raw, allow_unicode=True), encoding="utf-8")
    monkeypatch.setenv("BIOBENCH_TASKS_PATH", str(cards))
    base = raw["data"]["fetch"]["base"]
    for name in raw["data"]["fetch"]["files"]:
        server.put(f"{base}/{name}", src / name)
    return base, src


def test_fetch_lays_out_the_card_folder_and_verifies_each_file(tmp_path, sample_task, server, capsys):
    base, src = sample_task
    to = tmp_path / "data"
    assert main(["data", "fetch", "ncbi_sample", "--to", str(to)]) == 0
    out = capsys.readouterr().out
    folder = to / "en/NCBI-disease-IOB"
    assert f"ncbi_sample: 3 files, sha256 verified (3 downloaded) -> {folder}" in out
    assert f"export BIOBENCH_DATA_DIR={to}" in out
    names = ("train.tsv", "devel.tsv", "test.tsv")
    assert sorted(server.requests) == sorted(urlsplit(f"{base}/{n}").path for n in names)
    for name in ("train.tsv", "devel.tsv", "test.tsv"):
        assert (folder / name).read_bytes() == (src / name).read_bytes()
    assert sorted(p.name for p in folder.iterdir()) == ["devel.tsv", "test.tsv", "train.tsv"]  # no temp files
    from biobench.cards import get_card

    task = load_task(get_card("ncbi_sample"), to)  # laid out as the card expects
    assert [len(task.splits[s]) for s in ("train", "validation", "test")] == [400, 150, 150]

    # Again: the files are there and verified, nothing is downloaded.
    server.requests.clear()
    assert main(["data", "fetch", "ncbi_sample", "--to", str(to)]) == 0
    assert "(0 downloaded, 3 already there)" in capsys.readouterr().out and server.requests == []


def test_sha256_mismatch_is_one_line_and_leaves_nothing(tmp_path, sample_task, server, capsys):
    base, src = sample_task
    served = server.root / urlsplit(f"{base}/devel.tsv").path.lstrip("/")
    served.write_bytes(served.read_bytes().replace(b"O\n", b"B-Disease\n", 1))  # one tag changed upstream
    to = tmp_path / "data"
    assert main(["data", "fetch", "ncbi_sample", "--to", str(to)]) == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert err.startswith("ncbi_sample: error: devel.tsv: sha256 mismatch")
    assert f"expected {sha256(src / 'devel.tsv')}, got {sha256(served)}" in err
    folder = to / "en/NCBI-disease-IOB"
    assert not (folder / "devel.tsv").exists()
    assert not [p for p in folder.iterdir() if p.name.startswith(".")]  # no temporary file left


def test_a_download_cut_short_never_leaves_a_half_file(tmp_path, sample_task, server):
    base, src = sample_task
    url = f"{base}/train.tsv"
    server.truncate.add(urlsplit(url).path)
    dest = tmp_path / "data" / "train.tsv"
    with pytest.raises(FetchError, match=r"^train\.tsv: download cut short: \d+ of \d+ bytes") as err:
        download(file_url(base, "train.tsv"), dest, sha256(src / "train.tsv"))
    assert str(server.url) in str(err.value)
    assert list(dest.parent.iterdir()) == []  # neither the file nor its temporary part


def test_a_different_file_already_there_is_never_overwritten(tmp_path, sample_task, capsys):
    to = tmp_path / "data"
    mine = to / "en/NCBI-disease-IOB/test.tsv"
    mine.parent.mkdir(parents=True)
    mine.write_text("my\tO\n")
    assert main(["data", "fetch", "ncbi_sample", "--to", str(to)]) == 1
    err = capsys.readouterr().err
    assert f"{mine}: already there but not the pinned release file" in err and "move it away" in err
    assert mine.read_text() == "my\tO\n"


def test_unfetchable_corpora_say_how_to_obtain_them(tmp_path, capsys):
    assert main(["data", "fetch", "deid", "phenotype", "--to", str(tmp_path)]) == 1
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("deid: not fetched (the card pins no public files); obtain it by hand: PhysioNet, "
                             "credentialed")
    assert "physionet.org/content/deidentifiedmedicaltext" in out[0] and "physionet.org" in out[1]
    assert not any(tmp_path.iterdir())


def test_fetch_needs_a_destination(monkeypatch, capsys):
    monkeypatch.delenv("BIOBENCH_DATA_DIR", raising=False)
    assert main(["data", "fetch", "ncbi_disease"]) == 2
    assert "--to DIR" in capsys.readouterr().err


def test_mirror_replaces_scheme_and_host_and_keeps_the_path():
    base = "https://raw.githubusercontent.com/isegura/DDICorpus/819b0fa/DDICorpus"
    assert file_url(base, "Test/a b.xml", mirror="") == f"{base}/Test/a%20b.xml"
    assert file_url(base, "Test/a b.xml", mirror="http://127.0.0.1:8000/pfx/") == \
        "http://127.0.0.1:8000/pfx/isegura/DDICorpus/819b0fa/DDICorpus/Test/a%20b.xml"
    with pytest.raises(FetchError, match="BIOBENCH_FETCH_MIRROR='127.0.0.1'"):
        file_url(base, "x", mirror="127.0.0.1")


@pytest.mark.parametrize("fetch, field, needle", [
    ({"base": "http://example.org/x", "files": {"a.tsv": "0" * 64}}, "data.fetch.base", "https://"),
    ({"base": "https://example.org/x", "files": {"../a.tsv": "0" * 64}}, "data.fetch.files.../a.tsv", "relative"),
    ({"base": "https://example.org/x", "files": {"a.tsv": "abc"}}, "data.fetch.files.a.tsv", "64 lower-case hex"),
    ({"base": "https://example.org/x", "files": {}}, "data.fetch.files", "at least one file"),
    ({"base": "https://example.org/x", "files": {"a.tsv": "0" * 64}, "sha": 1}, "data.fetch.sha", "unknown field"),
])
def test_fetch_field_errors_name_the_card_and_field(tmp_path, fetch, field, needle):
    data = {"local": {"dir": "d", "format": "conll", "files": {"train": "a.tsv", "validation": "a.tsv",
                                                                "test": "a.tsv"}}, "obtain": "x", "fetch": fetch}
    with pytest.raises(CardError) as err:
        parse_card(make_card(tmp_path, data=data))
    assert f"t.yaml: field '{field}'" in str(err.value) and needle in str(err.value)


def test_fetch_needs_the_local_folder_it_fills(tmp_path):
    data = {"hub": {"path": "a/b"}, "obtain": "x", "fetch": {"base": "https://e.org", "files": {"a": "0" * 64}}}
    with pytest.raises(CardError, match="field 'data.fetch': expected a 'data.local' folder"):
        parse_card(make_card(tmp_path, data=data))


def _manifest_card(tmp_path: Path, manifest_text: str | None, **fetch) -> Path:
    data = {"local": {"dir": "d", "format": "conll", "files": {"train": "a.tsv", "validation": "a.tsv",
                                                                "test": "a.tsv"}}, "obtain": "x",
            "fetch": {"base": "https://example.org/x", **fetch}}
    card = make_card(tmp_path, data=data)
    if manifest_text is not None:
        (card.parent / "m.sha256").write_text(manifest_text, encoding="utf-8")
    return card


def test_a_manifest_beside_the_card_pins_a_release_of_many_files(tmp_path):
    text = f"{'a' * 64}  a.tsv\n{'b' * 64}  sub/b.txt\n"
    card = parse_card(_manifest_card(tmp_path, text, manifest="m.sha256"))
    assert card.data.fetch.files == {"a.tsv": "a" * 64, "sub/b.txt": "b" * 64}


@pytest.mark.parametrize("text, fetch, needle", [
    ("x" * 64 + " a.tsv\n", {"manifest": "m.sha256"}, "m.sha256:1: expected '<sha256>  <relative path>'"),
    (f"{'a' * 64}  a.tsv\n{'b' * 63}  b.tsv\n", {"manifest": "m.sha256"}, "data.fetch.files.b.tsv"),
    (f"{'a' * 64}  ../a.tsv\n", {"manifest": "m.sha256"}, "data.fetch.files.../a.tsv"),
    (None, {"manifest": "m.sha256"}, "field 'data.fetch.manifest': expected an existing file"),
    ("", {"manifest": "../m.sha256"}, "field 'data.fetch.manifest': expected the name of a .sha256 file"),
    ("", {"manifest": "m.sha256", "files": {"a.tsv": "0" * 64}}, "exactly one of 'files'"),
])
def test_manifest_errors_name_the_file_and_line_or_field(tmp_path, text, fetch, needle):
    with pytest.raises(CardError) as err:
        parse_card(_manifest_card(tmp_path, text, **fetch))
    assert needle in str(err.value) and "\n" not in str(err.value)


def test_fetch_a_manifest_pinned_release_from_the_server(tmp_path, fixture_data, server, monkeypatch, capsys):
    """The HoC card's manifest form, on the in-repo HoC sample served at the release's URLs: every listed file
    arrives in the card's folder with its bytes."""
    from biobench.cards import get_card

    src = fixture_data / "en/HoC"
    raw = yaml.safe_load(Path(get_card("hoc").path).read_text(encoding="utf-8"))
    raw["name"] = "hoc_sample"
    base = raw["data"]["fetch"]["base"]
    rels = sorted(p.relative_to(src).as_posix() for p in src.rglob("*") if p.is_file() and p.name != "SOURCE.md")
    cards = tmp_path / "cards"
    cards.mkdir()
    (cards / "hoc_sample.sha256").write_text("".join(f"{sha256(src / r)}  {r}\n" for r in rels), encoding="utf-8")
    raw["data"]["fetch"]["manifest"] = "hoc_sample.sha256"
    (cards / "hoc_sample.yaml").write_text(yaml.safe_dump(raw, allow_unicode=True), encoding="utf-8")
    monkeypatch.setenv("BIOBENCH_TASKS_PATH", str(cards))
    for r in rels:
        server.put(f"{base}/{r}", src / r)
    to = tmp_path / "data"
    assert main(["data", "fetch", "hoc_sample", "--to", str(to)]) == 0
    assert f"hoc_sample: {len(rels)} files, sha256 verified ({len(rels)} downloaded)" in capsys.readouterr().out
    assert len(rels) == 80 and all((to / "en/HoC" / r).read_bytes() == (src / r).read_bytes() for r in rels)


# --- against the full mirror ---------------------------------------------------------------------

def test_every_pin_matches_the_mirror_and_covers_the_files_the_card_reads(shared_data):
    pinned = {name: card for name, card in load_registry().items() if card.data.fetch}
    assert len(pinned) >= 11
    for name, card in pinned.items():
        folder = shared_data / card.data.local.dir
        for rel, digest in card.data.fetch.files.items():
            assert sha256(folder / rel) == digest, (name, rel)
        items = [i for entry in card.data.local.files.values() for i in (entry if isinstance(entry, list) else [entry])]
        named = {i if isinstance(i, str) else i["file"] for i in items}
        named |= {card.data.local.options["test_ids"]} if "test_ids" in card.data.local.options else set()
        files = set(card.data.fetch.files)
        for item in named:  # a file the card names is pinned; a folder it names (HoC's ".") has pinned files
            assert item in files or item == "." or any(f.startswith(item.rstrip("/") + "/") for f in files), (name, item)


def test_fetch_every_pinned_corpus_from_a_local_copy_of_the_mirror(shared_data, server, tmp_path, capsys):
    """Every card pinned file by file (raw files or the biobench package); the zip-pinned ones (DDI, MANTRA) are
    fetched from archives rebuilt from the mirror in test_data_fetch_archive.py."""
    pinned = {name: card for name, card in load_registry().items() if card.data.fetch and not card.data.fetch.archive}
    for card in (c for c in pinned.values() if not c.data.fetch.packaged):
        for rel in card.data.fetch.files:
            served = server.root / urlsplit(f"{card.data.fetch.base}/{rel}").path.lstrip("/")
            served.parent.mkdir(parents=True, exist_ok=True)
            if not served.exists():
                served.symlink_to(shared_data / card.data.local.dir / rel)
    to = tmp_path / "data"
    assert main(["data", "fetch", *sorted(pinned), "--to", str(to)]) == 0
    assert capsys.readouterr().out.count("sha256 verified") == len(pinned)
    from biobench.cards import get_card

    sizes = {n: [len(s) for s in load_task(get_card(n), to).splits.values()] for n in ("ncbi_disease", "pubmedqa", "hoc")}
    assert sizes == {"ncbi_disease": [5424, 923, 940], "pubmedqa": [450, 50, 500], "hoc": [12257, 1773, 3434]}


def test_a_file_missing_upstream_is_one_line_with_the_http_status(tmp_path, sample_task, server, capsys):
    base, _ = sample_task
    (server.root / urlsplit(f"{base}/test.tsv").path.lstrip("/")).unlink()
    assert main(["data", "fetch", "ncbi_sample", "--to", str(tmp_path)]) == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith("ncbi_sample: error: test.tsv: download failed: HTTP 404")
    assert not (tmp_path / "en/NCBI-disease-IOB/test.tsv").exists()
