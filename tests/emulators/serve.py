"""Serve an ASGI application over real HTTP(S) with uvicorn, in a thread, on a free port.

``ServedApp(app).start()`` binds 127.0.0.1 on a port the system chooses and returns once
uvicorn accepts connections; ``stop()`` shuts it down (clients then get "connection
refused"); ``start()`` again serves on the same port. Pass ``ssl_keyfile`` and
``ssl_certfile`` to serve HTTPS.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import TracebackType
from typing import Any

import uvicorn


class _Server(uvicorn.Server):
    """A uvicorn server that says when it is listening (no polling)."""

    def __init__(self, config: uvicorn.Config, ready: threading.Event) -> None:
        super().__init__(config)
        self._ready = ready

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        try:
            await super().startup(sockets=sockets)
        finally:
            self._ready.set()


class ServedApp:
    """One ASGI app served in a background thread."""

    def __init__(self, app: Any, *, host: str = "127.0.0.1",
                 ssl_keyfile: str | None = None, ssl_certfile: str | None = None,
                 startup_timeout: float = 15.0) -> None:
        self.app = app
        self.host = host
        self.ssl_keyfile = ssl_keyfile
        self.ssl_certfile = ssl_certfile
        self.startup_timeout = startup_timeout
        self.port: int = 0
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._failure: BaseException | None = None

    @property
    def scheme(self) -> str:
        return "https" if self.ssl_certfile else "http"

    @property
    def url(self) -> str:
        """The base URL, without a trailing slash (``http://127.0.0.1:PORT``)."""
        return f"{self.scheme}://{self.host}:{self.port}"

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def _bind(self) -> socket.socket:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        try:
            sock.bind((self.host, self.port))
        except OSError:
            sock.close()
            raise
        sock.listen(128)
        self.port = sock.getsockname()[1]
        return sock

    def start(self) -> ServedApp:
        """Serve (again, on the same port when it served before); return once listening."""
        if self.running:
            return self
        sock = self._bind()
        config = uvicorn.Config(
            self.app, log_level="warning", access_log=False, lifespan="off", ws="none",
            http="h11", ssl_keyfile=self.ssl_keyfile, ssl_certfile=self.ssl_certfile,
            timeout_graceful_shutdown=5, timeout_keep_alive=5)
        ready = threading.Event()
        server = _Server(config, ready)
        self._failure = None

        def run() -> None:
            try:
                server.run(sockets=[sock])
            except BaseException as exc:  # reported by start()
                self._failure = exc
            finally:
                ready.set()
                sock.close()

        thread = threading.Thread(target=run, name=f"uvicorn:{self.port}", daemon=True)
        self._server, self._thread = server, thread
        thread.start()
        if not ready.wait(self.startup_timeout) or not server.started:
            self.stop()
            raise RuntimeError(f"the test server on port {self.port} did not start: "
                               f"{self._failure!r}")
        return self

    def stop(self) -> None:
        """Shut down; connections to the port are refused afterwards."""
        server, thread = self._server, self._thread
        self._server = self._thread = None
        if server is not None:
            server.should_exit = True
        if thread is not None:
            thread.join(timeout=15)

    def __enter__(self) -> ServedApp:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()


@contextmanager
def serve(app: Any, **kwargs: Any) -> Iterator[ServedApp]:
    """``with serve(app) as served: ... served.url ...``"""
    served = ServedApp(app, **kwargs)
    served.start()
    try:
        yield served
    finally:
        served.stop()
