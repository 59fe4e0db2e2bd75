"""Library behaviour the command line found, pinned now that the library does it.

The command line still keeps its own refund floors (``cli/_refund_floor.py``): they
come from the journal and so hold across reruns, where the session's memory of its
own refunds lasts one process.
"""

from __future__ import annotations

import freedompay_async as fp
from freedompay_async.sandbox import Fault, SandboxGateway

from ..helpers import MERCHANT, SECRET


async def test_a_lost_second_refund_is_not_confirmed_by_the_first_one() -> None:
    gw = SandboxGateway(MERCHANT, SECRET)
    gw.status_lag = 0.3
    gw.add_payments([5])
    policy = fp.SettlePolicy(window=1.0, poll_initial=0.05, poll_max=0.2)
    credentials = fp.Credentials(MERCHANT, SECRET)
    async with gw.serve() as url:
        async with fp.AsyncSession(credentials, base_url=url, spacing=None, settle=policy) as s:
            await s.clear(5, reconcile=False)
            await s.refund(5, 100)
            # The second refund's baseline read goes through; the refund itself is lost
            # before the gateway processes it.
            gw.inject(5, None, Fault.RESET_BEFORE)
            try:
                result = await s.refund(5, 100)
            except fp.FreedomPayError:
                result = None
    # A result says this refund happened: then the ledger holds two refunds.
    assert len(gw.ledger[5].refunds) == (1 if result is None else 2), result
