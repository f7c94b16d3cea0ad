"""Browser test setup: every test here is marked `interop`.

Why the marker: the test runs js-libp2p (in Chromium) against p2pkit, so it is
interop in the sense of tests/conftest.py: with CI=true a skip of it fails (no
Node, no npm packages, no Chromium), and `pytest -m "not interop"` leaves it out.
"""

from __future__ import annotations

from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if HERE in Path(str(item.fspath)).resolve().parents:
            item.add_marker(pytest.mark.interop)
