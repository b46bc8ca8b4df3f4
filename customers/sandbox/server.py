"""The sandbox API over real HTTP, for the official SDK, curl, benchmarks and socket tests.

A thin stdlib `ThreadingHTTPServer` around `SandboxAPI`: all behaviour lives in the API,
the server only moves bytes. It speaks HTTP/1.1 with keep-alive, because clients reuse
connections and a benchmark that reconnects on every page would measure the wrong thing.
"""

from __future__ import annotations

import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from urllib.parse import urlsplit

from .api import SandboxAPI

_CONTROL_PREFIX = "/_sandbox/"
# Control bodies are tiny JSON objects; refuse anything large rather than buffer it.
_MAX_BODY_BYTES = 64 * 1024


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # Headers and body go out as two writes; with Nagle's algorithm on, the second waits
    # for the client's delayed ACK, adding ~40 ms to every keep-alive response.
    disable_nagle_algorithm = True
    server: _HTTPServer

    def log_message(self, format: str, *args: object) -> None:
        # One stderr line per request drowns test and benchmark output.
        pass

    def _respond(self) -> None:
        body = self._read_body()
        if body is None:
            return
        url = urlsplit(self.path)
        api = self.server.api
        if url.path.startswith(_CONTROL_PREFIX):
            status, headers, payload = api.handle_control(self.command, url.path, body)
        else:
            status, headers, payload = api.handle(
                self.command, url.path, url.query, dict(self.headers.items()), body
            )
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(payload)

    def _read_body(self) -> bytes | None:
        """The request body, drained so the next keep-alive request starts cleanly."""
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            # No client of this API sends chunked bodies; answer and drop the connection
            # rather than misread the stream.
            self.close_connection = True
            self.send_error(411, "Length Required")
            return None
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            length = -1
        if not 0 <= length <= _MAX_BODY_BYTES:
            self.close_connection = True
            self.send_error(400, "Bad Content-Length")
            return None
        return self.rfile.read(length) if length else b""

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = _respond


class _HTTPServer(ThreadingHTTPServer):
    # Worker threads must not keep the process (or a test run) alive after stop().
    daemon_threads = True

    def __init__(self, address: tuple[str, int], api: SandboxAPI, ipv6: bool) -> None:
        if ipv6:
            self.address_family = socket.AF_INET6
        self.api = api
        super().__init__(address, _Handler)


class SandboxServer:
    """A SandboxAPI on a real socket. The port is bound at construction (port 0 picks a
    free one), so `url` is known before `start()`.

    Use `start()`/`stop()` or `with SandboxServer(api) as server:` for a background
    thread, or `serve_forever()` to block (the management command).
    """

    def __init__(self, api: SandboxAPI | None = None, host: str = "127.0.0.1", port: int = 0):
        self.api = api if api is not None else SandboxAPI()
        self._httpd = _HTTPServer((host, port), self.api, ipv6=":" in host)
        self._thread: threading.Thread | None = None
        bound_host, bound_port = self._httpd.server_address[:2]
        self.host = bound_host.decode() if isinstance(bound_host, bytes) else bound_host
        display_host = f"[{self.host}]" if ":" in self.host else self.host
        self.port = int(bound_port)
        self.url = f"http://{display_host}:{self.port}"

    def start(self) -> SandboxServer:
        """Serve from a daemon thread; returns self for chaining."""
        if self._thread is not None:
            raise RuntimeError("the sandbox server is already running")
        # A short poll interval makes stop() return quickly: shutdown() waits for the
        # serving loop's next poll, which is half a second by default.
        self._thread = threading.Thread(
            target=self._httpd.serve_forever,
            kwargs={"poll_interval": 0.05},
            name=f"sandbox-server-{self.port}",
            daemon=True,
        )
        self._thread.start()
        return self

    def serve_forever(self) -> None:
        """Serve on the calling thread until interrupted; closes the socket on exit."""
        try:
            self._httpd.serve_forever()
        finally:
            self._httpd.server_close()

    def stop(self) -> None:
        """Stop a background server and release the port. Safe to call more than once."""
        if self._thread is not None:
            # shutdown() waits for serve_forever to notice, so only call it when a thread
            # is actually serving; on an idle server it would block forever.
            self._httpd.shutdown()
            self._thread.join()
            self._thread = None
        self._httpd.server_close()

    def __enter__(self) -> SandboxServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()
