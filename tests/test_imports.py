"""The arrows between biobench's parts go one way: no import cycle between its modules and subpackages, and
fine-tuning takes its compile helpers from `biobench.compiling`, not from the pretraining package.

Read from the source (every import, including those inside functions), so a lazy import cannot hide a cycle."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "biobench"


def unit(module: str) -> str | None:
    """biobench.X (a top-level module) or biobench.P (a subpackage, taken whole); None outside biobench."""
    parts = module.split(".")
    return ".".join(parts[:2]) if parts[0] == "biobench" and len(parts) > 1 else None


def imports_of(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
            names.update(f"{node.module}.{a.name}" for a in node.names)
        elif isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
    return names


def graph() -> dict[str, set[str]]:
    edges: dict[str, set[str]] = {}
    for path in PACKAGE.rglob("*.py"):
        rel = path.relative_to(PACKAGE.parent).with_suffix("")
        src = unit(".".join(p for p in rel.parts if p != "__init__"))
        if src is None:
            continue
        targets = {t for name in imports_of(path) if (t := unit(name)) and t != src}
        # `from biobench import x` names a module x: count it as that module, not as the package root
        edges.setdefault(src, set()).update(t for t in targets if (PACKAGE.parent / Path(*t.split("."))).exists()
                                            or (PACKAGE.parent / (t.replace(".", "/") + ".py")).exists())
    return edges


def test_no_import_cycle_between_biobench_parts():
    edges = graph()
    cycles = []

    def visit(node: str, path: list[str]) -> None:
        for nxt in sorted(edges.get(node, ())):
            if nxt in path:
                cycles.append(path[path.index(nxt):] + [nxt])
            elif len(path) < 12:
                visit(nxt, path + [nxt])

    for start in sorted(edges):
        visit(start, [start])
    assert not cycles, "import cycles: " + "; ".join(" -> ".join(c) for c in sorted(set(map(tuple, cycles)))[:5])


def test_finetuning_does_not_reach_into_pretraining():
    assert "biobench.pretrain" not in graph()["biobench.finetune"]
