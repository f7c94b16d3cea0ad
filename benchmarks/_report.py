"""Render ``compare.py``'s result dictionary as a markdown report (``latest.md``)."""

from __future__ import annotations

from typing import Any


def _fmt(x: float | None, digits: int = 1) -> str:
    return "n/a" if x is None else f"{x:.{digits}f}"


def _ratio(x: float | None) -> str:
    return "n/a" if x is None else f"{x:.2f}x"


def _sizes(cell: dict[str, Any]) -> str:
    sizes = sorted({r["bytes"] // 2**20 for r in cell["runs"]})
    if not sizes:
        return "n/a"
    return str(sizes[0]) if len(sizes) == 1 else f"{sizes[0]}-{sizes[-1]}"


def render_markdown(result: dict[str, Any]) -> str:
    m = result["machine"]
    load = result["load"]
    cfg = result["config"]
    mib = cfg["bytes"] / 2**20
    py_mib = cfg["py_bytes"] / 2**20
    lines = [
        "# p2pkit side-by-side benchmark",
        "",
        f"- date (UTC): {result['date']}, duration {result['duration_s']} s"
        + (" (**--quick** smoke run, not figures to quote)" if cfg["quick"] else ""),
        f"- machine: {m['nproc']} CPUs ({m['cpu']}), {m['platform']}",
        f"- python {m['python']}, node {m['node']}; p2pkit {m['p2pkit']}, "
        f"js-libp2p {m['js-libp2p']}, py-libp2p {m['py-libp2p']}",
        f"- 1-minute load average: {load['load_when_started']} at start "
        f"(waited {load['waited_s']} s for < {load['limit']}), {load['load_at_end']} at end",
        f"- {cfg['runs']} run(s) per cell, medians shown; up to {mib:g} MiB per direction "
        f"({py_mib:g} MiB when py-libp2p is in the pair; after each run a slow pair moves "
        f"fewer bytes so a direction lasts about {cfg['target_seconds']:g} s); loopback TCP, "
        "one connection, one stream, client and server in separate processes",
        "",
    ]
    for note in result["notes"]:
        lines.append(f"> note: {note}")
    if result["notes"]:
        lines.append("")
    lines += [
        "## Ratios (p2pkit -> p2pkit over the other implementation against itself)",
        "",
        "Throughput: > 1 means p2pkit is faster. Latency (connect + first ping RTT): "
        "< 1 means p2pkit is faster.",
        "",
        "| stack | vs | upload | download | latency |",
        "|---|---|---:|---:|---:|",
    ]
    if not result["ratios"]:
        lines.append("| (no pair of p2pkit and another implementation measured) | | | | |")
    for r in result["ratios"]:
        lines.append(
            f"| {r['stack']} | {r['vs']} | {_ratio(r['upload_MBps'])} | "
            f"{_ratio(r['download_MBps'])} | {_ratio(r['latency_ms'])} |"
        )
    if result.get("go_ratios"):
        lines += [
            "",
            "### p2pkit tcp+plaintext+yamux over Go's hashicorp/yamux (plain yamux over TCP)",
            "",
            "| vs | upload | download |",
            "|---|---:|---:|",
        ]
        for r in result["go_ratios"]:
            lines.append(
                f"| {r['vs']} | {_ratio(r['upload_MBps'])} | {_ratio(r['download_MBps'])} |"
            )
    lines += [
        "",
        "## Medians per cell (client -> server)",
        "",
        "Upload: client sends, server drains; download: server sends. MB/s = 10^6 bytes/s, "
        "timed from the first byte written to the end of the stream. connect: TCP + "
        "security + muxer handshakes; RTT: first 32-byte ping on a fresh stream.",
        "",
        "| stack | client -> server | upload MB/s | download MB/s | connect ms | RTT ms "
        "| connect+RTT ms | MiB/run | runs | errors |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for c in result["cells"]:
        med = c["median"]
        lines.append(
            f"| {c['stack']} | {c['client']} -> {c['server']} | {_fmt(med['upload_MBps'])} | "
            f"{_fmt(med['download_MBps'])} | {_fmt(med['connect_ms'])} | "
            f"{_fmt(med['rtt_ms'], 2)} | {_fmt(med['latency_ms'])} | {_sizes(c)} | "
            f"{len(c['runs'])} | "
            f"{len(c['errors'])} |"
        )
    errors = [(c, e) for c in result["cells"] for e in c["errors"]]
    if errors:
        lines += ["", "## Errors", ""]
        for c, e in errors:
            lines.append(f"- {c['stack']} {c['client']} -> {c['server']}: {e}")
    return "\n".join(lines) + "\n"
