"""The complete task registry: the paper's 19 cards plus similarity and the BLURB / DrBenchmark extras;
`data check` sizes and label sets on every corpus of the mirror (`pytest --data-dir`; published sizes where published,
the card's documented rule otherwise); the readers of corpora that cannot ship, on small files written
here in their native formats."""

from __future__ import annotations

import json
import random

import pytest

from biobench.cards import get_card, load_registry, suite_tasks
from biobench.data import DataError, load_task
from test_data_readers import load, local

PAPER = {
    "paper-en": {"chemprot": ("classification", "micro_f1", 512), "phenotype": ("multilabel", "micro_f1", 8192),
                 "cos": ("token_ner", "seqeval_f1", 512), "social_history": ("token_ner", "seqeval_f1", 512),
                 "deid": ("token_ner", "seqeval_f1", 8192), "anatem": ("token_ner", "seqeval_f1", 512),
                 "bc5cdr": ("token_ner", "seqeval_f1", 512), "jnlpba": ("token_ner", "seqeval_f1", 512),
                 "ncbi_disease": ("token_ner", "seqeval_f1", 512), "gad": ("classification", "micro_f1", 512),
                 "hoc": ("multilabel", "micro_f1", 512)},
    "paper-fr": {"fracco_30": ("multilabel", "micro_f1", 4096), "fracco_100": ("multilabel", "micro_f1", 4096),
                 "cantemist_fr": ("multilabel", "micro_f1", 4096), "distemist_fr": ("multilabel", "micro_f1", 4096),
                 "meddialog_fr": ("multilabel", "micro_f1", 4096), "diamed": ("classification", "weighted_f1", 2048),
                 "quaero_emea": ("span_ner", "exact_span_f1", 1024), "quaero_medline": ("span_ner", "exact_span_f1", 1024)},
}
EXTRAS = {
    "similarity": {"biosses", "clister"},
    "blurb": {"bc5cdr_chem", "bc5cdr_disease", "bc2gm", "jnlpba", "ncbi_disease", "chemprot", "ddi", "gad",
              "biosses", "hoc_blurb", "pubmedqa"},
    "drbenchmark": {"e3c", "morfitt", "mantra_gsc", "frenchmedmcqa", "quaero_emea_token", "quaero_medline_token",
                    "diamed", "clister"},
    "span-ner": {"quaero_emea", "quaero_medline", "quaero_emea_documents"},
}

# split sizes (rows) of every task whose data is here. Published: NCBI, BC5CDR (+chem/disease), AnatEM,
# BC2GM, ChemProt (bio_electra release), MORFITT, FrenchMedMCQA, PubMedQA test, DDI test, QUAERO docs.
# Card rule: JNLPBA / GAD / PubMedQA / DDI / E3C holdouts; HoC, BIOSSES, FRACCO, MANTRA random splits.
SIZES = {
    "ncbi_disease": (5424, 923, 940), "bc5cdr": (4560, 4581, 4797), "bc5cdr_chem": (4560, 4581, 4797),
    "bc5cdr_disease": (4560, 4581, 4797), "anatem": (5861, 2118, 3830), "bc2gm": (12574, 2519, 5038),
    "chemprot": (16521, 10361, 14396), "gad": (4261, 535, 534), "hoc": (12257, 1773, 3434),
    "hoc_blurb": (12257, 1773, 3434),
    "jnlpba": (17079, 1895, 3979), "biosses": (64, 16, 20), "ddi": (25719, 2072, 5716),
    "pubmedqa": (450, 50, 500), "fracco_30": (1030, 129, 129), "fracco_100": (1037, 129, 130),
    "quaero_emea_token": (742, 689, 641), "quaero_medline_token": (985, 989, 1026), "morfitt": (1514, 1022, 1088),
    "quaero_emea": (706, 649, 578), "quaero_medline": (833, 832, 833), "quaero_emea_documents": (11, 12, 15),
    "e3c": (454, 50, 605), "mantra_gsc": (186, 28, 53), "frenchmedmcqa": (2171, 312, 622),
}


def test_registry_has_every_task_with_the_papers_settings():
    registry = load_registry()
    for suite, tasks in PAPER.items():
        assert set(suite_tasks(suite, registry)) == set(tasks)
        for name, (kind, metric, max_length) in tasks.items():
            card = registry[name]
            assert (card.kind, card.metric, card.max_length) == (kind, metric, max_length), name
            assert card.citation and card.data.obtain and card.data.release
    for suite, tasks in EXTRAS.items():
        assert set(suite_tasks(suite, registry)) == tasks
    assert registry["biosses"].metric == "pearson" and registry["clister"].metric == "spearman"
    assert registry["frenchmedmcqa"].kind == "multiple_choice"
    # Point 7: every card of a benchmark whose protocol differs from the paper's names that protocol.
    for suite, preset in (("blurb", "blurb"), ("drbenchmark", "drbenchmark")):
        assert all(preset in registry[t].protocol for t in EXTRAS[suite]), suite
    assert "older than the paper" in registry["fracco_30"].data.release


@pytest.fixture(scope="module")
def checked(shared_data):
    from biobench.commands.data import check_task

    return {name: check_task(get_card(name), shared_data) for name in SIZES}


@pytest.mark.parametrize("name", sorted(SIZES))
def test_data_check_sizes(checked, name):
    report = checked[name]
    assert report["status"] == "ok"
    assert tuple(report["sizes"][s] for s in ("train", "validation", "test")) == SIZES[name]


def test_data_check_label_sets(checked):
    def test_counts(name):
        return checked[name]["label_counts"]["test"]

    assert test_counts("bc5cdr") == {"Chemical": 5385, "Disease": 4424}
    assert test_counts("anatem") == {"Anatomy": 4616} and test_counts("bc2gm") == {"GENE": 6325}
    assert test_counts("chemprot") == {"CPR:3": 664, "CPR:4": 1658, "CPR:5": 183, "CPR:6": 292, "CPR:9": 644,
                                       "false": 10955}
    assert checked["chemprot"]["notes"]["columns_read"]["test"] == {"test.tsv": ["sentence", "label"]}
    assert sum(test_counts("ddi").values()) == 5716 and test_counts("ddi")["false"] == 5716 - 979
    assert checked["ddi"]["notes"]["ddi"]["train"]["pairs"]["untyped_true_dropped"] == 1
    assert test_counts("pubmedqa") == {"maybe": 55, "no": 169, "yes": 276}
    assert len(checked["morfitt"]["labels"]) == 12 and len(checked["frenchmedmcqa"]["labels"]) == 5
    for k in (30, 100):
        report = checked[f"fracco_{k}"]
        assert len(report["labels"]) == k and report["notes"]["labels_from"] == "reader"
        assert report["notes"]["codes"]["train"]["missing_ann"] == ["data/brat_raw/cc_onco853"]
    assert "C50.9 8500/3" in checked["fracco_30"]["labels"]
    assert checked["quaero_medline"]["notes"]["spans"]["test"]["entities"] == 3103  # published
    assert checked["quaero_medline_token"]["notes"]["flattening"]["test"]["entities"] == 3103
    assert set(checked["mantra_gsc"]["labels"]) == {"ANAT", "CHEM", "DEVI", "DISO", "GEOG", "LIVB", "OBJC",
                                                    "PHEN", "PHYS", "PROC"}


def test_tasks_and_data_check_cli_by_suite(fixture_data, capsys):
    from biobench.cli import main

    assert main(["tasks", "--suite", "paper-fr", "--data-dir", str(fixture_data), "--json"]) == 0
    rows = {r["task"]: r for r in json.loads(capsys.readouterr().out)}
    assert len(rows) == 8 and rows["quaero_emea"]["data_here"] and not rows["fracco_30"]["data_here"]
    assert not rows["diamed"]["data_here"]
    assert main(["data", "check", "--suite", "similarity", "--data-dir", str(fixture_data), "--json"]) == 1
    reports = {r["task"]: r for r in json.loads(capsys.readouterr().out)}
    assert reports["biosses"]["status"] == "ok"
    assert "gitlab.inria.fr/codeine/clister" in reports["clister"]["error"]  # not here: where to get it


@pytest.mark.parametrize("name, where", [("phenotype", "physionet.org/content/phenotype-annotations-mimic"),
                                         ("deid", "physionet.org/content/deidentifiedmedicaltext"),
                                         ("cos", "University of Washington"), ("cantemist_fr", "zenodo.8355629"),
                                         ("diamed", "Dr-BERT/DiaMED")])
def test_absent_corpus_says_where_to_get_and_put_it(tmp_path, name, where):
    card = get_card(name)
    with pytest.raises(DataError) as err:
        load_task(card, tmp_path)
    msg = str(err.value)
    assert where in msg and f"{tmp_path / card.data.local.dir} does not exist" in msg and "--data-dir" in msg


def _write(root, files):
    for rel, text in files.items():
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(text, encoding="utf-8")


# --- readers of corpora that are not here, on files in their native formats -------------------------

PHENO_HEADER = ("ROW_ID,SUBJECT_ID,HADM_ID,BATCH.ID,OPERATOR,UNSURE,ADVANCED.CANCER,DEPRESSION,NONE,OBESITY\n")


def test_phenotype_multilabel_union_unsure_and_missing_note(tmp_path):
    card = get_card("phenotype")
    root = tmp_path / card.data.local.dir
    notes = "ROW_ID,SUBJECT_ID,TEXT\n" + "".join(f'{i},9,"Note {i}\nline two, with a comma."\n' for i in range(1, 21))
    annotations = PHENO_HEADER + "".join(f"{i},9,1,b,X,0,{i % 2},0,{1 - i % 2},0\n" for i in range(1, 21))
    annotations += "1,9,1,b,Y,0,0,1,0,0\n2,9,1,b,Y,1,1,1,1,1\n"  # note 1: second opinion adds DEPRESSION
    _write(root, {"ACTdb102003.csv": annotations, "NOTEEVENTS.csv": notes})
    task = load_task(card, tmp_path)
    rows = {r["id"]: r for split in task.splits.values() for r in split}
    assert rows["1"]["labels"] == ["ADVANCED.CANCER", "DEPRESSION"] and rows["2"]["labels"] == ["NONE"]
    assert rows["1"]["text"] == "Note 1\nline two, with a comma."
    assert {s: len(d) for s, d in task.splits.items()} == {"train": 16, "validation": 2, "test": 2}
    assert task.notes["phenotype"]["train"]["unsure_rows_skipped"] == 1
    _write(root, {"ACTdb102003.csv": annotations + "99,9,1,b,X,0,1,0,0,0\n"})
    with pytest.raises(DataError, match=r"NOTEEVENTS.csv: note ROW_ID 99"):
        load_task(card, tmp_path)
    _write(root, {"ACTdb102003.csv": PHENO_HEADER.replace("OBESITY", "GOUT") + "1,9,1,b,X,0,1,0,0,0\n"})
    with pytest.raises(DataError, match=r"ACTdb102003.csv:1: label column 'GOUT' is not declared"):
        load_task(card, tmp_path)


def _deid_record(patient, note, body):
    return f"START_OF_RECORD={patient}||||{note}||||\n{body}||||END_OF_RECORD\n"


def test_deid_masked_phi_long_notes_and_offsets(tmp_path):
    card = get_card("deid")
    root = tmp_path / card.data.local.dir
    bodies, phrases = {}, []
    for n in range(1, 11):
        body = f"Pt seen by Dr. Smith on 10/{n}/2090.\nFamily at [**Hospital 12**] bedside.\n" + "Stable. " * 2000
        bodies[n] = body
        phrases.append(f"1 {n} {body.index('Smith')} {body.index('Smith') + 5} Name Smith")
        phrases.append(f"1 {n} {body.index('10/')} {body.index('10/') + len(f'10/{n}/2090')} Date 10/{n}/2090")
        if n == 1:  # a PHI the release masks in the text
            start = body.index("[**")
            phrases.append(f"1 1 {start} {start + 17} Location [**Hospital 12**]")
    _write(root, {"id.text": "".join(_deid_record(1, n, b) for n, b in bodies.items()),
                  "id-phi.phrase": "\n".join(phrases) + "\n"})
    task = load_task(card, tmp_path)
    assert task.labels == ["Date", "Location", "Name"]
    rows = [r for split in task.splits.values() for r in split if r["group"] == "1/1"]
    masked = next(r for r in rows if "[**Hospital 12**]" in r["tokens"])
    assert masked["tags"][masked["tokens"].index("[**Hospital 12**]")] == "B-Location"
    other = next(r for split in task.splits.values() for r in split if r["group"] == "1/2" and "Family" in r["tokens"])
    assert "[**Hospital 12**]" in other["tokens"] and other["tags"][other["tokens"].index("[**Hospital 12**]")] == "O"
    assert sum(len(r["tokens"]) for r in rows) > 4000  # a long note is kept whole across its sentence rows
    assert task.notes["deid"]["train"]["masked_phi"] == 1
    _write(root, {"id-phi.phrase": "1 1 0 5 Name Smith\n"})
    with pytest.raises(DataError, match=r"id-phi.phrase:1: phrase 'Smith' does not equal the note text at 0-5"):
        load_task(card, tmp_path)


BRAT_TEXT = "Smokes 2 packs daily; quit alcohol in 2010.\nLives alone.\n"
BRAT_ANN = ("T1\tTobacco 0 6\tSmokes\nT2\tAmount 7 14\t2 packs\nT3\tStatusTime 0 20\tSmokes 2 packs daily\n"
            "T4\tAlcohol 22 34;38 42\tquit alcohol 2010\nE1\tTobacco:T1 Amount:T2\nA1\tNeg E1\n")


def test_uw_brat_discontinuous_and_overlapping_spans(tmp_path):
    card = get_card("social_history")
    docs = {f"doc{i}.txt": BRAT_TEXT for i in range(20)} | {f"doc{i}.ann": BRAT_ANN for i in range(20)}
    _write(tmp_path / card.data.local.dir, docs)
    task = load_task(card, tmp_path)
    assert {s: len({r["group"] for r in d}) for s, d in task.splits.items()} == {"train": 14, "validation": 3,
                                                                                 "test": 3}
    row = next(r for r in task.splits["train"] if r["tokens"][0] == "Smokes")
    assert row["tags"][:4] == ["B-StatusTime", "I-StatusTime", "I-StatusTime", "I-StatusTime"]
    assert row["tags"][5:9] == ["B-Alcohol", "I-Alcohol", "I-Alcohol", "I-Alcohol"]  # extent of 2 fragments
    flat = task.notes["flattening"]["train"]
    assert (flat["entities"], flat["kept"], flat["nested"], flat["discontinuous"]) == (80, 40, 40, 20)
    assert task.notes["ann_lines"]["train"]["ignored"] == {"A": 20, "E": 20}
    assert task.labels == ["Alcohol", "Amount", "StatusTime", "Tobacco"]  # the release's types, nested ones too


def test_frasimed_codes_per_document(tmp_path):
    card = get_card("distemist_fr")
    root = tmp_path / card.data.local.dir / "DISTEMIST-FRASIMED"
    files = {}
    for i in range(10):
        files[f"d{i}.txt"] = "Patiente avec diabète et asthme."
        files[f"d{i}.ann"] = ("T1\tENFERMEDAD 14 21\tdiabète\n#1\tSNOMED T1\t73211009\n"
                              + ("T2\tENFERMEDAD 25 31\tasthme\n#2\tSNOMED T2\t195967001\n" if i % 2 else ""))
    files["d9.ann"] = "T1\tENFERMEDAD 14 21\tdiabète\n"  # no code: dropped
    _write(root, files)
    task = load_task(card, tmp_path)
    assert task.labels == ["195967001", "73211009"]
    assert sum(len(d) for d in task.splits.values()) == 9 and task.notes["codes"]["train"]["documents_kept"] == 9
    rows = {r["id"]: r["labels"] for d in task.splits.values() for r in d}
    assert rows["DISTEMIST-FRASIMED/d1"] == ["195967001", "73211009"]
    (root / "d3.ann").unlink()
    with pytest.raises(DataError, match=r"d3.ann: file not found \(the .txt exists\)"):
        load_task(card, tmp_path)


def test_meddialog_split_column_and_label_lists(tmp_path):
    card = get_card("meddialog_fr")
    root = tmp_path / card.data.local.dir
    ann = "id\tsplit\tlabels\n" + "".join(
        f"hm3_{i}_q\t{['train', 'dev', 'test'][i % 3]}\t{['C1', 'C2'] if i % 2 else ['C2']}\n" for i in range(9))
    ann += "hm3_9_q\ttrain\t[]\n"
    texts = "id\tmachine_translation\tpost-edited\n" + "".join(
        f"hm3_{i}_q\tmt\tQuestion {i} ?\nhm3_{i}_a\tmt\tRéponse {i}.\n" for i in range(10))
    _write(root, {"multilabel_annotation/dataset_multilabel_meddialog_22labels.csv": ann,
                  "post-editing/meddialog-fr-women_post-editing.csv": texts})
    task = load_task(card, tmp_path)
    assert {s: len(d) for s, d in task.splits.items()} == {"train": 3, "validation": 3, "test": 3}
    assert task.splits["validation"][0] == {"id": "hm3_1_q", "group": "hm3_1_q", "text": "Question 1 ?\nRéponse 1.",
                                            "labels": ["C1", "C2"]}
    assert task.notes["meddialog"]["train"]["empty_label_lists_dropped"] == 1
    _write(root, {"multilabel_annotation/dataset_multilabel_meddialog_22labels.csv": ann + "hm3_1_q\ttrain\tC1\n"})
    with pytest.raises(DataError, match=r"22labels.csv:12: column 'labels': expected a Python list"):
        load_task(card, tmp_path)


def test_clister_reproduces_drbenchmark_carve(tmp_path):
    card = get_card("clister")
    rng = random.Random(0)
    pairs = {"train": [(f"d{i}_1_0", f"d{i}_2_0", round(rng.uniform(0, 5), 1)) for i in range(600)],
             "test": [(f"t{i}_1_0", f"t{i}_2_0", 2.5) for i in range(400)]}
    files = {}
    for split, rows in pairs.items():
        files[f"{split}.csv"] = "id_1\tid_2\tsim\n" + "".join(f"{a}\t{b}\t{s}\n" for a, b, s in rows)
        files[f"id_to_sentence_{split}.json"] = json.dumps(
            {"_".join(x.split("_")[:2]): f"phrase {x}" for a, b, _ in rows for x in (a, b)})
    _write(tmp_path / card.data.local.dir, files)
    task = load_task(card, tmp_path)
    assert {s: len(d) for s, d in task.splits.items()} == {"train": 499, "validation": 101, "test": 400}
    # DrBenchmark's own code path: global random.seed(4), three shuffles of the string ids.
    ids = [str(i) for i in range(600)]
    random.seed(4)
    for _ in range(3):
        random.shuffle(ids)
    expected = [pairs["train"][int(i)] for i in sorted(ids[499:], key=int)]
    assert task.splits["validation"]["id"] == [f"{a}|{b}" for a, b, _ in expected]
    assert task.splits["validation"][0]["text"] == f"phrase {expected[0][0]}"


def test_chemprot_card_reads_a_blue_release(tmp_path):
    card = get_card("chemprot")
    blue = "index\tsentence\tlabel\n" + "".join(
        f"1000{i}.T1.T2\t@CHEMICAL$ inhibits @GENE$ .\t{lab}\n" for i, lab in enumerate(["CPR:4", "false", "CPR:3"]))
    _write(tmp_path / card.data.local.dir, {f: blue for f in ("train.tsv", "dev.tsv", "test.tsv")})
    task = load_task(card, tmp_path)
    assert task.splits["test"]["label"] == ["CPR:4", "false", "CPR:3"]
    assert task.notes["columns_read"]["test"] == {"test.tsv": ["index", "sentence", "label"]}  # which release
    _write(tmp_path / card.data.local.dir, {"dev.tsv": blue.replace("CPR:3", "CPR:10")})
    with pytest.raises(DataError, match=r"dev.tsv:4: label 'CPR:10' is not declared by the card"):
        load_task(card, tmp_path)


def test_json_records_diamed_and_nested_choices(tmp_path):
    card = get_card("diamed")
    cases = [{"clinical_case": f"Cas {i}.", "icd-10": ["C00-D49  Neoplasms", "I00-I99  Circulatory"][i % 2]}
             for i in range(4)]
    _write(tmp_path / card.data.local.dir, {f"splits/{s}.json": json.dumps(cases) for s in
                                            ("train", "validation", "test")})
    task = load_task(card, tmp_path)
    assert task.labels == ["C00-D49  Neoplasms", "I00-I99  Circulatory"] and task.splits["test"][1]["text"] == "Cas 1."
    mcq = [{"id": "q1", "question": "Q ?", "answers": {k: k.upper() for k in "abcde"}, "correct_answers": ["b", "e"]}]
    task = load(tmp_path, {"q.json": json.dumps(mcq)}, kind="multiple_choice", labels=list("abcde"),
                data=local("json", {s: "q.json" for s in ("train", "validation", "test")},
                           columns={"text": "question", "answers": "correct_answers",
                                    "choices": [f"answers.{k}" for k in "abcde"]}))
    assert task.splits["train"][0]["choices"] == list("ABCDE") and task.splits["train"][0]["answers"] == ["b", "e"]
    bad = [dict(mcq[0], correct_answers=["f"])]
    with pytest.raises(DataError, match=r"q.json item 0: label 'f' is not declared"):
        load(tmp_path, {"q.json": json.dumps(bad)}, kind="multiple_choice", labels=list("abcde"),
             data=local("json", {s: "q.json" for s in ("train", "validation", "test")},
                        columns={"text": "question", "answers": "correct_answers",
                                 "choices": [f"answers.{k}" for k in "abcde"]}))


def test_multiple_choice_kind_encodes_collates_and_scores(minilm_path, fixture_data):
    import numpy as np
    from transformers import AutoTokenizer

    from biobench.kinds.multiple_choice import KIND
    from biobench.protocols import resolve_protocol

    task = load_task(get_card("frenchmedmcqa"), fixture_data)
    rows = task.splits["validation"].select(range(4))
    kind = KIND(AutoTokenizer.from_pretrained(str(minilm_path)), resolve_protocol("paper", "fr", "multiple_choice"),
                64, task.labels, task.splits["train"])
    enc = kind.encode(rows)
    batch = kind.collator()(enc.features)
    assert batch["input_ids"].shape[:2] == (4, 5) and batch["labels"].shape == (4, 5)
    gold = np.asarray(enc.gold)
    assert kind.score(enc, list(np.where(gold > 0, 3.0, -3.0))) == {"hamming_score": 100.0, "emr": 100.0}
    # all logits negative: each question predicts its best option only
    logits = [np.array([-1.0, -2.0, -3.0, -4.0, -5.0])] * 4
    pred = kind.predict_sets(logits)
    assert pred.sum(axis=1).tolist() == [1, 1, 1, 1] and pred[:, 0].all()
