"""The program's name, as its messages begin, and its exit codes."""

from __future__ import annotations

__all__ = [
    "EXIT_CODES_TEXT",
    "EXIT_FAILED",
    "EXIT_INCOMPLETE",
    "EXIT_INTERRUPTED",
    "EXIT_OK",
    "EXIT_RERUN",
    "EXIT_USAGE",
    "PROG",
]

PROG = "freedompay-async"

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_INCOMPLETE = EXIT_FAILED  # the name other commands use for "did not succeed"
EXIT_USAGE = 2
EXIT_RERUN = 3
EXIT_INTERRUPTED = 130

EXIT_CODES_TEXT = """\
exit codes:
  0    every input id is cancelled or already cancelled, and every input line
       was an id (or blank, or a comment)
  1    some input could not be cancelled for good, and a rerun will not change
       that: the gateway refused ids (such as "payment not found"), or input lines
       were malformed (skipped; fix them, or pass --allow-malformed). An unsigned
       refusal (it could be forged) stays non-final in the journal, so a rerun asks
       about it again, but the answer is not expected to change
  2    usage or environment error: bad option or input, no ids in the input,
       missing credentials, journal in use or of another gateway/merchant, journal
       not writable (disk full), the gateway refused the credentials, or the
       gateway is plainly wrong (--fail-fast-after): fix it and rerun
  3    some ids remain to rerun (unknown, pending, transient failure, not reached):
       rerun with the same --journal
  130  interrupted (Ctrl-C / SIGTERM / SIGHUP): the replies in flight were waited
       for (--grace) and journaled; rerun with the same --journal to resume
"""
