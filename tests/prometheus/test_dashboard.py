"""The Grafana dashboard (docs/grafana-dashboard.json) is valid JSON and queries only
series a host really exports, and every exported family has a panel."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from p2pkit.builder import HostBuilder
from p2pkit.host_metrics import SERIES
from tests.prometheus.scrape import scrape

DASHBOARD = Path(__file__).resolve().parents[2] / "docs" / "grafana-dashboard.json"
NAME = re.compile(r"\bp2pkit_[a-z0-9_]+")


def _load() -> dict[str, Any]:
    data = json.loads(DASHBOARD.read_text())
    assert isinstance(data, dict)
    return data


def _exprs(dashboard: dict[str, Any]) -> list[str]:
    out = []
    for panel in dashboard["panels"]:
        if panel["type"] == "row":
            continue
        assert panel["targets"], panel["title"]
        assert set(panel["gridPos"]) == {"h", "w", "x", "y"}
        out.extend(t["expr"] for t in panel["targets"])
    for var in dashboard["templating"]["list"]:
        query = var.get("query")
        if isinstance(query, dict):
            out.append(query["query"])
    return out


def _used(dashboard: dict[str, Any]) -> set[str]:
    return {name for expr in _exprs(dashboard) for name in NAME.findall(expr)}


def test_dashboard_shape() -> None:
    dashboard = _load()
    ids = [p["id"] for p in dashboard["panels"]]
    assert len(ids) == len(set(ids))
    assert dashboard["uid"] and dashboard["title"]


@pytest.mark.timeout(60)
async def test_dashboard_series_are_exported() -> None:
    host = HostBuilder().metrics("prometheus", address="127.0.0.1:0").build()
    async with host:
        assert host.metrics is not None and host.metrics.endpoint is not None
        exported = (await scrape(host.metrics.endpoint)).names()
    used = _used(_load())
    assert used, "the dashboard queries no p2pkit series"
    assert used <= exported, sorted(used - exported)


def test_every_family_has_a_panel() -> None:
    used = _used(_load())
    suffixes = ("_bucket", "_count", "_sum")
    families = {n.removesuffix(s) for n in used for s in suffixes if n.endswith(s)} | used
    assert set(SERIES) <= families, sorted(set(SERIES) - families)
