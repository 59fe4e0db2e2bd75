"""The ``freedompay-async`` command line: ``cancel``, ``status``, ``journal``,
``sandbox`` and ``demo``.

``cancel`` and ``status`` are one batch runner (:class:`BatchRun`) with a small
strategy per operation: they share the input (ids or a CSV column, ``--shard K/N``),
fail fast (a gateway that is plainly wrong, credentials refused), progress, the summary,
the exit codes and the signal handling. ``cancel`` appends every outcome to a durable
JSON Lines journal bound to its gateway, merchant, operation and shard: rerunning with
the same journal skips the ids already settled and tries the rest again, so a crash,
SIGKILL or Ctrl-C never loses an id and never re-sends a cancel the journal already
records as done. ``status`` prints one JSON line per id and keeps no journal.

The subsystem, one job per module: ``_main`` (parser and dispatch), ``_args`` (the
options, as data), ``_options`` (options read into one :class:`BatchJob`), ``_runner``
(the run), ``_op_cancel`` and ``_op_status`` (the operations), ``_outcome`` (what an
operation tells the runner), ``_source``, ``_select``, ``_fileids`` and ``_input`` (the
input), ``_shard``, ``_journal``, ``_header``, ``_codec``, ``_states`` and ``_scan``
(the journal), ``_report`` and ``_summary`` (summary and exit-code policy), ``_watch``
(fail fast and retry), ``_signals``, ``_progress``, ``_console``, ``_dryrun``,
``_journal_tool`` and ``_journal_summary``, and ``_demo`` (which depends on the run,
never on the parser).
"""

from ._main import build_parser, main
from ._options import BatchJob, CancelJob
from ._report import BatchReport
from ._run import run_batch
from ._runner import BatchRun

__all__ = ["BatchJob", "BatchReport", "BatchRun", "CancelJob", "build_parser", "main", "run_batch"]
