"""A real loopback HTTP/1.1 server around a :class:`Sandbox` (stdlib ``http.server``).

JSON answers carry Content-Length; SSE answers use chunked transfer encoding, one HTTP chunk
per frame, flushed as produced. Connections are keep-alive. Request logging goes to the
``openrouter_nb.sandbox.server`` logger (debug level), never to stderr by default.
"""

from __future__ import annotations

import logging
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any

from .app import Sandbox
from .transport import SERVER_NAME

__all__ = ["SandboxServer"]

log = logging.getLogger(__name__)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # Headers and body go out in separate writes; with Nagle on, the peer's delayed ACK
    # adds ~40 ms to every keep-alive request on loopback.
    disable_nagle_algorithm = True
    server_version = SERVER_NAME
    sys_version = ""
    server: _HTTPServer

    def version_string(self) -> str:
        return self.server_version

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        log.debug("%s " + format, self.address_string(), *args)

    def _serve(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        resp = self.server.sandbox.handle(self.command, self.path, dict(self.headers.items()),
                                          body)
        if resp.hang_s is not None and self.server.stopping.wait(resp.hang_s):
            self.close_connection = True
            return
        self.send_response(resp.status)
        for name, value in resp.headers.items():
            self.send_header(name, value)
        if resp.chunks is None:
            self.send_header("Content-Length", str(len(resp.body)))
            self.end_headers()
            self.wfile.write(resp.body)
            return
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        try:
            for frame in resp.chunks:
                if frame:
                    self.wfile.write(b"%x\r\n%s\r\n" % (len(frame), frame))
                    self.wfile.flush()
            self.wfile.write(b"0\r\n\r\n")
            self.wfile.flush()
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True
        finally:
            close = getattr(resp.chunks, "close", None)
            if close is not None:
                close()

    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = _serve


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    # socketserver's default backlog is 5: a client opening 16-32 connections at once (a
    # concurrent batch) would see some refused, which the real service never does
    request_queue_size = 128
    sandbox: Sandbox
    stopping: threading.Event

    def __init__(self, address: tuple[str, int]) -> None:
        super().__init__(address, _Handler)
        self.stopping = threading.Event()
        self._conns: set[socket.socket] = set()
        self._conns_lock = threading.Lock()

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        with self._conns_lock:
            self._conns.add(request)
        try:
            super().process_request_thread(request, client_address)
        finally:
            with self._conns_lock:
                self._conns.discard(request)

    def handle_error(self, request: Any, client_address: Any) -> None:
        log.debug("error while serving %s", client_address, exc_info=True)

    def close_connections(self) -> None:
        """Wake handler threads blocked on idle keep-alive connections."""
        with self._conns_lock:
            conns = list(self._conns)
        for conn in conns:
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


class SandboxServer:
    """Serve a sandbox on loopback: ``with SandboxServer() as srv: srv.base_url``.

    ``port=0`` picks a free port. ``start()`` serves from a daemon thread; ``stop()`` shuts
    down, waking any request that simulates a hang.
    """

    def __init__(self, sandbox: Sandbox | None = None, *, host: str = "127.0.0.1",
                 port: int = 0, **sandbox_kwargs: Any) -> None:
        if sandbox is not None and sandbox_kwargs:
            raise TypeError("pass either a Sandbox or Sandbox keyword arguments, not both")
        self.sandbox = sandbox if sandbox is not None else Sandbox(**sandbox_kwargs)
        self.host = host
        self._requested_port = port
        self._httpd: _HTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        if self._httpd is None:
            raise RuntimeError("server not started")
        return int(self._httpd.server_address[1])

    @property
    def base_url(self) -> str:
        """``http://HOST:PORT/api/v1``."""
        return f"http://{self.host}:{self.port}/api/v1"

    def start(self) -> SandboxServer:
        if self._httpd is not None:
            return self
        httpd = _HTTPServer((self.host, self._requested_port))
        httpd.sandbox = self.sandbox
        self._httpd = httpd
        self._thread = threading.Thread(target=httpd.serve_forever,
                                        kwargs={"poll_interval": 0.02},
                                        name="openrouter-nb-sandbox", daemon=True)
        self._thread.start()
        return self

    def serve_forever(self) -> None:
        """Serve in the calling thread until interrupted (used by the CLI)."""
        self.start()
        assert self._thread is not None
        try:
            while self._thread.is_alive():
                self._thread.join(0.5)
        finally:
            self.stop()

    def stop(self) -> None:
        httpd, self._httpd = self._httpd, None
        if httpd is None:
            return
        httpd.stopping.set()
        httpd.shutdown()
        httpd.close_connections()
        httpd.server_close()
        if self._thread is not None:
            self._thread.join(5)
            self._thread = None

    def __enter__(self) -> SandboxServer:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()
