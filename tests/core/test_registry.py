"""The plugin registry: entry points, direct registration, broken plugins, clear errors."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import types

import pytest

from p2pkit.errors import PluginLoadError, PluginNotFound
from p2pkit.plugins import PluginSpec, hookimpl
from p2pkit.plugins.registry import PluginRegistry


def test_installed_plugins_found_with_package_and_version():
    reg = PluginRegistry()
    tcp = reg.get("transport", "tcp")
    assert tcp.package == "p2pkit-tcp" and tcp.version == "0.1.0"
    assert reg.get("security", "plaintext").package == "p2pkit"
    assert reg.by_protocol_id("muxer", "/yamux/1.0.0").name == "yamux"


def test_direct_registration_overrides_and_adds():
    reg = PluginRegistry()
    spec = PluginSpec(kind="transport", name="tcp", factory=lambda c, o: "mine")
    extra = PluginSpec(kind="muxer", name="dummy", protocol_id="/dummy/1", factory=lambda c, o: 1)
    reg.add(spec, extra)
    assert reg.get("transport", "tcp").factory(None, None) == "mine"
    assert reg.get("muxer", "dummy").protocol_id == "/dummy/1"


def test_registry_without_entry_points_is_empty_but_accepts_modules():
    reg = PluginRegistry(load_entry_points=False)
    assert reg.names("transport") == []
    mod = types.ModuleType("myplugin")

    @hookimpl
    def p2pkit_stream_muxers() -> list[PluginSpec]:
        return [PluginSpec(kind="muxer", name="m", protocol_id="/m/1", factory=lambda c, o: 0)]

    mod.p2pkit_stream_muxers = p2pkit_stream_muxers  # type: ignore[attr-defined]
    reg.register(mod)
    assert reg.names("muxer") == ["m"]


def test_broken_hook_is_reported_and_others_survive():
    reg = PluginRegistry(load_entry_points=False)

    class Broken:
        @hookimpl
        def p2pkit_transports(self) -> list[PluginSpec]:
            raise RuntimeError("boom")

    class Good:
        @hookimpl
        def p2pkit_transports(self) -> list[PluginSpec]:
            return [PluginSpec(kind="transport", name="good", factory=lambda c, o: 0)]

    reg.register(Broken(), name="broken")
    reg.register(Good(), name="good")
    assert reg.names("transport") == ["good"]
    assert reg.broken and "boom" in reg.broken[0].describe()
    with pytest.raises(PluginLoadError, match="boom"):
        reg.get("transport", "broken")


def test_not_found_names_the_package():
    reg = PluginRegistry(load_entry_points=False)
    with pytest.raises(PluginNotFound, match="pip install p2pkit-noise"):
        reg.get("security", "noise")
    with pytest.raises(PluginNotFound, match="no transport plugin named 'carrier-pigeon'"):
        reg.get("transport", "carrier-pigeon")


def _cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "p2pkit", *args],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, **(env or {})},
    )


def test_cli_plugins_lists_tcp_and_disabling_it_explains():
    out = _cli("plugins", "--json")
    assert out.returncode == 0, out.stderr
    rows = json.loads(out.stdout)["plugins"]
    tcp = [r for r in rows if r["name"] == "tcp"]
    assert tcp and tcp[0]["package"] == "p2pkit-tcp" and tcp[0]["kind"] == "transport"

    env = {"P2PKIT_DISABLE_PLUGINS": "tcp"}
    out = _cli("plugins", env=env)
    assert " tcp " not in out.stdout
    out = _cli("listen", "--security", "plaintext", env=env)
    assert out.returncode != 0
    assert "pip install p2pkit-tcp" in out.stderr
    assert len(out.stderr.strip().splitlines()) == 1


def test_core_imports_no_plugin():
    code = (
        "import sys, p2pkit, p2pkit.abc, p2pkit.host, p2pkit.config, p2pkit.cli, p2pkit.upgrader, "
        "p2pkit.multistream, p2pkit.plugins.registry, p2pkit.crypto, p2pkit.peer\n"
        "bad = sorted(m for m in sys.modules if m.startswith('p2pkit_'))\n"
        "assert not bad, bad\n"
        "from p2pkit.plugins.registry import PluginRegistry\n"
        "reg = PluginRegistry()\n"  # lazy: nothing loaded until the first lookup
        "assert not [m for m in sys.modules if m.startswith('p2pkit_')]\n"
        "assert 'tcp' in reg.names('transport')\n"
        "assert 'p2pkit_tcp.plugin' in sys.modules\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr


def test_core_names_no_shipped_plugin_outside_the_hint_table():
    """Plugin names and distributions appear only in p2pkit/plugins/hints.py (data);
    docstrings may mention them, code may not (p2pkit.testing is checked elsewhere)."""
    import ast
    import pathlib
    import re

    import p2pkit

    root = pathlib.Path(p2pkit.__file__).parent
    pattern = re.compile(r"^(tcp|noise|tls|yamux|mplex)$|p2pkit[-_](tcp|noise|tls|yamux|mplex)")
    found = []
    for path in sorted(root.rglob("*.py")):
        rel = path.relative_to(root).as_posix()
        # tcp_addrs/tcp_socket: the TCP socket layer that p2pkit-tcp and
        # p2pkit-websocket share names the `tcp` multiaddr protocol, not a plugin.
        if rel in {"plugins/hints.py", "tcp_addrs.py", "tcp_socket.py"} or rel.startswith(
            "testing/"
        ):
            continue
        tree = ast.parse(path.read_text())
        docstrings = {
            id(node.body[0].value)
            for node in ast.walk(tree)
            if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef)
            and node.body
            and isinstance(node.body[0], ast.Expr)
            and isinstance(node.body[0].value, ast.Constant)
        }
        for node in ast.walk(tree):
            if isinstance(node, ast.Import | ast.ImportFrom):
                modules = [a.name for a in node.names] if isinstance(node, ast.Import) else []
                modules += [node.module or ""] if isinstance(node, ast.ImportFrom) else []
                found += [f"{rel}:{node.lineno} imports {m}" for m in modules if pattern.search(m)]
            elif (
                isinstance(node, ast.Constant)
                and isinstance(node.value, str)
                and id(node) not in docstrings
                and pattern.search(node.value)
            ):
                found.append(f"{rel}:{node.lineno} {node.value[:40]!r}")
    assert not found, found
