"""``--shard K/N`` and the journals of several shards read as one.

The end-to-end test runs four shard processes at once against one served sandbox with
faults, SIGKILLs one mid-run and reruns it, and checks the union against the ledger.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import signal
from pathlib import Path

import pytest

from freedompay_async.cli._shard import Shard, shard_of, shard_spec
from freedompay_async.sandbox import Fault, FaultPlan, SandboxGateway

from ..helpers import MERCHANT, SECRET
from .test_cli import (
    Run,
    cancel_args,
    cli,
    finish,
    read_journal,
    read_journal_prefix,
    start,
    wait_for_lines,
    write_ids,
)

#: Pinned shards of a few ids: the split must never change between versions, machines
#: or Python builds (the rule is written out in docs/fleet.md).
PINNED = {1: (1, 3), 2: (2, 6), 700000042: (0, 2), 123456789012: (2, 4)}


def test_the_shard_of_an_id_is_pinned_and_independent_of_python_hash() -> None:
    for pid, (of_4, of_10) in PINNED.items():
        digest = hashlib.sha256(str(pid).encode()).digest()
        assert int.from_bytes(digest[:8], "big") % 4 == of_4 == shard_of(pid, 4)
        assert shard_of(pid, 10) == of_10


def test_shards_partition_the_ids_and_stay_balanced() -> None:
    ids = list(range(5000, 25000))
    parts = [Shard(k, 4).keep(ids) for k in range(4)]
    assert sorted(pid for part in parts for pid in part) == ids
    assert all(4500 < len(part) < 5500 for part in parts)
    assert all(Shard(2, 4).holds(pid) for pid in parts[2])


@pytest.mark.parametrize("text", ["4/4", "-1/4", "1/0", "1", "a/b", "1/2/3", "²/4"])
def test_a_bad_shard_spec_is_refused(text: str) -> None:
    import argparse

    with pytest.raises(argparse.ArgumentTypeError):
        shard_spec(text)


async def test_a_shard_keeps_its_ids_and_its_journal_refuses_another_shard(
    served: tuple[SandboxGateway, str], tmp_path: Path
) -> None:
    gw, url = served
    pids = list(range(901, 941))
    ids = write_ids(tmp_path / "ids", pids)
    journal = tmp_path / "j1.jsonl"
    run = await cli(*cancel_args(url, journal, "-i", str(ids), "--shard", "1/4"))
    assert run.rc == 0, run.err
    mine = Shard(1, 4).keep(pids)
    assert set(read_journal(journal)) == set(mine)
    assert f"input       {len(mine)} unique ids in shard 1/4" in run.out
    assert all(gw.ledger[pid].state == ("cancelled" if pid in mine else "held") for pid in pids)
    other = await cli(*cancel_args(url, journal, "-i", str(ids), "--shard", "2/4"))
    assert other.rc == 2 and "shard '1/4' (journal) vs '2/4' (this run)" in other.err
    whole = await cli(*cancel_args(url, journal, "-i", str(ids)))
    assert whole.rc == 2  # a shard's journal does not serve the whole input


async def test_a_shard_with_no_ids_of_its_own_is_done_not_an_error(
    served: tuple[SandboxGateway, str], tmp_path: Path
) -> None:
    _, url = served
    pid = 950
    other = (shard_of(pid, 4) + 1) % 4
    journal = tmp_path / "j.jsonl"
    run = await cli(*cancel_args(url, journal, "--shard", f"{other}/4"), stdin=f"{pid}\n".encode())
    assert run.rc == 0, run.err
    assert "1 id of other shards left to them" in run.out
    summary = await cli("journal", "summary", str(journal))
    assert summary.rc == 0 and json.loads(summary.out)["header"]["shard"] == f"{other}/4"


async def test_journal_summary_refuses_journals_of_different_gateways(
    served: tuple[SandboxGateway, str], tmp_path: Path
) -> None:
    _, url = served
    first, second = tmp_path / "a.jsonl", tmp_path / "b.jsonl"
    assert (await cli(*cancel_args(url, first), stdin=b"961\n")).rc == 0
    second.write_text(
        first.read_text().replace(url.split("//")[1], "other.example:8443"), encoding="utf-8"
    )
    run = await cli("journal", "summary", str(first), str(second))
    assert run.rc == 2 and "cannot be read as one" in run.err


def _fleet_gateway() -> SandboxGateway:
    kinds = (Fault.RESET_BEFORE, Fault.RESET_AFTER, Fault.HTTP_503, Fault.ERROR_9999,
             Fault.GARBAGE, Fault.FORGED, Fault.SLOW)  # fmt: skip
    plan = FaultPlan(rate=0.06, kinds=kinds, seed=11, slow_delay=0.5)
    return SandboxGateway(MERCHANT, SECRET, faults=plan)


async def _until_done(url: str, journal: Path, ids: Path, shard: str) -> Run:
    """Rerun a shard while it says "rerun" (exit 3), as a scheduler's retry would."""
    for _ in range(4):
        run = await cli(*_shard_args(url, journal, ids, shard))
        if run.rc != 3:
            return run
    return run


def _shard_args(url: str, journal: Path, ids: Path, shard: str, *more: str) -> list[str]:
    return cancel_args(
        url, journal, "-i", str(ids), "--shard", shard, "-c", "8", "--attempt-timeout", "0.3",
        "--payment-interval", "0.05", *more,
    )  # fmt: skip


async def test_four_shards_in_parallel_one_killed_and_rerun_settle_the_union_once(
    tmp_path: Path,
) -> None:
    gw = _fleet_gateway()
    pids = list(range(3_000_001, 3_000_401))
    gw.add_payments(pids)
    ids = write_ids(tmp_path / "ids.txt", pids)
    journals = [tmp_path / f"cancel-{k}.jsonl" for k in range(4)]
    async with gw.serve() as url:
        killed = await start(*_shard_args(url, journals[0], ids, "0/4", "--rate", "60"))
        others = [_until_done(url, journals[k], ids, f"{k}/4") for k in (1, 2, 3)]
        runs = asyncio.gather(*others)
        await wait_for_lines(journals[0], 21, killed)  # the header, then 20 outcomes
        killed.kill()
        assert (await finish(killed)).rc == -signal.SIGKILL
        before = read_journal_prefix(journals[0])
        settled_before = {pid for pid, history in before.items() if history[-1]["final"]}
        told_before = {pid: gw.ledger[pid].cancel_requests for pid in settled_before}
        rerun = await _until_done(url, journals[0], ids, "0/4")
        assert rerun.rc == 0, rerun.err
        assert [run.rc for run in await runs] == [0, 0, 0]
        merged = await cli("journal", "summary", *map(str, journals))
    assert merged.rc == 0, merged.err
    summary = json.loads(merged.out)
    assert summary["ids"] == summary["settled"] == len(pids) and summary["retry"] == 0
    assert summary["states"]["cancelled"] + summary["states"]["already_cancelled"] == len(pids)
    assert summary["shards"] == ["0/4", "1/4", "2/4", "3/4"] and summary["missing_shards"] == []
    assert summary["ids_in_several_journals"] == 0
    assert sum(part["ids"] for part in summary["per_journal"]) == len(pids)
    for pid in pids:
        entry = gw.ledger[pid]
        assert entry.state == "cancelled" and entry.cancellations == 1
        if shard_of(pid, 4) or pid in settled_before:
            # No cancel after an intact answer: the other shards never saw this id, and
            # the killed shard's rerun skipped what its journal had settled.
            assert entry.cancels_after_told == 0, pid
    for pid in settled_before:
        assert gw.ledger[pid].cancel_requests == told_before[pid]
