"""Write the paper's published per-task numbers as biobench records (`source: published`).

Reads the French and English tables of `paper-tables.md` (beside this file; a verbatim copy of the
paper's tables) and writes one record per model x task to
`results/published/<model-slug>/<task>/published.json`. The Avg column is not stored: the
leaderboard recomputes it (tests/test_leaderboard_published.py checks it against the paper).

    python results/published/make_published.py            # rewrite the records here
    python results/published/make_published.py --out DIR  # write them elsewhere (tests use this)

A published record carries a mean only: `primary` is the paper's number, `seed` is -1 (no seed),
`notes.n_seeds` the paper's seed count (French 9, English 5), `notes.row` / `notes.column` the
row and column in the paper's table (the leaderboard keeps the paper's order), and
`protocol = {"name": "paper", ...}` so a new `--protocol paper` run lands in the same table, and
`definition` what the number measures (kind, metric, and where the paper's code states them the data
release, split and unit: DEFINITIONS), which the leaderboard compares with the runs' before ranking them together.
"""

from __future__ import annotations

import argparse
import re
from pathlib import Path

from biobench.records import RunRecord, model_slug, write_record

HERE = Path(__file__).resolve().parent
SOURCE = HERE / "paper-tables.md"
PAPER = "arXiv 2605.12438 (CLM detour), per-task tables"

# Paper column header -> (task, kind, primary metric). Kinds and metrics follow DESIGN.md §4;
# the French NER tasks were scored by the paper's span head with exact-span entity F1.
COLUMNS = {
    "fr": {
        "FRACCO-30": ("fracco_30", "multilabel", "micro_f1"),
        "FRACCO-100": ("fracco_100", "multilabel", "micro_f1"),
        "CANTEMIST": ("cantemist_fr", "multilabel", "micro_f1"),
        "DISTEMIST": ("distemist_fr", "multilabel", "micro_f1"),
        "MedDialog": ("meddialog_fr", "multilabel", "micro_f1"),
        "DiaMED": ("diamed", "classification", "weighted_f1"),
        "EMEA": ("quaero_emea", "span_ner", "exact_span_f1"),
        "Medline": ("quaero_medline", "span_ner", "exact_span_f1"),
    },
    "en": {
        "ChemProt": ("chemprot", "classification", "micro_f1"),
        "Phenotype": ("phenotype", "multilabel", "micro_f1"),
        "COS": ("cos", "token_ner", "seqeval_f1"),
        "SocialHist": ("social_history", "token_ner", "seqeval_f1"),
        "DEID": ("deid", "token_ner", "seqeval_f1"),
        "AnatEM": ("anatem", "token_ner", "seqeval_f1"),
        "BC5CDR": ("bc5cdr", "token_ner", "seqeval_f1"),
        "JNLPBA": ("jnlpba", "token_ner", "seqeval_f1"),
        "NCBI": ("ncbi_disease", "token_ner", "seqeval_f1"),
        "GAD": ("gad", "classification", "micro_f1"),
        "HoC": ("hoc", "multilabel", "micro_f1"),
    },
}
# What the paper's numbers measure beyond kind and metric, where its code states it
# (/work/shared/reference/eval-code-facts.md): stored in each record's `definition`, so that the leaderboard
# compares these declared fields with the runs' (records carry their card's), not task names. A field not
# stated here is not compared.
DEFINITIONS = {
    "chemprot": {"release": "ncbi-nlp/BLUE_Benchmark ChemProt (BLUE's TSVs: 18,035 / 11,268 / 15,745 rows)"},
    "hoc": {"release": "qanastek/HoC", "unit": "sentence",
            "split": "BLURB's PMID lists (1,295 / 186 / 371 abstracts)"},
}
SECTIONS = {"French": "fr", "English": "en"}
N_SEEDS = {"fr": 9, "en": 5}


def parse_tables(text: str) -> dict[str, dict]:
    """{'fr'|'en': {'header': [...], 'rows': [[cell, ...], ...]}} from the Markdown sections."""
    tables: dict[str, dict] = {}
    lang = None
    for line in text.splitlines():
        heading = re.match(r"^##\s+(\w+)", line)
        if heading:
            lang = SECTIONS.get(heading.group(1))
            continue
        if lang is None or not line.startswith("|"):
            continue
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if all(re.fullmatch(r":?-+:?", c) for c in cells):
            continue
        table = tables.setdefault(lang, {"header": None, "rows": []})
        if table["header"] is None:
            table["header"] = cells
        else:
            table["rows"].append(cells)
    return tables


def paper_rows(text: str | None = None) -> list[dict]:
    """One dict per published row: language, model, row, {task: score}, the paper's Avg, context."""
    tables = parse_tables(SOURCE.read_text(encoding="utf-8") if text is None else text)
    rows = []
    for lang, table in tables.items():
        header = table["header"]
        for i, cells in enumerate(table["rows"]):
            raw = dict(zip(header, cells))
            scores = {COLUMNS[lang][h][0]: float(raw[h]) for h in header if h in COLUMNS[lang]}
            if len(scores) != len(COLUMNS[lang]):
                raise ValueError(f"{SOURCE}: {lang} row {raw['Model']!r} lacks a task column")
            rows.append({"language": lang, "model": raw["Model"], "row": i, "scores": scores,
                         "avg": float(raw["Avg"]), "ctx": raw.get("Ctx")})
    return rows


def records(text: str | None = None) -> list[RunRecord]:
    out = []
    for row in paper_rows(text):
        lang = row["language"]
        columns = list(COLUMNS[lang].values())
        for col, (task, kind, metric) in enumerate(columns):
            notes = {"n_seeds": N_SEEDS[lang], "row": row["row"], "column": col,
                     "reference": PAPER, "paper_avg": row["avg"]}
            if row["ctx"]:
                notes["context_length"] = int(row["ctx"])
            out.append(RunRecord(
                model=row["model"], model_sha="", task=task, language=lang, kind=kind, seed=-1,
                protocol={"name": "paper", "reference": PAPER}, metric=metric,
                test={metric: row["scores"][task]}, primary=row["scores"][task], source="published", notes=notes,
                definition={"kind": kind, "metric": metric, **DEFINITIONS.get(task, {})},
                created_at="2026-05-12T00:00:00+00:00",
            ))
    return out


def write_all(out: Path = HERE) -> list[Path]:
    return [write_record(rec, Path(out) / model_slug(rec.model) / rec.task / "published.json")
            for rec in records()]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=HERE, help="folder to write into (default: here)")
    args = parser.parse_args()
    paths = write_all(args.out)
    print(f"wrote {len(paths)} published records below {args.out}")


if __name__ == "__main__":
    main()
