"""Bad input from a careless user: one clear message, a non-zero exit, nothing dialled.

Every case here once ended in a traceback or did the wrong thing (a dial with a count of
0, a negative throughput, NaN timeouts accepted, options for a misspelt plugin ignored).
"""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from p2pkit.cli import main
from p2pkit.config import load_config
from p2pkit.errors import ConfigError

# A port nothing listens on: if validation let a case through, the dial would be refused
# and the error message would not be the one asserted below.
ADDR = "/ip4/127.0.0.1/tcp/9/p2p/12D3KooWD3eckifWpRn9wQpMG9R9hX3sD158z7EqHWmweQAJU5SA"

CLI_CASES = [
    (["perf", ADDR, "--download", "-100"], "out of range"),
    (["perf", ADDR, "--download", str(2**64 + 5)], "out of range"),
    (["perf", ADDR, "--upload", "-100"], "out of range"),
    (["demo", "--bytes", "-1"], "out of range"),
    (["echo", ADDR, "--bytes", str(10**15)], "out of range"),
    (["echo", ADDR, "--streams", "-3"], "out of range"),
    (["echo", ADDR, "--streams", "0"], "out of range"),
    (["ping", ADDR, "--count", "0"], "out of range"),
    (["ping", ADDR, "--count", "many"], "not an integer"),
    (["ping", ADDR, "--timeout", "-1"], "finite number of seconds"),
    (["ping", ADDR, "--timeout", "0"], "finite number of seconds"),
    (["ping", ADDR, "--timeout", "nan"], "finite number of seconds"),
    (["ping", ADDR, "--timeout", "inf"], "finite number of seconds"),
    (["ping", ADDR, "--security", ","], "names nothing"),
    (["ping", ADDR, "--muxer", " , "], "names nothing"),
    (["ping", ""], "address is empty"),
]


@pytest.mark.parametrize(("argv", "message"), CLI_CASES, ids=[" ".join(c[0]) for c in CLI_CASES])
def test_cli_rejects_before_dialling(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as info:
        main(argv)
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert message in err
    assert "Traceback" not in err


def _toml(tmp_path: Path, text: str | bytes) -> Path:
    path = tmp_path / "p2pkit.toml"
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text)
    return path


@pytest.mark.parametrize("key", ["handshake_timeout", "negotiation_timeout", "dial_timeout"])
@pytest.mark.parametrize("value", [math.nan, math.inf, -1.0, 0, True, "10"])
def test_timeouts_must_be_finite_and_positive(key: str, value: object) -> None:
    with pytest.raises(ConfigError, match=key):
        load_config({key: value})


def test_dialer_overall_timeout_nan_refused() -> None:
    with pytest.raises(ConfigError, match="overall_timeout"):
        load_config({"dialer": {"overall_timeout": math.nan}})


def test_plugin_option_nan_refused() -> None:
    with pytest.raises(ConfigError, match=r"keepalive_interval|expected"):
        load_config({"plugins": {"yamux": {"keepalive_interval": math.nan}}})


def test_options_for_unknown_plugin_refused(tmp_path: Path) -> None:
    path = _toml(tmp_path, "[p2pkit]\n[p2pkit.plugins.yamuxx]\nmax_stream_window = 1\n")
    with pytest.raises(ConfigError, match="unknown plugin 'yamuxx'"):
        load_config(path)


def test_agent_version_must_be_a_string() -> None:
    with pytest.raises(ConfigError, match="agent_version"):
        load_config({"agent_version": 5})


def test_p2pkit_not_a_table(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"\[p2pkit\] must be a table"):
        load_config(_toml(tmp_path, "p2pkit = 5\n"))
    with pytest.raises(ConfigError, match="must be a table"):
        load_config({"p2pkit": 5})


def test_non_utf8_toml(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not UTF-8"):
        load_config(_toml(tmp_path, b"[p2pkit]\nagent_version = \"\xff\xfe\"\n"))


@pytest.mark.parametrize(
    "addr",
    [
        "/ip4/127.0.0.1/tcp/0/p2p/12D3KooWD3eckifWpRn9wQpMG9R9hX3sD158z7EqHWmweQAJU5SA",
        "/ip4/127.0.0.1/tcp/0/p2p/12D3KooWD3eckifWpRn9wQpMG9R9hX3sD158z7EqHWmweQAJU5SA"
        "/p2p/12D3KooWD3eckifWpRn9wQpMG9R9hX3sD158z7EqHWmweQAJU5SA",
    ],
)
def test_listen_address_with_peer_id_refused(addr: str) -> None:
    with pytest.raises(ConfigError, match="must not contain /p2p/"):
        load_config({"listen": [addr]})


def test_cli_bad_config_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = _toml(tmp_path, "p2pkit = 5\n")
    assert main(["ping", ADDR, "--config", str(path)]) == 1
    err = capsys.readouterr().err.strip()
    assert "must be a table" in err and "\n" not in err
