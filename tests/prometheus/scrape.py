"""Scraping helpers: a real HTTP client (http.client, in a thread) and prometheus_client's
parser, as a Prometheus server would read the endpoint."""

from __future__ import annotations

import asyncio
import http.client
import urllib.parse

from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample


def sync_get(url: str, path: str | None = None, method: str = "GET") -> tuple[int, str, str]:
    parts = urllib.parse.urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname or "", parts.port, timeout=10)
    try:
        conn.request(method, path or parts.path)
        resp = conn.getresponse()
        return resp.status, resp.getheader("Content-Type") or "", resp.read().decode()
    finally:
        conn.close()


async def get(url: str, path: str | None = None, method: str = "GET") -> tuple[int, str, str]:
    """(status, content type, body) of one request to the metrics endpoint."""
    return await asyncio.to_thread(sync_get, url, path, method)


class Scrape:
    """One parsed exposition: families by name and every sample."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.families = {f.name: f for f in text_string_to_metric_families(text)}
        self.samples: list[Sample] = [s for f in self.families.values() for s in f.samples]

    def names(self) -> set[str]:
        """Every series name a query can use (``_total``, ``_bucket``... included)."""
        out = set()
        for name, family in self.families.items():
            out.add(name)
            if family.type == "counter":
                out.add(f"{name}_total")
            if family.type == "histogram":
                out.update(f"{name}_{suffix}" for suffix in ("bucket", "sum", "count"))
        out.update(s.name for s in self.samples)
        return out

    def value(self, name: str, **labels: str) -> float:
        """The sum of the samples ``name`` whose labels include ``labels`` (0 if none)."""
        return sum(
            s.value
            for s in self.samples
            if s.name == name and all(s.labels.get(k) == v for k, v in labels.items())
        )

    def labels(self, name: str, label: str) -> set[str]:
        return {s.labels[label] for s in self.samples if s.name == name and label in s.labels}


async def scrape(url: str) -> Scrape:
    status, ctype, body = await get(url)
    assert status == 200, body
    assert ctype.startswith("text/plain"), ctype
    return Scrape(body)
