"""The package's import structure: no import cycle between its modules and no module importing another
module's private (``_name``) attribute. Read from the source with ``ast``, so imports inside functions
(the lazy ones that usually hide a cycle) count as well."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _modules() -> dict[str, Path]:
    """Module name -> file, with the top-level ``adapters/`` installed as ``snn_motifs.adapters``."""
    found = {}
    for path in [*ROOT.glob("snn_motifs/**/*.py"), *ROOT.glob("adapters/*.py")]:
        parts = list(path.relative_to(ROOT).with_suffix("").parts)
        if parts[0] == "adapters":
            parts = ["snn_motifs", *parts]
        if parts[-1] == "__init__":
            parts = parts[:-1]
        found[".".join(parts)] = path
    return found


def _imports(mods: dict[str, Path]) -> tuple[dict[str, set[str]], list[str]]:
    """Module -> the package modules it imports (anywhere in the file), and the private-name imports."""
    edges: dict[str, set[str]] = {}
    private = []
    for mod, path in mods.items():
        package = mod.split(".") if path.name == "__init__.py" else mod.split(".")[:-1]
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom):
                if node.level:
                    base = package[: len(package) - node.level + 1]
                    target = ".".join(base + ([node.module] if node.module else []))
                else:
                    target = node.module or ""
                if not target.startswith("snn_motifs"):
                    continue
                for alias in node.names:
                    full = f"{target}.{alias.name}"
                    edges.setdefault(mod, set()).add(full if full in mods else target)
                    if alias.name.startswith("_") and not alias.name.startswith("__") and full not in mods:
                        private.append(f"{mod} imports {target}.{alias.name}")
            elif isinstance(node, ast.Import):
                for alias in node.names:
                    if alias.name.startswith("snn_motifs"):
                        edges.setdefault(mod, set()).add(alias.name)
    return edges, private


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in list(graph):
        if v not in index:
            visit(v)
    return found


def test_no_import_cycle_between_modules():
    mods = _modules()
    edges, _ = _imports(mods)
    # package __init__ files re-export their modules; an import of a package is not a module dependency
    modules = {m for m, p in mods.items() if p.name != "__init__.py"}
    graph = {m: {t for t in edges.get(m, ()) if t in modules and t != m} for m in modules}
    assert _cycles(graph) == []


def test_no_module_imports_another_modules_private_name():
    _, private = _imports(_modules())
    assert private == []


def test_the_checker_sees_a_cycle_and_a_private_import(tmp_path):
    """The checks themselves: a planted circle (one side a lazy import) and a private import are found."""
    pkg = tmp_path / "snn_motifs"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("from . import a, b\n")
    (pkg / "a.py").write_text("from .b import helper\n")
    (pkg / "b.py").write_text("def helper():\n    from .a import _secret\n")
    mods = {"snn_motifs": pkg / "__init__.py", "snn_motifs.a": pkg / "a.py", "snn_motifs.b": pkg / "b.py"}
    edges, private = _imports(mods)
    graph = {m: edges.get(m, set()) - {"snn_motifs"} for m in ("snn_motifs.a", "snn_motifs.b")}
    assert _cycles(graph) == [["snn_motifs.a", "snn_motifs.b"]]
    assert private == ["snn_motifs.b imports snn_motifs.a._secret"]
