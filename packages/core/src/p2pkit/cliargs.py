"""The ``p2pkit`` command line's arguments: the parser and the validation of every
value (finite, in range) before anything is dialled or allocated."""

from __future__ import annotations

import argparse
import math
from typing import Any

from p2pkit.errors import ConfigError
from p2pkit.plugins.hints import distribution_for_kind
from p2pkit.plugins.registry import default_registry

DEFAULT_LISTEN = "/ip4/127.0.0.1/tcp/0"

#: The perf protocol sends the download size as a u64; uploads are counted the same way.
MAX_PERF_BYTES = 2**64 - 1
#: ``echo`` keeps each stream's payload in memory to check it: bounded to 1 GiB per stream.
MAX_ECHO_BYTES = 1 << 30
MAX_ECHO_STREAMS = 10_000
MAX_PING_COUNT = 100_000


def _int_in(low: int, high: int) -> Any:
    """argparse type: an integer in [low, high] (rejected before anything is dialled)."""

    def parse(text: str) -> int:
        try:
            value = int(text, 0)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"{value} is out of range [{low}, {high}]")
        return value

    return parse


_SIZE_UNITS = {
    "k": 10**3, "kb": 10**3, "ki": 2**10, "kib": 2**10,
    "m": 10**6, "mb": 10**6, "mi": 2**20, "mib": 2**20,
    "g": 10**9, "gb": 10**9, "gi": 2**30, "gib": 2**30,
}  # fmt: skip


def _size_in(low: int, high: int) -> Any:
    """argparse type: a byte count in [low, high], plain (``1048576``) or with a unit
    (``64KiB``, ``16MiB``, ``1GiB``, ``500k``, ``2MB``: k/M/G are powers of 1000)."""

    def parse(text: str) -> int:
        value = _byte_count(text.strip())
        if value is None:
            raise argparse.ArgumentTypeError(
                f"{text!r} is not a byte count (an integer, or a number with a unit: "
                "KiB, MiB, GiB, k, M, G)"
            )
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"{value} is out of range [{low}, {high}]")
        return value

    return parse


def _byte_count(text: str) -> int | None:
    try:
        return int(text, 0)
    except ValueError:
        pass
    digits = text.rstrip("bBiIkKmMgG").rstrip()
    unit = _SIZE_UNITS.get(text[len(text.rstrip("bBiIkKmMgG")) :].lower())
    if unit is None:  # no unit: and not an integer either
        return None
    try:
        value = float(digits) * unit
        return int(value) if value == int(value) else None
    except (ValueError, OverflowError):
        return None


def _seconds(text: str) -> float:
    """argparse type: a finite, positive number of seconds."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not math.isfinite(value) or value <= 0:
        raise argparse.ArgumentTypeError(f"{text!r} must be a finite number of seconds > 0")
    return value


def _name_list(text: str) -> str:
    """argparse type: a comma-separated list with at least one name."""
    if not [n for n in text.split(",") if n.strip()]:
        raise argparse.ArgumentTypeError(f"{text!r} names nothing (expected e.g. noise,tls)")
    return text


def _address(text: str) -> str:
    """argparse type: a non-empty multiaddr string (parsed fully when dialled)."""
    if not text.strip():
        raise argparse.ArgumentTypeError("the address is empty (expected e.g. /ip4/.../p2p/...)")
    return text


def _add_stack_args(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--security", type=_name_list, help="comma-separated security protocols, preferred first"
    )
    p.add_argument(
        "--muxer", type=_name_list, help="comma-separated stream muxers, preferred first"
    )
    p.add_argument(
        "--transport", type=_name_list, help="comma-separated transports (default: all installed)"
    )
    p.add_argument("--identity", help="private key file (PEM or libp2p protobuf)")
    p.add_argument("--config", help="TOML configuration file ([p2pkit] table)")
    p.add_argument("--timeout", type=_seconds, default=60.0, help="overall time limit in seconds")
    _add_operator_args(p)


# -- operator options (logs, event loop): one block, kept apart from the stack options ----

LOG_LEVELS = ("debug", "info", "warning", "error", "critical")
LOG_FORMATS = ("text", "json")
EVENT_LOOPS = ("asyncio", "uvloop")


def _add_operator_args(p: argparse.ArgumentParser, *, event_loop: bool = True) -> None:
    """``--log-level``, ``--log-format`` and (commands that run a loop) ``--event-loop``."""
    p.add_argument(
        "--log-level", choices=LOG_LEVELS, default="warning", help="p2pkit log level (stderr)"
    )
    p.add_argument(
        "--log-format",
        choices=LOG_FORMATS,
        default="text",
        help="log lines as text or as one JSON object per line",
    )
    if event_loop:
        p.add_argument(
            "--event-loop",
            choices=EVENT_LOOPS,
            default=None,
            help='asyncio (default) or uvloop (pip install "p2pkit[uvloop]"); '
            "default: event_loop from --config, else asyncio",
        )


def _add_perf_args(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--upload", type=_size_in(0, MAX_PERF_BYTES), metavar="BYTES", help="bytes to send"
    )
    p.add_argument(
        "--download",
        type=_size_in(0, MAX_PERF_BYTES),
        metavar="BYTES",
        help="bytes to receive",
    )
    p.add_argument(
        "--duration",
        type=_seconds,
        metavar="SECONDS",
        help="run each direction for SECONDS instead of a byte count",
    )
    p.add_argument(
        "--direction",
        choices=("both", "upload", "download"),
        default="both",
        help="with --duration: which directions to run (default both)",
    )


def check_perf_args(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """Byte counts and ``--duration`` are two ways to size a run: one at a time."""
    if args.duration is not None and (args.upload is not None or args.download is not None):
        parser.error("perf: give --duration or byte counts (--upload/--download), not both")
    if args.duration is None and args.direction != "both":
        parser.error("perf: --direction goes with --duration")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="p2pkit", description="libp2p connection stack for Python"
    )
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("id", help="generate an identity and print its peer id")
    p.add_argument(
        "--key-type", default="ed25519", choices=["ed25519", "secp256k1", "ecdsa", "rsa"]
    )
    p.add_argument("--out", help="write the private key to this file (PEM)")
    p.add_argument("--format", default="pem", choices=["pem", "protobuf"])
    p.add_argument("--json", action="store_true")
    _add_operator_args(p, event_loop=False)

    p = sub.add_parser("listen", help="listen and serve ping, identify, echo and perf")
    p.add_argument(
        "--listen", action="append", help=f"multiaddr to listen on (default {DEFAULT_LISTEN})"
    )
    _add_stack_args(p)
    p.add_argument(
        "--metrics",
        metavar="HOST:PORT",
        help="serve metrics over HTTP there (the installed metrics plugin, e.g. prometheus)",
    )

    p = sub.add_parser("ping", help="ping a peer")
    p.add_argument("addr", type=_address)
    p.add_argument("--count", type=_int_in(1, MAX_PING_COUNT), default=5)
    p.add_argument("--json", action="store_true")
    _add_stack_args(p)

    p = sub.add_parser("echo", help="echo data through /echo/1.0.0 and check it")
    p.add_argument("addr", type=_address)
    p.add_argument("--streams", type=_int_in(1, MAX_ECHO_STREAMS), default=1)
    p.add_argument("--bytes", type=_size_in(0, MAX_ECHO_BYTES), default=1024)
    p.add_argument("--json", action="store_true")
    _add_stack_args(p)

    p = sub.add_parser("perf", help="measure throughput with /perf/1.0.0")
    p.add_argument("addr", type=_address)
    _add_perf_args(p)
    p.add_argument("--json", action="store_true")
    _add_stack_args(p)

    p = sub.add_parser("identify", help="run identify against a peer")
    p.add_argument("addr", type=_address)
    p.add_argument("--json", action="store_true")
    _add_stack_args(p)

    p = sub.add_parser("plugins", help="list installed plugins")
    p.add_argument("--json", action="store_true")
    _add_operator_args(p, event_loop=False)

    p = sub.add_parser("demo", help="two hosts on loopback: connect, ping, identify, perf")
    p.add_argument("--bytes", type=_size_in(0, MAX_PERF_BYTES), default=32 * 1024 * 1024)
    p.add_argument("--json", action="store_true")
    _add_stack_args(p)
    return parser


def metrics_table(address: str) -> dict[str, Any]:
    """``--metrics HOST:PORT``: the first installed metrics plugin, serving there."""
    names = default_registry().names("metrics")
    if not names:
        dist = distribution_for_kind("metrics")
        raise ConfigError(f"--metrics: no metrics plugin installed; pip install {dist}")
    return {"name": names[0], "address": address}
