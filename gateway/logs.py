"""Logging: text or JSON lines, the request id on every line of a request, and conditions that
are said once when they start and once when they end, not once per retry.

``serve`` hands :func:`logging_config` to uvicorn, which applies it in every worker process:
one handler on stderr for the ``inboxgate`` and ``uvicorn`` loggers, uvicorn's own access log
off (the gateway writes its own, :data:`ACCESS`, through the same formatter).

The observability middleware puts a :class:`RequestContext` in :data:`CURRENT` for the life of
a request; the formatters read it, so every line logged while serving that request carries
its id, whichever module logged it.
"""

from __future__ import annotations

import logging
import os
import socket
import time
from collections.abc import MutableMapping
from contextvars import ContextVar
from typing import Any

import msgspec

from .settings import Settings

ACCESS = logging.getLogger("inboxgate.access")
MAX_LOGGED_PATH = 256


class RequestContext:
    """What a log line can say about the request being served. ``scope`` is read lazily: the
    route is known only once the router matched."""

    __slots__ = ("client", "method", "path", "request_id", "scope")

    def __init__(
        self,
        request_id: str,
        method: str,
        path: str,
        client: str,
        scope: MutableMapping[str, Any],
    ) -> None:
        self.request_id = request_id
        self.method = method
        self.path = path
        self.client = client
        self.scope = scope

    @property
    def route(self) -> str | None:
        route = self.scope.get("route")
        path = getattr(route, "path", None)
        return path if isinstance(path, str) else None


CURRENT: ContextVar[RequestContext | None] = ContextVar("inboxgate_request", default=None)


def current_request_id() -> str | None:
    ctx = CURRENT.get()
    return ctx.request_id if ctx is not None else None


def _fields(record: logging.LogRecord) -> dict[str, Any]:
    """The request fields of a line: given explicitly (the access line) or from the context."""
    fields: dict[str, Any] = {}
    ctx = CURRENT.get()
    request_id = getattr(record, "request_id", None) or (ctx.request_id if ctx else None)
    if request_id is not None:
        fields["request_id"] = request_id
    if ctx is not None:
        fields["method"] = ctx.method
        # The route template when one matched: public paths carry the contact's source_id, a
        # session credential, which has no place in logs. The raw path only when none did.
        route = ctx.route
        if route is not None:
            fields["route"] = route
        else:
            fields["path"] = ctx.path[:MAX_LOGGED_PATH]
        fields["client_ip"] = ctx.client
    for name in ("route", "status", "duration_ms", "client_ip", "method"):
        value = getattr(record, name, None)
        if value is not None:
            fields[name] = value
    return fields


def _timestamp(created: float) -> str:
    seconds = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(created))
    return f"{seconds}.{int(created % 1 * 1000):03d}Z"


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, node, pid, the request's
    fields when there is one, and the traceback of an exception."""

    def __init__(self, node: str = "") -> None:
        super().__init__()
        self.node = node or socket.gethostname()

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": _timestamp(record.created),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
            "node": self.node,
            "pid": os.getpid(),
        }
        line.update(_fields(record))
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return msgspec.json.encode(line).decode()


class TextFormatter(logging.Formatter):
    """``time level logger: message [request_id=...]``, for a terminal."""

    def __init__(self, node: str = "") -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        request_id = getattr(record, "request_id", None) or current_request_id()
        if request_id is None:
            return text
        head, newline, tail = text.partition("\n")  # after the message, before a traceback
        return f"{head} [request_id={request_id}]{newline}{tail}"


def logging_config(settings: Settings) -> dict[str, Any]:
    """The ``logging.config.dictConfig`` of a served gateway (uvicorn applies it per worker)."""
    level = settings.log_level.upper()
    formatter = JsonFormatter if settings.log_format == "json" else TextFormatter
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {
            "gateway": {"()": f"{__name__}.{formatter.__name__}", "node": settings.node_id}
        },
        "handlers": {
            "stderr": {
                "class": "logging.StreamHandler",
                "formatter": "gateway",
                "stream": "ext://sys.stderr",
            }
        },
        "loggers": {
            "inboxgate": {"handlers": ["stderr"], "level": level, "propagate": False},
            "uvicorn": {"handlers": ["stderr"], "level": level, "propagate": False},
            "uvicorn.error": {"level": level},
            "uvicorn.access": {"handlers": [], "level": "WARNING", "propagate": False},
            # asyncpg's pool warns, with a traceback, at every failed reconnect of its idle
            # connections; the store already says "database unavailable" once per outage.
            "asyncpg.pool": {"level": "ERROR"},
        },
        "root": {"handlers": ["stderr"], "level": "WARNING"},
    }


class StateLog:
    """A condition said at warning once when it starts and once when it ends, with the number
    of times it was seen in between, instead of a line per retry. Keyed (one state per key,
    e.g. per webhook URL) or not (``key=None``); at most ``max_keys`` are remembered."""

    def __init__(self, logger: logging.Logger, max_keys: int = 10_000) -> None:
        self.logger = logger
        self.max_keys = max_keys
        self._failing: dict[object, int] = {}

    def failing(self, key: object, message: str, *args: object) -> bool:
        """The condition holds for ``key``; logged only if it did not already. Returns whether
        this was the change."""
        seen = self._failing.get(key)
        if seen is not None:
            self._failing[key] = seen + 1
            return False
        if len(self._failing) >= self.max_keys:
            self._failing.pop(next(iter(self._failing)))
        self._failing[key] = 1
        self.logger.warning(message, *args)
        return True

    def recovered(self, key: object, message: str, *args: object) -> bool:
        """The condition ended for ``key``; ``message`` gets the count seen as its last
        argument. Logged only if it was failing."""
        if not self._failing:
            return False  # the usual case, on every success: one truth test
        seen = self._failing.pop(key, None)
        if seen is None:
            return False
        self.logger.warning(message, *args, seen)
        return True

    def is_failing(self, key: object) -> bool:
        return bool(self._failing) and key in self._failing

    def forget(self, key: object) -> int:
        """End the condition for ``key`` without a line (another one says it); the count."""
        return self._failing.pop(key, 0)
