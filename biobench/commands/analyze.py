"""`biobench analyze cka A B [--control C] --text FILE`: which layers moved, against seed noise.

    biobench analyze cka A B [--control C] --text FILE [--max-docs N] [--max-length L] [--min-docs 100]
                         [--batch-size 32] [--device cpu|cuda] [--out DIR]

For every layer (the embedding output, then each transformer block) of A and B, the linear CKA of the
documents' mean-pooled token states (attention-mask weighted), in float64, on the documents of FILE (one
per line; .jsonl/.json/.parquet with --text-field). Prints 1 - CKA for A vs B and, with --control, for A vs
C, and their ratio. For the paper's reading ("the early layers of the detour moved 5-44x more than seed
noise moves them"): A = the MLM twin, B = the detour (same seed, data and schedule), C = the MLM twin of
another seed. Then A vs B is what the detour changed and A vs C is seed noise. (With A = the detour, A vs C
would hold the detour's change too.) Writes DIR/cka.json, DIR/cka.svg and, with matplotlib installed,
DIR/cka.png.

Use held-out text (`biobench corpus --split validation`, or a slice of the raw text kept out of the
pretraining corpus), never text the checkpoints were trained on. A, B and C must have the same depth and
width. Fewer than --min-docs documents is refused: with few documents against the width (384 for MiniLM,
768 for base models), linear CKA is biased towards 1 for any pair of models.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from pathlib import Path
from typing import Any

MIN_DOCS = 100


def add_arguments(p: argparse.ArgumentParser) -> None:
    sub = p.add_subparsers(dest="analysis", metavar="ANALYSIS", required=True)
    c = sub.add_parser("cka", help="layer-wise 1 - linear CKA of two checkpoints, against a control",
                       description=__doc__.split("\n\n", 1)[1], formatter_class=argparse.RawDescriptionHelpFormatter)
    c.add_argument("a", metavar="A", help="checkpoint (folder or hub id), e.g. the MLM twin")
    c.add_argument("b", metavar="B", help="checkpoint compared with A, e.g. the detour of the same seed")
    c.add_argument("--control", metavar="C",
                   help="checkpoint compared with A as the noise floor, e.g. the MLM twin of another seed")
    c.add_argument("--text", required=True, metavar="FILE", help="held-out documents, one per line (.txt)")
    c.add_argument("--text-field", default="text", help="text field of .jsonl/.json/.parquet (default %(default)s)")
    c.add_argument("--max-docs", type=int, metavar="N", help="use the first N documents")
    c.add_argument("--min-docs", type=int, default=MIN_DOCS, metavar="N",
                   help="refuse fewer documents than this (default %(default)s; at least 3)")
    c.add_argument("--max-length", type=int, default=512, metavar="L", help="tokens per document (default %(default)s)")
    c.add_argument("--batch-size", type=int, default=32)
    c.add_argument("--device", default=None, help="default: cuda if available, else cpu")
    c.add_argument("--out", default="cka", metavar="DIR",
                   help="folder for cka.json / .svg / .png (default %(default)s)")
    c.add_argument("--trust-remote-code", action="store_true")


def run(args: argparse.Namespace) -> int:
    from biobench.analysis.states import AnalysisError
    from biobench.models import ModelError
    from biobench.pretrain.config import PretrainError

    try:
        result = cka_command(args)
    except (AnalysisError, ModelError, PretrainError) as exc:
        print(f"biobench analyze cka: {' '.join(str(exc).split())}", file=sys.stderr)
        return 2
    out = Path(args.out)
    _print_table(result)
    print(f"wrote {', '.join(str(out / f) for f in result['files'])}")
    return 0


def read_texts(path: str, text_field: str, max_docs: int | None, min_docs: int) -> list[str]:
    """The documents of FILE (first max_docs), refused when fewer than min_docs."""
    from biobench.analysis.states import AnalysisError
    from biobench.pretrain.corpus import corpus_files, read_documents

    if not Path(path).exists():
        raise AnalysisError(f"--text {path}: no such file (expected held-out documents, one per line)")
    if min_docs < 3:
        raise AnalysisError(f"--min-docs {min_docs}: expected at least 3 (CKA centres over documents)")
    if max_docs is not None and max_docs < 1:
        raise AnalysisError(f"--max-docs {max_docs}: expected a positive number")
    from biobench.pretrain.config import PretrainError

    try:
        files = corpus_files([path])
    except PretrainError as exc:  # worded for pretrain's --corpus
        raise AnalysisError(str(exc).replace("--corpus", "--text", 1)) from None
    docs: list[str] = []
    for f in files:
        for doc in read_documents(f, text_field):
            docs.append(doc.strip())
            if max_docs is not None and len(docs) >= max_docs:
                break
        if max_docs is not None and len(docs) >= max_docs:
            break
    if len(docs) < min_docs:
        raise AnalysisError(f"--text {path}: {len(docs)} documents, expected at least {min_docs} (--min-docs); "
                            "with few documents linear CKA is biased towards 1 for any pair")
    return docs


def cka_command(args: argparse.Namespace) -> dict[str, Any]:
    import torch

    from biobench.analysis.cka import layerwise_cka
    from biobench.analysis.states import AnalysisError, check_comparable, load_encoder, pooled_states
    from biobench.models import check_model, model_sha, resolve_model

    docs = read_texts(args.text, args.text_field, args.max_docs, args.min_docs)
    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    names = {"A": args.a, "B": args.b, **({"C": args.control} if args.control else {})}
    paths = {key: resolve_model(name) for key, name in names.items()}
    for path in paths.values():
        check_model(path)
    check_comparable(list(paths.values()), trust_remote_code=args.trust_remote_code)
    states = {}
    for key, name in names.items():
        encoder = load_encoder(paths[key], trust_remote_code=args.trust_remote_code, device=device)
        states[key] = pooled_states(encoder, docs, max_length=args.max_length, batch_size=args.batch_size)
        encoder.model = None  # one model in memory at a time
        if len(states[key]) != len(states["A"]) or states[key][0].shape != states["A"][0].shape:
            raise AnalysisError(f"{name}: {len(states[key])} hidden states of width {states[key][0].shape[1]}, "
                                f"{args.a}: {len(states['A'])} of width {states['A'][0].shape[1]}")
    layers = ["embeddings", *(f"layer {i}" for i in range(1, len(states["A"])))]
    ab = layerwise_cka(states["A"], states["B"])
    ac = layerwise_cka(states["A"], states["C"]) if "C" in states else None
    rows = []
    for i, layer in enumerate(layers):
        row: dict[str, Any] = {"layer": layer, "cka_ab": ab[i], "one_minus_cka_ab": 1.0 - ab[i]}
        if ac is not None:
            row.update(cka_ac=ac[i], one_minus_cka_ac=1.0 - ac[i], ratio=_ratio(1.0 - ab[i], 1.0 - ac[i]))
        rows.append(row)
    result = {"models": names, "weights_sha256": {k: model_sha(p) for k, p in paths.items()}, "text": args.text,
              "text_sha256": hashlib.sha256("\n".join(docs).encode()).hexdigest(),
              "documents": len(docs), "max_length": args.max_length,
              "pooling": "mean over tokens, attention-mask weighted", "dtype": "float64", "cka": "linear",
              "device": device, "layers": rows}
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    files = ["cka.json", "cka.svg"]
    (out / "cka.svg").write_text(svg_plot(result), encoding="utf-8")
    if _png_plot(result, out / "cka.png"):
        files.append("cka.png")
    result["files"] = files
    (out / "cka.json").write_text(json.dumps(result, indent=2), encoding="utf-8")
    return result


def _ratio(x: float, control: float) -> float | None:
    """(1 - CKA A vs B) / (1 - CKA A vs C); None when the control did not move (1 - CKA at rounding level)."""
    return x / control if control > 1e-12 else None


def _print_table(result: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    m = result["models"]
    table = Table()
    table.add_column("layer")
    table.add_column("A vs B", justify="right")
    if "C" in m:
        table.add_column("A vs C (control)", justify="right")
        table.add_column("ratio", justify="right")
    for row in result["layers"]:
        cells = [row["layer"], f"{row['one_minus_cka_ab']:.6f}"]
        if "C" in m:
            ratio = row["ratio"]
            cells += [f"{row['one_minus_cka_ac']:.6f}", "n/a" if ratio is None else f"{ratio:.1f}x"]
        table.add_row(*cells)
    console = Console()
    # a line of its own: as the table's title, rich would wrap it to the table's width
    console.print(f"1 - linear CKA per layer, {result['documents']} documents of {result['text']}",
                  highlight=False, soft_wrap=True)
    console.print(table)
    console.print("\n".join(f"{k} = {v}" for k, v in m.items()), highlight=False, soft_wrap=True)


def _series(result: dict[str, Any]) -> list[tuple[str, list[float], str]]:
    m = result["models"]
    out = [(f"A vs B ({Path(m['B']).name})", [r["one_minus_cka_ab"] for r in result["layers"]], "#1f77b4")]
    if "C" in m:
        out.append((f"A vs C, control ({Path(m['C']).name})", [r["one_minus_cka_ac"] for r in result["layers"]],
                    "#ff7f0e"))
    return out


def svg_plot(result: dict[str, Any], width: int = 640, height: int = 360) -> str:
    """A dependency-free line plot of 1 - CKA per layer (an SVG for the HTML report)."""
    from html import escape

    series = _series(result)
    n = len(result["layers"])
    top = max(max(v) for _, v, _ in series)
    top = top if top > 0 else 1.0
    left, right, upper, lower = 70, 20, 40, 60
    pw, ph = width - left - right, height - upper - lower

    def xy(i: int, v: float) -> tuple[float, float]:
        return left + pw * (i / max(n - 1, 1)), upper + ph * (1 - max(v, 0.0) / top)

    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" font-family="sans-serif" '
             f'font-size="11">',
             f'<text x="{left}" y="20" font-size="13">1 - linear CKA per layer '
             f'(A = {escape(Path(result["models"]["A"]).name)}, '
             f'{result["documents"]} documents)</text>',
             f'<line x1="{left}" y1="{upper + ph}" x2="{left + pw}" y2="{upper + ph}" stroke="black"/>',
             f'<line x1="{left}" y1="{upper}" x2="{left}" y2="{upper + ph}" stroke="black"/>']
    for k in range(5):
        v = top * k / 4
        _, y = xy(0, v)
        parts.append(f'<text x="{left - 6}" y="{y + 4:.1f}" text-anchor="end">{v:.2g}</text>')
    for i, row in enumerate(result["layers"]):
        x, _ = xy(i, 0)
        label = "emb" if row["layer"] == "embeddings" else row["layer"].split()[-1]
        parts.append(f'<text x="{x:.1f}" y="{upper + ph + 16}" text-anchor="middle">{label}</text>')
    parts.append(f'<text x="{left + pw / 2}" y="{height - 28}" text-anchor="middle">layer</text>')
    parts.append(f'<text transform="rotate(-90)" x="{-(upper + ph / 2)}" y="16" text-anchor="middle">1 - linear CKA</text>')
    for j, (name, values, color) in enumerate(series):
        points = " ".join(f"{x:.1f},{y:.1f}" for x, y in (xy(i, v) for i, v in enumerate(values)))
        parts.append(f'<polyline fill="none" stroke="{color}" stroke-width="2" points="{points}"/>')
        parts.extend(f'<circle cx="{x:.1f}" cy="{y:.1f}" r="3" fill="{color}"/>'
                     for x, y in (xy(i, v) for i, v in enumerate(values)))
        parts.append(f'<text x="{left + 10 + 300 * j}" y="{height - 8}" fill="{color}">{escape(name)}</text>')
    parts.append("</svg>")
    return "\n".join(parts) + "\n"


def _png_plot(result: dict[str, Any], path: Path) -> bool:
    """The same plot as a PNG through matplotlib, when it is installed (`pip install biobench[plots]`)."""
    try:
        from matplotlib.figure import Figure
    except ImportError:
        return False
    fig = Figure(figsize=(6.4, 3.6), dpi=150)
    ax = fig.subplots()
    labels = ["emb" if r["layer"] == "embeddings" else r["layer"].split()[-1] for r in result["layers"]]
    for name, values, color in _series(result):
        ax.plot(range(len(values)), values, marker="o", color=color, label=name)
    ax.set_xticks(range(len(labels)), labels)
    ax.set_xlabel("layer")
    ax.set_ylabel("1 - linear CKA")
    ax.set_title(f"A = {Path(result['models']['A']).name}, {result['documents']} documents", fontsize=9)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path)
    return True
