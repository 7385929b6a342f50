"""The web chat widget, the agent console and the demo page: files under ``static/``.

``/static`` serves the files as they are (no build step). With ``serve --demo`` the gateway
also answers ``/`` and ``/demo`` with ``static/demo.html``, its widget pointed at the demo inbox.

The two pages carry a Content-Security-Policy (scripts and styles from files of this origin
only, nothing inline) and refuse framing by others; the console, which holds an agent's token,
refuses every frame. The widget's own files (widget.js, cable.js, widget.css) get nothing that
would stop a ``<script src>`` or stylesheet on another origin from loading them.
"""

from __future__ import annotations

import html
import os
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path
from urllib.parse import urlsplit

from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import Scope

from ..settings import Settings

# The repository's static/, beside the gateway package: the gateway runs from a checkout or an
# editable install. A wheel does not carry it, and then the APIs are served without it.
STATIC_DIR = Path(__file__).resolve().parents[2] / "static"
DEMO_INBOX_PLACEHOLDER = "__DEMO_INBOX__"
NOSNIFF = {"X-Content-Type-Options": "nosniff"}
Headers = Mapping[str, str]


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}" if parts.scheme and parts.netloc else ""


def page_headers(settings: Settings) -> tuple[Headers, Headers]:
    """``(console, demo)`` headers. Attachment links point at ``public_url`` when it is set,
    which may be another origin than the one the page was loaded from."""
    files = " ".join(filter(None, ["'self'", _origin(settings.public_url)]))
    common = [
        "default-src 'none'", "script-src 'self'", "style-src 'self'", "connect-src 'self'",
        "base-uri 'none'", "form-action 'self'",
    ]  # fmt: skip
    console = [*common, f"img-src {files}", "frame-ancestors 'none'"]
    # The widget also shows card images and avatars from anywhere, and its own blob: previews.
    demo = [
        *common, f"img-src {files} https: data: blob:", f"media-src {files} https: blob:",
        "frame-ancestors 'self'",
    ]  # fmt: skip
    return (
        {**NOSNIFF, "Content-Security-Policy": "; ".join(console), "X-Frame-Options": "DENY"},
        {**NOSNIFF, "Content-Security-Policy": "; ".join(demo), "X-Frame-Options": "SAMEORIGIN"},
    )


class _StaticFiles(StaticFiles):
    """The files as they are, with the headers each needs: ``pages`` by file name, NOSNIFF for
    everything else."""

    def __init__(self, *, directory: Path, pages: Mapping[str, Headers]) -> None:
        super().__init__(directory=directory)
        self.pages = pages

    def file_response(
        self, full_path: str | os.PathLike[str], stat_result: os.stat_result, scope: Scope,
        status_code: int = 200,
    ) -> Response:  # fmt: skip
        response = super().file_response(full_path, stat_result, scope, status_code)
        response.headers.update(self.pages.get(os.path.basename(full_path), NOSNIFF))
        return response


def static_routes(settings: Settings, directory: Path = STATIC_DIR) -> list[BaseRoute]:
    if not directory.is_dir():
        return []  # an install without the static files still serves the APIs
    console, demo_headers = page_headers(settings)
    files = _StaticFiles(
        directory=directory, pages={"console.html": console, "demo.html": demo_headers}
    )
    routes: list[BaseRoute] = [
        Mount("/static", files, name="static"),
        Route("/console", _redirect("/static/console.html"), methods=["GET"]),
    ]
    if settings.demo_inbox:
        # Read once: the page is tiny and the inbox does not change while the server runs.
        page = (directory / "demo.html").read_text(encoding="utf-8")
        page = page.replace(DEMO_INBOX_PLACEHOLDER, html.escape(settings.demo_inbox, quote=True))

        async def demo(request: Request) -> Response:
            return HTMLResponse(page, headers={**demo_headers, "Cache-Control": "no-cache"})

        routes += [
            Route("/", _redirect("/demo"), methods=["GET"]),
            Route("/demo", demo, methods=["GET"]),
        ]
    return routes


def _redirect(target: str) -> Callable[[Request], Awaitable[Response]]:
    async def endpoint(request: Request) -> Response:
        return RedirectResponse(target, status_code=307)

    return endpoint
