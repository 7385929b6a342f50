"""The browser suites' module-scoped fixtures, registered once by ``pytest_plugins`` in
conftest.py: Debian's Chromium, a host site that embeds the widget, and a demo gateway under
uvicorn in a directory named after the test module. Each is started on a module's first use
and stopped after its last test; a module that needs another gateway defines its own."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser

from tests.browser_helpers import Demo, HostSite, demo_gateway, launch_chromium
from tests.server_helpers import GatewayProcess


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with launch_chromium() as launched:
        yield launched


@pytest.fixture(scope="module")
def site() -> Iterator[HostSite]:
    with HostSite() as running:
        yield running


@pytest.fixture(scope="module")
def gateway(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[GatewayProcess, Demo]]:
    name = request.module.__name__.rpartition(".")[2].removeprefix("test_")
    with demo_gateway(tmp_path_factory.mktemp(name)) as running:
        yield running
