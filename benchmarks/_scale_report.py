"""Render ``scale.py``'s results (``scale-latest.json``) as markdown: one row per figure,
p2pkit beside js-libp2p and py-libp2p, then when and under what load each was taken."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

COLUMNS = ("p2pkit", "js", "py-libp2p")
Row = tuple[str, Callable[[dict[str, Any]], str], str]


def _num(x: Any, digits: int = 1) -> str:
    return "n/a" if x is None else f"{x:.{digits}f}"


def _mib(kib: Any) -> str:
    return "n/a" if kib is None else f"{kib / 1024:.1f}"


def _idle_rows(n: int) -> list[Row]:
    return [
        (
            f"idle, {n} conns: RSS per idle connection, KiB",
            lambda r: _num(r.get("per_conn_kib")),
            "<= 48",
        ),
        (
            f"idle, {n} conns: listener RSS before / held / after close, MiB",
            lambda r: (
                f"{_mib(r.get('baseline_kib'))} / {_mib(r.get('held_kib'))} / "
                f"{_mib(r.get('closed_kib'))}"
            ),
            "",
        ),
        (
            f"idle, {n} conns: memory returned after close (<= base +10 % +5 MiB)",
            lambda r: "yes" if r.get("returned") else "no",
            "yes",
        ),
        (
            f"idle, {n} conns: connected / sockets held / answered the final ping",
            lambda r: f"{r.get('connected')} / {r.get('sockets_held')} / {r.get('ping_ok')}",
            f"{n} / {n} / {n}",
        ),
        (
            f"idle, {n} conns: listener CPU while idle, % of one core",
            lambda r: _num(r.get("idle_cpu_pct"), 2),
            "~0",
        ),
        (f"idle, {n} conns: time to open them all, s", lambda r: _num(r.get("ramp_s")), ""),
    ]


def _churn_rows(m: int) -> list[Row]:
    return [
        (
            f"churn, {m} conns: RSS after the first 10 %, MiB",
            lambda r: _mib(r.get("after_first_kib")),
            "",
        ),
        (
            f"churn, {m} conns: growth after the first 10 %, KiB/conn",
            lambda r: _num(r.get("growth_per_conn_kib"), 2),
            "< 1",
        ),
        (
            f"churn, {m} conns: visits ok / identified",
            lambda r: f"{r.get('ok')} / {r.get('identified')}",
            f"{m} / {m}",
        ),
    ]


def _setup_rows(k: int) -> list[Row]:
    return [
        (
            f"set-up, {k} fresh conns: connect + first ping, median ms",
            lambda r: _num(r.get("median_total_ms"), 2),
            "<= 5",
        ),
        (
            f"set-up, {k} fresh conns: connect / first ping, median ms",
            lambda r: f"{_num(r.get('median_connect_ms'), 2)} / {_num(r.get('median_rtt_ms'), 2)}",
            "",
        ),
    ]


def _echo_rows(s: int) -> list[Row]:
    return [
        (
            f"echo, {s} concurrent 1 KiB streams, p2pkit dialer: median s",
            lambda r: _num(r.get("from_p2pkit", {}).get("median_s"), 3),
            "<= 0.5",
        ),
    ]


def _import_rows() -> list[Row]:
    return [
        (
            "import p2pkit + default host, median s (in-process)",
            lambda r: _num(r.get("median_s"), 3),
            "<= 0.15",
        ),
        (
            "same, whole process / bare python process, median s",
            lambda r: (
                f"{_num(r.get('median_process_s'), 3)} / {_num(r.get('median_bare_python_s'), 3)}"
            ),
            "",
        ),
        (
            "handshake/shell modules imported at build (OpenSSL, noise, TLS, muxer shells)",
            lambda r: ", ".join(r.get("modules", [])) or "none",
            "none",
        ),
    ]


def _rows_for(key: str) -> list[Row]:
    name, _, size = key.partition("@")
    n = int(size) if size else 0
    table: dict[str, Callable[[], list[Row]]] = {
        "idle": lambda: _idle_rows(n),
        "churn": lambda: _churn_rows(n),
        "setup": lambda: _setup_rows(n),
        "echo": lambda: _echo_rows(n),
        "import": _import_rows,
    }
    return table[name]() if name in table else []


ORDER = ("idle", "churn", "setup", "echo", "import")


def _sort_key(key: str) -> tuple[int, int]:
    name, _, size = key.partition("@")
    return (ORDER.index(name) if name in ORDER else 99, int(size) if size else 0)


def render_markdown(result: dict[str, Any]) -> str:
    m = result["machine"]
    scenarios = result["scenarios"]
    keys = sorted(scenarios, key=_sort_key)
    lines = [
        "# p2pkit scale benchmark (`benchmarks/scale.py`)",
        "",
        f"- machine: {m['nproc']} CPUs ({m['cpu']}), {m.get('mem_total_mib')} MiB RAM, "
        f"{m['platform']}",
        f"- python {m['python']}, node {m['node']}; p2pkit {m['p2pkit']}, "
        f"js-libp2p {m['js-libp2p']}, py-libp2p {m['py-libp2p']}",
        "- listeners: TCP + Noise + Yamux on 127.0.0.1, each in its own process, all dialled "
        "by p2pkit dialer processes (one identity per connection); RSS = VmRSS of the "
        "listener process",
        "",
        "| figure | p2pkit | js-libp2p | py-libp2p | goal (issue 12) |",
        "|---|---:|---:|---:|---:|",
    ]
    for key in keys:
        rec = scenarios[key]
        for label, fmt, goal in _rows_for(key):
            cells = []
            for col in COLUMNS:
                res = rec["results"].get(col)
                if res is not None:
                    cells.append(fmt(res))
                elif col in rec.get("errors", {}):
                    cells.append("failed")
                else:
                    cells.append("-")
            lines.append(f"| {label} | {' | '.join(cells)} | {goal} |")
    lines += ["", "## Runs", ""]
    for key in keys:
        rec = scenarios[key]
        lines.append(
            f"- **{key}**: {rec['date']}, {rec['duration_s']} s, 1-minute load "
            f"{rec['load_start']} -> {rec['load_end']}, MemAvailable "
            f"{rec['mem_available_mib_start']} MiB at start"
            + (" (**--quick** sizes, not figures to quote)" if rec.get("quick") else "")
        )
        for impl, when in rec.get("carried_over", {}).items():
            lines.append(f"  - {impl}: from an earlier run, {when}")
        for impl, err in rec.get("errors", {}).items():
            lines.append(f"  - {impl} failed: {' '.join(str(err).split())}")
        for note in rec.get("notes", []):
            lines.append(f"  - note: {note}")
    return "\n".join(lines) + "\n"
