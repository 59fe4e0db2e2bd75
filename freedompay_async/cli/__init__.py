"""The ``freedompay-async`` command line: ``cancel``, ``sandbox`` and ``demo``.

``cancel`` reads payment ids (one per line, or a CSV column), cancels them with
:meth:`~freedompay_async.AsyncSession.cancel_many` and appends every outcome to a
durable JSON Lines journal. Rerunning with the same journal skips the ids already
settled and tries the rest again, so a crash, SIGKILL or Ctrl-C never loses an id and
never re-sends a cancel the journal already records as done.

The subsystem, one job per module: ``_main`` (parser and dispatch), ``_options`` (the
cancel options read into one :class:`CancelJob`), ``_run`` (the run), ``_report``
(summary and exit-code policy), ``_signals`` (signal handling), ``_journal``,
``_input``, ``_progress`` and ``_demo`` (which depends on the run, never on the parser).
"""

from ._main import build_parser, main
from ._options import CancelJob
from ._report import BatchReport
from ._run import run_batch

__all__ = ["BatchReport", "CancelJob", "build_parser", "main", "run_batch"]
