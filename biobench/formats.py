"""The names of the native data formats a card may give in `data.local.format`.

A constant list with no imports, so that `biobench.cards` can validate a card without importing the
data package (which imports the cards): the arrow stays one-way, data -> cards -> formats. Each name
has one reader in `biobench.data.load.READERS`; a test checks that the two lists are the same.
"""

FORMATS: tuple[str, ...] = (
    "brat", "brat_codes", "clister", "conll", "csv", "ddi", "deid", "hoc", "json", "jsonl", "meddialog",
    "parquet", "phenotype", "pubmedqa", "tsv",
)
