"""Uploaded files are never served as active content from the gateway's origin: only an
allow-list of passive types goes inline, a claim the bytes do not bear out is a download, and
every attachment response is ``nosniff`` with a sandboxing CSP (gateway.file_types)."""

from __future__ import annotations

from typing import Any

import pytest

from gateway import file_types
from gateway.store.records import Attachment
from tests.agent_helpers import customer_conversation, make_staff
from tests.routes_helpers import Env

SVG = b'<svg xmlns="http://www.w3.org/2000/svg" onload="alert(1)"><script>alert(2)</script></svg>'
HTML = b"<!doctype html><script>alert(document.domain)</script>"
PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(256))
JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + bytes(64)
GIF = b"GIF89a" + bytes(32)
WEBP = b"RIFF\x24\x00\x00\x00WEBPVP8 " + bytes(32)
AVIF = b"\x00\x00\x00\x1cftypavif" + bytes(32)
BMP = b"BM" + bytes(64)
PDF = b"%PDF-1.7\n" + bytes(64)
MP3_ID3 = b"ID3\x04\x00" + bytes(64)
MP3_FRAME = b"\xff\xfb\x90\x64" + bytes(64)
OGG = b"OggS\x00\x02" + bytes(64)
WAV = b"RIFF\x24\x00\x00\x00WAVEfmt " + bytes(32)
WEBM = b"\x1a\x45\xdf\xa3" + bytes(64)
FLAC = b"fLaC" + bytes(64)
MP4 = b"\x00\x00\x00\x20ftypisom" + bytes(32)

pytestmark = pytest.mark.anyio


# -- the policy, unit by unit ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("claimed", "head", "stored"),
    [
        ("image/png", PNG, "image/png"),
        ("IMAGE/PNG; charset=binary", PNG, "image/png"),
        ("image/jpeg", JPEG, "image/jpeg"),
        ("image/gif", GIF, "image/gif"),
        ("image/webp", WEBP, "image/webp"),
        ("image/avif", AVIF, "image/avif"),
        ("image/bmp", BMP, "image/bmp"),
        ("application/pdf", PDF, "application/pdf"),
        ("application/pdf", b"junk before the header\n" + PDF, "application/pdf"),
        ("audio/mpeg", MP3_ID3, "audio/mpeg"),
        ("audio/mpeg", MP3_FRAME, "audio/mpeg"),
        ("audio/ogg", OGG, "audio/ogg"),
        ("audio/wav", WAV, "audio/wav"),
        ("audio/webm", WEBM, "audio/webm"),
        ("audio/flac", FLAC, "audio/flac"),
        ("audio/mp4", MP4, "audio/mp4"),
        ("video/mp4", MP4, "video/mp4"),
        ("video/quicktime", MP4, "video/quicktime"),
        ("video/webm", WEBM, "video/webm"),
        # A claim the bytes contradict: what the bytes are, or a download.
        ("image/png", SVG, "application/octet-stream"),
        ("image/gif", HTML, "application/octet-stream"),
        ("application/pdf", HTML, "application/octet-stream"),
        ("video/mp4", SVG, "application/octet-stream"),
        ("audio/mpeg", b"data", "application/octet-stream"),
        ("image/jpeg", PNG, "image/png"),
        ("application/octet-stream", PNG, "image/png"),
        ("", JPEG, "image/jpeg"),
        # Not on the allow-list: kept as claimed, served as a download.
        ("image/svg+xml", SVG, "image/svg+xml"),
        ("text/html", HTML, "text/html"),
        ("text/plain", b"BM is not a bitmap here", "text/plain"),
        ("", b"", "application/octet-stream"),
    ],
)
def test_stored_type(claimed: str, head: bytes, stored: str) -> None:
    assert file_types.stored_type(claimed, head) == stored


@pytest.mark.parametrize(
    ("stored", "served"),
    [
        ("image/png", ("image/png", "inline")),
        ("Image/PNG; x=1", ("image/png", "inline")),
        ("application/pdf", ("application/pdf", "inline")),
        ("video/webm", ("video/webm", "inline")),
        ("audio/ogg", ("audio/ogg", "inline")),
        ("image/svg+xml", ("application/octet-stream", "attachment")),
        ("text/html", ("application/octet-stream", "attachment")),
        ("application/xhtml+xml", ("application/octet-stream", "attachment")),
        ("text/xml", ("application/octet-stream", "attachment")),
        ("application/javascript", ("application/octet-stream", "attachment")),
        ("text/css", ("application/octet-stream", "attachment")),
        ("image/x-icon", ("application/octet-stream", "attachment")),
        ("", ("application/octet-stream", "attachment")),
    ],
)
def test_serving(stored: str, served: tuple[str, str]) -> None:
    assert file_types.serving(stored) == served


# -- through the API ---------------------------------------------------------------------------


async def _upload(env: Env, name: str, body: bytes, claimed: str) -> dict[str, Any]:
    source_id, cid = await env.session()
    r = await env.client.post(
        env.conv_url(source_id, cid) + "/messages",
        files=[("attachments[]", (name, body, claimed))],
    )
    assert r.status_code == 200, r.text
    attachment: dict[str, Any] = r.json()["attachments"][0]
    return attachment


def _assert_inert(headers: Any) -> None:
    assert headers["x-content-type-options"] == "nosniff"
    csp = headers["content-security-policy"]
    assert csp.split(";")[0] == "sandbox"
    assert "default-src 'none'" in csp
    assert "script-src" not in csp


@pytest.mark.parametrize(
    ("name", "body", "claimed", "file_type"),
    [
        ("x.svg", SVG, "image/svg+xml", "file"),
        ("x.png", SVG, "image/png", "image"),  # file_type follows the claim, as Chatwoot's
        ("x.html", HTML, "text/html", "file"),
        ("x.xml", SVG, "application/xml", "file"),
        ("x.js", b"alert(1)", "text/javascript", "file"),
        ("x.pdf", HTML, "application/pdf", "file"),
    ],
)
async def test_active_content_is_a_download(
    env: Env, name: str, body: bytes, claimed: str, file_type: str
) -> None:
    att = await _upload(env, name, body, claimed)
    assert att["file_type"] == file_type
    got = await env.client.get(att["data_url"])
    assert got.status_code == 200
    assert got.content == body  # the file itself is intact
    assert got.headers["content-type"] == "application/octet-stream"
    assert got.headers["content-disposition"].startswith("attachment;")
    _assert_inert(got.headers)


@pytest.mark.parametrize(
    ("body", "claimed", "served"),
    [
        (PNG, "image/png", "image/png"),
        (PNG, "image/jpeg", "image/png"),  # served as what it is
        (JPEG, "application/octet-stream", "image/jpeg"),
        (PDF, "application/pdf", "application/pdf"),
        (WEBM, "video/webm", "video/webm"),
        (OGG, "audio/ogg", "audio/ogg"),
    ],
)
async def test_passive_content_is_inline_and_sandboxed(
    env: Env, body: bytes, claimed: str, served: str
) -> None:
    att = await _upload(env, "file.bin", body, claimed)
    got = await env.client.get(att["data_url"])
    assert got.status_code == 200 and got.content == body
    assert got.headers["content-type"] == served
    assert got.headers["content-disposition"].startswith("inline;")
    _assert_inert(got.headers)


async def test_agent_uploads_get_the_same_checks(env: Env) -> None:
    staff = await make_staff(env)
    _contact, cid = await customer_conversation(env, name="Alice")
    created = await staff.agent_api.post(
        f"/conversations/{cid}/messages",
        data={"content": "See attached"},
        files=[("attachments[]", ("logo.png", SVG, "image/png"))],
    )
    got = await env.client.get(created["attachments"][0]["data_url"])
    assert got.headers["content-type"] == "application/octet-stream"
    assert got.headers["content-disposition"].startswith("attachment;")
    _assert_inert(got.headers)


async def test_a_file_stored_before_the_checks_is_still_inert(env: Env) -> None:
    """A link to a row saved with the client's claim (before the sniffing) is served by the
    allow-list alone, and sandboxed either way."""
    att = await _upload(env, "x.svg", SVG, "image/svg+xml")
    files = env.app.state.ctx.files
    key = files.resolve(att["data_url"].split("/attachments/", 1)[1].split("/", 1)[0])[0]
    storage_key = str(key.relative_to(files.root.resolve()))

    def link(content_type: str) -> str:
        row = Attachment(
            id=1, message_id=1, account_id=1, file_type="image", extension="svg",
            file_name="x.svg", content_type=content_type, file_size=len(SVG),
            storage_key=storage_key, width=None, height=None,
        )  # fmt: skip
        url: str = files.link_builder("http://testserver")(row)
        return url

    got = await env.client.get(link("image/svg+xml"))
    assert got.headers["content-type"] == "application/octet-stream"
    assert got.headers["content-disposition"].startswith("attachment;")
    _assert_inert(got.headers)
    got = await env.client.get(link("image/png"))  # an unverified claim from the past
    assert got.headers["content-type"] == "image/png"  # never rendered as SVG (nosniff) ...
    _assert_inert(got.headers)  # ... and no script in an opaque origin if it were
