"""Interop test setup: install the pinned js-libp2p peer once per session.

Every test in this folder is marked `interop` (see pytest_collection_modifyitems)
and depends on `js_installed`: without Node.js the tests are skipped locally and
FAIL when CI=true, because interop must run in CI.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from .harness import ensure_js_installed

HERE = Path(__file__).resolve().parent


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if HERE in Path(str(item.fspath)).resolve().parents:
            item.add_marker(pytest.mark.interop)


@pytest.fixture(scope="session", autouse=True)
def js_installed() -> str:
    """`npm ci` in tests/interop/js (skipped when node_modules matches the lock file)."""
    return ensure_js_installed()
