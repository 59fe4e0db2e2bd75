"""End to end through the sandbox gateway over real loopback sockets: one path per feature."""

from __future__ import annotations

import asyncio
import logging

import pytest
from aiohttp import web

import freedompay_async as fp
from freedompay_async.sandbox import Fault, SandboxGateway

from ..helpers import MERCHANT, SECRET, FakeClock, ok_fields, on_clock, serve, signed

#: Settling over loopback: status every 0.05-0.2 s, for at most 2 s after the last send.
FAST_SETTLE = fp.SettlePolicy(window=2.0, poll_initial=0.05, poll_max=0.2)
#: For a session whose replies never verify: give up after 0.3 s.
NEVER = fp.SettlePolicy(window=0.3, poll_initial=0.05, poll_max=0.1)


def session(
    gw: SandboxGateway,
    url: str,
    *,
    secret: str = SECRET,
    merchant: int | None = None,
    settle: fp.SettlePolicy = FAST_SETTLE,
    **kw: object,
) -> fp.AsyncSession:
    """A session that settles fast, waits between retries in virtual time and spaces
    requests about one payment 0.01 s apart; spacing and settling wait in virtual time
    too (a cancel shows in status at once: no lag to wait for in real time)."""
    creds = fp.Credentials(merchant or gw.merchant_id, secret)
    clock = FakeClock()
    kw.setdefault("retry", instant_retry())
    return fp.AsyncSession(
        creds,
        base_url=url,
        settle=on_clock(settle, clock),
        spacing=on_clock(fp.PaymentSpacing(0.01), clock),
        **kw,  # type: ignore[arg-type]
    )


def instant_retry(clock: FakeClock | None = None, **kw: object) -> fp.RetryPolicy:
    clock = clock or FakeClock()
    return fp.RetryPolicy(sleep=clock.sleep, **kw)  # type: ignore[arg-type]


async def test_a_cancel_is_applied_once_and_reported(served: tuple[SandboxGateway, str]) -> None:
    gw, url = served
    async with session(gw, url) as s:
        result = await s.cancel(7)
    entry = gw.ledger[7]
    assert (entry.state, entry.cancellations, entry.requests) == ("cancelled", 1, 1)
    assert result.revoke_id == entry.revoke_id and result.signed
    assert result.revoke_status is fp.RevokeStatus.SUCCESS and result.attempts == 1


async def test_a_second_cancel_is_already_cancelled_in_russian(
    served: tuple[SandboxGateway, str],
) -> None:
    gw, url = served
    async with session(gw, url) as s:
        await s.cancel(8)
        with pytest.raises(fp.AlreadyCancelledError) as info:
            await s.cancel(8)
    err = info.value
    assert err.code == 10033 and err.signed and err.payment_id == 8
    assert err.bound and gw.ledger[8].status_requests == 1  # status confirmed the claim
    assert any("\u0430" <= ch <= "\u044f" for ch in err.description)  # Cyrillic survived
    assert gw.ledger[8].cancellations == 1


async def test_an_unknown_payment_is_not_found_unsigned(
    served: tuple[SandboxGateway, str],
) -> None:
    gw, url = served
    async with session(gw, url) as s:
        with pytest.raises(fp.PaymentNotFoundError) as info:
            await s.cancel(999_999)
    assert info.value.code == 11068 and info.value.signed is False
    assert not info.value.outcome_unknown


async def test_an_unknown_merchant_is_refused_unsigned(served: tuple[SandboxGateway, str]) -> None:
    gw, url = served
    async with session(gw, url, merchant=4444) as s:
        with pytest.raises(fp.UnknownMerchantError) as info:
            await s.cancel(9)
    assert info.value.code == 9998 and info.value.signed is False
    assert gw.ledger[9].state == "held"


async def test_a_wrong_secret_is_an_invalid_request_signature(
    served: tuple[SandboxGateway, str],
) -> None:
    gw, url = served
    async with session(gw, url, secret="not-the-key", settle=NEVER) as s:
        with pytest.raises(fp.SignatureVerificationError) as info:
            await s.cancel(10)
    # The gateway signs its 1100 with the real key, which we cannot verify: the claim
    # is kept, but an unverifiable error reply is never raised as a GatewayError, and
    # the outcome stays open (status replies do not verify either).
    assert info.value.claimed_code == 1100 and info.value.outcome_unknown
    assert gw.ledger[10].state == "held"


async def test_a_forged_reply_is_never_a_success(served: tuple[SandboxGateway, str]) -> None:
    gw, url = served
    gw.inject(11, Fault.FORGED)
    gw.inject(13, Fault.FORGED)
    async with session(gw, url, retry=instant_retry()) as s:
        with pytest.raises(fp.SignatureVerificationError) as info:
            await s.cancel(11, reconcile=False)
        outcomes = [o async for o in s.cancel_many([11], concurrency=1)]
        settled = await s.cancel(13)
    assert info.value.outcome_unknown and info.value.attempts == 1
    assert gw.ledger[11].state == "cancelled"  # the gateway did act: unknown, not failed
    assert outcomes[0].state is fp.OutcomeState.ALREADY_CANCELLED
    assert outcomes[0].settled_by == "status"  # its 10033 named no payment; status did
    # By default the forged answer is settled by status, never by the forgery itself.
    assert settled.confirmed_by_status and settled.revoke_id == gw.ledger[13].revoke_id
    assert gw.ledger[13].cancel_requests == 1 and gw.ledger[13].status_requests == 1


async def test_a_reply_signed_with_the_previous_key_verifies_during_rotation() -> None:
    """The gateway still signs with the old key; only the rotating signer believes it."""
    old = fp.Md5Signer("the-old-key")

    async def handle(request: web.Request) -> web.Response:
        form = await request.post()
        pid = int(str(form["pg_payment_id"]))
        return web.Response(body=signed(ok_fields(pid), signer=old), content_type="text/xml")

    app = web.Application()
    app.router.add_post("/g2g/cancel", handle)
    creds = fp.Credentials(MERCHANT, SECRET)
    async with serve(app) as url:
        rotating = fp.RotatingSigner.md5(SECRET, "the-old-key")
        async with fp.AsyncSession(creds, base_url=url, signer=rotating) as s:
            result = await s.cancel(12)
        assert result.signed and result.payment_id == 12
        async with fp.AsyncSession(creds, base_url=url, retry=fp.RetryPolicy.none()) as s:
            with pytest.raises(fp.SignatureVerificationError):
                # the current key alone refuses the old key's reply (this little gateway
                # has no status to settle it by)
                await s.cancel(12, reconcile=False)


@pytest.mark.parametrize(
    ("fault", "attempts", "by_status"),
    [
        (Fault.RESET_BEFORE, 2, False),
        # applied, answer lost: the retry's 10033 names no payment, so status confirms
        (Fault.RESET_AFTER, 3, True),
        (Fault.HTTP_503, 2, False),
        (Fault.HTTP_429, 2, False),
        (Fault.ERROR_9999, 2, False),
        (Fault.GARBAGE, 3, True),
        (Fault.SLOW, 3, True),
    ],
)
async def test_each_fault_is_survived_without_losing_the_outcome(
    served: tuple[SandboxGateway, str], fault: Fault, attempts: int, by_status: bool
) -> None:
    gw, url = served
    gw.inject(20, fault)
    clock = FakeClock()
    # Only the SLOW case needs an attempt to time out; the others get a generous limit
    # so a busy machine cannot turn a normal reply into an extra attempt.
    retry = instant_retry(clock, attempt_timeout=0.5 if fault is Fault.SLOW else 10.0)
    async with session(gw, url, retry=retry) as s:
        result = await s.cancel(20)
    assert (result.attempts, result.confirmed_by_status) == (attempts, by_status)
    assert not result.confirmed_on_retry  # an unbound 10033 never confirms by itself
    assert gw.ledger[20].state == "cancelled" and gw.ledger[20].cancellations == 1
    assert gw.ledger[20].cancel_requests == 2
    assert gw.ledger[20].status_requests == (1 if by_status else 0)
    if fault is Fault.HTTP_429:
        assert clock.sleeps and clock.sleeps[0] >= 1.0  # Retry-After honoured


async def test_faults_on_every_attempt_end_in_an_outcome_not_an_exception(
    served: tuple[SandboxGateway, str],
) -> None:
    gw, url = served
    gw.inject(30, Fault.RESET_AFTER, Fault.HTTP_503, Fault.HTTP_503, Fault.HTTP_503)
    gw.inject(31, Fault.HTTP_503, Fault.ERROR_9999, Fault.HTTP_429, Fault.HTTP_503)
    async with session(gw, url, retry=instant_retry()) as s:
        outcomes = {
            o.payment_id: o async for o in s.cancel_many([30, 31], concurrency=2, reconcile=False)
        }
    assert outcomes[30].state is fp.OutcomeState.UNKNOWN and gw.ledger[30].state == "cancelled"
    # 31: a 503 may follow processing, so it is unknown too, though the sandbox did not act.
    assert outcomes[31].state is fp.OutcomeState.UNKNOWN and gw.ledger[31].state == "held"
    assert outcomes[30].attempts == 4 and not outcomes[30].final


async def test_pending_revoke_status_is_reported_pending_then_settled_by_status() -> None:
    gw = SandboxGateway(secret_key=SECRET, pending_ids=[5, 6])
    gw.add_payments([5, 6])
    async with gw.serve() as url, session(gw, url) as s:
        raw = [o async for o in s.cancel_many([5], concurrency=1, reconcile=False)]
        settled = [o async for o in s.cancel_many([6], concurrency=1)]
    assert raw[0].state is fp.OutcomeState.PENDING
    assert raw[0].result is not None and raw[0].result.revoke_status is fp.RevokeStatus.PENDING
    # By default a pending revoke is settled by status, which shows the hold released.
    assert settled[0].state is fp.OutcomeState.CANCELLED and settled[0].settled_by == "status"
    assert gw.ledger[6].state == "cancelled" and gw.ledger[6].cancel_requests == 1


async def test_a_thousand_concurrent_cancels_over_one_session_match_the_ledger(
    served: tuple[SandboxGateway, str],
) -> None:
    gw, url = served
    ids = list(range(1000, 2000))
    async with session(gw, url, limits=fp.Limits(max_connections=50)) as s:
        async with asyncio.TaskGroup() as tg:
            tasks = [tg.create_task(s.cancel(pid)) for pid in ids]
    results = [t.result() for t in tasks]
    assert [r.payment_id for r in results] == ids
    revoke_ids = {r.revoke_id for r in results}
    assert len(revoke_ids) == 1000
    for r in results:
        entry = gw.ledger[r.payment_id]
        assert entry.state == "cancelled" and entry.cancellations == 1
        assert entry.revoke_id == r.revoke_id


async def test_the_secret_is_absent_from_reprs_errors_and_logs(
    served: tuple[SandboxGateway, str], caplog: pytest.LogCaptureFixture
) -> None:
    gw, url = served
    caplog.set_level(logging.DEBUG)
    gw.inject(40, Fault.HTTP_503)
    errors: list[BaseException] = []
    seen: list[object] = []
    async with session(gw, url, retry=instant_retry()) as s:
        seen += [s, s.credentials, s.signer, s.retry, gw]
        seen.append(await s.cancel(40))
        for bad in (40, 999_999, "abc"):
            try:
                await s.cancel(bad)
            except fp.FreedomPayError as exc:
                errors.append(exc)
        async for outcome in s.cancel_many([41, 42], concurrency=2):
            seen.append(outcome)
    async with session(gw, url, secret="wrong-secret-xyz", settle=NEVER) as s:
        try:
            await s.cancel(43)
        except fp.FreedomPayError as exc:
            errors.append(exc)
    assert len(errors) == 4
    texts = [repr(o) for o in seen + errors] + [str(o) for o in seen + errors] + [caplog.text]
    for text in texts:
        assert SECRET not in text and "wrong-secret-xyz" not in text
