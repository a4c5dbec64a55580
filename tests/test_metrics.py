"""Metric wrappers against answers worked out by hand (the arithmetic is in the comments)."""

import pytest

from biobench.metrics import classification_scores, multilabel_scores, ner_scores, similarity_scores


def test_ner_entity_micro_scores():
    gold = [["B-D", "I-D", "O", "B-C"], ["O", "B-D", "O"]]
    pred = [["B-D", "I-D", "O", "O"], ["O", "B-D", "B-C"]]
    # gold entities: D[0:2], C[3] in s1; D[1] in s2 -> 3.  predicted: D[0:2]; D[1], C[2] in s2 -> 3.
    # correct: D[0:2] and s2 D[1] -> 2.  P = 2/3, R = 2/3, F1 = 2/3.
    s = ner_scores(gold, pred)
    assert s["seqeval_precision"] == pytest.approx(66.6667, abs=1e-3)
    assert s["seqeval_recall"] == pytest.approx(66.6667, abs=1e-3)
    assert s["seqeval_f1"] == pytest.approx(66.6667, abs=1e-3)
    assert s["seqeval_f1_strict"] == pytest.approx(66.6667, abs=1e-3)  # all well-formed IOB2: modes agree


def test_ner_i_without_b_counts_only_in_default_mode():
    """The case seqeval #23 is about: `I-X I-X` with no B- before it."""
    gold = [["B-X", "I-X", "O", "B-Y"]]
    pred = [["I-X", "I-X", "O", "B-Y"]]
    s = ner_scores(gold, pred)
    # default (conlleval): `I-X I-X` opens X[0:2] -> predicted {X[0:2], Y[3]} = gold -> P = R = F1 = 100.
    assert (s["seqeval_precision"], s["seqeval_recall"], s["seqeval_f1"]) == (100.0, 100.0, 100.0)
    # strict IOB2: `I-X I-X` is no entity -> predicted {Y[3]}: P = 1/1, R = 1/2, F1 = 2*1*.5/1.5 = 2/3.
    assert s["seqeval_precision_strict"] == 100.0
    assert s["seqeval_recall_strict"] == 50.0
    assert s["seqeval_f1_strict"] == pytest.approx(66.6667, abs=1e-3)


def test_ner_no_predicted_entities_scores_zero_not_nan():
    s = ner_scores([["B-X", "O"]], [["O", "O"]])
    assert s["seqeval_f1"] == 0.0 and s["seqeval_precision"] == 0.0


def test_classification_micro_macro_weighted_accuracy():
    gold = [0, 0, 1, 2, 2, 2]
    pred = [0, 1, 1, 2, 2, 0]
    # class 0: tp 1 (i0), fp 1 (i5), fn 1 (i1) -> P .5  R .5   F1 .5      support 2
    # class 1: tp 1 (i2), fp 1 (i1), fn 0      -> P .5  R 1    F1 2/3     support 1
    # class 2: tp 2 (i3,i4), fp 0, fn 1 (i5)   -> P 1   R 2/3  F1 .8      support 3
    # accuracy = 4/6; micro-F1 over all classes = accuracy = 66.6667
    # macro = (.5 + .666667 + .8) / 3 = 65.5556; weighted = (2*.5 + 1*.666667 + 3*.8) / 6 = 67.7778
    s = classification_scores(gold, pred, n_labels=3)
    assert s["accuracy"] == pytest.approx(66.6667, abs=1e-3)
    assert s["micro_f1"] == pytest.approx(66.6667, abs=1e-3)
    assert s["macro_f1"] == pytest.approx(65.5556, abs=1e-3)
    assert s["weighted_f1"] == pytest.approx(67.7778, abs=1e-3)


def test_classification_absent_class_counts_in_macro():
    # class 2 never gold nor predicted: F1 0 (zero_division=0) -> macro = (1 + 1 + 0) / 3 = 66.6667
    s = classification_scores([0, 1], [0, 1], n_labels=3)
    assert s["micro_f1"] == 100.0
    assert s["macro_f1"] == pytest.approx(66.6667, abs=1e-3)


def test_multilabel_micro_vs_macro():
    gold = [[1, 0, 1], [0, 1, 0], [1, 1, 0]]
    pred = [[1, 0, 0], [0, 1, 1], [1, 0, 0]]
    # label 0: tp 2, fp 0, fn 0 -> F1 1
    # label 1: tp 1 (r1), fp 0, fn 1 (r2) -> P 1, R .5 -> F1 2/3
    # label 2: tp 0, fp 1 (r1), fn 1 (r0) -> F1 0
    # micro: tp 3, fp 1, fn 2 -> P 3/4, R 3/5 -> F1 = 2*.75*.6/1.35 = 2/3 = 66.6667
    # macro: (1 + 2/3 + 0) / 3 = 55.5556
    s = multilabel_scores(gold, pred)
    assert s["micro_f1"] == pytest.approx(66.6667, abs=1e-3)
    assert s["macro_f1"] == pytest.approx(55.5556, abs=1e-3)


def test_similarity_pearson_and_spearman():
    gold = [1, 2, 3, 4]
    pred = [1, 2, 3, 10]
    # deviations: gold [-1.5, -.5, .5, 1.5] (ss 5), pred mean 4 -> [-3, -2, -1, 6] (ss 50)
    # cov sum = 4.5 + 1 - .5 + 9 = 14 -> r = 14 / sqrt(5 * 50) = 0.885438
    # ranks identical -> Spearman 1
    s = similarity_scores(gold, pred)
    assert s["pearson"] == pytest.approx(88.5438, abs=1e-3)
    assert s["spearman"] == 100.0


def test_similarity_constant_prediction_is_zero():
    assert similarity_scores([1, 2, 3], [2, 2, 2]) == {"pearson": 0.0, "spearman": 0.0}
