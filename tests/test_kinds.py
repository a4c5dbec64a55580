"""Task kinds: NER windowing and first-sub-token labels, truncation counts, label sets, weights."""

import numpy as np
import pytest
from datasets import Dataset

from biobench.kinds import get_kind
from biobench.kinds.token_ner import IGNORE, assign_owners, plan_windows
from biobench.protocols import resolve_protocol


@pytest.fixture(scope="module")
def tokenizer(minilm_path):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(minilm_path)


def make_kind(name, tokenizer, rows, labels=None, max_length=512, **flags):
    protocol = resolve_protocol("paper", "en", name, flags=flags)
    return get_kind(name)(tokenizer, protocol, max_length, labels, Dataset.from_list(rows))


def ner_row(tokens, tags):
    return {"id": "x", "group": "g", "tokens": tokens, "tags": tags}


def one_hot_outputs(kind, enc):
    """Logits that predict each feature's own training labels (O where a label is ignored)."""
    outs = []
    for f in enc.features:
        logits = np.zeros((len(f["input_ids"]), len(kind.tags)))
        for pos, label in enumerate(f["labels"]):
            logits[pos, 0 if label == IGNORE else label] = 1.0
        outs.append(logits)
    return outs


# ---------------------------------------------------------------------------------------------
# token_ner: windows


def test_plan_windows_and_owners_by_hand():
    # 8 one-sub-token words, budget 4, stride .5 -> windows advance 2 words: [0,4) [2,6) [4,8)
    lengths = [1] * 8
    windows = plan_windows(lengths, budget=4, stride=0.5)
    assert windows == [(0, 4), (2, 6), (4, 8)]
    # margin = min(words before, words after) inside the window; the largest margin wins, ties early:
    # w2: [0,4) min(2,1)=1 vs [2,6) min(0,3)=0 -> window 0;  w3: [0,4) min(3,0)=0 vs [2,6) min(1,2)=1 -> 1
    # w4: [2,6) min(2,1)=1 vs [4,8) min(0,3)=0 -> 1;        w5: [2,6) min(3,0)=0 vs [4,8) min(1,2)=1 -> 2
    assert assign_owners(lengths, windows) == [0, 0, 0, 1, 1, 2, 2, 2]


def test_plan_windows_with_multi_subtoken_and_overlong_words():
    # sub-tokens [1, 4 (capped at the budget), 1], budget 4: the long word stands alone; no gap, no loop
    assert plan_windows([1, 4, 1], budget=4, stride=0.5) == [(0, 1), (1, 2), (2, 3)]
    # fits at once -> one window
    assert plan_windows([2, 1, 1], budget=4, stride=0.5) == [(0, 3)]


def test_long_sentence_every_word_predicted_exactly_once(tokenizer):
    words = [f"w{i % 7}" if i % 5 else "adenomatous" for i in range(60)]  # mixes 1- and 4-sub-token words
    tags = ["B-Disease" if i % 5 == 0 else ("I-Disease" if i % 5 == 1 else "O") for i in range(60)]
    kind = make_kind("token_ner", tokenizer, [ner_row(words, tags)], labels=["Disease"], max_length=24)
    enc = kind.encode(Dataset.from_list([ner_row(words, tags), ner_row(["short"], ["O"])]))
    assert all(len(f["input_ids"]) <= 24 for f in enc.features)
    assert enc.notes["split_examples"] == 1 and enc.notes["windows"] == len(enc.features) > 3
    predicted = sorted((i, w) for i, owned in enc.meta for w, _ in owned)
    assert predicted == [(0, w) for w in range(60)] + [(1, 0)]  # each word once, none missing
    # With logits that reproduce the training labels, decoding gives back the gold tags exactly.
    assert kind.decode(enc, one_hot_outputs(kind, enc)) == [tags, ["O"]]
    assert kind.score(enc, one_hot_outputs(kind, enc))["seqeval_f1"] == 100.0


def test_window_owner_is_the_window_with_most_context(tokenizer):
    # one-sub-token words, max_length 6 -> budget 4 after [CLS] [SEP]: same windows as the hand example
    words = list("abcdefgh")
    kind = make_kind("token_ner", tokenizer, [ner_row(words, ["O"] * 8)], labels=["Disease"], max_length=6)
    enc = kind.encode(Dataset.from_list([ner_row(words, ["O"] * 8)]))
    owned = [[w for w, _ in owned] for _, owned in enc.meta]
    assert owned == [[0, 1, 2], [3, 4], [5, 6, 7]]
    # the window's token position of each owned word: 1 + its offset in the window ([CLS] first)
    assert [pos for _, o in enc.meta for _, pos in o] == [1, 2, 3, 2, 3, 2, 3, 4]


def test_first_subtoken_labelling(tokenizer):
    words = ["The", "adenomatous", "polyposis", "coli", "gene"]  # aden ##oma ##tou ##s | poly ##po ##sis
    tags = ["O", "B-Disease", "I-Disease", "I-Disease", "O"]
    kind = make_kind("token_ner", tokenizer, [ner_row(words, tags)], labels=["Disease"])
    assert kind.tags == ["O", "B-Disease", "I-Disease"]
    (feature,) = kind.encode(Dataset.from_list([ner_row(words, tags)])).features
    tokens = tokenizer.convert_ids_to_tokens(feature["input_ids"])
    assert tokens == ["[CLS]", "the", "aden", "##oma", "##tou", "##s", "poly", "##po", "##sis", "coli", "gene", "[SEP]"]
    x = IGNORE
    assert feature["labels"] == [x, 0, 1, x, x, x, 2, x, x, 2, 0, x]


def test_overlong_word_and_empty_word_are_still_predicted(tokenizer):
    words = ["a", "pneumonoultramicroscopicsilicovolcanoconiosis", "\u200b", "b"]  # 17 sub-tokens; 0 sub-tokens
    tags = ["O", "B-Disease", "O", "O"]
    kind = make_kind("token_ner", tokenizer, [ner_row(words, tags)], labels=["Disease"], max_length=8)
    enc = kind.encode(Dataset.from_list([ner_row(words, tags)]))
    assert enc.notes["words_cut"] == 1 and enc.notes["empty_words"] == 1
    assert sorted(w for _, owned in enc.meta for w, _ in owned) == [0, 1, 2, 3]
    assert kind.decode(enc, one_hot_outputs(kind, enc)) == [tags]


def test_ner_labels_from_data_and_unknown_tag(tokenizer):
    rows = [ner_row(["a", "b"], ["B-Gene", "B-Chem"])]
    kind = make_kind("token_ner", tokenizer, rows)
    assert kind.labels == ["Chem", "Gene"]
    with pytest.raises(ValueError, match="B-Disease"):
        kind.encode(Dataset.from_list([ner_row(["a"], ["B-Disease"])]))


# ---------------------------------------------------------------------------------------------
# sequence kinds


def test_classification_truncation_is_counted_and_pairs_may_be_missing(tokenizer):
    rows = [{"id": "1", "group": "g", "text": "short one", "text_pair": None, "label": "no"},
            {"id": "2", "group": "g", "text": "a rather long sentence " * 5, "text_pair": "and its pair", "label": "yes"}]
    kind = make_kind("classification", tokenizer, rows, max_length=10)
    assert kind.labels == ["no", "yes"]
    enc = kind.encode(Dataset.from_list(rows))
    assert enc.notes == {"examples": 2, "truncated": 1}
    assert [len(f["input_ids"]) for f in enc.features] == [4, 10]  # [CLS] short one [SEP]; cut to 10
    assert enc.gold == [0, 1]
    assert kind.score(enc, [np.array([2.0, 0.0]), np.array([0.0, 1.0])])["accuracy"] == 100.0


def test_multilabel_weighted_bce_and_threshold(tokenizer):
    rows = [{"id": str(i), "group": "g", "text": "t", "labels": labels}
            for i, labels in enumerate([["A", "B"], ["B"], ["B"], []])]
    kind = make_kind("multilabel", tokenizer, rows, labels=["A", "B", "C"], weighted_bce=True)
    # n_pos: A 1, B 3, C 0 of 4 -> pos_weight A 3/1 = 3, B 1/3, C never seen -> 1 (neutral)
    assert kind.pos_weight.tolist() == pytest.approx([3.0, 1 / 3, 1.0])
    enc = kind.encode(Dataset.from_list(rows))
    assert enc.gold[0] == [1.0, 1.0, 0.0]
    # sigmoid(0.1) > .5 fires, sigmoid(-0.1) < .5 does not: predictions equal gold -> micro-F1 100
    outs = [np.where(np.array(g) > 0, 0.1, -0.1) for g in enc.gold]
    assert kind.score(enc, outs)["micro_f1"] == 100.0
    assert make_kind("multilabel", tokenizer, rows).pos_weight is None  # paper en: plain BCE


def test_similarity_is_a_one_output_regression(tokenizer):
    rows = [{"id": str(i), "group": "g", "text": "a", "text_pair": "b", "score": s} for i, s in enumerate([0.5, 3.0, 4.0])]
    kind = make_kind("similarity", tokenizer, rows)
    assert kind.model_kwargs() == {"num_labels": 1, "problem_type": "regression"}
    enc = kind.encode(Dataset.from_list(rows))
    assert [f["labels"] for f in enc.features] == [0.5, 3.0, 4.0]
    assert kind.score(enc, [np.array([v]) for v in (1.0, 2.0, 3.0)])["spearman"] == 100.0


def test_unknown_kind():
    with pytest.raises(ValueError, match="unknown task kind"):
        get_kind("relation_extraction")


def test_every_card_kind_has_a_module():
    from biobench.cards import KIND_METRICS
    from biobench.kinds import KIND_MODULES

    assert set(KIND_METRICS) <= set(KIND_MODULES)
    assert all(get_kind(name).name == name for name in KIND_MODULES)


@pytest.mark.parametrize("overflow", [True, False], ids=["fast-tokenizer", "no-encodings"])
def test_sequence_truncation_count_and_features_in_one_pass(tokenizer, overflow):
    """A fast tokenizer's overflow counts the cut rows in one pass; without encodings (a slow tokenizer)
    a second pass counts them. Both must agree with each row's untruncated length and give each row's
    own truncated encoding, also when only some rows have a text_pair."""
    from biobench.kinds.base import _tokenize

    def slow(*args, **kwargs):  # what a slow (Python) tokenizer returns: no `encodings`
        enc = tokenizer(*args, **kwargs)
        enc._encodings = None
        return enc

    texts = ["fever " * n for n in (2, 30, 5, 60, 1)]
    pairs = [None, "cough " * 20, "rash", None, "cough " * 40]
    features, cut = _tokenize(tokenizer if overflow else slow, texts, pairs, 16)
    assert cut == sum(len(tokenizer(t, p)["input_ids"]) > 16 for t, p in zip(texts, pairs)) == 3
    assert features == [dict(tokenizer(t, p, truncation=True, max_length=16)) for t, p in zip(texts, pairs)]


@pytest.mark.parametrize("task", ["biosses", "hoc"])  # sentence pairs; long abstracts (truncated at 128)
def test_one_pass_truncation_count_on_real_data(task, tokenizer, fixture_data, tmp_path):
    from biobench.cards import get_card
    from biobench.data import load_task
    from biobench.kinds.base import _tokenize, as_columns
    from test_fixture_data import sample_card

    # HoC's card cuts the full release at fixed abstract counts: the 40-abstract sample is cut by fractions.
    card = sample_card(task, tmp_path, {"rule": "random", "seed": 42, "fractions": [0.7, 0.1, 0.2]}) \
        if task == "hoc" else get_card(task)
    train = load_task(card, fixture_data).splits["train"]
    rows = as_columns(train.select(range(min(200, len(train)))))
    texts, pairs = rows["text"], rows.get("text_pair") or [None] * len(rows["text"])
    for max_length in (32, 128):
        features, cut = _tokenize(tokenizer, texts, pairs, max_length)
        assert cut == sum(len(tokenizer(t, p)["input_ids"]) > max_length for t, p in zip(texts, pairs)) > 0
        assert features == [dict(tokenizer(t, p, truncation=True, max_length=max_length)) for t, p in zip(texts, pairs)]
