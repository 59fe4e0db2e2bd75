"""Fixtures shared by every test folder: the test merchant, the sandbox gateway, a journal dir.

Folders mirror the package: ``client/`` (session, signing, replies, retry, transport),
``callbacks/`` (the merchant side), ``cli/``, ``sandbox/`` and ``e2e/`` (whole paths
over loopback sockets).
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from freedompay_async import Credentials
from freedompay_async.sandbox import FaultPlan, SandboxGateway

from .helpers import MERCHANT, SECRET, FakeClock

# The processes tests start (the command line, fleet workers, the docs' examples) each
# import the package afresh: let them keep its compiled modules rather than compile all
# of them every time (an environment that sets PYTHONDONTWRITEBYTECODE costs ~0.1 s of
# processor per process, some 150 times a run).
os.environ.pop("PYTHONDONTWRITEBYTECODE", None)

#: Where the slow tests live: those that start processes (the command line, fleets of
#: workers, the docs' examples, the sandbox's), storm a sandbox, or wait real seconds on
#: purpose (a sandbox that processes in real time). Settle windows, status lag and
#: spacing elsewhere wait on virtual clocks. ``-m "not slow"`` is the daily loop; CI runs all.
SLOW = (
    "cli/",
    "fleet/",
    "e2e/test_docs_examples.py",
    "e2e/test_reconcile.py",
    "e2e/test_outcome_truth.py",
    "e2e/test_storm.py",
    "sandbox/test_sandbox.py",
    "otel/test_otel_optional.py",
)
_TESTS = Path(__file__).parent


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark every test under :data:`SLOW` ``slow``."""
    for item in items:
        where = item.path.relative_to(_TESTS).as_posix()
        if where.startswith(SLOW):
            item.add_marker(pytest.mark.slow)


#: Payment ids the shared sandbox holds when a test starts.
HELD_IDS = range(1, 2001)


@pytest.fixture
def credentials() -> Credentials:
    """The test merchant's credentials (the sandbox's too)."""
    return Credentials(MERCHANT, SECRET)


@pytest.fixture
def clock() -> FakeClock:
    """A virtual clock for a test's waits (settling, spacing, the sandbox's status lag)."""
    return FakeClock()


@pytest.fixture
def gateway_clock() -> Callable[[], float] | None:
    """The clock of the shared sandbox's status lag and ledger times: None, the running
    loop's. A module that settles in virtual time overrides it with its ``clock``, so a
    lag passes as its status queries wait, with no real wait."""
    return None


@pytest.fixture
def gateway(gateway_clock: Callable[[], float] | None) -> SandboxGateway:
    """A sandbox for the test merchant holding ids 1..2000, no random faults.

    Its fault plan (rate 0) sets a 2 s slow delay, so an injected ``Fault.SLOW`` outlasts
    a short attempt timeout.
    """
    gw = SandboxGateway(MERCHANT, SECRET, faults=FaultPlan(slow_delay=2.0), clock=gateway_clock)
    gw.add_payments(HELD_IDS)
    return gw


@pytest.fixture
async def served(gateway: SandboxGateway) -> AsyncIterator[tuple[SandboxGateway, str]]:
    """The shared sandbox, served on a free loopback port: ``(gateway, base_url)``."""
    async with gateway.serve() as url:
        yield gateway, url


@pytest.fixture
def gateway_url(served: tuple[SandboxGateway, str]) -> str:
    """The base URL of the served sandbox."""
    return served[1]


@pytest.fixture
def journal_dir(tmp_path: Path) -> Path:
    """An empty directory for batch journals and summaries."""
    path = tmp_path / "journals"
    path.mkdir()
    return path
