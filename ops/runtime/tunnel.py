"""A loopback port whose every connection is relayed through a command's standard streams.

``Tunnel(argv)`` listens on 127.0.0.1; each accepted connection starts ``argv`` (say
``docker exec -i RELAY … db 5432``) and copies bytes both ways between the socket and the
process's stdin/stdout until either side ends. Clients that speak TCP (libpq, pg_dump, redis-py)
then reach a server this process has no route to, through a channel it does have: the Docker
API of a swarm manager (see ``ops.deploy.swarm.SwarmBackend.reach``).

The relaying runs in a process of its own (``python -m ops.runtime.tunnel``, handed the
listening socket), not in threads of the caller: a client in the caller may block in C while
holding the GIL — libpq's cancel request does (psycopg's ``Connection.cancel``), and then
waits for an answer that only the relay can carry.

Bounded: at most ``max_connections`` relayed at once (further ones are closed at once), and
``close()`` ends the relay process with every command it started (one process group). Only
loopback is ever bound.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import threading
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
    """127.0.0.1:``port`` → a fresh ``argv`` process per connection (module docstring)."""

    def __init__(self, argv: Argv, *, max_connections: int = MAX_CONNECTIONS) -> None:
        listener = socket.create_server(("127.0.0.1", 0))
        self.port = int(listener.getsockname()[1])
        try:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "ops.runtime.tunnel", str(listener.fileno()),
                 str(max_connections), json.dumps(list(argv))],
                pass_fds=[listener.fileno()], stdin=subprocess.DEVNULL,
                start_new_session=True)
        finally:
            listener.close()  # the relay process holds its own copy

    def __enter__(self) -> Tunnel:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def close(self) -> None:
        """End the relay process and every command it started."""
        if self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(5)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(5)


# --- the relay process ---------------------------------------------------------------------------


def serve(listener: socket.socket, argv: Argv, max_connections: int) -> None:
    """Accept and relay until killed (``Tunnel.close`` signals the whole process group)."""
    live: list[int] = [0]
    lock = threading.Lock()

    def relay(client: socket.socket) -> None:
        try:
            _relay(client, argv)
        finally:
            with lock:
                live[0] -= 1

    while True:
        client, _ = listener.accept()
        with lock:
            full = live[0] >= max_connections
            if not full:
                live[0] += 1
        if full:
            client.close()
            continue
        threading.Thread(target=relay, args=(client,), daemon=True).start()


def _relay(client: socket.socket, argv: Argv) -> None:
    try:
        process = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                   stderr=subprocess.DEVNULL, bufsize=0)
    except OSError:
        client.close()
        return
    stdin, stdout = process.stdin, process.stdout
    if stdin is not None and stdout is not None:  # both are pipes (Popen above)
        threading.Thread(target=_to_process, args=(client, stdin), daemon=True).start()
        _to_socket(stdout, client)
    # the far side ended (the server closed, or the command died): the client hears EOF, and
    # the copy towards the process ends with it
    with contextlib.suppress(OSError):
        client.shutdown(socket.SHUT_RDWR)
    client.close()
    if process.poll() is None:
        process.terminate()
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.wait(5)


def _to_process(client: socket.socket, sink: IO[bytes]) -> None:
    try:
        while data := client.recv(CHUNK):
            sink.write(data)
    except OSError:
        pass
    finally:
        with contextlib.suppress(OSError):
            sink.close()  # EOF on the command's stdin: the client is done sending


def _to_socket(source: IO[bytes], client: socket.socket) -> None:
    try:
        while data := source.read(CHUNK):
            client.sendall(data)
    except OSError:
        pass


def main(args: list[str]) -> None:
    fd, bound, argv = int(args[0]), int(args[1]), json.loads(args[2])
    signal.signal(signal.SIGTERM, lambda *_: os._exit(0))  # the group's commands get it too
    serve(socket.socket(fileno=fd), [str(a) for a in argv], bound)


if __name__ == "__main__":
    main(sys.argv[1:])
