"""The ``freedompay-async`` command line: ``cancel``, ``status``, ``clear``, ``refund``,
``journal``, ``sandbox`` and ``demo``.

``cancel``, ``status``, ``clear`` and ``refund`` are one batch runner (:class:`BatchRun`)
with a small strategy per operation: they share the input (ids or a CSV column, or a
money CSV's rows; ``--shard K/N``), fail fast (a gateway that is plainly wrong,
credentials refused), progress, the summary, the exit codes, the settle window and the
signal handling. ``cancel`` appends every outcome to a durable JSON Lines journal bound
to its gateway, merchant, operation and shard: rerunning with the same journal skips
the ids already settled and tries the rest again, so a crash, SIGKILL or Ctrl-C never
loses an id and never re-sends a cancel the journal already records as done. ``clear``
and ``refund`` journal each row's intent (fsynced) before sending it, and settle an
intent without an outcome by status on rerun: each row moves money at most once.
``status`` prints one JSON line per id and keeps no journal.

The subsystem, one job per module: ``_main`` (parser and dispatch), ``_args`` (the
options, as data), ``_options`` (options read into one :class:`BatchJob`), ``_runner``
(the run), ``_op_cancel``, ``_op_status`` and ``_op_money`` (the operations),
``_operation`` (what an operation is to the runner), ``_outcome`` (what it tells the
runner of one item), ``_money_outcome`` (a money row's outcome and journal lines),
``_refund_floor`` (a refund's baseline after the batch's earlier refunds), ``_source``,
``_select``, ``_fileids`` and ``_input`` (the id input), ``_rows``, ``_rowkeys`` and
``_rowinput`` (the money input), ``_shard``, ``_journal``, ``_outcome_record`` (a
cancel outcome as a journal line), ``_header``, ``_codec``
(composing ``_cancel_codec`` and ``_money_codec``), ``_money_journal``, ``_states`` and
``_scan`` (the journal), ``_report`` and ``_summary`` (summary and exit-code policy),
``_exit`` (the program's name and exit codes), ``_watch`` (fail fast and retry),
``_signals``, ``_stdio`` (a command's streams and environment), ``_progress``,
``_console``, ``_dryrun``, ``_journal_tool`` and
``_journal_summary``, and ``_demo`` (which depends on the run, never on the parser).
"""

from ._main import build_parser, main
from ._options import BatchJob, CancelJob
from ._report import BatchReport
from ._run import run_batch
from ._runner import BatchRun

__all__ = ["BatchJob", "BatchReport", "BatchRun", "CancelJob", "build_parser", "main", "run_batch"]
