"""The loopback tunnel: each connection relayed through a real process's stdin and stdout
(``cat`` echoes, ``sleep`` never answers), and the swarm relay's connect script run by the
local shell against local servers: no engine needed."""

from __future__ import annotations

import ctypes
import socket
import threading
import time

import pytest

from ops.runtime.swarm import RELAY_CONNECT
from ops.runtime.tunnel import Tunnel, via_loopback


def connect(tunnel: Tunnel) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", tunnel.port), timeout=5)
    sock.settimeout(5)
    return sock


def read_until_eof(sock: socket.socket) -> bytes:
    chunks = []
    while data := sock.recv(65536):
        chunks.append(data)
    return b"".join(chunks)


def test_bytes_sent_into_the_tunnel_reach_the_process_and_its_answer_comes_back() -> None:
    payload = bytes(range(256)) * 1024  # binary, 256 KiB: more than one pipe buffer
    with Tunnel(["cat"]) as tunnel, connect(tunnel) as sock:
        sock.sendall(payload)
        sock.shutdown(socket.SHUT_WR)
        assert read_until_eof(sock) == payload


def test_every_connection_gets_a_process_of_its_own() -> None:
    with Tunnel(["sh", "-c", "echo $$"]) as tunnel:
        pids = set()
        for _ in range(3):
            with connect(tunnel) as sock:
                pids.add(read_until_eof(sock))
    assert len(pids) == 3


def test_the_client_hears_eof_when_the_process_ends_first() -> None:
    with Tunnel(["true"]) as tunnel, connect(tunnel) as sock:
        assert read_until_eof(sock) == b""


@pytest.mark.timeout(20)
def test_a_client_blocked_in_c_holding_the_gil_still_gets_its_answer() -> None:
    """As libpq's cancel request does: the relay must not need this process's GIL."""
    libc = ctypes.PyDLL(None)  # PyDLL: the call keeps the GIL held
    msg_waitall = 0x100
    with Tunnel(["cat"]) as tunnel, \
            socket.create_connection(("127.0.0.1", tunnel.port)) as sock:  # blocking: no timeout
        sock.sendall(b"ping")
        answer = ctypes.create_string_buffer(4)
        got = libc.recv(sock.fileno(), answer, 4, msg_waitall)
        assert answer.raw[:got] == b"ping"


def test_closing_the_tunnel_ends_the_processes_of_open_connections() -> None:
    tunnel = Tunnel(["sleep", "60"])
    with connect(tunnel) as sock:
        time.sleep(0.3)  # the relay process has started
        started = time.monotonic()
        tunnel.close()
        assert read_until_eof(sock) == b""
        assert time.monotonic() - started < 10


def test_connections_beyond_the_bound_are_closed_at_once() -> None:
    with Tunnel(["sleep", "60"], max_connections=1) as tunnel, \
            connect(tunnel) as first:
        time.sleep(0.3)
        with connect(tunnel) as second:
            assert read_until_eof(second) == b""
        first.settimeout(0.5)
        try:
            first.recv(1)
        except TimeoutError:
            pass  # still relayed
        else:
            raise AssertionError("the first connection was closed")


def test_a_url_via_the_tunnel_keeps_its_credentials_and_path_and_names_loopback() -> None:
    assert via_loopback("postgresql://app:s3cret@db:5432/app?sslmode=disable", 41234) == \
        "postgresql://app:s3cret@127.0.0.1:41234/app?sslmode=disable"
    assert via_loopback("redis://redis:6379/2", 41235) == "redis://127.0.0.1:41235/2"


def one_shot_server(answer: bytes) -> socket.socket:
    """A TCP server that reads one request, answers and closes first (as Postgres does after
    a cancel request, while libpq waits for that close)."""
    server = socket.create_server(("127.0.0.1", 0))

    def serve() -> None:
        conn, _ = server.accept()
        with conn:
            conn.recv(1024)
            conn.sendall(answer)

    threading.Thread(target=serve, daemon=True).start()
    return server


def test_the_relay_script_passes_the_answer_and_the_close_of_a_server_that_closes_first(
) -> None:
    server = one_shot_server(b"bye")
    port = server.getsockname()[1]
    with server, Tunnel(["sh", "-c", RELAY_CONNECT, "localhost", str(port)]) as tunnel, \
            connect(tunnel) as sock:
        sock.sendall(b"cancel, please")  # and the client never closes its side
        assert read_until_eof(sock) == b"bye"


def test_the_relay_script_carries_a_conversation_both_ways_until_the_client_closes() -> None:
    server = socket.create_server(("127.0.0.1", 0))

    def shout() -> None:
        conn, _ = server.accept()
        with conn:
            while data := conn.recv(65536):
                conn.sendall(data.upper())

    threading.Thread(target=shout, daemon=True).start()
    port = server.getsockname()[1]
    with server, Tunnel(["sh", "-c", RELAY_CONNECT, "localhost", str(port)]) as tunnel, \
            connect(tunnel) as sock:
        for word in (b"ping", b"again"):
            sock.sendall(word)
            assert sock.recv(64) == word.upper()
