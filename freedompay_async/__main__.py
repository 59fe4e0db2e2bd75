"""``python -m freedompay_async``: the ``freedompay-async`` command line."""

from .cli import main

if __name__ == "__main__":
    raise SystemExit(main())
