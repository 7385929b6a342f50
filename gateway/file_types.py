"""What an uploaded file is served as: only content a browser shows passively goes inline.

Attachments are served from the gateway's own origin, where the agent console runs, so a file
a browser would run (SVG, HTML, XML, JavaScript...) must never render there. Three layers:

* an allow-list: raster images, common audio and video, PDF are shown inline; everything else
  is a download (``Content-Disposition: attachment``) served as ``application/octet-stream``,
  so that even a ``<script src>`` or a stylesheet link on the gateway's origin refuses it
  (``nosniff``) and the console's ``script-src 'self'`` cannot be turned against it;
* the client's claim is checked when the file is saved: a file claiming an allowed type must
  start like one (the magic numbers below), or it is stored as ``application/octet-stream``
  (an SVG uploaded as ``image/png`` is a download); a known image or PDF sent under another
  type is stored as what it is;
* every attachment response carries ``nosniff`` and a sandboxing CSP, so that even a file
  stored before these checks (or a polyglot) renders without scripts, in an opaque origin.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

OCTET_STREAM = "application/octet-stream"
# How many leading bytes the checks read (PDF allows its header anywhere in the first KiB).
HEAD_BYTES = 1024

# Verified by Chromium 156: images, media and the PDF viewer all work under this policy; a
# sandboxed document has an opaque origin and runs no script.
ATTACHMENT_CSP = (
    "sandbox; default-src 'none'; img-src 'self'; media-src 'self'; style-src 'unsafe-inline'"
)
ATTACHMENT_HEADERS: Mapping[str, str] = {
    "X-Content-Type-Options": "nosniff",
    "Content-Security-Policy": ATTACHMENT_CSP,
    "Cache-Control": "private, max-age=300",
}

Check = Callable[[bytes], bool]


def _starts(*prefixes: bytes) -> Check:
    return lambda head: head.startswith(prefixes)


def _riff(form: bytes) -> Check:
    return lambda head: head[:4] == b"RIFF" and head[8:12] == form


def _iso_media(head: bytes) -> bool:
    """ISO base media (MP4, M4A, MOV, 3GP): a box whose type is ``ftyp`` (or, in old
    QuickTime files, a top-level ``moov``/``mdat``/``free``/``wide`` box)."""
    return head[4:8] in (b"ftyp", b"moov", b"mdat", b"free", b"wide", b"skip")


def _avif(head: bytes) -> bool:
    return head[4:8] == b"ftyp" and head[8:12] in (b"avif", b"avis")


def _mpeg_audio(head: bytes) -> bool:
    """MP3 (an ID3 tag or an MPEG frame sync) or AAC in ADTS frames."""
    return head.startswith(b"ID3") or (len(head) > 1 and head[0] == 0xFF and head[1] & 0xE0 == 0xE0)


_EBML = _starts(b"\x1a\x45\xdf\xa3")  # Matroska / WebM
_OGG = _starts(b"OggS")
_WAVE = _riff(b"WAVE")
_FLAC = _starts(b"fLaC")
_PNG = _starts(b"\x89PNG\r\n\x1a\n")
_JPEG = _starts(b"\xff\xd8\xff")
_GIF = _starts(b"GIF87a", b"GIF89a")
_WEBP = _riff(b"WEBP")
_BMP = _starts(b"BM")


def _pdf(head: bytes) -> bool:
    return b"%PDF-" in head[:HEAD_BYTES]


# The types served inline, each with the check its first bytes must pass.
INLINE: Mapping[str, Check] = {
    "image/png": _PNG,
    "image/jpeg": _JPEG,
    "image/gif": _GIF,
    "image/webp": _WEBP,
    "image/bmp": _BMP,
    "image/avif": _avif,
    "application/pdf": _pdf,
    "audio/mpeg": _mpeg_audio,
    "audio/mp3": _mpeg_audio,
    "audio/aac": _mpeg_audio,
    "audio/ogg": _OGG,
    "audio/opus": _OGG,
    "audio/wav": _WAVE,
    "audio/wave": _WAVE,
    "audio/x-wav": _WAVE,
    "audio/webm": _EBML,
    "audio/flac": _FLAC,
    "audio/x-flac": _FLAC,
    "audio/mp4": _iso_media,
    "audio/x-m4a": _iso_media,
    "video/mp4": _iso_media,
    "video/quicktime": _iso_media,
    "video/webm": _EBML,
    "video/ogg": _OGG,
}
# Formats recognised whatever the client claimed: the ones whose signatures are exact.
_SNIFFED = ("image/png", "image/jpeg", "image/gif", "image/webp", "image/avif", "application/pdf")


def normalized(content_type: str) -> str:
    """``Image/PNG; charset=x`` -> ``image/png``."""
    return content_type.split(";", 1)[0].strip().lower()


def stored_type(claimed: str, head: bytes) -> str:
    """The content type to keep for an upload whose client said ``claimed`` and whose file
    starts with ``head``: the claim when the bytes bear it out or when it is a download anyway,
    a recognised image or PDF type for what the bytes are, else ``application/octet-stream``."""
    ct = normalized(claimed) or OCTET_STREAM
    check = INLINE.get(ct)
    if check is not None and check(head):
        return ct
    for kind in _SNIFFED:
        if INLINE[kind](head):
            return kind
    return OCTET_STREAM if check is not None else ct


def serving(content_type: str) -> tuple[str, str]:
    """``(media type, disposition)`` to serve a stored attachment with."""
    ct = normalized(content_type)
    if ct in INLINE:
        return ct, "inline"
    return OCTET_STREAM, "attachment"
