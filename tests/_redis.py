"""A real redis-server on a free port of 127.0.0.1, for the RedisStore tests.

No fakeredis: the scripts must run as the real server runs them (its Lua, its clock,
its expiry). Tests that need one skip, saying why, when ``redis-server`` is not on
the PATH; ``.ci/run`` installs it.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time

REDIS_SERVER = shutil.which("redis-server")
MISSING = (
    "redis-server is not on PATH (Debian: apt-get install redis-server); the RedisStore tests "
    "run against a real server"
)


def free_port() -> int:
    """A TCP port nobody listens on now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class RedisServer:
    """One redis-server process, without persistence, that a test can start, kill, pause and restart."""

    def __init__(self, port: int | None = None) -> None:
        assert REDIS_SERVER is not None, MISSING
        self.port = port or free_port()
        self.url = f"redis://127.0.0.1:{self.port}"
        self._proc: subprocess.Popen[bytes] | None = None

    def start(self) -> RedisServer:
        """Start it (on the same port as before) and wait until it answers PING."""
        assert REDIS_SERVER is not None
        self._proc = subprocess.Popen(
            [REDIS_SERVER, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--loglevel", "warning"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )  # fmt: skip
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self.ping():
                return self
            time.sleep(0.01)  # real-time: waiting for a real redis-server process to answer
        raise RuntimeError(f"redis-server did not start on port {self.port}")

    def ping(self) -> bool:
        """Whether it answers now."""
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as sock:
                sock.sendall(b"PING\r\n")
                return sock.recv(16).startswith(b"+PONG")
        except OSError:
            return False

    def kill(self) -> None:
        """SIGKILL it, as a crash would."""
        if self._proc is not None:
            self._proc.kill()
            self._proc.wait()
            self._proc = None

    def pause(self) -> None:
        """SIGSTOP it: connections stay open, nothing answers."""
        assert self._proc is not None
        os.kill(self._proc.pid, signal.SIGSTOP)

    def resume(self) -> None:
        """SIGCONT it."""
        assert self._proc is not None
        os.kill(self._proc.pid, signal.SIGCONT)

    def stop(self) -> None:
        """Stop it (resumed first, if paused)."""
        if self._proc is not None:
            os.kill(self._proc.pid, signal.SIGCONT)
            self._proc.terminate()
            try:
                self._proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
            self._proc = None

    def command(self, *args: str) -> object:
        """Run one command with a fresh synchronous client; its answer."""
        import redis

        client = redis.Redis(port=self.port)
        try:
            return client.execute_command(*args)
        finally:
            client.close()

    def keys(self, namespace: str) -> dict[str, int]:
        """Every key of ``namespace``, with its time to live in milliseconds (-1: none)."""
        import redis

        client = redis.Redis(port=self.port)
        try:
            found = client.scan_iter(match=f"switchyard:{{{namespace}:*")
            return {key.decode(): int(client.pttl(key)) for key in found}
        finally:
            client.close()
