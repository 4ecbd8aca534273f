"""The local, read-only web server of ``kazeflow ui``: one page and its JSON.

Routes (GET only): ``/`` the page, ``/app.js`` and ``/app.css`` its assets (shipped in
the package, nothing from the network), ``/api/graph``, ``/api/asset/NAME``,
``/api/runs`` and ``/api/run/ID``. Errors come back as ``{"error": message}``: 404 for
an unknown asset or run, 500 for anything else (a TARGET that no longer imports).
"""

from __future__ import annotations

import errno
import functools
import json
import logging
from collections.abc import Callable
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import resources
from typing import Any
from urllib.parse import unquote, urlsplit

from kazeflow.cli._format import jsonable
from kazeflow.errors import KazeflowError
from kazeflow.ui._views import NotFound, Views

log = logging.getLogger("kazeflow")
_STATIC = {"/": ("index.html", "text/html; charset=utf-8"),
           "/app.js": ("app.js", "text/javascript; charset=utf-8"),
           "/app.css": ("app.css", "text/css; charset=utf-8")}


class UiServer:
    """Serves the page of ``views`` on ``host:port`` (port 0: any free one).

    Raises:
        KazeflowError: the address cannot be bound (the port is in use, the host is
            not this machine's).

    Example::

        server = UiServer(views, "127.0.0.1", 0)
        print(server.url)
        server.serve_forever()
    """

    def __init__(self, views: Views, host: str = "127.0.0.1", port: int = 0) -> None:
        # a page elsewhere must not read the store by rebinding its name to 127.0.0.1
        hosts = None if host in ("", "0.0.0.0", "::") else {host, "127.0.0.1", "localhost"}
        handler = type("Handler", (_Handler,), {"views": views, "hosts": hosts})
        try:
            self.httpd = ThreadingHTTPServer((host, port), handler)
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                raise KazeflowError(f"cannot serve on {host}:{port}: the port is in use; "
                                    "pick another with --port, or --port 0 for any free "
                                    "one") from exc
            raise KazeflowError(f"cannot serve on {host}:{port}: {exc.strerror or exc}; "
                                "give --host 127.0.0.1 or another address of this "
                                "machine") from exc
        self.httpd.daemon_threads = True

    @property
    def url(self) -> str:
        """The page's address, e.g. ``http://127.0.0.1:8765/``."""
        host, port = self.httpd.socket.getsockname()[:2]
        return f"http://[{host}]:{port}/" if ":" in host else f"http://{host}:{port}/"

    def serve_forever(self) -> None:
        """Serve until :meth:`shutdown` (from another thread) or KeyboardInterrupt."""
        self.httpd.serve_forever(poll_interval=0.2)

    def shutdown(self) -> None:
        """Stop serving and close the socket."""
        self.httpd.shutdown()
        self.httpd.server_close()


class _Handler(BaseHTTPRequestHandler):
    views: Views
    hosts: set[str] | None  # the names the page may be asked by; None: any
    server_version = "kazeflow-ui"

    def do_GET(self) -> None:  # noqa: N802 - the name http.server calls
        path = urlsplit(self.path).path
        asked = urlsplit(f"//{self.headers.get('Host', '')}").hostname
        if self.hosts is not None and asked not in self.hosts:
            self._json(HTTPStatus.FORBIDDEN, {"error": f"kazeflow ui answers only to "
                                              f"{', '.join(sorted(self.hosts))}"})
            return
        if path in _STATIC:
            name, kind = _STATIC[path]
            body = (resources.files("kazeflow.ui") / "static" / name).read_bytes()
            self._send(HTTPStatus.OK, kind, body)
            return
        route = self._route(path)
        if route is None:
            self._json(HTTPStatus.NOT_FOUND, {"error": f"no such page: {path}"})
            return
        try:
            self._json(HTTPStatus.OK, route())
        except NotFound as exc:
            self._json(HTTPStatus.NOT_FOUND, {"error": str(exc)})
        except KazeflowError as exc:
            self._json(HTTPStatus.INTERNAL_SERVER_ERROR, {"error": str(exc)})
        except Exception as exc:  # the page shows it; the server keeps serving
            log.exception("kazeflow ui: %s failed", path)
            self._json(HTTPStatus.INTERNAL_SERVER_ERROR,
                       {"error": f"{type(exc).__name__}: {exc}"})

    def _route(self, path: str) -> Callable[[], Any] | None:
        views = self.views
        if path == "/api/graph":
            return views.graph
        if path == "/api/runs":
            return views.runs
        for prefix, view in (("/api/asset/", views.asset), ("/api/run/", views.run)):
            if path.startswith(prefix) and len(path) > len(prefix):
                key = unquote(path[len(prefix):])
                return functools.partial(view, key)
        return None

    def _json(self, status: HTTPStatus, value: Any) -> None:
        body = json.dumps(value, default=jsonable, ensure_ascii=False).encode()
        self._send(status, "application/json; charset=utf-8", body)

    def _send(self, status: HTTPStatus, kind: str, body: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.send_header("X-Content-Type-Options", "nosniff")
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - its signature
        log.debug("kazeflow ui: " + format, *args)
