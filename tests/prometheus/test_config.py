"""Metrics are off unless configured, cost no import then, and are configured the same way
from TOML, the builder and the command line (``p2pkit listen --metrics``)."""

from __future__ import annotations

import subprocess
import sys

import pytest

from p2pkit.builder import HostBuilder
from p2pkit.config import load_config
from p2pkit.errors import ConfigError
from p2pkit.host import Host
from tests.cli import cli_process
from tests.prometheus.scrape import get, scrape, sync_get

pytestmark = pytest.mark.timeout(60)


def _run(code: str) -> None:
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr


def test_off_by_default_and_nothing_imported() -> None:
    """A host built without metrics installs no hook and never imports prometheus_client,
    though the plugin is installed (discovering it loads only its hook module)."""
    _run(
        "import sys\n"
        "from p2pkit.builder import HostBuilder\n"
        "from p2pkit.plugins.registry import default_registry\n"
        "assert 'prometheus' in default_registry().names('metrics')\n"
        "assert default_registry().defaults('metrics') == []\n"
        "host = HostBuilder().build()\n"
        "assert host.metrics is None and host.swarm.observer is None\n"
        "assert host.router.stream_hook is None and host.swarm.opener.stream_hook is None\n"
        "mods = {getattr(cb, '__module__', '') for _, cb in host.events._listeners}\n"
        "assert 'p2pkit.host_metrics' not in mods, mods\n"
        "heavy = ('prometheus_client', 'p2pkit_prometheus.backend')\n"
        "bad = [m for m in heavy if m in sys.modules]\n"
        "assert not bad, bad\n"
    )


async def test_toml_configuration(tmp_path) -> None:
    path = tmp_path / "p2pkit.toml"
    path.write_text(
        '[p2pkit]\nmetrics = "prometheus"\n'
        '[p2pkit.plugins.prometheus]\naddress = "127.0.0.1:0"\npath = "/stats"\n'
    )
    host = Host.from_config(str(path))
    assert host.metrics is not None and host.metrics.endpoint is None  # not started
    async with host:
        url = host.metrics.endpoint
        assert url is not None and url.endswith("/stats")
        assert "p2pkit_connections" in (await scrape(url)).families
    assert host.metrics.endpoint is None


@pytest.mark.parametrize(
    "table",
    [
        {"metrics": "prometheus", "plugins": {"prometheus": {"address": "localhost"}}},
        {"metrics": {"name": "prometheus", "address": "127.0.0.1:99999"}},
        {"metrics": {"name": "prometheus", "path": "metrics"}},
        {"metrics": {"name": "prometheus", "port": 1}},
        {"metrics": "statsd"},
    ],
)
def test_bad_metrics_configuration_is_refused(table: dict[str, object]) -> None:
    with pytest.raises(ConfigError):
        load_config(table)


async def test_port_in_use_fails_start_and_frees_nothing_else() -> None:
    first = HostBuilder().metrics("prometheus", address="127.0.0.1:0").build()
    async with first:
        assert first.metrics is not None and first.metrics.endpoint is not None
        taken = first.metrics.endpoint.split("//", 1)[1].split("/", 1)[0]
        second = HostBuilder().metrics("prometheus", address=taken).build()
        with pytest.raises(OSError):
            await second.start()
        await second.stop()


def test_cli_listen_serves_metrics_until_stopped() -> None:
    with cli_process("listen", "--metrics", "127.0.0.1:0") as proc:
        # LISTEN lines first, then METRICS (read in order: both may sit in one buffer).
        assert proc.stdout is not None
        lines = [proc.stdout.readline() for _ in range(2)]
        assert lines[0].startswith("LISTEN ") and lines[1].startswith("METRICS "), lines
        url = lines[1].split()[1]
        status, ctype, body = sync_get(url)
        assert status == 200 and ctype.startswith("text/plain")
        assert "# TYPE p2pkit_connections gauge" in body
    with pytest.raises(OSError):
        sync_get(url)


async def test_get_helper_is_async() -> None:
    host = HostBuilder().metrics("prometheus", address="127.0.0.1:0").build()
    async with host:
        assert host.metrics is not None and host.metrics.endpoint is not None
        assert (await get(host.metrics.endpoint))[0] == 200
