"""Attachment files: stored on local disk, served back through expiring signed URLs (inline
only for what a browser shows without running it: gateway.file_types).

Files are written in a worker thread (the event loop never waits on disk) *before* the message
transaction; if the transaction does not create a message (validation error, a repeated
echo_id) the service deletes them again, so nothing is left orphaned.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import time
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO, Protocol

from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer

from .domain.messages import NewAttachment
from .errors import NotFound, PayloadTooLarge
from .file_types import HEAD_BYTES, OCTET_STREAM, stored_type
from .store.records import Attachment

IMAGE_TYPES = {"image/jpeg", "image/png", "image/gif", "image/bmp", "image/webp"}
VIDEO_TYPES = {"video/ogg", "video/mp4", "video/webm", "video/quicktime"}
CHUNK = 1024 * 1024


def file_type_for(content_type: str) -> str:
    """Chatwoot's mapping from MIME type to ``file_type`` (§3.12)."""
    ct = content_type.split(";")[0].strip().lower()
    if ct in IMAGE_TYPES:
        return "image"
    if ct in VIDEO_TYPES:
        return "video"
    if ct.startswith("audio/"):
        return "audio"
    return "file"


def _safe_name(name: str) -> str:
    base = os.path.basename(name.replace("\\", "/")) or "file"
    cleaned = "".join(c if c.isalnum() or c in "._-" else "_" for c in base)
    return cleaned[:120] or "file"


class Upload(Protocol):
    """What a service needs of one uploaded file. The route's multipart parser hands over
    Starlette's ``UploadFile``, which is one; services never name the HTTP library's type."""

    @property
    def file(self) -> BinaryIO: ...

    @property
    def filename(self) -> str | None: ...

    @property
    def content_type(self) -> str | None: ...


class FileStore:
    def __init__(self, root: Path, secret_key: str, url_ttl: int, max_bytes: int) -> None:
        self.root = root
        self.url_ttl = url_ttl
        self.max_bytes = max_bytes
        self.use_secret_key(secret_key)

    def use_secret_key(self, secret_key: str) -> None:
        """Sign links with ``secret_key`` (the database's, once the app has read it)."""
        self._signer = URLSafeTimedSerializer(secret_key, salt="inboxgate.attachment")

    # -- writing -------------------------------------------------------------------------

    def _write(self, source: object, file_name: str) -> tuple[str, int, bytes]:
        """Copy ``source`` to a new file: ``(storage key, size, its first bytes)``."""
        day = time.strftime("%Y/%m/%d", time.gmtime())
        key = f"{day}/{secrets.token_hex(16)}-{_safe_name(file_name)}"
        path = self.root / key
        path.parent.mkdir(parents=True, exist_ok=True)
        size = 0
        head = b""
        read = getattr(source, "read")  # noqa: B009 - a binary file-like
        try:
            with open(path, "wb") as out:
                while chunk := read(CHUNK):
                    size += len(chunk)
                    if len(head) < HEAD_BYTES:
                        head += chunk[: HEAD_BYTES - len(head)]
                    if size > self.max_bytes:
                        raise PayloadTooLarge(
                            f"Attachment {file_name!r} is larger than {self.max_bytes} bytes",
                            field="attachments",
                        )
                    out.write(chunk)
                out.flush()
                os.fsync(out.fileno())
        except BaseException:
            path.unlink(missing_ok=True)
            raise
        return key, size, head

    async def save(self, source: object, file_name: str, content_type: str) -> NewAttachment:
        """Copy a binary file-like ``source`` to disk, off the event loop. ``file_type``
        follows the client's ``content_type`` as Chatwoot's does; the stored content type (how
        the file is served) is what its first bytes bear out (gateway.file_types)."""
        key, size, head = await asyncio.to_thread(self._write, source, file_name)
        ext = Path(file_name).suffix.lstrip(".").lower() or None
        return NewAttachment(
            file_type=file_type_for(content_type),
            extension=ext,
            file_name=_safe_name(file_name),
            content_type=stored_type(content_type or OCTET_STREAM, head),
            file_size=size,
            storage_key=key,
        )

    async def discard(self, attachments: list[NewAttachment]) -> None:
        def unlink() -> None:
            for att in attachments:
                (self.root / att.storage_key).unlink(missing_ok=True)

        await asyncio.to_thread(unlink)

    # -- links ---------------------------------------------------------------------------

    def link_builder(self, base_url: str) -> Callable[[Attachment], str]:
        base = base_url.rstrip("/")

        def link(att: Attachment) -> str:
            token = self._signer.dumps([att.storage_key, att.content_type, att.file_name])
            return f"{base}/attachments/{token}/{att.file_name}"

        return link

    def resolve(self, token: str) -> tuple[Path, str, str]:
        """The file behind a signed token: ``(path, content_type, file_name)``."""
        try:
            key, content_type, file_name = self._signer.loads(token, max_age=self.url_ttl)
        except SignatureExpired:
            raise NotFound("attachment link (expired)") from None
        except (BadSignature, ValueError):
            raise NotFound("attachment") from None
        path = (self.root / key).resolve()
        if self.root.resolve() not in path.parents or not path.is_file():
            raise NotFound("attachment")
        return path, str(content_type), str(file_name)
