"""The core package has no import cycles, and imports sit at module level.

Both checks read the source with :mod:`ast` (nothing is imported): the graph of
module-level ``p2pkit`` imports (``if TYPE_CHECKING:`` blocks excluded: they never run)
must be acyclic, and imports inside functions are allowed only for the optional or
deliberately lazy cases listed in ``ALLOWED_LOCAL``.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2] / "packages" / "core" / "src" / "p2pkit"

#: (module, imported module) -> why it may be imported inside a function.
ALLOWED_LOCAL: dict[tuple[str, str], str] = {
    # Entry-point hook module: must stay import-light, so each hook imports its plugin
    # only when called.
    ("p2pkit.builtin_plugins", "p2pkit.security.plaintext"): "lazy plugin hook",
    ("p2pkit.builtin_plugins", "p2pkit.peerstore"): "lazy plugin hook",
    ("p2pkit.builtin_plugins", "p2pkit.peerstore_sqlite"): "lazy plugin hook (sqlite3)",
    ("p2pkit.builtin_plugins", "p2pkit.connmgr"): "lazy plugin hook",
    ("p2pkit.builtin_plugins", "p2pkit.gater"): "lazy plugin hook",
    # Optional (not in every Python build), needed only by processes with connections.
    ("p2pkit.bufpool", "ctypes"): "malloc_trim, looked up when the first connection opens",
    # dnspython: ~0.25 s of imports (in a thread, off the loop), paid by the first
    # /dnsaddr dial, not by every host.
    ("p2pkit.dnsaddr", "dns.asyncresolver"): "the TXT resolver, at the first /dnsaddr",
    ("p2pkit.dnsaddr", "dns.nameserver"): "the TXT resolver, at the first /dnsaddr",
    ("p2pkit.dnsaddr", "dns.exception"): "the TXT resolver, at the first /dnsaddr",
    # Optional dependency (p2pkit[uvloop]), imported only when event_loop = "uvloop".
    ("p2pkit.loops", "uvloop"): "the optional event loop, only when asked for",
}


def _module_name(path: Path) -> str:
    rel = path.relative_to(ROOT.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _modules() -> dict[str, ast.Module]:
    return {_module_name(p): ast.parse(p.read_text(), str(p)) for p in sorted(ROOT.rglob("*.py"))}


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _targets(node: ast.Import | ast.ImportFrom, module: str, known: set[str]) -> set[str]:
    """The p2pkit modules an import statement loads (``from p2pkit.x import y`` loads
    ``p2pkit.x`` and, when ``y`` is a submodule, ``p2pkit.x.y``)."""
    if isinstance(node, ast.Import):
        names = [alias.name for alias in node.names]
    else:
        base = node.module or ""
        if node.level:
            pkg = module.split(".")
            pkg = pkg[: len(pkg) - node.level + (1 if module in _packages(known) else 0)]
            base = ".".join([*pkg, base] if base else pkg)
        names = [base] + [f"{base}.{alias.name}" for alias in node.names]
    out = set()
    for name in names:
        # Importing p2pkit.a.b runs p2pkit.a's __init__ too -- except for a module inside
        # p2pkit.a, whose package is being (or has been) initialised already.
        parts = name.split(".")
        for i in range(1, len(parts) + 1):
            candidate = ".".join(parts[:i])
            if candidate in known and not (module + ".").startswith(candidate + "."):
                out.add(candidate)
    return out


def _packages(known: set[str]) -> set[str]:
    return {m for m in known if any(k.startswith(m + ".") for k in known)}


def _module_level_imports(tree: ast.Module) -> list[ast.Import | ast.ImportFrom]:
    """Imports that run when the module is imported (not in functions, not TYPE_CHECKING)."""
    out: list[ast.Import | ast.ImportFrom] = []

    def visit(body: list[ast.stmt]) -> None:
        for node in body:
            if isinstance(node, ast.Import | ast.ImportFrom):
                out.append(node)
            elif isinstance(node, ast.If):
                if not _is_type_checking(node):
                    visit(node.body)
                visit(node.orelse)
            elif isinstance(node, ast.Try):
                visit(node.body)
                for handler in node.handlers:
                    visit(handler.body)
                visit(node.orelse)
                visit(node.finalbody)
            elif isinstance(node, ast.ClassDef):
                visit(node.body)

    visit(tree.body)
    return out


def _local_imports(tree: ast.Module) -> list[ast.Import | ast.ImportFrom]:
    out: list[ast.Import | ast.ImportFrom] = []
    for func in ast.walk(tree):
        if isinstance(func, ast.FunctionDef | ast.AsyncFunctionDef):
            for node in ast.walk(func):
                if isinstance(node, ast.Import | ast.ImportFrom):
                    out.append(node)
    return out


def _find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}
    stack: list[str] = []

    def dfs(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return [*stack[stack.index(nxt) :], nxt]
            if nxt not in state:
                found = dfs(nxt)
                if found:
                    return found
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state:
            found = dfs(node)
            if found:
                return found
    return None


def test_finds_a_cycle_when_there_is_one() -> None:
    assert _find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert _find_cycle({"a": {"b"}, "b": set()}) is None


def test_core_has_no_import_cycle() -> None:
    modules = _modules()
    known = set(modules)
    assert "p2pkit.host" in known and "p2pkit.swarm" in known
    graph = {
        name: {t for node in _module_level_imports(tree) for t in _targets(node, name, known)}
        for name, tree in modules.items()
    }
    assert "p2pkit.swarm" in graph["p2pkit.host"]  # the graph really is built
    cycle = _find_cycle(graph)
    assert cycle is None, "import cycle: " + " -> ".join(cycle or [])


def test_imports_inside_functions_only_for_optional_dependencies() -> None:
    found: set[tuple[str, str]] = set()
    for name, tree in _modules().items():
        for node in _local_imports(tree):
            targets = (
                [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module]
            )
            for target in targets:
                found.add((name, str(target)))
    unexpected = sorted(found - set(ALLOWED_LOCAL))
    assert not unexpected, f"imports inside functions (move them to module level): {unexpected}"
    assert len(found) <= len(ALLOWED_LOCAL)
