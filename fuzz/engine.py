"""The mutation engine: seeded inputs, one target, typed errors counted, the rest reported.

An input is random bytes (one in ten) or a valid seed with 1-8 mutations: bit flips,
interesting byte values, inserted/deleted/duplicated ranges, truncation, splices with
another seed, and oversized varints or 32-bit lengths written over a position (the
length fields every decoder here trusts first).  The generator is ``random.Random(seed)``
per batch; the seeds hold keys generated per run, so runs differ where inputs derive from
key material: a finding is reproduced from its printed input (``--repro``).
"""

from __future__ import annotations

import dataclasses
import random
import struct
import traceback
from collections import Counter

from p2pkit.errors import P2PError

from .known import known_finding
from .targets import Target

MAX_INPUT = 1 << 16
INTERESTING = (0x00, 0x01, 0x7F, 0x80, 0xFF, 0xFE, 0x40, 0x20)
BIG_VARINTS = (b"\xff\xff\xff\xff\x0f", b"\x80" * 9 + b"\x01", b"\xff" * 11, b"\x80\x80\x04")
BIG_U32 = (0, 1, 0x7FFFFFFF, 0x80000000, 0xFFFFFFFF, 1 << 16, (1 << 24) + 1)


def mutate(rng: random.Random, seeds: list[bytes]) -> bytes:
    if rng.random() < 0.1 or not seeds:
        return rng.randbytes(rng.randrange(0, 96))
    buf = bytearray(rng.choice(seeds))
    for _ in range(rng.choice((1, 1, 1, 2, 2, 3, 4, 8))):
        n = len(buf)
        op = rng.randrange(10)
        if n == 0 and op not in (3, 7):
            op = 3
        if op == 0:
            buf[rng.randrange(n)] ^= 1 << rng.randrange(8)
        elif op == 1:
            buf[rng.randrange(n)] = rng.choice(INTERESTING)
        elif op == 2:
            buf[rng.randrange(n)] = rng.randrange(256)
        elif op == 3:
            i = rng.randrange(n + 1)
            buf[i:i] = rng.randbytes(rng.randrange(1, 9))
        elif op == 4:
            i = rng.randrange(n)
            del buf[i : i + rng.randrange(1, 17)]
        elif op == 5:
            i = rng.randrange(n)
            j = min(n, i + rng.randrange(1, 33))
            k = rng.randrange(n + 1)
            buf[k:k] = buf[i:j]
        elif op == 6:
            del buf[rng.randrange(n) :]
        elif op == 7:
            other = rng.choice(seeds)
            i = rng.randrange(n + 1)
            buf[i:] = other[rng.randrange(len(other) + 1) :]
        elif op == 8:
            i = rng.randrange(n)
            buf[i : i + 1] = rng.choice(BIG_VARINTS)
        else:
            i = rng.randrange(n)
            buf[i : i + 4] = struct.pack(">I", rng.choice(BIG_U32))
    return bytes(buf[:MAX_INPUT])


@dataclasses.dataclass
class Finding:
    """An untyped exception: where it was raised, and the first input that raised it."""

    exception: str
    where: str
    count: int
    seed: int
    input_hex: str
    traceback: str


@dataclasses.dataclass
class Stats:
    target: str
    inputs: int = 0
    typed: int = 0
    known: Counter[str] = dataclasses.field(default_factory=Counter)
    known_example: dict[str, str] = dataclasses.field(default_factory=dict)
    """First input (hex) that hit each known finding: proof the fuzzer reaches it."""
    findings: dict[str, Finding] = dataclasses.field(default_factory=dict)
    seconds: float = 0.0

    def add(self, other: Stats) -> None:
        self.inputs += other.inputs
        self.typed += other.typed
        self.known.update(other.known)
        for name, example in other.known_example.items():
            self.known_example.setdefault(name, example)
        self.seconds += other.seconds
        for key, f in other.findings.items():
            if key in self.findings:
                self.findings[key].count += f.count
            else:
                self.findings[key] = f


def _where(exc: BaseException) -> str:
    frames = traceback.extract_tb(exc.__traceback__)
    ours = [f for f in frames if "/fuzz/" not in f.filename] or frames
    last = ours[-1]
    return f"{last.filename.rsplit('/src/', 1)[-1]}:{last.lineno} ({last.name})"


def fuzz(target: Target, seeds: list[bytes], seed: int, count: int) -> Stats:
    """Run ``count`` inputs of batch ``seed`` through ``target``."""
    import time

    rng = random.Random(seed)
    stats = Stats(target.name)
    typed: tuple[type[BaseException], ...] = (P2PError, *target.allowed)
    start = time.perf_counter()
    for _ in range(count):
        data = mutate(rng, seeds)
        stats.inputs += 1
        try:
            target.run(data, rng)
        except typed:
            stats.typed += 1
        except Exception as exc:
            name = f"{type(exc).__module__}.{type(exc).__qualname__}"
            if known_finding(target.name, name):
                stats.known[name] += 1
                stats.known_example.setdefault(name, data.hex())
                continue
            key = f"{name} at {_where(exc)}"
            if key in stats.findings:
                stats.findings[key].count += 1
            else:
                tb = "".join(traceback.format_exception(exc)[-6:])
                stats.findings[key] = Finding(name, _where(exc), 1, seed, data.hex(), tb)
    stats.seconds = time.perf_counter() - start
    return stats
