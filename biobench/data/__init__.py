"""Data: every task source ends as one `datasets.DatasetDict` with train / validation / test.

Sources are a local directory laid out like `../shared/data` (`<lang>/<task>/...`, chosen with
`--data-dir` or `BIOBENCH_DATA_DIR`) or a card's hub id. Readers turn native release formats into
rows of one normalised schema per task kind (BigBIO's KB / TEXT / PAIRS idea):

- token_ner:      id, tokens: list[str], tags: list[str] (IOB2 strings)
- classification: id, text: str, text_pair: str | None, label: str
- multilabel:     id, text: str, labels: list[str]
- similarity:     id, text: str, text_pair: str, score: float

Every row also has `group` (the document it came from), used by split rules so that sentences
of one document never straddle train and test.
"""

from biobench.data.load import READERS, DataError, LoadedTask, load_task, resolve_data_dir

__all__ = ["READERS", "DataError", "LoadedTask", "load_task", "resolve_data_dir"]
