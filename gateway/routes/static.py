"""The web chat widget, the agent console and the demo page: files under ``static/``.

``/static`` serves the files as they are (no build step). With ``serve --demo`` the gateway
also answers ``/`` and ``/demo`` with ``static/demo.html``, its widget pointed at the demo inbox.
"""

from __future__ import annotations

import html
from collections.abc import Awaitable, Callable
from pathlib import Path

from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

from ..settings import Settings

# The repository's static/, beside the gateway package: the gateway runs from a checkout or an
# editable install. A wheel does not carry it, and then the APIs are served without it.
STATIC_DIR = Path(__file__).resolve().parents[2] / "static"
DEMO_INBOX_PLACEHOLDER = "__DEMO_INBOX__"


def static_routes(settings: Settings, directory: Path = STATIC_DIR) -> list[BaseRoute]:
    if not directory.is_dir():
        return []  # an install without the static files still serves the APIs
    routes: list[BaseRoute] = [
        Mount("/static", StaticFiles(directory=directory), name="static"),
        Route("/console", _redirect("/static/console.html"), methods=["GET"]),
    ]
    if settings.demo_inbox:
        # Read once: the page is tiny and the inbox does not change while the server runs.
        page = (directory / "demo.html").read_text(encoding="utf-8")
        page = page.replace(DEMO_INBOX_PLACEHOLDER, html.escape(settings.demo_inbox, quote=True))

        async def demo(request: Request) -> Response:
            return HTMLResponse(page, headers={"Cache-Control": "no-cache"})

        routes += [
            Route("/", _redirect("/demo"), methods=["GET"]),
            Route("/demo", demo, methods=["GET"]),
        ]
    return routes


def _redirect(target: str) -> Callable[[Request], Awaitable[Response]]:
    async def endpoint(request: Request) -> Response:
        return RedirectResponse(target, status_code=307)

    return endpoint
