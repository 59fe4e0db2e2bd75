"""No frame of a refused command line's traceback holds the secret key.

An error reporter that records frame locals (Sentry and the like) would store whatever
each frame on the raise path holds. Every refusal the options can raise is tried with
a canary key in the environment or in a key file, and every frame of the error and of
its context is searched for it (the walker of the library's own hygiene tests).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

import freedompay_async
from freedompay_async.cli._main import build_parser
from freedompay_async.cli._options import UsageError, credentials_from, job_from_args

from ..client.test_secret_hygiene import CANARY, _exceptions, _frames, _holds_canary

PACKAGE = str(Path(freedompay_async.__file__).parent)


def leaks(error: BaseException) -> list[str]:
    """The library's frames (not this test's, which holds the canary itself) that hold
    the canary, as ``function:local``; and the error itself if it quotes it."""
    found = [type(e).__name__ for e in _exceptions(error) if CANARY in f"{e!s}{e!r}"]
    for exc in _exceptions(error):
        for tb in _frames(exc.__traceback__):
            frame = tb.tb_frame
            if frame.f_code.co_filename.startswith(PACKAGE):
                found += [
                    f"{frame.f_code.co_name}:{name}"
                    for name, value in frame.f_locals.items()
                    if _holds_canary(value)
                ]
    return found


ARGS = ("cancel", "--base-url", "kz", "--input", "ids.txt", "--journal", "j.jsonl")


def _args(*extra: str) -> argparse.Namespace:
    return build_parser().parse_args([*ARGS, *extra])


def _refusal(args: argparse.Namespace, env: dict[str, str]) -> UsageError:
    with pytest.raises(UsageError) as info:
        job_from_args(args, env)
    return info.value


@pytest.mark.parametrize(
    ("merchant", "extra", "refused"),
    [
        ("not-a-number", (), "merchant_id"),
        ("0", (), "merchant_id"),
        ("1234", ("--csv-column", " "), "--csv-column"),
        ("1234", ("--csv-delimiter", "ab"), "--csv-delimiter"),
    ],
)
def test_a_refusal_after_the_key_was_read_from_the_environment_holds_it_nowhere(
    merchant: str, extra: tuple[str, ...], refused: str
) -> None:
    env = {"FREEDOMPAY_MERCHANT_ID": merchant, "FREEDOMPAY_SECRET_KEY": CANARY}
    error = _refusal(_args(*extra), env)
    assert refused in str(error)
    assert leaks(error) == []


def test_a_key_file_that_is_not_text_is_refused_without_its_bytes(tmp_path: Path) -> None:
    key_file = tmp_path / "key"
    key_file.write_bytes(CANARY.encode() + b"\xff\xfe")
    env = {"FREEDOMPAY_MERCHANT_ID": "1234"}
    error = _refusal(_args("--secret-key-file", str(key_file)), env)
    assert "not UTF-8" in str(error)
    assert leaks(error) == []


def test_a_bad_merchant_id_with_a_key_file_is_refused_before_the_key_is_read(
    tmp_path: Path,
) -> None:
    key_file = tmp_path / "key"
    key_file.write_text(CANARY)
    key_file.chmod(0o600)
    args = _args("--merchant-id", "-5", "--secret-key-file", str(key_file))
    with pytest.raises(UsageError) as info:
        credentials_from(args, {})
    assert "merchant_id" in str(info.value)
    assert leaks(info.value) == []


def test_the_credentials_read_from_a_file_or_the_environment_are_the_key() -> None:
    env = {"FREEDOMPAY_MERCHANT_ID": "1234", "FREEDOMPAY_SECRET_KEY": f"  {CANARY}\n"}
    credentials = credentials_from(_args(), env)
    assert (credentials.merchant_id, credentials.secret_key) == (1234, CANARY)
    assert CANARY not in repr(credentials)
