"""`biobench corpus`: a task-adaptive pretraining corpus from the registry, with no held-out text in it.

    biobench corpus --suite S | --tasks T1,T2 --out DIR [--split train] [--raw PATH...] [--data-dir DIR]
                    [--tokenizer M] [--guard-tasks T3,T4] [--skip-missing] [--overwrite]

Writes DIR/corpus.txt (one document per line: `biobench pretrain --corpus DIR` reads it as is) and
DIR/manifest.yaml (sources, counts, rule, sha256 of corpus.txt), and prints, per source, the documents
read, duplicates, documents dropped for overlapping held-out text, and the documents and tokens written.

What is written: the text of the chosen --split (default train) of every task, then every --raw source
(.txt one document per line, .jsonl/.json/.parquet with --text-field, folders of them). What is guarded:
the text of the *other* splits of those tasks and of --guard-tasks (for --split train: validation and test).
A document that equals, contains or shares a 13-word run with guarded text is dropped whole and counted;
see biobench/pretrain/task_corpus.py for the exact rule. `--split validation` writes held-out text for
`biobench analyze cka` that overlaps no training (nor test) text.

A task whose data is missing stops the build, naming every such task and where to obtain it;
--skip-missing builds without them (listed in the manifest; their held-out text cannot be guarded).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

from biobench.cards import SPLITS

CORPUS_FILE = "corpus.txt"
MANIFEST_FILE = "manifest.yaml"  # not a suffix pretrain reads, so `--corpus DIR` sees corpus.txt only


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.formatter_class = argparse.RawDescriptionHelpFormatter
    p.description = __doc__.split("\n\n", 1)[1]
    which = p.add_mutually_exclusive_group(required=True)
    which.add_argument("--suite", help="every task of this suite")
    which.add_argument("--tasks", help="comma-separated task names")
    p.add_argument("--split", choices=SPLITS, default="train",
                   help="the split whose text is written; the others are guarded (default %(default)s)")
    p.add_argument("--out", required=True, metavar="DIR", help="output folder (corpus.txt, manifest.yaml)")
    p.add_argument("--raw", nargs="+", default=[], metavar="PATH", help="raw text to add (files, folders, hub ids)")
    p.add_argument("--text-field", default="text", help="text field of .jsonl/.json/.parquet raw sources")
    p.add_argument("--data-dir", help="local data mirror (default: $BIOBENCH_DATA_DIR; without it: the hub)")
    p.add_argument("--guard-tasks", default="", metavar="T1,T2",
                   help="more tasks whose held-out text must not appear (their text is not written)")
    p.add_argument("--tokenizer", metavar="M", help="also count tokens with this checkpoint's tokenizer")
    p.add_argument("--skip-missing", action="store_true", help="build without tasks whose data is missing")
    p.add_argument("--overwrite", action="store_true", help="replace an existing DIR/corpus.txt")


def _names(text: str) -> list[str]:
    return [t.strip() for t in text.split(",") if t.strip()]


def run(args: argparse.Namespace) -> int:
    from biobench.cards import CardError, get_card, load_registry, suite_tasks
    from biobench.data import DataError, load_task, resolve_data_dir
    from biobench.pretrain.config import PretrainError

    try:
        registry = load_registry()
        names = suite_tasks(args.suite, registry) if args.suite else _names(args.tasks)
        guard_names = [n for n in _names(args.guard_tasks) if n not in names]
        if not names:
            raise CardError("--tasks: expected at least one task name")
        cards = {n: get_card(n, registry) for n in [*names, *guard_names]}
    except CardError as exc:
        print(f"biobench corpus: {exc}", file=sys.stderr)
        return 2
    out = Path(args.out)
    if (out / CORPUS_FILE).exists() and not args.overwrite:
        print(f"biobench corpus: {out / CORPUS_FILE} exists (pass --overwrite to replace it)", file=sys.stderr)
        return 2

    try:
        raw_files = _raw_files(args.raw, args.text_field)
    except PretrainError as exc:  # worded for pretrain's --corpus; here the flag is --raw
        print(f"biobench corpus: {str(exc).replace('--corpus', '--raw', 1)}", file=sys.stderr)
        return 2

    tokenizer = None
    if args.tokenizer:
        from biobench.models import ModelError, check_model, load_tokenizer, resolve_model

        try:
            name = resolve_model(args.tokenizer)
            check_model(name)
            tokenizer = load_tokenizer(name)
        except (ModelError, OSError) as exc:
            print(f"biobench corpus: --tokenizer {args.tokenizer}: {' '.join(str(exc).split())}", file=sys.stderr)
            return 2

    from rich.console import Console

    status = Console(stderr=True).status("")
    status.start()
    data_dir = resolve_data_dir(args.data_dir)
    loaded, missing = {}, {}
    for name, card in cards.items():
        status.update(f"loading {name}")
        try:
            loaded[name] = load_task(card, data_dir)
        except DataError as exc:
            missing[name] = str(exc)
    status.stop()
    if missing and not args.skip_missing:  # one line per missing task: which, and where to obtain it
        for message in missing.values():
            print(f"biobench corpus: {' '.join(message.split())} (--skip-missing builds without it)", file=sys.stderr)
        return 2
    if not raw_files and not any(n in loaded for n in names):
        print("biobench corpus: nothing to write (no task with data, no --raw)", file=sys.stderr)
        return 2

    started = time.perf_counter()
    with Console(stderr=True).status(f"writing {out / CORPUS_FILE}"):
        manifest = build(out, args.split, {n: loaded[n] for n in names if n in loaded},
                         {n: loaded[n] for n in guard_names if n in loaded}, cards, raw_files, args.text_field,
                         tokenizer)
    manifest["command"] = {"tasks": names, "guard_tasks": guard_names, "raw": args.raw, "split": args.split,
                           "data_dir": str(data_dir) if data_dir else None, "tokenizer": args.tokenizer}
    manifest["skipped_missing"] = missing
    manifest["seconds"] = round(time.perf_counter() - started, 2)
    _write_manifest(out / MANIFEST_FILE, manifest)
    _print(manifest, out)
    if missing:
        print(f"skipped (data missing; their held-out text was not guarded): {', '.join(missing)}")
    return 0


def _raw_files(sources: list[str], text_field: str) -> list:
    from biobench.pretrain.corpus import check_readable, corpus_files

    files = corpus_files(sources) if sources else []
    check_readable(files, text_field)
    return files


def build(out: Path, split: str, tasks: dict[str, Any], guard: dict[str, Any], cards: dict[str, Any],
          raw_files: list, text_field: str, tokenizer=None) -> dict[str, Any]:
    """Guard every split but `split` of tasks + guard, then write the tasks' `split` text and the raw text."""
    from biobench.pretrain.corpus import read_documents
    from biobench.pretrain.task_corpus import MIN_CONTAINED, NGRAM, CorpusWriter, HeldOut, SourceCount, \
        row_texts, sha256_file

    held_out = HeldOut()
    guarded: dict[str, dict[str, int]] = {}
    for name, task in {**tasks, **guard}.items():
        for other in SPLITS:
            if other != split:
                rows = task.splits[other]
                guarded.setdefault(name, {})[other] = len(rows)
                for row in rows:
                    for text in row_texts(cards[name].kind, row):
                        held_out.add(text)

    out.mkdir(parents=True, exist_ok=True)
    partial = out / (CORPUS_FILE + ".partial")
    writer = CorpusWriter(partial, held_out, tokenizer)
    try:
        for name, task in tasks.items():
            kind = cards[name].kind
            docs = (text for row in task.splits[split] for text in row_texts(kind, row))
            writer.add_source(SourceCount(f"task:{name}", "task", task.source, data_sha256=task.data_sha256), docs)
        for f in raw_files:
            writer.add_source(SourceCount(str(f), "raw", str(f)), read_documents(f, text_field))
    finally:
        writer.close()
    partial.replace(out / CORPUS_FILE)
    sources = [c.as_dict() for c in writer.counts]
    totals = {key: sum(s[key] for s in sources) for key in
              ("documents_read", "duplicates", "dropped_overlap", "documents", "whitespace_tokens")}
    if tokenizer is not None:
        totals["tokenizer_tokens"] = sum(s["tokenizer_tokens"] for s in sources)
    return {
        "corpus": CORPUS_FILE, "sha256": sha256_file(out / CORPUS_FILE), "split": split, "totals": totals,
        "sources": sources,
        "guard": {"splits": guarded, "units": held_out.units,
                  "rule": f"canonical word tokens (lower-cased \\w+); dropped when equal to a held-out unit, "
                          f"sharing a {NGRAM}-token run with one, or containing one of {MIN_CONTAINED}-"
                          f"{NGRAM - 1} tokens whole"},
        "dedup": "exact, after whitespace normalisation; first occurrence kept",
    }


def _write_manifest(path: Path, manifest: dict[str, Any]) -> None:
    import yaml

    path.write_text(yaml.safe_dump(manifest, sort_keys=False, allow_unicode=True, width=120), encoding="utf-8")


def _print(manifest: dict[str, Any], out: Path) -> None:
    from rich.console import Console
    from rich.table import Table

    has_tok = "tokenizer_tokens" in manifest["totals"]
    table = Table(title=f"{out / CORPUS_FILE} ({manifest['split']} text)", title_justify="left")
    for col in ("source", "read", "duplicate", "overlap", "written", "words",
                *(["tokens"] if has_tok else [])):
        table.add_column(col, justify="left" if col == "source" else "right", no_wrap=col == "source")

    def row(name: str, c: dict[str, Any]) -> list[str]:
        cells = [name, *(f"{c[k]:,}" for k in ("documents_read", "duplicates", "dropped_overlap", "documents",
                                               "whitespace_tokens"))]
        return cells + ([f"{c['tokenizer_tokens']:,}"] if has_tok else [])

    for s in manifest["sources"]:
        table.add_row(*row(s["source"] if s["kind"] == "task" else f"raw:{Path(s['source']).name}", s))
    table.add_row(*row("total", manifest["totals"]), style="bold")
    console = Console()
    if not console.is_terminal:  # a log file or a pipe: wide enough for the numbers
        console = Console(width=120)
    console.print(table)
    console.print(f"duplicate: equal to an earlier document; overlap: dropped for overlapping held-out text "
                  f"({manifest['guard']['units']:,} units of {', '.join(manifest['guard']['splits']) or 'no task'}); "
                  f"words: whitespace tokens written\nsha256 {manifest['sha256'][:12]}; "
                  f"manifest {out / MANIFEST_FILE}", highlight=False, soft_wrap=True)
