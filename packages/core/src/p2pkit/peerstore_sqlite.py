"""A peerstore persisted in SQLite (stdlib ``sqlite3``), so a restarted node knows its peers.

libp2p/specs ``connections/README.md`` ("Peer Metadata Storage") recommends keeping
peer ids, keys, addresses and protocols across restarts so a node can reconnect
without a bootstrap step.  This backend stores exactly what :class:`MemoryPeerstore`
keeps, in four tables.  Address expiry is stored as *wall-clock* time (monotonic time
means nothing after a restart); addresses whose TTL is infinite are stored as NULL.

Writes are committed immediately (WAL journal, ``synchronous=NORMAL``: a crash may lose
the last writes, never corrupt the file).  Every call is one short SQL statement on a
local file: the cost is a few tens of microseconds, paid once per connection or identify,
never per byte, so it runs inline in the event loop.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import sqlite3
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from multiaddr import Multiaddr

from p2pkit.abc import Peerstore
from p2pkit.crypto import PublicKey, public_key_from_protobuf
from p2pkit.peer import PeerId
from p2pkit.peerstore import (
    DEFAULT_MAX_PEERS,
    MAX_ADDRS_PER_PEER,
    MAX_PROTOCOLS_PER_PEER,
    bound_protocols,
)

if TYPE_CHECKING:
    from p2pkit.plugins.spec import Components

SCHEMA_VERSION = 2

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS keys (peer BLOB PRIMARY KEY, key BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS addrs (
    peer BLOB NOT NULL, addr BLOB NOT NULL, expires REAL, ttl REAL,
    PRIMARY KEY (peer, addr)
);
CREATE TABLE IF NOT EXISTS protocols (peer BLOB PRIMARY KEY, protocols TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS metadata (
    peer BLOB NOT NULL, key TEXT NOT NULL, value TEXT NOT NULL,
    PRIMARY KEY (peer, key)
);
"""


def _ttl_value(ttl: float) -> float | None:
    """A TTL as stored: infinite is NULL (as for ``expires``)."""
    return None if math.isinf(ttl) else ttl


@dataclasses.dataclass
class SqlitePeerstoreOptions:
    """Options of the ``sqlite`` peerstore plugin (``[p2pkit.peerstore]``)."""

    path: str = "peerstore.sqlite3"
    """Database file; created (with its directory) when missing.  A relative path is
    relative to the working directory.  ``:memory:`` works (nothing persists)."""
    max_addrs_per_peer: int = MAX_ADDRS_PER_PEER
    """Bound on stored addresses per peer (soonest expiry dropped first)."""
    max_peers: int = DEFAULT_MAX_PEERS
    """Bound on remembered peers besides connected ones (see ``Peerstore.collect``)."""
    max_protocols_per_peer: int = MAX_PROTOCOLS_PER_PEER
    """Bound on stored protocol ids per peer (the first ones announced are kept)."""

    def __post_init__(self) -> None:
        if not self.path:
            raise ValueError("sqlite peerstore needs a path")
        if self.max_addrs_per_peer < 1:
            raise ValueError("max_addrs_per_peer must be >= 1")
        if self.max_peers < 0:
            raise ValueError("max_peers must be >= 0")
        if self.max_protocols_per_peer < 0:
            raise ValueError("max_protocols_per_peer must be >= 0")


class SqlitePeerstore(Peerstore):
    """The :class:`~p2pkit.abc.Peerstore` interface on one SQLite file."""

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        clock: Callable[[], float] = time.time,
        max_addrs_per_peer: int = MAX_ADDRS_PER_PEER,
        max_peers: int = DEFAULT_MAX_PEERS,
        max_protocols_per_peer: int = MAX_PROTOCOLS_PER_PEER,
    ) -> None:
        path = os.fspath(path)
        if path != ":memory:":
            directory = os.path.dirname(os.path.abspath(path))
            os.makedirs(directory, exist_ok=True)
        self.path = path
        self._clock = clock
        self._max_addrs = max_addrs_per_peer
        self._max_protocols = max_protocols_per_peer
        self.max_peers = max_peers
        self._db: sqlite3.Connection | None = sqlite3.connect(path, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(_SCHEMA)
        columns = {row[1] for row in self._db.execute("PRAGMA table_info(addrs)")}
        if "ttl" not in columns:
            # Version 1 files: addresses keep their expiry; with no TTL recorded they are
            # never matched by update_addrs (they simply run out).
            self._db.execute("ALTER TABLE addrs ADD COLUMN ttl REAL")
        self._db.execute(
            "INSERT OR REPLACE INTO meta VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),)
        )

    @property
    def db(self) -> sqlite3.Connection:
        if self._db is None:
            raise ValueError("peerstore is closed")
        return self._db

    # -- addresses ------------------------------------------------------------------------

    def add_addrs(self, peer: PeerId, addrs: Sequence[Multiaddr], ttl: float) -> None:
        expires = None if math.isinf(ttl) else self._clock() + ttl
        key = peer.to_bytes()
        db = self.db
        with _transaction(db):
            for addr in addrs:
                raw = addr.to_bytes()
                row = db.execute(
                    "SELECT expires FROM addrs WHERE peer=? AND addr=?", (key, raw)
                ).fetchone()
                if row is None:
                    db.execute(
                        "INSERT INTO addrs (peer, addr, expires, ttl) VALUES (?, ?, ?, ?)",
                        (key, raw, expires, _ttl_value(ttl)),
                    )
                elif row[0] is not None and (expires is None or row[0] < expires):
                    # Only ever extend an address's life, as the memory store does.
                    db.execute(
                        "UPDATE addrs SET expires=?, ttl=? WHERE peer=? AND addr=?",
                        (expires, _ttl_value(ttl), key, raw),
                    )
            (count,) = db.execute("SELECT COUNT(*) FROM addrs WHERE peer=?", (key,)).fetchone()
            if count > self._max_addrs:
                db.execute(
                    "DELETE FROM addrs WHERE rowid IN (SELECT rowid FROM addrs WHERE peer=? "
                    "ORDER BY expires IS NULL, expires LIMIT ?)",
                    (key, count - self._max_addrs),
                )

    def update_addrs(self, peer: PeerId, old_ttl: float, new_ttl: float) -> None:
        expires = None if math.isinf(new_ttl) else self._clock() + new_ttl
        old = _ttl_value(old_ttl)
        self.db.execute(
            "UPDATE addrs SET expires=?, ttl=? WHERE peer=? AND "
            + ("ttl IS NULL AND expires IS NULL" if old is None else "ttl=?"),
            (expires, _ttl_value(new_ttl), peer.to_bytes(), *(() if old is None else (old,))),
        )

    def addrs(self, peer: PeerId) -> list[Multiaddr]:
        key = peer.to_bytes()
        now = self._clock()
        self.db.execute(
            "DELETE FROM addrs WHERE peer=? AND expires IS NOT NULL AND expires<=?", (key, now)
        )
        out = []
        for (raw,) in self.db.execute(
            "SELECT addr FROM addrs WHERE peer=? ORDER BY rowid", (key,)
        ).fetchall():
            try:
                out.append(Multiaddr(raw))
            except Exception:  # an address this multiaddr version cannot parse: skip it
                continue
        return out

    def clear_addrs(self, peer: PeerId) -> None:
        self.db.execute("DELETE FROM addrs WHERE peer=?", (peer.to_bytes(),))

    # -- keys, protocols, metadata ------------------------------------------------------------

    def add_public_key(self, peer: PeerId, key: PublicKey) -> None:
        self.db.execute(
            "INSERT OR REPLACE INTO keys VALUES (?, ?)", (peer.to_bytes(), key.to_protobuf())
        )

    def public_key(self, peer: PeerId) -> PublicKey | None:
        row = self.db.execute("SELECT key FROM keys WHERE peer=?", (peer.to_bytes(),)).fetchone()
        if row is not None:
            try:
                return public_key_from_protobuf(row[0])
            except ValueError:
                pass
        return peer.extract_public_key()

    def set_protocols(self, peer: PeerId, protocols: Sequence[str]) -> None:
        self.db.execute(
            "INSERT OR REPLACE INTO protocols VALUES (?, ?)",
            (peer.to_bytes(), json.dumps(bound_protocols(protocols, self._max_protocols))),
        )

    def protocols(self, peer: PeerId) -> list[str]:
        row = self.db.execute(
            "SELECT protocols FROM protocols WHERE peer=?", (peer.to_bytes(),)
        ).fetchone()
        return list(json.loads(row[0])) if row is not None else []

    def put_metadata(self, peer: PeerId, key: str, value: object) -> None:
        """``value`` must be JSON-serialisable (str, int, float, bool, None, list, dict)."""
        try:
            encoded = json.dumps(value)
        except (TypeError, ValueError) as exc:
            raise TypeError(f"peerstore metadata {key!r} is not JSON-serialisable") from exc
        self.db.execute(
            "INSERT OR REPLACE INTO metadata VALUES (?, ?, ?)", (peer.to_bytes(), key, encoded)
        )

    def get_metadata(self, peer: PeerId, key: str) -> object | None:
        row = self.db.execute(
            "SELECT value FROM metadata WHERE peer=? AND key=?", (peer.to_bytes(), key)
        ).fetchone()
        return json.loads(row[0]) if row is not None else None

    def peers(self) -> list[PeerId]:
        rows = self.db.execute(
            "SELECT peer FROM keys UNION SELECT peer FROM addrs "
            "UNION SELECT peer FROM protocols UNION SELECT peer FROM metadata"
        ).fetchall()
        return [PeerId.from_bytes(r[0]) for r in rows]

    def remove_peer(self, peer: PeerId) -> None:
        key = peer.to_bytes()
        with _transaction(self.db):
            for table in ("keys", "addrs", "protocols", "metadata"):
                self.db.execute(f"DELETE FROM {table} WHERE peer=?", (key,))

    def collect(self, keep: Callable[[PeerId], bool]) -> int:
        db = self.db
        db.execute("DELETE FROM addrs WHERE expires IS NOT NULL AND expires<=?", (self._clock(),))
        # Latest expiry per peer with a live address (NULL = permanent sorts last).
        live = {
            raw: (math.inf if exp is None else exp)
            for raw, exp in db.execute(
                "SELECT peer, CASE WHEN COUNT(*) > COUNT(expires) THEN NULL ELSE MAX(expires) "
                "END FROM addrs GROUP BY peer"
            ).fetchall()
        }
        gone: list[bytes] = []
        unkept: list[tuple[float, bytes]] = []
        for peer in self.peers():
            if keep(peer):
                continue
            raw = peer.to_bytes()
            if raw in live:
                unkept.append((live[raw], raw))
            else:
                gone.append(raw)
        excess = len(unkept) - self.max_peers
        if excess > 0:
            unkept.sort(key=lambda item: item[0])
            gone.extend(raw for _, raw in unkept[:excess])
        for raw in gone:
            self.remove_peer(PeerId.from_bytes(raw))
        return len(gone)

    def close(self) -> None:
        if self._db is not None:
            self._db.close()
            self._db = None


class _transaction:
    """``BEGIN``/``COMMIT`` around several statements (autocommit mode otherwise)."""

    def __init__(self, db: sqlite3.Connection) -> None:
        self.db = db

    def __enter__(self) -> None:
        self.db.execute("BEGIN")

    def __exit__(self, exc_type: Any, *rest: Any) -> None:
        self.db.execute("COMMIT" if exc_type is None else "ROLLBACK")


def sqlite_peerstore_factory(components: Components, options: Any) -> SqlitePeerstore:
    """Plugin factory of the ``sqlite`` peerstore."""
    opts: SqlitePeerstoreOptions = options
    return SqlitePeerstore(
        opts.path,
        max_addrs_per_peer=opts.max_addrs_per_peer,
        max_peers=opts.max_peers,
        max_protocols_per_peer=opts.max_protocols_per_peer,
    )


__all__ = ["SqlitePeerstore", "SqlitePeerstoreOptions"]
