"""The package layout: layers import only downwards, no import cycle (function-level imports included), and no
module or function grows past the size a reader can hold."""
import ast
from pathlib import Path

import pytest
from tests.support.paths import REPO

LAYERS = ("common", "model", "llm", "eval")  # bottom to top: a module may import its own layer or lower ones
MAX_MODULE_LINES = 400
MAX_FUNCTION_LINES = 60


def modules() -> dict[str, Path]:
    found = {}
    for top in LAYERS:
        for path in sorted((REPO / top).rglob("*.py")):
            parts = path.relative_to(REPO).with_suffix("").parts
            found[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return found


def imported(name: str, path: Path, known: set[str]) -> set[str]:
    """The project modules `name` imports anywhere in its file (module level and inside functions)."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    out = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(anchor + ([base] if base else []))
            targets = [f"{base}.{alias.name}" if f"{base}.{alias.name}" in known else base for alias in node.names]
        else:
            continue
        for target in targets:
            while target and target not in known:
                target = target.rpartition(".")[0]
            if target and target != name:
                out.add(target)
    return out


def graph() -> dict[str, set[str]]:
    found = modules()
    return {name: imported(name, path, set(found)) for name, path in found.items()}


def test_the_import_graph_is_read_from_function_level_imports_too(tmp_path):
    path = tmp_path / "m.py"
    path.write_text("def f():\n    from llm.engine import x\n    import eval.report\n")
    assert imported("model.m", path, {"llm.engine", "eval.report", "model.m"}) == {"llm.engine", "eval.report"}


def test_no_import_cycle():
    edges = graph()
    state: dict[str, int] = {}

    def visit(node: str, path: list[str]) -> None:
        state[node] = 1
        for nxt in sorted(edges[node]):
            if state.get(nxt) == 1:
                cycle = path[path.index(nxt):] + [nxt] if nxt in path else [node, nxt]
                pytest.fail("import cycle: " + " -> ".join(cycle))
            if nxt not in state:
                visit(nxt, path + [nxt])
        state[node] = 2

    for node in sorted(edges):
        if node not in state:
            visit(node, [node])


def test_layers_import_only_downwards():
    rank = {top: i for i, top in enumerate(LAYERS)}
    upward = [f"{a} -> {b}" for a, targets in graph().items() for b in targets
              if rank[b.split(".")[0]] > rank[a.split(".")[0]]]
    assert not upward, upward


def test_modules_and_functions_stay_small():
    big = []
    for name, path in modules().items():
        source = path.read_text()
        if (lines := source.count("\n")) > MAX_MODULE_LINES:
            big.append(f"{name}: {lines} lines")
        for node in ast.walk(ast.parse(source)):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                if (length := node.end_lineno - node.lineno + 1) > MAX_FUNCTION_LINES:
                    big.append(f"{name}.{node.name}: {length} lines")
    assert not big, big


def test_llm_keeps_only_its_entry_points_at_the_top_and_no_two_modules_share_a_name():
    top = sorted(p.stem for p in (REPO / "llm").glob("*.py"))
    assert top == ["__init__", "generate", "testserver"], top
    stems = [p.stem for p in (REPO / "llm").rglob("*.py") if p.stem not in ("__init__", "__main__")]
    assert sorted(s for s in set(stems) if stems.count(s) > 1) == []
