"""A local Freedom Pay gateway for tests, demos and load runs: ``/g2g/cancel`` and callbacks.

>>> gateway = SandboxGateway(faults=FaultPlan(rate=0.2, seed=7))
>>> gateway.add_payments(range(1, 1001))
>>> async with gateway.serve() as url:
...     async with AsyncSession(Credentials(gateway.merchant_id, gateway.secret_key),
...                             base_url=url) as fp:
...         await fp.cancel(1)
>>> gateway.ledger[1].state
'cancelled'

- :class:`SandboxGateway` verifies signed cancel requests, answers in the documented XML
  shapes (signed with script name ``cancel``) and keeps a ledger of held payments.
- :class:`Fault` kinds are injected per payment (``gateway.inject``) or at random by a
  reproducible :class:`FaultPlan`.
- :class:`LedgerEntry` is one payment's state: held or cancelled, revoke id, request and
  cancellation counts (never more than one cancellation).
- ``python -m freedompay_async.sandbox --port 8080 --payments 1:1000`` runs it standalone
  (:func:`main`; :func:`add_arguments` and :func:`run_from_args` for other CLIs).
"""

from ._command import add_arguments, main, run_from_args
from ._faults import Fault, FaultPlan
from ._gateway import SandboxGateway
from ._ledger import LedgerEntry

__all__ = [
    "Fault",
    "FaultPlan",
    "LedgerEntry",
    "SandboxGateway",
    "add_arguments",
    "main",
    "run_from_args",
]
