"""``python -m tests.screenshots`` (the README's pictures) keeps working, and writes where it is
told: here a temporary directory, never docs/ from a test."""

from __future__ import annotations

import struct
from pathlib import Path

import pytest

from tests import screenshots

pytestmark = [pytest.mark.slow, pytest.mark.timeout(240)]


def _png_size(path: Path) -> tuple[int, int]:
    header = path.read_bytes()[:24]
    assert header[:8] == b"\x89PNG\r\n\x1a\n", path
    width, height = struct.unpack(">II", header[16:24])
    return width, height


def test_refresh_writes_the_four_pictures(tmp_path: Path) -> None:
    written = screenshots.refresh(tmp_path)
    assert [p.name for p in written] == [f"{n}.png" for n in screenshots.NAMES]
    assert all(p.parent == tmp_path for p in written)
    sizes = {p.stem: _png_size(p) for p in written}
    assert sizes == {
        "widget-desktop": (1280, 720),
        "widget-phone": (390, 780),
        "widget-messages": (1280, 720),
        "console": (1280, 720),
    }
