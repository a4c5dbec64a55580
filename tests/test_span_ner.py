"""span_ner: the paper's French NER protocol (nested entities, span head, exact / partial span F1).

Known answers come from independent computations: brute-force enumeration (CRF, metric), hand-built
cases (decoder, window edges), and a plain count over the .ann files (QUAERO entity counts).
"""

from __future__ import annotations

import itertools
import math
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import torch

from conftest import save_tiny_bert
from biobench.data import brat
from biobench.data.errors import DataError
from biobench.data.source import ReadContext, SourceFiles
from biobench.data.spans import Entity, merge_fragments, outermost, span_rows
from biobench.kinds.crf import BIOULCRF, bioul_constraints
from biobench.kinds.span_ner import SpanNER, filter_overlapping_same_label, window_owner
from biobench.metrics import span_scores
from biobench.protocols import resolve_protocol

TINY_HEAD = {"lstm_hidden": 16, "lstm_layers": 1, "biaffine_size": 8}


# --- metric ------------------------------------------------------------------------------------------

def brute_force_counts(gold, pred):
    """Exact and partial counts by the plainest loops: for every (document, triple) check membership / overlap."""
    exact_tp = partial_p = partial_g = n_pred = n_gold = 0
    for g, p in zip(gold, pred):
        g, p = list(dict.fromkeys(g)), list(dict.fromkeys(p))  # sets, in a fixed order
        n_pred += len(p)
        n_gold += len(g)
        for triple in p:
            if triple in g:
                exact_tp += 1
            for other in g:
                if other[2] == triple[2] and max(other[0], triple[0]) < min(other[1], triple[1]):
                    partial_p += 1
                    break
        for triple in g:
            for other in p:
                if other[2] == triple[2] and max(other[0], triple[0]) < min(other[1], triple[1]):
                    partial_g += 1
                    break
    return exact_tp, partial_p, partial_g, n_pred, n_gold


def f1(p, r):
    return 0.0 if p + r == 0 else 2 * p * r / (p + r)


def test_span_scores_on_nested_and_crossing_examples_match_a_brute_force_count():
    gold = [
        # nested DISO "métastases hépatiques" with ANAT "hépatiques", a crossing pair, a same-span pair
        [(0, 21, "DISO"), (11, 21, "ANAT"), (30, 40, "CHEM"), (35, 45, "CHEM"), (50, 55, "PROC"), (50, 55, "DISO")],
        [(3, 9, "LIVB")],
        [],
    ]
    pred = [
        [(0, 21, "DISO"), (11, 21, "DISO"), (30, 40, "CHEM"), (36, 45, "CHEM"), (50, 55, "PROC")],
        [(3, 9, "LIVB"), (3, 9, "LIVB")],  # a duplicate prediction counts once (sets, as tabib)
        [(0, 4, "ANAT")],
    ]
    got = span_scores(gold, pred)
    tp, pp, pg, n_pred, n_gold = brute_force_counts(gold, pred)
    # by hand: exact hits (0,21,DISO) (30,40,CHEM) (50,55,PROC) (3,9,LIVB); partial: every prediction but
    # (0,4,ANAT); gold found: all but ANAT (11,21) (no ANAT prediction) and DISO (50,55) (no overlapping DISO)
    assert (tp, pp, pg, n_pred, n_gold) == (4, 6, 5, 7, 7)
    assert got["exact_span_precision"] == pytest.approx(100 * tp / n_pred, abs=1e-4)
    assert got["exact_span_recall"] == pytest.approx(100 * tp / n_gold, abs=1e-4)
    assert got["exact_span_f1"] == pytest.approx(100 * f1(tp / n_pred, tp / n_gold), abs=1e-4)
    assert got["partial_span_precision"] == pytest.approx(100 * pp / n_pred, abs=1e-4)
    assert got["partial_span_f1"] == pytest.approx(100 * f1(pp / n_pred, pg / n_gold), abs=1e-4)


def test_span_scores_random_documents_match_brute_force():
    rng = np.random.default_rng(0)
    labels = ["A", "B"]

    def doc():
        return [(int(s), int(s + w), labels[int(k)]) for s, w, k in
                zip(rng.integers(0, 30, 8), rng.integers(1, 6, 8), rng.integers(0, 2, 8))]

    gold = [doc() for _ in range(20)]
    pred = [doc()[:5] + g[:3] for g in gold]  # some exact hits, many overlaps
    tp, pp, pg, n_pred, n_gold = brute_force_counts(gold, pred)
    got = span_scores(gold, pred)
    assert got["exact_span_f1"] == pytest.approx(100 * f1(tp / n_pred, tp / n_gold), abs=1e-4)
    assert got["partial_span_recall"] == pytest.approx(100 * pg / n_gold, abs=1e-4)
    assert got["partial_span_f1"] == pytest.approx(100 * f1(pp / n_pred, pg / n_gold), abs=1e-4)
    assert span_scores([[(0, 1, "A")]], [[]])["exact_span_f1"] == 0.0
    with pytest.raises(ValueError, match="2 gold documents but 1 predicted"):
        span_scores([[], []], [[]])


# --- decoder -----------------------------------------------------------------------------------------

def test_no_overlapping_same_label_keeps_the_most_probable_and_lets_types_nest():
    candidates = [
        (0, 21, "DISO", 0.90),
        (11, 21, "ANAT", 0.80),  # nested, other type: kept
        (11, 21, "DISO", 0.95),  # same type, overlaps (0, 21): more probable, so it wins
        (0, 10, "DISO", 0.60),  # overlaps nothing kept of its type once (0, 21) lost: kept
        (30, 40, "CHEM", 0.70),
        (35, 45, "CHEM", 0.70),  # tie in probability: the longer first; equal length: the earlier
        (50, 52, "PROC", 0.55),
        (50, 53, "PROC", 0.55),  # same probability, longer: wins
    ]
    assert filter_overlapping_same_label(candidates) == [
        (0, 10, "DISO"), (11, 21, "ANAT"), (11, 21, "DISO"), (30, 40, "CHEM"), (50, 53, "PROC")]
    assert filter_overlapping_same_label([]) == []


def test_window_owner_is_the_window_with_most_context():
    windows = [(0, 10), (5, 15), (10, 20)]
    assert window_owner(1, 2, windows) == 0
    assert window_owner(8, 9, windows) == 1  # margin 0 in window 0, 3 in window 1
    assert window_owner(7, 7, windows) == 0  # margins min(7, 2) = 2 and min(2, 7) = 2: a tie goes to the earlier
    assert window_owner(4, 12, windows) == -1  # no window holds it


# --- CRF: forward-backward against enumeration ----------------------------------------------------------

def test_crf_marginals_and_partition_match_enumeration():
    torch.manual_seed(0)
    crf = BIOULCRF(n_types=1)  # tags O, I, B, L, U
    with torch.no_grad():
        crf.transitions.normal_()
        crf.start_transitions.normal_()
        crf.end_transitions.normal_()
    emissions = torch.randn(2, 4, crf.n_tags)
    mask = torch.tensor([[1, 1, 1, 1], [1, 1, 1, 0]])
    with torch.no_grad():
        marginals = crf.marginals(emissions, mask).exp()
        log_z = crf.log_partition(emissions, mask)
    trans, start, end = (t.double() for t in crf.potentials())
    for b in range(2):
        n = int(mask[b].sum())
        scores, by_tag = {}, torch.zeros(n, crf.n_tags, dtype=torch.float64)
        for path in itertools.product(range(crf.n_tags), repeat=n):
            score = start[path[0]] + end[path[-1]] + sum(emissions[b, t, path[t]].double() for t in range(n))
            score += sum(trans[path[t - 1], path[t]] for t in range(1, n))
            scores[path] = score
        z = torch.logsumexp(torch.stack(list(scores.values())), 0)
        for path, score in scores.items():
            for t, tag in enumerate(path):
                by_tag[t, tag] += torch.exp(score - z)
        assert float(log_z[b]) == pytest.approx(float(z), abs=1e-4)
        assert torch.allclose(marginals[b, :n].double(), by_tag, atol=1e-5)


def test_bioul_constraints_allow_entities_and_forbid_broken_chains():
    allowed, start, end = bioul_constraints(2)
    O, I1, B1, L1, U1, I2, B2 = 0, 1, 2, 3, 4, 5, 6
    for a, b in ((O, B1), (B1, I1), (I1, L1), (L1, O), (U1, B2), (O, U1), (L1, I1), (B1, B1)):
        assert allowed[a, b], (a, b)
    for a, b in ((O, I1), (O, L1), (B1, O), (I1, O), (B1, I2)):
        assert not allowed[a, b], (a, b)
    assert not start[I1] and not start[L1] and start[B1] and not end[B1] and not end[I1] and end[U1]


# --- the head ----------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory, minilm_path):
    """A random-init 2-layer BERT in a local folder: safetensors weights + the MiniLM tokenizer."""
    return save_tiny_bert(tmp_path_factory.mktemp("tiny-bert-span"), minilm_path)


@pytest.fixture()
def tiny_head(monkeypatch):
    monkeypatch.setattr(SpanNER, "sizes", TINY_HEAD)


def test_padding_changes_no_span_score(tiny_model):
    """The BiLSTM reads each row reversed within its own length and the CRF masks padding: a row scores
    the same alone and padded in a batch."""
    from biobench.kinds.span_model import SpanNERModel

    torch.manual_seed(0)
    net = SpanNERModel.from_pretrained(tiny_model, n_types=3, max_span=5, dropout=0.4, **TINY_HEAD).eval()
    ids = torch.randint(1000, 2000, (2, 12))
    mask = torch.ones_like(ids)
    mask[1, 7:] = 0
    with torch.no_grad():
        batch = net(input_ids=ids, attention_mask=mask).logits[1, :7].view(7, 5, 3)
        alone = net(input_ids=ids[1:, :7], attention_mask=mask[1:, :7]).logits[0].view(7, 5, 3)
    inside = torch.tensor([[i + w < 7 for w in range(5)] for i in range(7)])  # spans that end in the row
    assert torch.allclose(batch[inside], alone[inside], atol=1e-5)
    assert not torch.allclose(batch[~inside], alone[~inside], atol=1e-5)  # past the end: never candidates


def kind_for(tokenizer, labels, max_length=512, **flags):
    protocol = resolve_protocol("smoke", "fr", "span_ner", None, flags)
    return SpanNER(tokenizer, protocol, max_length, labels, None)


def oracle_outputs(kind, enc):
    """Logits a perfect model would give: +10 for every gold (span, type) of the window, -10 elsewhere."""
    batch = kind.collator()(enc.features)
    labels = batch["labels"].float()
    outputs = []
    for j, f in enumerate(enc.features):
        n = len(f["input_ids"])
        outputs.append(np.where(labels[j, :n].numpy() > 0, 10.0, -10.0))
    return outputs


def test_entity_across_a_window_edge_is_neither_lost_nor_counted_twice(minilm_path):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(minilm_path)
    words = [f"w{i}" for i in range(40)]
    text = " ".join(words)  # every word is one or more sub-tokens; windows of 14 content tokens
    starts = [text.index(f"w{i} ") if i < 39 else text.rindex("w39") for i in range(40)]

    def char_span(first, last):
        return starts[first], starts[last] + len(words[last])

    kind = kind_for(tokenizer, ["A", "B"], max_length=16)
    enc_probe = kind.encode({"id": ["d"], "text": [text], "entities": [[]]})
    windows = enc_probe.rows[0][1]  # type: ignore[attr-defined]
    assert len(windows) > 2
    offsets = enc_probe.rows[0][0]  # type: ignore[attr-defined]
    edge = windows[0][1]  # first token NOT in window 0
    word_of = lambda tok: next(i for i in range(40) if starts[i] <= offsets[tok][0] < starts[i] + len(words[i]))  # noqa: E731
    first, last = word_of(edge - 2), word_of(edge + 1)
    across = char_span(first, last)  # starts in window 0, ends past its edge
    inner = (starts[first + 1], across[1])  # the same without its first word
    entities = [{"id": "T1", "start": across[0], "end": across[1], "label": "A"},
                {"id": "T2", "start": inner[0], "end": inner[1], "label": "B"},  # nested in T1, other type
                {"id": "T3", "start": char_span(0, 0)[0], "end": char_span(0, 0)[1], "label": "B"}]
    enc = kind.encode({"id": ["d"], "text": [text], "entities": [entities]})
    # T1/T2 are targets only in windows holding them whole: not in window 0, which they cross
    assert [t[2] for t in enc.features[0]["labels"]] == [1]  # window 0: T3 only
    holding = [k for k, f in enumerate(enc.features) if sorted(t[2] for t in f["labels"]) == [0, 1]]
    assert holding and 0 not in holding
    decoded = kind.decode(enc, oracle_outputs(kind, enc))
    assert decoded == [{(across[0], across[1], "A"), (*inner, "B"), (0, 2, "B")}]
    assert kind.score(enc, oracle_outputs(kind, enc))["exact_span_f1"] == 100.0
    assert enc.notes["split_examples"] == 1 and enc.notes["misaligned"] == 0


def test_misaligned_and_overlong_entities_stay_in_the_gold(minilm_path):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(minilm_path)
    kind = kind_for(tokenizer, ["A"], max_span_length=2)
    text = "hypertension artérielle très sévère chez le patient"
    entities = [{"id": "T1", "start": 0, "end": 8, "label": "A"},  # ends inside the sub-token "##tension"
                {"id": "T2", "start": 0, "end": 35, "label": "A"}]  # more than 2 sub-tokens: too long
    enc = kind.encode({"id": ["d"], "text": [text], "entities": [entities]})
    assert enc.notes["misaligned"] == 1 and enc.notes["too_long"] == 1
    assert len(enc.gold[0]) == 2  # both still scored
    assert kind.score(enc, oracle_outputs(kind, enc))["exact_span_recall"] == 0.0


# --- BRAT input --------------------------------------------------------------------------------------

def test_discontinuous_rule_nesting_and_line_samples():
    text = "douleur\nthoracique et fièvre\n\nAINS"
    # fragments separated by whitespace merge; separated by words, the extent covers the gap
    assert merge_fragments(text, ((8, 18), (0, 7))) == ((0, 18),)
    assert merge_fragments(text, ((0, 7), (22, 28))) == ((0, 7), (22, 28))
    ents = [Entity("T1", "DISO", ((0, 7), (8, 18)), 1),  # across a line break
            Entity("T2", "ANAT", ((8, 18),), 2),  # nested in T1
            Entity("T3", "DISO", ((0, 7), (22, 28)), 3),  # discontinuous: extent 0..28, T1 and T2 inside it
            Entity("T4", "CHEM", ((30, 34),), 4)]
    rows, stats = span_rows("d", text, ents)
    assert [(e["start"], e["end"], e["label"]) for e in rows[0]["entities"]] == [
        (0, 18, "DISO"), (0, 28, "DISO"), (8, 18, "ANAT"), (30, 34, "CHEM")]
    assert (stats["discontinuous"], stats["discontinuous_after_merge"], stats["nested"]) == (2, 1, 2)
    lines, stats = span_rows("d", text, ents, samples="line")
    assert [r["text"] for r in lines] == ["douleur", "thoracique et fièvre", "AINS"]
    assert [r["id"] for r in lines] == ["d:0", "d:1", "d:3"]
    assert [[(e["start"], e["end"]) for e in r["entities"]] for r in lines] == [[], [(0, 10)], [(0, 4)]]
    assert stats["across_lines"] == 2 and stats["kept"] == 2
    outer, stats = span_rows("d", text, ents, nested="outermost")
    assert [e["id"] for e in outer[0]["entities"]] == ["T3", "T4"] and stats["dropped_nested"] == 2
    # tabib's filter_nested drops what lies inside a longer (or same) span; crossing entities both stay
    assert outermost([(0, 5, "A"), (3, 8, "B"), (3, 8, "C"), (4, 5, "A")]) == [0, 1]


def write_brat(folder: Path, name: str, text: str, ann: str) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{name}.txt").write_text(text, encoding="utf-8")
    (folder / f"{name}.ann").write_text(ann, encoding="utf-8")


@pytest.mark.parametrize("ann, message", [
    ("T1\tDISO 0 7\tdouleur\nT7\tDISO 20 99\tx\n", r"doc\.ann:2: T7: offsets 20 99 outside the text"),
    ("T3\tDRUG 0 7\tdouleur\n", r"doc\.ann:1: T3: label 'DRUG' is not declared"),
    ("T4\tDISO 0 7;5 12\tdouleur thora\n", r"doc\.ann:1: T4: fragments 0 7 and 5 12 overlap"),
])
def test_bad_brat_input_names_file_line_and_annotation(tmp_path, ann, message):
    write_brat(tmp_path / "train", "doc", "douleur thoracique", ann)
    ctx = ReadContext(files=SourceFiles(tmp_path), kind="span_ner", labels=("DISO", "ANAT"), options={},
                      card_path="card.yaml")
    with pytest.raises(DataError, match=message):
        brat.read(ctx, "train", "train")


def test_span_options_are_checked(tmp_path):
    write_brat(tmp_path / "train", "doc", "douleur thoracique", "T1\tDISO 0 7\tdouleur\n")
    ctx = ReadContext(files=SourceFiles(tmp_path), kind="span_ner", labels=None, options={"samples": "page"},
                      card_path="card.yaml")
    with pytest.raises(DataError, match=r"data\.local\.options\.samples': expected one of \['document', 'line'\]"):
        brat.read(ctx, "train", "train")
    ctx.kind, ctx.options = "token_ner", {"nested": "keep"}
    with pytest.raises(DataError, match="a span_ner option"):
        brat.read(ctx, "train", "train")


# --- the real QUAERO files ------------------------------------------------------------------------------

def plain_ann_counts(folder: Path) -> Counter:
    """An independent count over .ann files: T lines, multi-fragment ones, and nesting by extent."""
    out = Counter()
    for ann in sorted(folder.glob("*.ann")):
        spans = []
        for line in ann.read_text(encoding="utf-8").splitlines():
            if line.startswith("T"):
                numbers = [int(x) for x in line.split("\t")[1].replace(";", " ").split()[1:]]
                out["entities"] += 1
                out["discontinuous"] += len(numbers) > 2
                spans.append((min(numbers), max(numbers)))
        for i, (s, e) in enumerate(spans):
            others = spans[:i] + spans[i + 1:]
            out["nested"] += any(t <= s and e <= f and (t, f) != (s, e) for t, f in others)
            out["crossing"] += any(t < s < f < e or s < t < e < f for t, f in others)
    return out


# (entities, discontinuous, nested, crossing) per split, by plain_ann_counts over the release
QUAERO_COUNTS = {
    "EMEA": {"train": (2695, 27, 365, 2), "validation": (2260, 15, 364, 2), "test": (2204, 42, 399, 6)},
    "MEDLINE": {"train": (2994, 13, 795, 4), "validation": (2977, 21, 748, 6), "test": (3103, 23, 809, 6)},
}


def test_quaero_entity_counts_as_read_match_a_plain_count(shared_data):
    from biobench.cards import get_card
    from biobench.data import load_task

    root = shared_data / "fr/quaero/corpus"
    for split, folder in (("train", "train"), ("validation", "dev"), ("test", "test")):
        c = plain_ann_counts(root / folder / "EMEA")
        assert (c["entities"], c["discontinuous"], c["nested"], c["crossing"]) == QUAERO_COUNTS["EMEA"][split]
    for name, part in (("quaero_emea", "EMEA"), ("quaero_emea_documents", "EMEA"), ("quaero_medline", "MEDLINE")):
        task = load_task(get_card(name), shared_data)
        for split, expected in QUAERO_COUNTS[part].items():
            read = task.notes["spans"][split]
            assert (read["entities"], read["discontinuous"], read["nested"], read["crossing"]) == expected
            assert read["kept"] == read["entities"] - read["dropped_nested"] - read["across_lines"]
            assert sum(len(r["entities"]) for r in task.splits[split]) == read["kept"]
    # MEDLINE as in the paper (filter_nested): the outermost entities only
    assert [task.notes["spans"][s]["kept"] for s in ("train", "validation", "test")] == [2191, 2226, 2288]


def test_span_ner_end_to_end_on_real_quaero(tmp_path, tiny_model, tiny_head, fixture_data):
    """A tiny random-init encoder + a small span head on the real QUAERO EMEA samples in the repository (one
    document per split, one row per line as in the paper), step-based dev selection; the record is complete
    and its per-example side data rescores to the same test score."""
    import biobench.finetune as ft
    from biobench.cards import get_card
    from biobench.data import load_task

    card = get_card("quaero_emea")
    task = load_task(card, fixture_data)
    protocol = resolve_protocol("smoke", "fr", "span_ner", None, dict(
        max_train_examples=32, max_eval_examples=16, max_length=48, batch_size=8, epochs=50, max_steps=6,
        eval_steps=3, lr=1e-3, max_span_length=8))
    rec = ft.train_and_score(tiny_model, card, task, 1, protocol, progress=False)
    assert rec.kind == "span_ner" and rec.metric == "exact_span_f1"
    assert [h["steps"] for h in rec.history] == [3, 6]
    assert set(rec.test) == {f"{m}_span_{s}" for m in ("exact", "partial") for s in ("precision", "recall", "f1")}
    assert all(math.isfinite(h["train_loss"]) for h in rec.history)
    assert rec.notes["head"].startswith("span") and rec.notes["encoding"]["test"]["examples"] == 16
    assert rec.notes["encoding"]["train"]["split_examples"] > 0  # lines longer than 46 sub-tokens: windows
    assert rec.protocol["head_lr"] == 1e-3 and rec.protocol["eval_steps"] == 3
    side = ft.take_predictions(rec)
    assert len(side["gold"]) == 16 and sum(map(len, side["gold"])) > 0
    assert span_scores([[tuple(t) for t in g] for g in side["gold"]],
                       [[tuple(t) for t in p] for p in side["pred"]]) == rec.test


def test_paper_preset_and_record_compatibility():
    p = resolve_protocol("paper", "fr", "span_ner")
    assert (p.max_steps, p.lr, p.head_lr, p.batch_size, p.max_grad_norm, p.max_span_length, p.head_dropout,
            p.eval_steps) == (4000, 5e-5, 1e-3, 16, 10.0, 40, 0.4, 500)
    # other kinds' records do not grow the new fields (resume keeps matching records written before them)
    assert not {"head_lr", "eval_steps", "max_span_length", "head_dropout"} & set(
        resolve_protocol("paper", "fr", "token_ner").to_dict())


def test_head_lr_gives_the_head_its_own_learning_rate(tiny_model):
    import biobench.finetune as ft
    from biobench.kinds.span_model import SpanNERModel

    net = SpanNERModel.from_pretrained(tiny_model, n_types=2, max_span=4, dropout=0.1, **TINY_HEAD)
    opt = ft.make_optimizer(net, resolve_protocol("paper", "fr", "span_ner"))
    encoder = {id(p) for p in net.encoder.parameters()}
    for group in opt.param_groups:
        inside = {id(p) in encoder for p in group["params"]}
        assert len(inside) == 1 and group["lr"] == (5e-5 if inside == {True} else 1e-3)
    assert sum(len(g["params"]) for g in opt.param_groups) == len(list(net.parameters()))
