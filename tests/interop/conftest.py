"""Interop test setup: install the pinned js-libp2p peer once per session.

Every test in this folder is marked `interop` (see pytest_collection_modifyitems).
Every test that drives the js peer depends on `js_installed`: without Node.js those
tests are skipped locally and FAIL when CI=true, because interop must run in CI.  The
py-libp2p and Go tests (NEEDS_NO_NODE) drive no Node process, so a missing Node
must not skip them.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from .harness import ensure_js_installed

HERE = Path(__file__).resolve().parent
#: Test modules here that run no js peer (py-libp2p comes from PyPI in its own venv).
NEEDS_NO_NODE = frozenset({"test_pylibp2p.py", "test_go.py"})


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if HERE in Path(str(item.fspath)).resolve().parents:
            item.add_marker(pytest.mark.interop)


@pytest.fixture(scope="session")
def js_node() -> str:
    """`npm ci` in tests/interop/js (skipped when node_modules matches the lock file)."""
    return ensure_js_installed()


@pytest.fixture(scope="module", autouse=True)
def js_installed(request: pytest.FixtureRequest) -> str | None:
    """The node binary, with the js peer installed; None for modules that need no Node.

    Module-scoped: autouse fixtures of a scope come before the other fixtures of that
    scope and of narrower ones, so the install precedes a module's or class's js
    listener even when that module runs first on a fresh checkout."""
    if Path(str(request.node.fspath)).name in NEEDS_NO_NODE:
        return None
    node: str = request.getfixturevalue("js_node")
    return node
