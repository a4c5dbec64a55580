"""Card validation: each kind of mistake raises CardError naming the file and the field."""

from __future__ import annotations

import pytest

from biobench.cards import CardError, load_registry, parse_card, suite_tasks
from test_data_readers import make_card

_DATA = {"local": {"dir": "d", "format": "conll", "files": {"train": "a.tsv"}}, "obtain": "x"}


@pytest.mark.parametrize("fields, field", [
    ({"citation": None}, "citation"),                                   # missing required field
    ({"max_length": "512"}, "max_length"),                              # wrong type
    ({"colour": "blue"}, "colour"),                                     # unknown field
    ({"metric": "pearson"}, "metric"),                                  # metric not allowed for token_ner
    ({"metric": None}, "metric"),                                       # no metric: refused, never defaulted
    ({"data": {**_DATA, "local": {**_DATA["local"], "format": "xml"}}}, "data.local.format"),  # unknown reader
    ({"data": {**_DATA, "local": {**_DATA["local"], "files": {"dev": "a.tsv"}}}}, "data.local.files.dev"),
    ({"data": {"local": _DATA["local"]}}, "data.obtain"),
    ({"protocol": {"paper": {"learning_rate": 1e-5}}}, "protocol.paper"),
])
def test_card_errors_name_file_and_field(tmp_path, fields, field):
    path = make_card(tmp_path, **fields)
    with pytest.raises(CardError) as err:
        parse_card(path)
    assert str(err.value).startswith(f"{path}: field '{field}'")


def test_every_packaged_card_parses():
    registry = load_registry()
    assert {"ncbi_disease", "jnlpba", "gad", "hoc", "biosses", "quaero_emea"} <= set(registry)
    for card in registry.values():
        assert card.citation and card.data.obtain and card.data.release and card.suites
    assert "quaero_emea" in suite_tasks("paper-fr", registry)
    assert registry["gad"].data.split == {"rule": "holdout", "seed": 42, "count": 535}
    assert "dev.tsv" not in str(registry["gad"].data.local.files)
