"""Fixtures of the /unix transport tests: a short-pathed temporary directory."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator

import pytest


@pytest.fixture
def sock_dir() -> Iterator[str]:
    """A fresh directory under /tmp: socket paths must stay under ~100 bytes, which
    pytest's ``tmp_path`` does not guarantee."""
    path = tempfile.mkdtemp(prefix="p2pu-", dir="/tmp")
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)
