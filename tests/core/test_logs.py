"""Log conventions (p2pkit.logs) and the operator's output formats (p2pkit.logfmt)."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import pytest

import p2pkit.protocols.identify  # noqa: F401
import p2pkit_noise.connection  # noqa: F401  (their loggers exist once imported)
import p2pkit_tcp.transport  # noqa: F401
import p2pkit_yamux.shell  # noqa: F401
from p2pkit.crypto import generate_private_key
from p2pkit.logfmt import configure_logging
from p2pkit.logs import RepeatFilter, RepeatLimiter, get_logger, peer_extra, short_peer
from p2pkit.peer import PeerId


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def captured() -> Iterator[tuple[logging.Logger, list[logging.LogRecord]]]:
    """A logger of its own with a handler that keeps every record it is given."""
    records: list[logging.LogRecord] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(record)

    logger = get_logger("test-logs")
    handler = Keep()
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    logger.propagate = False
    try:
        yield logger, records
    finally:
        logger.removeHandler(handler)
        logger.propagate = True
        logger.setLevel(logging.NOTSET)


def test_component_loggers_and_short_peer_ids() -> None:
    assert get_logger("swarm").name == "p2pkit.swarm"
    peer = PeerId.from_public_key(generate_private_key("ed25519").public_key)
    text = str(peer)
    short = short_peer(peer)
    assert short == f"{text[:8]}\u2026{text[-6:]}" and short.startswith("12D3KooW")
    assert short_peer("abc") == "abc"  # short ids are printed whole
    assert peer_extra(peer) == {"peer": text}


def test_every_p2pkit_logger_is_under_p2pkit() -> None:
    """Plugins log as p2pkit.<component>, never under their import name."""
    names = list(logging.Logger.manager.loggerDict)
    assert not [n for n in names if n.startswith("p2pkit_")], names
    assert {"p2pkit.yamux", "p2pkit.noise", "p2pkit.tcp", "p2pkit.identify"} <= set(names)


def test_repeats_within_a_window_are_collapsed_and_counted(captured) -> None:
    logger, records = captured
    clock = Clock()
    limiter = RepeatLimiter(10.0, clock=clock)
    written = [limiter.log(logger, logging.INFO, "k", "refused %s", i) for i in range(100)]
    assert written.count(True) == 1 and [r.getMessage() for r in records] == ["refused 0"]
    limiter.log(logger, logging.INFO, "other", "another key")  # keys are independent
    assert len(records) == 2
    clock.now += 10.0
    assert limiter.log(logger, logging.INFO, "k", "refused %s", 100)
    assert records[-1].getMessage() == "refused 100 (99 more like this within 10s)"
    assert records[-1].repeated == 99  # type: ignore[attr-defined]
    assert limiter.log(logger, logging.INFO, "k", "x") is False  # a new window began
    clock.now += 10.0
    assert limiter.log(logger, logging.INFO, "k", "100%")  # a literal % survives
    assert records[-1].getMessage() == "100% (1 more like this within 10s)"


def test_limiter_memory_is_bounded_and_disabled_levels_cost_nothing(captured) -> None:
    logger, records = captured
    limiter = RepeatLimiter(10.0, max_keys=16)
    for i in range(1000):
        limiter.log(logger, logging.INFO, ("peer", i), "hello %d", i)
    assert len(limiter._seen) == 16 and len(records) == 1000  # every key is new
    logger.setLevel(logging.WARNING)
    assert limiter.log(logger, logging.DEBUG, "quiet", "never") is False
    assert "quiet" not in limiter._seen


def test_filter_lets_a_burst_through_then_counts(captured) -> None:
    logger, records = captured
    handler = logger.handlers[0]
    flt = RepeatFilter(60.0, burst=5)
    handler.addFilter(flt)
    try:
        for i in range(200):  # one template, different arguments
            logger.info("connection %d refused", i)
        logger.info("something else")
        first = [r.getMessage() for r in records][:5]
        assert first == [f"connection {i} refused" for i in range(5)]
        assert len(records) == 6
        flt.limiter._seen[(logger.name, "connection %d refused")][0] -= 60.0  # window over
        logger.info("connection %d refused", 200)
        assert records[-1].getMessage() == "connection 200 refused (195 more like this within 60s)"
    finally:
        handler.removeFilter(flt)


@pytest.fixture
def restore_levels() -> Iterator[None]:
    """configure_logging sets the root and p2pkit levels: put them back."""
    root, p2p = logging.getLogger(), logging.getLogger("p2pkit")
    levels = root.level, p2p.level
    yield
    root.setLevel(levels[0])
    p2p.setLevel(levels[1])


def test_json_format_one_object_per_line(restore_levels: None) -> None:
    out = io.StringIO()
    handler = configure_logging("debug", "json", out)
    try:
        log = get_logger("swarm")
        log.debug("plain line")
        log.info("about %s", short_peer("12D3KooWabcdefghijklmnop"), extra=peer_extra("12D3KooWx"))
        try:
            raise ValueError("boom")
        except ValueError:
            log.exception("failed")
        logging.getLogger("elsewhere").info("other libraries stay at warning")
    finally:
        logging.getLogger().removeHandler(handler)
    lines = out.getvalue().splitlines()
    objs = [json.loads(line) for line in lines]
    assert len(objs) == 3
    for obj in objs:
        assert {"time", "level", "logger", "message"} <= set(obj)
        assert obj["time"].endswith("Z") and obj["logger"] == "p2pkit.swarm"
    assert objs[0]["level"] == "debug" and objs[0]["message"] == "plain line"
    assert objs[1]["peer"] == "12D3KooWx" and objs[1]["message"] == "about 12D3KooW\u2026klmnop"
    assert "ValueError: boom" in objs[2]["exc"] and objs[2]["level"] == "error"


def test_text_format_and_bad_settings(restore_levels: None) -> None:
    out = io.StringIO()
    handler = configure_logging("info", "text", out)
    try:
        get_logger("dialer").info("dialing %s", "x", extra={"peer": "P"})
    finally:
        logging.getLogger().removeHandler(handler)
    line = out.getvalue().strip()
    assert line.endswith("info    p2pkit.dialer: dialing x peer=P"), line
    with pytest.raises(ValueError, match="log level"):
        configure_logging("loud")
    with pytest.raises(ValueError, match="log format"):
        configure_logging("info", "xml")
