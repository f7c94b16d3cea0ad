"""tests/conftest.py's skip policy, run in a child pytest: with CI=true a skip fails
unless allowed (and never for interop tests); without CI it stays a skip."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

CONFTEST = Path(__file__).resolve().parent / "conftest.py"

TESTS = """
import pytest

def test_skipped():
    pytest.skip("no reason CI accepts")

def test_allowed_skip():
    pytest.skip("IPv6 loopback is missing")  # on the allowlist for tests/*

@pytest.mark.interop
def test_interop_skipped():
    pytest.skip("IPv6 loopback is missing")  # the same allowed reason, but interop

def test_xfail_is_not_a_skip():
    pytest.xfail("expected")
"""


def _run(tmp_path: Path, ci: str | None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("CI", "PYTEST_ADDOPTS")}
    if ci is not None:
        env["CI"] = ci
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-rA", str(tmp_path)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_skips_fail_in_ci_and_stay_skips_otherwise(tmp_path: Path) -> None:
    shutil.copy(CONFTEST, tmp_path / "conftest.py")
    (tmp_path / "pytest.ini").write_text("[pytest]\nmarkers =\n    interop: x\n")
    (tmp_path / "tests").mkdir()
    (tmp_path / "tests" / "test_policy.py").write_text(TESTS)  # node ids "tests/..."

    local = _run(tmp_path, None)
    assert local.returncode == 0, local.stdout + local.stderr
    assert "3 skipped, 1 xfailed" in local.stdout

    ci = _run(tmp_path, "true")
    assert ci.returncode == 1, ci.stdout + ci.stderr
    assert "2 failed, 1 skipped, 1 xfailed" in ci.stdout
    assert "FAILED tests/test_policy.py::test_skipped" in ci.stdout
    assert "FAILED tests/test_policy.py::test_interop_skipped" in ci.stdout
