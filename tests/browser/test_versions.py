"""The page's js-libp2p is the interop peer's: one release, pinned, in both lock files.

Why: the browser test and tests/interop/js test p2pkit against "js-libp2p 3.3.11";
if the two lock files drifted apart (one re-resolved later), the two suites would
quietly test against different code.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
INTEROP = HERE.parent / "interop" / "js"


def _json(path: Path) -> dict[str, Any]:
    value: dict[str, Any] = json.loads(path.read_text())
    return value


def test_dependencies_are_pinned_exactly() -> None:
    deps: dict[str, str] = _json(HERE / "package.json")["dependencies"]
    loose = {name: v for name, v in deps.items() if not v[:1].isdigit()}
    assert not loose, f"ranges instead of exact versions: {loose}"
    locked = _json(HERE / "package-lock.json")["packages"]
    for name, version in deps.items():
        assert locked[f"node_modules/{name}"]["version"] == version, name


def test_shared_packages_match_the_interop_peer() -> None:
    ours = _json(HERE / "package-lock.json")["packages"]
    theirs = _json(INTEROP / "package-lock.json")["packages"]
    shared = sorted(k for k in ours if k.startswith("node_modules/") and k in theirs)
    assert "node_modules/libp2p" in shared
    differ = {
        k: (ours[k]["version"], theirs[k]["version"])
        for k in shared
        if ours[k]["version"] != theirs[k]["version"]
    }
    assert not differ, f"tests/browser vs tests/interop/js lock files: {differ}"
