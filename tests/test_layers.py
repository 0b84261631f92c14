"""The layering of the code, read from the source with `ast` (nothing is imported):

- atom/ (the controller, the shared library) does not import services.*;
- a service's modules (services/<a>/) do not import another service's (services/<b>/);
- no import cycles among the modules of atom/ and services/.

Every import counts, at module level or inside a function: a deferred import is still a
dependency, and a cycle hidden inside a function is still a cycle. Known exceptions are listed
below by (importing module, imported module), each with the reason it stands; a new one fails.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("atom", "services")

# atom/ -> services/: none. The controller reaches service code only over gRPC.
ATOM_TO_SERVICES_ALLOWED: set[tuple[str, str]] = set()

# services/<a>/ -> services/<b>/, a != b: none today.
CROSS_SERVICE_ALLOWED: set[tuple[str, str]] = set()


def _modules() -> dict[str, tuple[Path, bool]]:
    """Dotted module name -> (file, is a package's __init__)."""
    out = {}
    for pkg in PACKAGES:
        for path in sorted((ROOT / pkg).rglob("*.py")):
            if "__pycache__" in path.parts:
                continue
            parts = list(path.relative_to(ROOT).with_suffix("").parts)
            is_pkg = parts[-1] == "__init__"
            if is_pkg:
                parts = parts[:-1]
            out[".".join(parts)] = (path, is_pkg)
    return out


MODULES = _modules()


def _resolve(name: str) -> str | None:
    """The module of ours that importing `name` loads (the longest known prefix), or None."""
    while name:
        if name in MODULES:
            return name
        name = name.rpartition(".")[0]
    return None


def _imports(module: str) -> dict[str, int]:
    """Modules of atom/ and services/ that `module` imports anywhere in its body -> first line."""
    path, is_pkg = MODULES[module]
    tree = ast.parse(path.read_text(), filename=str(path))
    found: dict[str, int] = {}

    def add(name: str | None, line: int) -> None:
        target = _resolve(name) if name else None
        if target and target != module:
            found.setdefault(target, line)

    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                add(alias.name, node.lineno)
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative: from the module's package, up level - 1
                base = module.split(".") if is_pkg else module.split(".")[:-1]
                base = base[: len(base) - (node.level - 1)]
                source = ".".join(base + ([node.module] if node.module else []))
            else:
                source = node.module or ""
            for alias in node.names:
                sub = f"{source}.{alias.name}"  # `from pkg import module` imports the module
                add(sub if sub in MODULES else source, node.lineno)
    return found


GRAPH = {m: _imports(m) for m in MODULES}


def _service(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if parts[0] == "services" and len(parts) > 2 else None


def test_the_scan_sees_the_code():
    # A broken scan would pass every test below; these edges exist.
    assert "atom.store" in GRAPH["services.trainer.pairs"]
    assert "services.evaluator.records" in GRAPH["services.evaluator.report"]
    assert len(MODULES) > 50


def test_atom_does_not_import_services():
    found = {(m, t) for m, imports in GRAPH.items() if m.split(".")[0] == "atom" for t in imports if t.split(".")[0] == "services"}
    new = sorted(found - ATOM_TO_SERVICES_ALLOWED)
    assert not new, "atom/ imports services/ (the controller must go through the service APIs):\n" + "\n".join(
        f"  {m} (line {GRAPH[m][t]}) imports {t}" for m, t in new
    )
    stale = sorted(ATOM_TO_SERVICES_ALLOWED - found)
    assert not stale, f"allowed exceptions that no longer occur (remove them from the list): {stale}"


def test_services_do_not_import_each_other():
    found = {(m, t) for m, imports in GRAPH.items() for t in imports if _service(m) and _service(t) and _service(m) != _service(t)}
    new = sorted(found - CROSS_SERVICE_ALLOWED)
    assert not new, "a service imports another service's modules:\n" + "\n".join(f"  {m} (line {GRAPH[m][t]}) imports {t}" for m, t in new)
    stale = sorted(CROSS_SERVICE_ALLOWED - found)
    assert not stale, f"allowed exceptions that no longer occur (remove them from the list): {stale}"


def find_cycles(graph: dict[str, dict[str, int]]) -> list[list[str]]:
    """One cycle per back edge of a depth-first search, as [a, b, ..., a]; none for a DAG."""
    white, grey, black = 0, 1, 2
    colour = {m: white for m in graph}
    stack: list[str] = []
    cycles: list[list[str]] = []
    for root in sorted(graph):
        if colour[root] != white:
            continue
        # Iterative DFS: (node, iterator over its successors).
        colour[root] = grey
        stack.append(root)
        todo = [(root, iter(sorted(graph[root])))]
        while todo:
            node, successors = todo[-1]
            for nxt in successors:
                if nxt not in colour:
                    continue
                if colour[nxt] == grey:
                    cycles.append(stack[stack.index(nxt) :] + [nxt])
                elif colour[nxt] == white:
                    colour[nxt] = grey
                    stack.append(nxt)
                    todo.append((nxt, iter(sorted(graph[nxt]))))
                    break
            else:
                colour[node] = black
                stack.pop()
                todo.pop()
    return cycles


def test_find_cycles_finds_them():
    assert find_cycles({"a": {"b": 1}, "b": {"c": 1}, "c": {}}) == []
    assert find_cycles({"a": {"b": 1}, "b": {"a": 1}}) == [["a", "b", "a"]]
    assert find_cycles({"a": {"b": 1}, "b": {"c": 1}, "c": {"a": 1}}) == [["a", "b", "c", "a"]]


def test_no_import_cycles():
    cycles = find_cycles(GRAPH)
    assert not cycles, "import cycles (move the shared piece into a module both can import):\n" + "\n".join(
        "  " + " -> ".join(c) for c in cycles
    )
