"""The common cancel's request from a per-session template: no generic rendering or sorting.

The common case is a cancel of a plain payment id, signed by the default
:class:`~freedompay_async.Md5Signer`, without receipt positions. Its body has the same
four parts every time; only the payment id, the salt and the signature change. A
:class:`CancelTemplate` holds the fixed bytes once per session and fills in those three,
with the signature pre-image written directly in sorted field order
(``pg_merchant_id < pg_payment_id < pg_salt``). The result is byte for byte what
:func:`~freedompay_async._multipart.render_multipart` and ``Md5Signer.sign`` produce
for the same boundary and salt (the tests hold it to that); anything else (another
signer, receipt positions) takes the generic path.

Salts come from a :class:`SaltPool`: one ``os.urandom`` read cut into many 16-hex-digit
salts, each handed out once, instead of a system call per request.
"""

from __future__ import annotations

import enum
import random

from .._operations.values import MAX_PAYMENT_ID
from .._wire.messages import GatewayRequest
from .._wire.salts import new_md5, take_salt

__all__ = [
    "CancelTemplate",
    "Parts",
]

#: A signed cancel's ``(payment id text, salt, signature, body)``.
Parts = tuple[str, str, str, bytes]


class _Default(enum.Enum):
    SESSION = "the session's attempt timeout"


def _head(dash: str, name: str) -> str:
    return f'{dash}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n'


class CancelTemplate:
    """A session's ``/g2g/cancel`` request with only id, salt and signature left to fill in.

    Holds the secret key's bytes: never put it in a repr or a log line (its ``repr``
    shows neither the key nor the boundary).
    """

    __slots__ = (
        "_content_type",
        "_end",
        "_key",
        "_merchant",
        "_p1",
        "_p2",
        "_p3",
        "_pre",
        "_script",
        "_timeout",
        "_url",
    )  # fmt: skip

    def __init__(
        self,
        merchant_id: int,
        url: str,
        script: str,
        secret_key: bytes,
        timeout: float | None,
        boundary: str | None = None,
    ) -> None:
        merchant = str(merchant_id)
        mark = boundary or f"fp{random.getrandbits(128):032x}"
        dash = "--" + mark
        self._merchant = merchant
        self._url = url
        self._script = script
        self._timeout = timeout
        self._pre = f"{script};{merchant};".encode()
        self._key = secret_key
        self._p1 = (
            _head(dash, "pg_merchant_id") + merchant + "\r\n" + _head(dash, "pg_payment_id")
        ).encode()
        self._p2 = ("\r\n" + _head(dash, "pg_salt")).encode()
        self._p3 = ("\r\n" + _head(dash, "pg_sig")).encode()
        self._end = f"\r\n{dash}--\r\n".encode()
        self._content_type = "multipart/form-data; boundary=" + mark

    def __repr__(self) -> str:
        return f"<CancelTemplate script={self._script!r}>"

    @staticmethod
    def usable_id(payment: object) -> int | None:
        """``payment`` when it is a plain int in the valid id range, else None."""
        if type(payment) is int and 0 < payment < MAX_PAYMENT_ID:
            return payment
        return None

    @property
    def url(self) -> str:
        """Where the requests go."""
        return self._url

    @property
    def script(self) -> str:
        """The script name the requests are signed for."""
        return self._script

    @property
    def content_type(self) -> str:
        """The requests' ``Content-Type`` (with the template's boundary)."""
        return self._content_type

    def parts(self, payment_id: int, salt: str | None = None) -> Parts:
        """``(payment id text, salt, signature, body)`` of the signed request for
        ``payment_id`` (a valid id) with ``salt`` (default: pooled)."""
        pid = str(payment_id)
        if salt is None:
            salt = take_salt()
        pid_b = pid.encode()
        salt_b = salt.encode()
        # The key goes straight into the digest: no pre-image holding it is ever built.
        digest = new_md5(self._pre + pid_b + b";" + salt_b + b";")
        digest.update(self._key)
        sig = digest.hexdigest()
        body = b"".join((self._p1, pid_b, self._p2, salt_b, self._p3, sig.encode(), self._end))
        return pid, salt, sig, body

    def request(
        self,
        payment_id: int,
        salt: str | None = None,
        timeout: float | _Default | None = _Default.SESSION,
        deadline: float | None = None,
    ) -> GatewayRequest:
        """The signed request for ``payment_id`` (a valid id) with ``salt`` (default:
        pooled), sent within ``timeout`` (default: the session's attempt timeout) and,
        when given, the call's ``deadline`` (absolute, on the retry policy's clock)."""
        limit = self._timeout if timeout is _Default.SESSION else timeout
        return self.wrap(self.parts(payment_id, salt), payment_id, limit, deadline)

    def wrap(
        self, parts: Parts, payment_id: int, timeout: float | None, deadline: float | None
    ) -> GatewayRequest:
        """The request value of ``parts`` (from :meth:`parts` for ``payment_id``)."""
        pid, salt, sig, body = parts
        return GatewayRequest(
            "cancel",
            self._url,
            self._script,
            payment_id,
            (
                ("pg_merchant_id", self._merchant),
                ("pg_payment_id", pid),
                ("pg_salt", salt),
                ("pg_sig", sig),
            ),
            body,
            self._content_type,
            timeout,
            1,
            deadline,
        )
