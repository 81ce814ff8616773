"""The session's relayer daemon: ``relayer run``'s daemon (role ``all``: validators and relayer) in a child process
forked from a warm fork server (``relayer.testing.daemon_child``), a standby child built ahead of time for the next
start, and the log they all write."""

from __future__ import annotations

import os
import select
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx

from relayer.testing.chains import XChainError

WARM_TIMEOUT_S = 90.0  # the first fork waits for the server's imports (seconds on a loaded machine)
STOP_TIMEOUT_S = 20.0
GO = signal.SIGUSR1


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def _signal_group(pid: int, sig: int) -> None:
    """``sig`` to the process group ``pid`` leads, or to ``pid`` alone if it leads none yet (just forked)."""
    try:
        os.killpg(pid, sig)
    except ProcessLookupError:
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            pass


class ForkServer:
    """``python -m relayer.testing.daemon_child``: ``fork`` answers a child's pid; ``wait_warm`` waits for the child
    to be built."""

    def __init__(self, config: Path, log: Path, modules: Path, env: dict[str, str]) -> None:
        args = [sys.executable, "-m", "relayer.testing.daemon_child", "-c", str(config), "--warm", str(modules)]
        with open(log, "ab") as out:
            self.proc = subprocess.Popen(args, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=out,
                                         start_new_session=True, env=env)
        self._warm: set[int] = set()
        self._buffer = b""

    def fork(self, *, record: bool = False) -> int:
        assert self.proc.stdin is not None
        self.proc.stdin.write(b"fork record\n" if record else b"fork\n")
        self.proc.stdin.flush()
        deadline = time.monotonic() + WARM_TIMEOUT_S
        while True:
            word, pid = self._next(deadline, "to fork a daemon")
            if word == "pid":
                return pid
            self._warm.add(pid)

    def wait_warm(self, pid: int) -> None:
        deadline = time.monotonic() + WARM_TIMEOUT_S
        while pid not in self._warm:
            if not alive(pid):
                raise XChainError(f"the daemon process {pid} exited while it was being built (see the daemon log)")
            word, other = self._next(deadline, f"daemon {pid} to be built", slice_s=0.2)
            if word == "warm":
                self._warm.add(other)

    def _next(self, deadline: float, what: str, slice_s: float | None = None) -> tuple[str, int]:
        """The next ``WORD PID`` line; ``("", 0)`` when ``slice_s`` passes without one."""
        assert self.proc.stdout is not None
        while b"\n" not in self._buffer:
            left = deadline - time.monotonic()
            if left <= 0 or self.proc.poll() is not None:
                raise XChainError(f"the daemon fork server did not answer in time ({what}; exit code "
                                  f"{self.proc.poll()}; see the daemon log)")
            ready, _, _ = select.select([self.proc.stdout], [], [], min(left, slice_s or left))
            if not ready:
                return "", 0
            chunk = os.read(self.proc.stdout.fileno(), 4096)
            if not chunk:
                raise XChainError(f"the daemon fork server exited ({what}; see the daemon log)")
            self._buffer += chunk
        line, self._buffer = self._buffer.split(b"\n", 1)
        word, pid = line.decode().split()
        return word, int(pid)

    def close(self) -> None:
        for pipe in (self.proc.stdin, self.proc.stdout):
            if pipe is not None:
                pipe.close()
        _signal_group(self.proc.pid, signal.SIGKILL)
        self.proc.wait(10)


STANDBYS = 2  # daemons built ahead: a reset right after another (or after a short test) still finds one warm


class Daemon:
    """The running daemon (a pid), the standbys built for the next ``start``s (``STANDBYS``, oldest first), and the
    fork server behind them."""

    def __init__(self, config: Path, api_url: str, directory: Path) -> None:
        self.config = config
        self.api_url = api_url
        self.directory = directory
        self.log = directory / "daemon.log"
        self.modules = directory / "daemon.modules"  # what a daemon loads: the fork server imports it once
        self.running: int | None = None
        self.standbys: list[int] = []
        self.generation = 0
        self._server: ForkServer | None = None

    def prepare(self) -> None:
        """Start the fork server now (its imports overlap whatever comes next, e.g. the devnet's ``up``)."""
        if self._server is None:
            self._server = ForkServer(self.config, self.log, self.modules, _child_env(self.directory))

    def start(self, timeout_s: float = 60.0, *, record_modules: bool = False) -> float:
        """Start a daemon (the oldest standby if there is one) and wait until ``/healthz`` answers; the seconds from
        the start signal to the answer. Then build standbys up to ``STANDBYS``."""
        self.prepare()
        assert self._server is not None
        pid = self.standbys.pop(0) if self.standbys else self._server.fork(record=record_modules)
        self._server.wait_warm(pid)
        self.generation += 1
        with open(self.log, "a") as out:
            out.write(f"# xchain: daemon generation {self.generation} starting (pid {pid}) at {time.time():.3f}\n")
        started = time.monotonic()
        os.kill(pid, GO)
        self.running = pid
        self.wait_healthy(timeout_s)
        took = time.monotonic() - started
        while len(self.standbys) < STANDBYS:
            self.standbys.append(self._server.fork())
        return took

    def wait_healthy(self, timeout_s: float, path: str = "/healthz") -> None:
        """Poll ``path`` until it answers 200 (a deadline, no fixed sleep); ``XChainError`` with the log's tail if
        the daemon exits or the deadline passes."""
        deadline = time.monotonic() + timeout_s
        with httpx.Client(timeout=1.0) as http:
            while time.monotonic() < deadline:
                if self.running is None or not alive(self.running):
                    raise XChainError(f"the relayer daemon exited while starting; its log ends:\n{self.tail(40)}")
                try:
                    if http.get(self.api_url + path).status_code == 200:
                        return
                except httpx.HTTPError:
                    pass
                time.sleep(0.01)
        raise XChainError(f"the relayer daemon did not answer {path} within {timeout_s:.0f} s; its log ends:\n"
                          f"{self.tail(40)}")

    def kill(self) -> None:
        """Stop the running daemon at once (SIGKILL): a reset throws its store away anyway."""
        if self.running is not None:
            _signal_group(self.running, signal.SIGKILL)
            self._wait_gone(self.running, 10.0)
            self.running = None

    def stop(self) -> None:
        """Stop the running daemon cleanly (SIGTERM: store closed, instance recorded as stopped), SIGKILL after
        ``STOP_TIMEOUT_S``."""
        if self.running is not None:
            os.kill(self.running, signal.SIGTERM)
            if not self._wait_gone(self.running, STOP_TIMEOUT_S):
                _signal_group(self.running, signal.SIGKILL)
                self._wait_gone(self.running, 10.0)
            self.running = None

    @staticmethod
    def _wait_gone(pid: int, timeout_s: float) -> bool:
        deadline = time.monotonic() + timeout_s
        while alive(pid):
            if time.monotonic() > deadline:
                return False
            time.sleep(0.005)
        return True

    def close(self) -> None:
        """The daemon stopped cleanly, the standbys and the fork server killed."""
        self.stop()
        for pid in self.standbys:
            _signal_group(pid, signal.SIGKILL)
        self.standbys = []
        if self._server is not None:
            self._server.close()
            self._server = None

    def tail(self, lines: int = 50) -> str:
        """The last ``lines`` lines of the daemon's log (every generation writes to the same file)."""
        try:
            with open(self.log, "rb") as f:
                f.seek(0, os.SEEK_END)
                f.seek(max(0, f.tell() - 2000 * lines))
                text = f.read().decode("utf-8", "replace")
        except FileNotFoundError:
            return "(no daemon log yet)"
        return "\n".join(text.splitlines()[-lines:])


def _child_env(directory: Path) -> dict[str, str]:
    """The daemon's environment: ours, and unless a CA bundle is configured, ``SSL_CERT_DIR`` an empty directory.
    Every endpoint of the devnet is plain http on loopback, and each httpx client of the daemon would otherwise load
    the whole CA bundle when it is created (some 40 ms each, eight of them: a third of a reset)."""
    env = dict(os.environ)
    if not env.get("SSL_CERT_FILE") and not env.get("SSL_CERT_DIR"):
        empty = directory / "no-ca-certs"
        empty.mkdir(exist_ok=True)
        env["SSL_CERT_DIR"] = str(empty)
    return env
