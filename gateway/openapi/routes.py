"""``/openapi.json`` and ``/docs``, served when ``INBOXGATE_API_DOCS`` is on (the default).

The document and the page are built once per process, on first request, and kept encoded.
"""

from __future__ import annotations

import functools
from pathlib import Path

import msgspec
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from ..settings import Settings
from .document import build_document
from .page import CSS_PATH, render

CSS_FILE = Path(__file__).with_name("docs.css")


@functools.cache
def document_bytes() -> bytes:
    return msgspec.json.encode(build_document())


@functools.cache
def page_bytes() -> bytes:
    return render(msgspec.json.decode(document_bytes())).encode()


@functools.cache
def css_bytes() -> bytes:
    return CSS_FILE.read_bytes()


async def openapi_json(request: Request) -> Response:
    return Response(document_bytes(), media_type="application/json")


async def docs_page(request: Request) -> Response:
    return Response(page_bytes(), media_type="text/html; charset=utf-8")


async def docs_css(request: Request) -> Response:
    return Response(css_bytes(), media_type="text/css; charset=utf-8")


def api_docs_routes(settings: Settings) -> list[BaseRoute]:
    if not settings.api_docs:
        return []
    return [
        Route("/openapi.json", openapi_json, methods=["GET"]),
        Route("/docs", docs_page, methods=["GET"]),
        Route(CSS_PATH, docs_css, methods=["GET"]),
    ]
