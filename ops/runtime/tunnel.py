"""A loopback port whose every connection is relayed through a command's standard streams.

``Tunnel(connect)`` listens on 127.0.0.1; each accepted connection starts ``connect()`` (an argv,
say ``docker exec -i RELAY … db 5432``) and copies bytes both ways between the socket and the
process's stdin/stdout until either side ends. Clients that speak TCP (libpq, pg_dump, redis-py)
then reach a server this process has no route to, through a channel it does have: the Docker
API of a swarm manager (see ``ops.deploy.swarm.SwarmBackend.reach``).

Bounded: at most ``max_connections`` relayed at once (further ones are closed at once), and
``close()`` stops the listener and every process still running. Only loopback is ever bound.
"""

from __future__ import annotations

import contextlib
import socket
import subprocess
import threading
from collections.abc import Callable
from typing import IO
from urllib.parse import urlsplit, urlunsplit

from ops.runtime.process import Argv

#: Bytes copied per read.
CHUNK = 64 * 1024
#: Connections relayed at once (a backup opens two or three, a restore a few more).
MAX_CONNECTIONS = 16


def via_loopback(url: str, port: int) -> str:
    """``url`` with its host and port replaced by the tunnel's (credentials, path and query
    kept): what a client in this process connects to."""
    parts = urlsplit(url)
    userinfo = parts.netloc.rpartition("@")[0]
    netloc = (f"{userinfo}@" if userinfo else "") + f"127.0.0.1:{port}"
    return urlunsplit(parts._replace(netloc=netloc))


class Tunnel:
    """127.0.0.1:``port`` → a fresh ``connect()`` process per connection (module docstring)."""

    def __init__(self, connect: Callable[[], Argv], *,
                 max_connections: int = MAX_CONNECTIONS) -> None:
        self.connect = connect
        self.max_connections = max_connections
        self.server = socket.create_server(("127.0.0.1", 0))
        self.port = int(self.server.getsockname()[1])
        self.accepted = 0
        self._lock = threading.Lock()
        self._live: set[subprocess.Popen[bytes]] = set()
        self._starting = 0  # accepted, process not started yet
        self._closed = False
        self._thread = threading.Thread(target=self._accept, name="tminus-tunnel", daemon=True)
        self._thread.start()

    def __enter__(self) -> Tunnel:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def _accept(self) -> None:
        while not self._closed:
            try:
                client, _ = self.server.accept()
            except OSError:
                return
            with self._lock:
                full = len(self._live) + self._starting >= self.max_connections or self._closed
                if not full:
                    self.accepted += 1
                    self._starting += 1
            if full:
                client.close()
                continue
            threading.Thread(target=self._relay, args=(client,), daemon=True).start()

    def _relay(self, client: socket.socket) -> None:
        try:
            process = subprocess.Popen(self.connect(), stdin=subprocess.PIPE,
                                       stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                                       bufsize=0)
        except OSError:
            client.close()
            with self._lock:
                self._starting -= 1
            return
        with self._lock:
            self._starting -= 1
            if self._closed:
                process.kill()
            self._live.add(process)
        stdin, stdout = process.stdin, process.stdout
        if stdin is not None and stdout is not None:  # both are pipes (Popen above)
            upstream = threading.Thread(target=_to_process, args=(client, stdin), daemon=True)
            upstream.start()
            _to_socket(stdout, client)
        # the far side ended (the server closed, or the relay died): the client hears EOF and
        # the copy towards the process ends with it
        with contextlib.suppress(OSError):
            client.shutdown(socket.SHUT_RDWR)
        client.close()
        _end(process)
        with self._lock:
            self._live.discard(process)

    def close(self) -> None:
        """Stop listening and end every relayed connection's process."""
        with self._lock:
            self._closed = True
            live = list(self._live)
        with contextlib.suppress(OSError):
            self.server.shutdown(socket.SHUT_RDWR)  # wakes the accept (close alone does not)
        self.server.close()
        for process in live:
            _end(process)
        self._thread.join(5)


def _to_process(client: socket.socket, sink: IO[bytes]) -> None:
    try:
        while data := client.recv(CHUNK):
            sink.write(data)
    except OSError:
        pass
    finally:
        with contextlib.suppress(OSError):
            sink.close()  # EOF on the relay's stdin: the client is done sending


def _to_socket(source: IO[bytes], client: socket.socket) -> None:
    try:
        while data := source.read(CHUNK):
            client.sendall(data)
    except OSError:
        pass


def _end(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)
    for stream in (process.stdin, process.stdout):
        if stream is not None:
            with contextlib.suppress(OSError):
                stream.close()
