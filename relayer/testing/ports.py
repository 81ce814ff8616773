"""Free loopback ports for devnets and daemons, reserved across processes (two test sessions, pytest-xdist workers).

``tests/integration/harness.py`` imports ``free_port_block`` from here: one implementation, one reservation
directory (``$TMPDIR/relayer-test-ports``), so the project's own suite and the pytest plugin never hand out the same
port while both are alive.
"""

from __future__ import annotations

import atexit
import os
import random
import socket
import tempfile
from pathlib import Path

_HANDED_OUT: set[int] = set()  # ports this process already gave a caller (not bound yet, maybe)
_RESERVED = Path(tempfile.gettempdir()) / "relayer-test-ports"  # one file per port a live test process handed out


def _ephemeral_low() -> int:
    """The lowest port the kernel hands out for outgoing connections (Linux: 32768 by default)."""
    try:
        return int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


def _free(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _reserve(block: range) -> bool:
    """Reserve every port of ``block`` for this process across processes (pytest-xdist workers, two sessions): a
    file per port, created exclusively, naming the owner's pid; a file whose owner is gone is taken over."""
    _RESERVED.mkdir(exist_ok=True)
    taken: list[Path] = []
    for port in block:
        path = _RESERVED / str(port)
        if not _claim(path):
            for mine in taken:
                mine.unlink(missing_ok=True)
            return False
        taken.append(path)
    atexit.register(_release, taken)
    return True


def _release(paths: list[Path]) -> None:
    for path in paths:
        path.unlink(missing_ok=True)


def _claim(path: Path) -> bool:
    for _ in range(2):
        try:
            fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            try:
                owner = int(path.read_text() or "0")
                os.kill(owner, 0)
                return False  # a live process holds it
            except (ValueError, ProcessLookupError, FileNotFoundError):
                path.unlink(missing_ok=True)  # its owner is gone: take it over
                continue
            except PermissionError:
                return False
        with os.fdopen(fd, "w") as out:
            out.write(str(os.getpid()))
        return True
    return False


def free_port_block(n: int) -> int:
    """A base port with ``n`` consecutive free loopback ports, below the kernel's ephemeral range: a devnet binds its
    ports over many seconds, and a port in that range could meanwhile be taken by any outgoing connection (CI lost
    a whole adversarial session to a Cosmos devnet whose REST port an outgoing connection held). Never the same
    port twice in one process, nor in two live processes (pytest-xdist workers)."""
    low, high = 10_000, _ephemeral_low() - n
    for _ in range(500):
        base = random.randrange(low, high)
        block = range(base, base + n)
        if not _HANDED_OUT.intersection(block) and all(_free(p) for p in block) and _reserve(block):
            _HANDED_OUT.update(block)
            return base
    raise RuntimeError("no block of free ports below the ephemeral range")
