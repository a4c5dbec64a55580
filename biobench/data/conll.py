"""CoNLL / IOB column files: one token per line, columns separated by a tab, a blank line between
sentences, `-DOCSTART-` lines between documents (skipped, but they mark the document groups).

Options (card `data.local.options`, or per file): `token_column` (default 0), `tag_column`
(default -1, the last), `separator` (default a tab). Every non-blank line must have as many
columns as the file's first token line: a ragged line is reported with file:line instead of being
read into a silently shifted tag.
"""

from __future__ import annotations

from typing import Any

from biobench.data.errors import DataError
from biobench.data.schema import check_tag
from biobench.data.source import ReadContext, SplitRead, check_options, file_entries

OPTIONS = {"token_column", "tag_column", "separator"}
DEFAULTS = {"token_column": 0, "tag_column": -1, "separator": "\t"}


def read(ctx: ReadContext, split: str, entry: Any) -> SplitRead:
    check_options(ctx.options, OPTIONS, ctx, "data.local.options")
    rows: list[dict[str, Any]] = []
    names = []
    for name, opts in file_entries(entry, {**DEFAULTS, **ctx.options}, OPTIONS, ctx, split):
        names.append(name)
        rows.extend(_read_file(ctx, name, opts))
    return SplitRead(rows=rows, files=names)


def _read_file(ctx: ReadContext, name: str, opts: dict[str, Any]) -> list[dict[str, Any]]:
    where_file = ctx.files.root / name
    lines = ctx.files.read_text(name).split("\n")
    sep, tok_col, tag_col = opts["separator"], opts["token_column"], opts["tag_column"]
    rows: list[dict[str, Any]] = []
    tokens: list[str] = []
    tags: list[str] = []
    start = 0
    n_columns = None
    doc = 0
    has_docstart = False

    def close() -> None:
        if tokens:
            rid = f"{name}:{start}"
            rows.append({"id": rid, "group": f"{name}#doc{doc}" if has_docstart else rid,
                         "tokens": list(tokens), "tags": list(tags)})
            tokens.clear()
            tags.clear()

    for lineno, line in enumerate(lines, start=1):
        line = line.rstrip("\r")
        if not line.strip():
            close()
            continue
        if line.startswith("-DOCSTART-"):
            close()
            has_docstart = True
            doc += 1
            continue
        cells = line.split(sep)
        if n_columns is None:
            n_columns = len(cells)
            if n_columns < 2:
                raise DataError(f"{where_file}:{lineno}: expected at least 2 columns (token, tag) separated by "
                                f"{sep!r}, got 1")
        elif len(cells) != n_columns:
            raise DataError(f"{where_file}:{lineno}: expected {n_columns} columns separated by {sep!r} "
                            f"(as on the first token line), got {len(cells)}")
        where = f"{where_file}:{lineno}"
        try:
            token, tag = cells[tok_col], cells[tag_col]
        except IndexError:
            raise DataError(f"{where}: column index out of range for {len(cells)} columns "
                            f"(token_column={tok_col}, tag_column={tag_col})") from None
        check_tag(tag, ctx.labels, where)
        if not tokens:
            start = lineno
        tokens.append(token)
        tags.append(tag)
    close()
    return rows
