"""A local Freedom Pay gateway for tests, demos and load runs: the Gateway API (cancel,
status_v2, clearing, refund), the Merchant API (init_payment, get_status3, get_status2,
do_capture, revoke, cancel), the payment page, the buyer, and callbacks.

>>> gateway = SandboxGateway(faults=FaultPlan(rate=0.2, seed=7))
>>> gateway.add_payments(range(1, 1001))
>>> async with gateway.serve() as url:
...     async with AsyncSession(Credentials(gateway.merchant_id, gateway.secret_key),
...                             base_url=url) as fp:
...         await fp.cancel(1)
>>> gateway.ledger[1].state
'cancelled'

- :class:`SandboxGateway` verifies signed requests to ``/g2g/cancel``, ``/g2g/status_v2``,
  ``/g2g/clearing`` and ``/g2g/refund``, answers in the real gateway's XML shapes
  (signed with each script name; refunds negative in status replies) and keeps one
  ledger of payments with real rules. Status lags a clearing or a refund by
  ``status_lag`` seconds, as observed live.
- The whole lifecycle: ``init_payment.php`` creates a payment and answers its page
  URL; a buyer pays or fails there over HTTP or with :meth:`SandboxGateway.pay`
  (-> :class:`BuyerVisit`), which runs the check request, the result notification
  (delivered again while not answered HTTP 200) and the redirect back, each a
  :class:`Delivery`.
- :class:`Fault` kinds are injected per payment (``gateway.inject``) or at random by a
  reproducible :class:`FaultPlan`; the money kinds (slow processing, lost reply) are
  opt-in (``FaultPlan.MONEY_KINDS``).
- :class:`LedgerEntry` is one payment's state: held, cancelled or cleared, revoke id,
  amounts, refunds, request, cancellation and clearing counts (never more than one),
  money movements, and when each request about it arrived.
- ``python -m freedompay_async.sandbox --port 8080 --payments 1:1000`` runs it standalone
  (:func:`main`; :func:`add_arguments` and :func:`run_from_args` for other CLIs).
"""

from ._buyer import BuyerVisit, Delivery
from ._command import add_arguments, main, run_from_args
from ._faults import Fault, FaultPlan
from ._gateway import SandboxGateway
from ._ledger import LedgerEntry

__all__ = [
    "BuyerVisit",
    "Delivery",
    "Fault",
    "FaultPlan",
    "LedgerEntry",
    "SandboxGateway",
    "add_arguments",
    "main",
    "run_from_args",
]
