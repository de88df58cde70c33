"""A TCP proxy that holds each request it is sent for `delay` seconds before passing it on:
the network (a load balancer's queue, a busy server's backlog, a congested link) delivering a
request after its sender gave up waiting for the answer."""

from __future__ import annotations

import contextlib
import socket
import threading
import time


class DelayProxy:
    def __init__(self, upstream_port: int, *, delay: float):
        self.upstream_port = upstream_port
        self.delay = delay
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.forwarded = threading.Event()  # set once a request was passed on and answered
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            threading.Thread(target=self._one, args=(client,), daemon=True).start()

    def _one(self, client: socket.socket) -> None:
        accepted = time.monotonic()
        request = _request_read(client)
        time.sleep(max(0.0, self.delay - (time.monotonic() - accepted)))
        if b"\r\nconnection:" not in request.lower():
            request = request.replace(b"\r\n\r\n", b"\r\nConnection: close\r\n\r\n", 1)
        with socket.create_connection(("127.0.0.1", self.upstream_port), timeout=30) as upstream:
            upstream.sendall(request)
            answer = b""
            while chunk := upstream.recv(65536):
                answer += chunk
        self.forwarded.set()
        with contextlib.suppress(OSError):
            client.sendall(answer)  # to a sender long gone, as a rule
        client.close()

    def close(self) -> None:
        self.listener.close()


def _request_read(client: socket.socket) -> bytes:
    """The whole request its sender wrote: the head, and the body its Content-Length names."""
    client.settimeout(5)
    data = b""
    while chunk := client.recv(65536):
        data += chunk
        head, found, body = data.partition(b"\r\n\r\n")
        if found:
            length = next(
                (
                    int(line.split(b":")[1])
                    for line in head.split(b"\r\n")
                    if line.lower().startswith(b"content-length:")
                ),
                0,
            )
            if len(body) >= length:
                break
    return data
