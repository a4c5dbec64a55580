"""`biobench corpus`: a task-adaptive pretraining corpus from real task data that holds no held-out text.

Real data, twice: the repository's samples (tests/fixtures/data: NCBI-disease, BIOSSES, PubMedQA and the first 40
of its 60 raw PubMed abstracts), always; and, with a mirror (pytest --data-dir), the full NCBI-disease
{train,devel,test}.tsv, GAD {train,test}.tsv, BIOSSES biosses.tsv and the first 40 lines of
pretrain/en/pubmed_abstracts_1MB/PubMedAbstract_1MB.txt.
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path
from types import SimpleNamespace

import pytest
import yaml

from biobench.cli import main
from biobench.pretrain.task_corpus import HeldOut

RAW = "pretrain/en/pubmed_abstracts_1MB/PubMedAbstract_1MB.txt"


def _detokenize(words: list[str]) -> str:
    """How the sentence reads in a raw abstract: no space around hyphens, none before , . ) or after (."""
    text = " ".join(words)
    for a, b in ((" - ", "-"), (" ,", ","), (" .", "."), (" )", ")"), ("( ", "("), (" ;", ";")):
        text = text.replace(a, b)
    return text


def _canon(text: str) -> str:
    """Independent of the module: lower-cased word tokens joined by single spaces, padded for whole-word search."""
    return " " + " ".join(re.findall(r"\w+", text.lower())) + " "


# --- the overlap rule, on hand-made cases with known answers -------------------------------------------------

def test_overlap_rule_known_cases():
    long_sentence = ("Mutations in the ATM gene cause ataxia - telangiectasia , a recessive disorder of "
                     "childhood with cerebellar degeneration .")  # 18 word tokens
    medium = "Deficiency of complement C9 is common in Japan ."  # 8 word tokens
    held = HeldOut()
    for text in (long_sentence, medium, "Results ."):
        held.add(text)
    assert held.units == 3
    # the tokenized held-out sentence inside a raw abstract, written as a raw abstract writes it
    assert held.overlaps("Background text here. Mutations in the ATM gene cause ataxia-telangiectasia, a recessive "
                         "disorder of childhood with cerebellar degeneration. More text follows.")
    # 13 consecutive words shared (the rest of the sentence differs: other entity masks, other ending)
    assert held.overlaps("Mutations in the ATM gene cause ataxia telangiectasia a recessive disorder of childhood "
                         "in adults")
    # 12 shared words are not enough for a long held-out unit
    assert not held.overlaps("Mutations in the ATM gene cause ataxia telangiectasia a recessive disorder of "
                             "adults and more")
    # an 8-word held-out unit contained whole
    assert held.overlaps("We found that deficiency of complement C9 is common in Japan, unlike elsewhere.")
    assert not held.overlaps("We found that deficiency of complement C9 is common in Korea.")
    # a one-word unit counts only when equal: "Results ." opens many abstract sections
    assert held.overlaps("results")
    assert not held.overlaps("Results were negative in every group.")
    # a training sentence of 13+ words that sits inside a held-out abstract
    held.add("First sentence of a held-out abstract . " + long_sentence.replace("ATM", "NBS1") + " Last one .")
    assert held.overlaps("Mutations in the NBS1 gene cause ataxia - telangiectasia , a recessive disorder of childhood")


# --- the command on real data ---------------------------------------------------------------------------------
# Two data sources: the repository's samples (tests/fixtures/data: always) and the full mirror (--data-dir).
TASKS = {"samples": ("ncbi_disease", "biosses", "pubmedqa"), "mirror": ("ncbi_disease", "gad", "biosses")}


def _held_out_units(data: Path, split_written: str = "train",
                    tasks: tuple[str, ...] = TASKS["mirror"]) -> list[str]:
    """Every held-out text unit of the tasks, read through the loader (the same splits the command sees)."""
    from biobench.cards import SPLITS, get_card
    from biobench.data import load_task

    units = []
    for name in tasks:
        card = get_card(name)
        task = load_task(card, data)
        for split in SPLITS:
            if split == split_written:
                continue
            for row in task.splits[split]:
                if card.kind == "token_ner":
                    units.append(" ".join(row["tokens"]))
                else:
                    units += [t for t in (row["text"], row["text_pair"]) if t]
    return units


@pytest.fixture(scope="module", params=["samples", pytest.param("mirror", marks=pytest.mark.full_corpus)])
def built(request, tmp_path_factory):
    """Build once per data source: three real tasks, plus raw text made of 40 real abstracts, three planted
    held-out sentences, a training sentence and a re-spaced abstract."""
    from biobench.cards import get_card
    from biobench.data import load_task

    data = request.getfixturevalue("fixture_data" if request.param == "samples" else "shared_data")
    tasks = TASKS[request.param]
    tmp = tmp_path_factory.mktemp("corpus")
    abstracts = (data / RAW).read_text(encoding="utf-8").splitlines()[:40]
    ncbi = load_task(get_card("ncbi_disease"), data)
    third = load_task(get_card(tasks[-1] if request.param == "samples" else "gad"), data)
    test_sentence = next(r["tokens"] for r in ncbi.splits["test"] if len(r["tokens"]) > 20)
    dev_sentence = next(r["tokens"] for r in ncbi.splits["validation"] if len(r["tokens"]) > 20)
    if request.param == "mirror":
        held = third.splits["validation"][0]["text"]  # GAD's dev sentence, held out of train.tsv by the card's rule
    else:
        held = " ".join(third.splits["test"][0]["text_pair"].split()[:20])  # 20 words of a PubMedQA test abstract
    planted = [
        abstracts[0] + " " + _detokenize(test_sentence) + " " + abstracts[1][:300],  # a test sentence inside
        _detokenize(dev_sentence),  # a dev sentence alone, detokenized
        abstracts[2][:400] + " " + held,  # held-out text of the third task, inside
        " ".join(ncbi.splits["train"][0]["tokens"]),  # a training sentence again: a duplicate, not a leak
    ]
    raw = tmp / "raw.txt"
    raw.write_text("\n".join(abstracts + planted + ["  " + abstracts[3].replace(" ", "   ") + "  "]) + "\n",
                   encoding="utf-8")
    out = tmp / "out"
    code = main(["corpus", "--tasks", ",".join(tasks), "--raw", str(raw), "--data-dir", str(data), "--out", str(out)])
    assert code == 0
    manifest = yaml.safe_load((out / "manifest.yaml").read_text(encoding="utf-8"))
    return SimpleNamespace(source=request.param, data=data, tasks=tasks, out=out, manifest=manifest, planted=planted,
                           abstracts=abstracts)


def test_no_held_out_text_leaks(built):
    """Brute force, independent of the module's n-gram index: no written document equals a validation or test
    unit, and none contains one of 8 or more words (compared as lower-cased word tokens, so tokenization and
    punctuation cannot hide a leak). Candidates come from an inverted index of the documents' word pairs, and
    every candidate is checked by substring search."""
    from collections import defaultdict

    docs = (built.out / "corpus.txt").read_text(encoding="utf-8").splitlines()
    written = {" ".join(d.split()) for d in docs}
    canon = [_canon(d) for d in docs]
    pairs: dict[tuple[str, str], set[int]] = defaultdict(set)
    for i, c in enumerate(canon):
        words = c.split()
        for pair in zip(words, words[1:]):
            pairs[pair].add(i)
    canon_set = set(canon)
    units = _held_out_units(built.data, tasks=built.tasks)
    assert len(units) == built.manifest["guard"]["units"] + sum(1 for u in units if not _canon(u).strip())
    leaks, searched = [], 0
    for unit in units:
        c = _canon(unit)
        words = c.split()
        if " ".join(unit.split()) in written or c in canon_set:
            leaks.append(unit)
        elif len(words) >= 8:
            searched += 1
            candidates = pairs.get(tuple(words[:2]), set()) & pairs.get(tuple(words[-2:]), set())
            leaks += [unit for i in candidates if c in canon[i]]
    assert searched > (2000 if built.source == "mirror" else 150)  # mirror: 923 + 940 NCBI, 535 + 534 GAD, 72 BIOSSES
    assert leaks == []


def test_planted_leaks_are_dropped_and_counted(built):
    docs = (built.out / "corpus.txt").read_text(encoding="utf-8").splitlines()
    raw = next(s for s in built.manifest["sources"] if s["kind"] == "raw")
    # 40 abstracts + 4 planted + the 4th abstract again with other spacing
    assert raw["documents_read"] == 45
    assert raw["dropped_overlap"] == 3  # the three planted held-out sentences
    distinct = len(set(built.abstracts))  # 39: lines 12 and 13 of the release are the same abstract
    assert raw["duplicates"] == 40 - distinct + 2  # + the NCBI training sentence, the re-spaced abstract
    assert raw["documents"] == distinct
    assert not any(p in docs for p in built.planted[:3])
    assert docs.count(built.abstracts[3]) == 1


def test_corpus_file_and_manifest_agree(built):
    from biobench.pretrain.corpus import check_readable, corpus_files

    corpus, manifest = built.out / "corpus.txt", built.manifest
    docs = corpus.read_text(encoding="utf-8").splitlines()
    assert len(docs) == len(set(docs)) == manifest["totals"]["documents"]
    assert all(d and d == " ".join(d.split()) for d in docs)
    assert sum(len(d.split()) for d in docs) == manifest["totals"]["whitespace_tokens"]
    assert hashlib.sha256(corpus.read_bytes()).hexdigest() == manifest["sha256"]
    by_source = {s["source"]: s for s in manifest["sources"]}
    assert list(by_source)[:3] == [f"task:{t}" for t in built.tasks]
    for s in manifest["sources"]:
        assert s["documents_read"] == s["duplicates"] + s["dropped_overlap"] + s["documents"]
    if built.source == "mirror":
        # NCBI's train file: 5,424 sentences, one document each
        assert by_source["task:ncbi_disease"]["documents_read"] == 5424
        assert by_source["task:gad"]["documents_read"] == 4796 - 535  # train.tsv's rows less the 535 held out as dev
        assert manifest["guard"]["splits"]["gad"] == {"validation": 535, "test": 534}
    # `biobench pretrain --corpus DIR` reads exactly corpus.txt (the manifest is not a corpus suffix)
    assert corpus_files([str(built.out)]) == [corpus]
    check_readable([corpus], "text")


def test_missing_data_names_the_task_and_where_to_get_it(fixture_data, tmp_path, capsys):
    """BIOSSES is in the samples in full; phenotype (PhysioNet, credentialed) is never anywhere."""
    code = main(["corpus", "--tasks", "biosses,phenotype", "--data-dir", str(fixture_data), "--out", str(tmp_path)])
    err = capsys.readouterr().err
    assert code == 2
    assert len(err.strip().splitlines()) == 1  # one line per missing task
    assert "task 'phenotype'" in err and "physionet.org" in err.lower()
    assert not (tmp_path / "corpus.txt").exists()
    code = main(["corpus", "--tasks", "biosses,phenotype", "--data-dir", str(fixture_data), "--out", str(tmp_path),
                 "--skip-missing"])
    assert code == 0
    manifest = yaml.safe_load((tmp_path / "manifest.yaml").read_text(encoding="utf-8"))
    assert list(manifest["skipped_missing"]) == ["phenotype"]
    assert [s["source"] for s in manifest["sources"]] == ["task:biosses"]


def test_validation_split_and_tokenizer_counts(fixture_data, tmp_path, minilm_path):
    """--split validation writes dev text that overlaps no train or test text (for `analyze cka`), and
    --tokenizer counts what `biobench pretrain` packs: each document with [CLS] ... [SEP]."""
    from transformers import AutoTokenizer

    code = main(["corpus", "--tasks", "biosses", "--split", "validation", "--data-dir", str(fixture_data),
                 "--out", str(tmp_path), "--tokenizer", str(minilm_path)])
    assert code == 0
    manifest = yaml.safe_load((tmp_path / "manifest.yaml").read_text(encoding="utf-8"))
    docs = (tmp_path / "corpus.txt").read_text(encoding="utf-8").splitlines()
    assert manifest["guard"]["splits"]["biosses"] == {"train": 64, "test": 20}
    others = {_canon(u) for u in _held_out_units(fixture_data, "validation", ("biosses",))}
    assert len(others) > 100
    assert not {_canon(d) for d in docs} & others
    tok = AutoTokenizer.from_pretrained(str(minilm_path))
    expected = sum(len(tok(d)["input_ids"]) for d in docs)
    assert manifest["totals"]["tokenizer_tokens"] == expected


def test_guard_tasks_protect_tasks_not_written(shared_data, tmp_path):
    """--guard-tasks: a GAD test sentence in the raw text is dropped when GAD is guarded, kept when not."""
    from biobench.cards import get_card
    from biobench.data import load_task

    gad_test = load_task(get_card("gad"), shared_data).splits["test"][3]["text"]
    abstracts = (shared_data / RAW).read_text(encoding="utf-8").splitlines()[:5]
    raw = tmp_path / "raw.txt"
    raw.write_text("\n".join(abstracts + [abstracts[4][:300] + " " + gad_test]) + "\n", encoding="utf-8")
    counts = {}
    for guard in ([], ["--guard-tasks", "gad"]):
        out = tmp_path / f"out{len(guard)}"
        assert main(["corpus", "--tasks", "biosses", "--raw", str(raw), "--data-dir", str(shared_data),
                     "--out", str(out), *guard]) == 0
        manifest = yaml.safe_load((out / "manifest.yaml").read_text(encoding="utf-8"))
        counts[bool(guard)] = manifest["sources"][-1]["dropped_overlap"]
        if guard:
            assert manifest["guard"]["splits"]["gad"] == {"validation": 535, "test": 534}
            assert [s["source"] for s in manifest["sources"]][0] == "task:biosses"  # GAD text is not written
    assert counts == {False: 0, True: 1}
