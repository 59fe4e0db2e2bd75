"""``python -m freedompay_async.sandbox``: see :func:`freedompay_async.sandbox.main`."""

from ._command import main

raise SystemExit(main())
