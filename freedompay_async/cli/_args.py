"""The batch commands' options, declared as data: groups of options, and which groups
each command takes. ``cancel``, ``status``, ``clear`` and ``refund`` share every group
but the journal's (``status`` changes nothing and keeps no journal); ids come one per
line or from a CSV column (``cancel``, ``status``), money movements from a CSV's rows
(``clear``, ``refund``); ``--no-reconcile`` is ``cancel``'s own, the settle window
is the acting commands'. Help texts name the command's own words through ``{noun}``
(what is in flight).
"""

from __future__ import annotations

import argparse
import textwrap
from collections.abc import Mapping, Sequence
from typing import Any, NoReturn

import attrs

from .._argtypes import non_negative_int, positive_float, positive_int
from .._config import GatewayURL
from .._layers.retry import RetryPolicy
from .._layers.spacing import DEFAULT_PAYMENT_INTERVAL
from .._settling.policy import SettlePolicy
from ._options import ENV_BASE_URL, ENV_MERCHANT_ID, ENV_SECRET_KEY
from ._shard import shard_spec
from ._signals import DEFAULT_GRACE
from ._watch import DEFAULT_FAIL_FAST_AFTER

__all__ = ["BATCH_COMMANDS", "Opt", "add_batch_arguments"]

_DEFAULT_RETRY = RetryPolicy()
_DEFAULT_SETTLE = SettlePolicy()
#: The commands whose ambiguous attempts are settled by status.
SETTLING = "cancel,clear,refund"
#: The commands that read payment ids, and those that read money rows.
IDS, ROWS = "cancel,status", "clear,refund"
_LOG_LEVELS = ("debug", "info", "warning", "error")
_PROGRESS = ("auto", "bar", "plain", "none")


@attrs.frozen
class Opt:
    """One option: its flags, help text and the rest of ``add_argument``'s arguments.
    ``only`` limits it to some commands; ``exclusive`` names a mutually exclusive set."""

    flags: tuple[str, ...]
    help: str
    kwargs: Mapping[str, Any] = attrs.field(factory=dict)
    only: frozenset[str] | None = None
    exclusive: str | None = None


def opt(
    *flags: str, help: str, only: str | None = None, exclusive: str | None = None, **kwargs: Any
) -> Opt:
    """An :class:`Opt` (``only``: a comma-separated list of commands)."""
    commands = frozenset(only.split(",")) if only else None
    return Opt(flags, help, kwargs, commands, exclusive)


class _RefuseSecret(argparse.Action):
    def __call__(
        self,
        parser: argparse.ArgumentParser,
        namespace: argparse.Namespace,
        values: str | Sequence[Any] | None,
        option_string: str | None = None,
    ) -> NoReturn:
        parser.error(
            f"{option_string} is not accepted: a key on the command line leaks into shell "
            f"history and the process list; set {ENV_SECRET_KEY} or use --secret-key-file PATH"
        )


INPUT = (
    opt("--input", "-i", metavar="FILE.csv", required=True, only=ROWS,
        help="CSV file with a header row naming the columns payment_id and amount (amount "
        "optional for clear: empty clears the whole hold; currency optional for refund; "
        "other columns ignored). Each row is one movement, applied at most once across "
        "reruns: it is identified by its payment id, amount, currency and its position "
        "among equal rows, so editing the file between runs changes which rows are new. "
        "Malformed rows are reported and skipped (see --allow-malformed); a regular file "
        "only (a rerun must read the same rows)"),
    opt("--input", "-i", metavar="PATH", default=None, only=IDS,
        help="file of payment ids, one per line ('#' comments, also after an id, and blank "
        "lines ignored; UTF-8, or UTF-16 with a byte-order mark); '-' or absent: standard "
        "input. Malformed lines are reported with their line number and skipped, and make "
        "the run exit 1 (see --allow-malformed); duplicate ids are sent once; an input "
        "without any id is an error"),
    opt("--allow-malformed", action="store_true",
        help="malformed input lines are still reported and counted, but do not keep a run "
        "whose every id is done from exiting 0"),
    opt("--csv-column", metavar="NAME", default=None, only=IDS,
        help="read the input as CSV with a header row and take ids from column NAME"),
    opt("--csv-delimiter", metavar="C", default=",",
        help="the CSV field separator: one character, or 'tab' (default ',')"),
    opt("--shard", metavar="K/N", type=shard_spec, default=None,
        help="keep only the ids (clear, refund: the rows whose payment id) whose stable hash "
        "(SHA-256 of the decimal id, mod N) is K, 0 <= K < N: N copies of the command, one "
        "per K, split one input between them the same way on every machine (see "
        "docs/fleet.md)"),
)  # fmt: skip

JOURNAL = (
    opt("--journal", "-j", metavar="PATH", required=True, only=ROWS,
        help="JSON Lines journal: each row's intent is written and fsynced before its "
        "request is sent, then its outcome. Rerunning with the same journal skips rows "
        "done, already done or refused for good, settles by status the rows whose outcome "
        "is open (sending nothing before a whole --settle-window showed no trace), and "
        "sends the rest. An existing file that is not a journal of this tool, or the "
        "--input file, is refused (exit 2)"),
    opt("--journal", "-j", metavar="PATH", required=True, only="cancel",
        help="JSON Lines journal, one line per outcome, fsynced at least every second. "
        "Rerunning with the same journal skips ids already settled (cancelled, already "
        "cancelled, or a final failure such as 'payment not found') and retries the rest "
        "(unknown, pending, transient failures, ids never reached). An existing file that "
        "is not a journal of this tool, or the --input file, is refused (exit 2)"),
    opt("--start-over", action="store_true",
        help="if the journal belongs to another gateway, merchant or shard, move it aside to "
        "PATH.<time>.old and start a new one (without this, such a journal is refused with "
        "exit 2); a journal of this gateway and merchant is resumed as usual"),
)  # fmt: skip

OUTPUT = (
    opt("--summary-json", metavar="PATH", default=None, help="also write the summary as JSON"),
    opt("--unsettled-out", metavar="PATH", default=None,
        help="write the input ids not settled at the end (one per line; clear, refund: the "
        "payment id of each row not done) to PATH"),
    opt("--dry-run", action="store_true",
        help="read the input (and the journal), check the credentials with one signed "
        "status query, print what would be sent on stdout (one line per id or row), and "
        "send nothing else"),
    opt("--log-level", choices=_LOG_LEVELS, default=None,
        help="show the library's log lines at this level on stderr ('info': retries, "
        "'debug': every attempt); default: none"),
    opt("--progress", choices=_PROGRESS, default="auto",
        help="progress on stderr: 'auto' (a tqdm bar on a terminal if tqdm is installed, "
        "else plain lines), 'bar', 'plain' or 'none' (default auto)"),
    opt("--progress-interval", metavar="S", type=positive_float, default=2.0,
        help="seconds between two plain progress lines (default 2)"),
)  # fmt: skip

GATEWAY = (
    opt("--base-url", metavar="URL|PRESET", default=None,
        help=f"gateway URL or preset ({', '.join(GatewayURL.presets())}); "
        f"default ${ENV_BASE_URL}"),
    opt("--merchant-id", metavar="ID", default=None,
        help=f"merchant id; default ${ENV_MERCHANT_ID}"),
    opt("--secret-key-file", metavar="PATH", default=None,
        help=f"file holding the secret key (surrounding whitespace ignored); "
        f"default ${ENV_SECRET_KEY}"),
    opt("--secret-key", action=_RefuseSecret, nargs="?", help=argparse.SUPPRESS),
    opt("--api", choices=("gateway", "merchant"), default="gateway",
        help="the API family to speak: 'gateway' (/g2g/*, needs a PCI DSS certificate) or "
        "'merchant' (cancel.php, get_status3.php, do_capture.php, revoke.php), whose "
        "answers name no payment and are confirmed by status; the journal is bound to "
        "it (default gateway)"),
)  # fmt: skip

FLOW = (
    opt("--concurrency", "-c", type=positive_int, default=20, metavar="N",
        help="{noun} in flight at once (default 20)"),
    opt("--rate", type=positive_float, default=None, metavar="N", exclusive="pace",
        help="at most N HTTP attempts per second, retries included (default: no pacing)"),
    opt("--min-interval", type=positive_float, default=None, metavar="S", exclusive="pace",
        help="at least S seconds between HTTP attempts (Freedom Pay advises 1.5-2)"),
    opt("--payment-interval", type=positive_float, default=DEFAULT_PAYMENT_INTERVAL,
        metavar="S",
        help="at least S seconds between requests about the same payment, retries and "
        f"status queries included (default {DEFAULT_PAYMENT_INTERVAL:g}, as Freedom Pay "
        "advises); other payments are not slowed"),
    opt("--no-reconcile", action="store_true", only="cancel",
        help="do not settle ambiguous cancels by asking status (default: ask; "
        "revoked counts as cancelled, still held is cancelled again, not found fails)"),
    opt("--settle-window", type=positive_float, default=None, metavar="S",
        only=SETTLING,
        help="when an attempt's outcome is open (a lost, garbled or forged reply, a claim "
        "that names no payment), watch the payment's status for S seconds after the last "
        "send before deciding; nothing that moves money is sent again before a whole "
        f"window showed no trace of it (default {_DEFAULT_SETTLE.window:g}; longer for a "
        "gateway slower than its timeout)"),
    opt("--settle-poll", type=positive_float, default=None, metavar="S",
        only=SETTLING,
        help="seconds before the first status query of that watch; the waits then double "
        f"up to a quarter of the window, at most {_DEFAULT_SETTLE.poll_max:g} "
        f"(default {_DEFAULT_SETTLE.poll_initial:g})"),
    opt("--attempts", type=positive_int, default=_DEFAULT_RETRY.attempts, metavar="N",
        help=f"HTTP attempts per id, the first included (default {_DEFAULT_RETRY.attempts})"),
    opt("--attempt-timeout", type=positive_float, default=_DEFAULT_RETRY.attempt_timeout,
        metavar="S",
        help=f"seconds one attempt may take (default {_DEFAULT_RETRY.attempt_timeout:g})"),
    opt("--deadline", type=positive_float, default=_DEFAULT_RETRY.deadline, metavar="S",
        help="seconds one id may take, retries and backoff included "
        f"(default {_DEFAULT_RETRY.deadline:g})"),
    opt("--fail-fast-after", type=non_negative_int, default=DEFAULT_FAIL_FAST_AFTER,
        metavar="N",
        help="stop (exit 2) after N consecutive HTTP attempts fail without a gateway answer: "
        "refused connection, DNS, TLS, timeout, HTTP 404/405/5xx, a body that is not "
        "gateway XML, a reply that fails verification (default 20; 0: never). A refusal of "
        "the credentials stops the run at once"),
    opt("--grace", type=positive_float, default=DEFAULT_GRACE, metavar="S",
        help="on a first Ctrl-C/SIGTERM/SIGHUP, seconds to wait for the replies in flight "
        f"before abandoning them (default {DEFAULT_GRACE:g}); a second signal abandons "
        "them at once"),
)  # fmt: skip

_GATEWAY_NOTE = textwrap.fill(
    f"The secret key comes from ${ENV_SECRET_KEY} or --secret-key-file, never from a "
    "command-line value (--secret-key is refused: it would leak into shell history and "
    "the process list). It is never printed or journaled.",
    76,
)

#: Each batch command's option groups: (title, description, options).
_GROUPS: tuple[tuple[str, str | None, tuple[Opt, ...]], ...] = (
    ("input", None, INPUT),
    ("journal", None, JOURNAL),
    ("output and display", None, OUTPUT),
    ("gateway and credentials", _GATEWAY_NOTE, GATEWAY),
    ("concurrency, pacing and retry", None, FLOW),
)
#: The batch commands: name -> (what is in flight, whether it keeps a journal).
BATCH_COMMANDS: dict[str, tuple[str, bool]] = {
    "cancel": ("cancels", True),
    "status": ("status queries", False),
    "clear": ("clearings", True),
    "refund": ("refunds", True),
}


def add_batch_arguments(parser: argparse.ArgumentParser, command: str) -> None:
    """Declare ``command``'s options on ``parser``."""
    noun, journaled = BATCH_COMMANDS[command]
    for title, description, options in _GROUPS:
        if options is JOURNAL and not journaled:
            continue
        group = parser.add_argument_group(title, description)
        exclusive: dict[str, Any] = {}
        for option in options:
            if option.only is not None and command not in option.only:
                continue
            target: Any = group
            if option.exclusive is not None:
                if option.exclusive not in exclusive:
                    exclusive[option.exclusive] = group.add_mutually_exclusive_group()
                target = exclusive[option.exclusive]
            kwargs = dict(option.kwargs)
            text = option.help
            kwargs["help"] = text if text == argparse.SUPPRESS else text.format(noun=noun)
            target.add_argument(*option.flags, **kwargs)
