"""The batch command line at scale: a fresh run of N ids, and a resume over a big journal.

    python -m benchmarks.scale                    # fresh 10,000,000 ids, resume 10,000,000
    python -m benchmarks.scale --quick            # 5,000 and 200,000: seconds (CI)
    python -m benchmarks.scale --fresh 1000000 --resume 0 --check

Both measure ``python -m freedompay_async cancel`` itself, in a child process, with its
peak RSS taken from ``wait4`` (``ru_maxrss`` of that child alone):

- **fresh**: N distinct ids (ascending with small random gaps, like one merchant's
  payment ids) in a file, cancelled against the canned server (``canned_server.py``,
  its own process; each reply is a real signed one the client verifies). Reports peak
  RSS, wall time, ids/s and the journal's bytes per record. ``--max-seconds`` stops a
  run that would take too long with SIGINT (the CLI flushes its journal); the
  figures then cover the ids done, and the peak RSS still counts because the input's
  dedup structure (the only part that grows with N) is built before the first cancel.
- **resume**: a synthetic journal of M settled records, written in the compact
  format exactly as ``Journal.append`` writes it (checked on a sample), and an input
  file of the same M ids: the rerun sends nothing. Reports the rerun's peak RSS and
  wall time, and separately the time to read the journal alone (``read_state`` in a
  child: records/s and its own peak RSS).

``--check`` exits 1 unless: peak RSS <= 150 MB (fresh run and resume), journal <= 100
bytes per record, resume <= 10 s. Timings on a shared machine are noisy; the RSS and
size figures are not.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable, Iterator
from pathlib import Path

from .canned_server import DEFAULT_MERCHANT_ID, DEFAULT_SECRET, CannedServer

TARGET_RSS_MB = 150.0
TARGET_BYTES_PER_RECORD = 100.0
TARGET_RESUME_SECONDS = 10.0
FIRST_ID = 3_000_000_000
RUN_ID = "5ca1eb3c4a11"
_ROOT = Path(__file__).resolve().parent.parent


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FREEDOMPAY_")}
    env["FREEDOMPAY_MERCHANT_ID"] = str(DEFAULT_MERCHANT_ID)
    env["FREEDOMPAY_SECRET_KEY"] = DEFAULT_SECRET
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(_ROOT), env.get("PYTHONPATH")]))
    return env


def _ids(n: int, seed: int = 7) -> Iterator[list[int]]:
    """n ascending ids with gaps of 1..4 (about 2.5 apart: one merchant's payments), in
    lists of at most 100,000 (this process stays small)."""
    rnd = random.Random(seed)
    pid = FIRST_ID
    for start in range(0, n, 100_000):
        chunk = []
        for gap in rnd.choices((1, 2, 3, 4), k=min(100_000, n - start)):
            pid += gap
            chunk.append(pid)
        yield chunk


def write_ids(path: Path, ids: Iterable[list[int]]) -> None:
    with path.open("w") as stream:
        for chunk in ids:
            stream.write("".join(f"{pid}\n" for pid in chunk))


def write_journal(path: Path, ids: Iterable[list[int]], base_url: str) -> None:
    """A journal of one settled compact record per id, as ``Journal.append`` writes it."""
    from freedompay_async.cli._journal import JournalHeader
    from freedompay_async.cli._records import encode_record

    def verbose(pid: int, ms: int) -> dict[str, object]:
        return {
            "payment_id": pid,
            "state": "cancelled",
            "final": True,
            "attempts": 1,
            "elapsed": 0.0123,
            "revoke_id": pid + 1_000_000_000,
            "revoke_status": "success",
            "confirmed_on_retry": False,
            "error_type": None,
            "error_code": None,
            "error_description": None,
            "http_status": None,
            "time": _iso(ms),
            "run": RUN_ID,
        }

    t0 = 1_796_191_200_000  # 2026-12-02T06:00:00.000Z in milliseconds
    template = '{{"p":{0},"s":"c","e":0.0123,"r":{1},"t":{2},"u":"' + RUN_ID + '"}}\n'
    header = JournalHeader("cancel", base_url, DEFAULT_MERCHANT_ID, _iso(t0))
    with path.open("w") as stream:
        stream.write(json.dumps(header.as_record(), separators=(",", ":")) + "\n")
        start = 0
        for chunk in ids:
            for pid, ms in ((chunk[0], t0 + start // 4), (chunk[-1], t0 + 7)):
                # The template must be exactly what the journal writer makes of a record.
                line = json.dumps(encode_record(verbose(pid, ms)), separators=(",", ":"))
                if line + "\n" != template.format(pid, pid + 1_000_000_000, ms):
                    raise RuntimeError(f"synthetic line differs from the writer's: {line!r}")
            stream.write(
                "".join(
                    template.format(pid, pid + 1_000_000_000, t0 + (start + i) // 4)
                    for i, pid in enumerate(chunk)
                )
            )
            start += len(chunk)


def _iso(ms: int) -> str:
    from freedompay_async.cli._records import decode_record

    time_text = decode_record({"p": 1, "s": "c", "t": ms})["time"]
    assert isinstance(time_text, str)
    return time_text


# Runs the CLI as ``python -m freedompay_async`` would, then writes the process's own
# peak RSS (VmHWM: its address space only; ``ru_maxrss`` of a child would also count
# the parent's image it was forked from) to the file named by argv[1].
_MEASURED = """\
import atexit, runpy, sys
out = sys.argv.pop(1)
def peak():
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            open(out, "w").write(line.split()[1])
atexit.register(peak)
sys.argv[0] = "freedompay_async"
runpy.run_module("freedompay_async", run_name="__main__", alter_sys=True)
"""


def _peak_mb(path: Path, fallback_kb: int) -> float:
    try:
        return int(path.read_text()) / 1024
    except (OSError, ValueError):  # not Linux: ru_maxrss (may include the parent's image)
        return fallback_kb / 1024


def run_cli(args: list[str], max_seconds: float | None = None) -> dict[str, float]:
    """Run the CLI; its wall time, peak RSS (MB) and exit code."""
    started = time.perf_counter()
    hwm = Path(tempfile.mktemp(prefix="scale-hwm-"))
    proc = subprocess.Popen(
        [sys.executable, "-c", _MEASURED, str(hwm), *args],
        cwd=_ROOT,
        env=_env(),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    interrupted = False
    if max_seconds is not None:
        try:
            proc.wait(timeout=max_seconds)
        except subprocess.TimeoutExpired:
            proc.send_signal(signal.SIGINT)
            interrupted = True
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    wall = time.perf_counter() - started
    out = proc.stdout.read().decode() if proc.stdout else ""
    err = proc.stderr.read().decode() if proc.stderr else ""
    if proc.stdout:
        proc.stdout.close()
    if proc.stderr:
        proc.stderr.close()
    if proc.returncode not in (0, 130) or (proc.returncode == 130 and not interrupted):
        raise RuntimeError(f"cancel exited {proc.returncode}:\n{out}\n{err[-2000:]}")
    peak = _peak_mb(hwm, usage.ru_maxrss)
    hwm.unlink(missing_ok=True)
    cpu = usage.ru_utime + usage.ru_stime
    return {"wall": wall, "cpu": cpu, "peak_rss_mb": peak, "rc": proc.returncode}


def _summary(path: Path) -> dict[str, object]:
    data: dict[str, object] = json.loads(path.read_text())
    return data


def fresh(n: int, workdir: Path, concurrency: int, max_seconds: float | None) -> dict[str, float]:
    source, journal, summary = workdir / "fresh.txt", workdir / "fresh.jsonl", workdir / "f.json"
    write_ids(source, _ids(n))
    with CannedServer(cache=200_000) as server:
        result = run_cli(
            [
                "cancel",
                "--base-url",
                server.url,
                "--input",
                str(source),
                "--journal",
                str(journal),
                "--progress",
                "none",
                "--concurrency",
                str(concurrency),
                "--summary-json",
                str(summary),
            ],
            max_seconds,
        )
    report = _summary(summary)
    sent = int(str(report["sent"]))
    data = journal.read_bytes()
    lines = data.count(b"\n") - data.startswith(b'{"journal"')  # records, not the header
    states = report["states"]
    assert isinstance(states, dict)
    if result["rc"] == 0 and states.get("cancelled") != n:
        raise RuntimeError(f"fresh run: {states} for {n} ids")
    result.update(
        n=n,
        sent=sent,
        ids_per_s=sent / result["wall"],
        bytes_per_record=journal.stat().st_size / max(1, lines),
        complete=float(result["rc"] == 0),
    )
    return result


def resume(m: int, workdir: Path) -> dict[str, float]:
    source, journal = workdir / "resume.txt", workdir / "resume.jsonl"
    base_url = "http://127.0.0.1:9"  # nothing is sent: every id is settled
    write_ids(source, _ids(m, seed=11))
    write_journal(journal, _ids(m, seed=11), base_url)
    read = _read_alone(journal)
    args = ["cancel", "--base-url", base_url, "--input", str(source), "--journal", str(journal)]
    result = run_cli([*args, "--progress", "none", "--summary-json", str(workdir / "r.json")])
    report = _summary(workdir / "r.json")
    if report["skipped_settled"] != m or report["sent"] != 0:
        raise RuntimeError(f"resume skipped {report['skipped_settled']} of {m}")
    result.update(
        m=m,
        bytes_per_record=journal.stat().st_size / m,
        read_seconds=read["seconds"],
        read_cpu=read["cpu"],
        read_records_per_s=m / read["seconds"],
        read_peak_rss_mb=read["peak_rss_mb"],
    )
    return result


def _read_alone(journal: Path) -> dict[str, float]:
    code = (
        "import json, sys, time\n"
        "from freedompay_async.cli._journal import read_state\n"
        "t, c = time.perf_counter(), time.process_time()\n"
        "with open(sys.argv[1], 'rb') as f:\n"
        "    state, _ = read_state(f)\n"
        "s, c = time.perf_counter() - t, time.process_time() - c\n"
        "hwm = [x.split()[1] for x in open('/proc/self/status') if x.startswith('VmHWM')]\n"
        "print(json.dumps({'seconds': s, 'cpu': c, 'records': state.records,"
        " 'settled': len(state.settled), 'peak_rss_mb': int(hwm[0]) / 1024}))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code, str(journal)],
        cwd=_ROOT,
        env=_env(),
        stdout=subprocess.PIPE,
        check=True,
    ).stdout
    result: dict[str, float] = json.loads(out)
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fresh", type=int, default=10_000_000, help="ids in the fresh run")
    parser.add_argument("--resume", type=int, default=10_000_000, help="journal records")
    parser.add_argument("--quick", action="store_true", help="5,000 and 200,000 (seconds)")
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--max-seconds", type=float, default=None, help="cut the fresh run")
    parser.add_argument("--dir", default=None, help="work directory (default: a temporary one)")
    parser.add_argument("--check", action="store_true", help="exit 1 when a target is missed")
    args = parser.parse_args(argv)
    if args.quick:
        args.fresh, args.resume = 5_000, 200_000
    ok = True
    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        workdir = Path(tmp)
        if args.fresh > 0:
            f = fresh(args.fresh, workdir, args.concurrency, args.max_seconds)
            done = "" if f["complete"] else f" (stopped after {f['sent']:,.0f} ids)"
            print(
                f"fresh run, {args.fresh:,} ids{done}: peak RSS {f['peak_rss_mb']:.1f} MB, "
                f"{f['wall']:.1f} s ({f['cpu']:.1f} s CPU), {f['ids_per_s']:,.0f} ids/s, journal "
                f"{f['bytes_per_record']:.1f} bytes/record",
                flush=True,
            )
            ok &= f["peak_rss_mb"] <= TARGET_RSS_MB
            ok &= f["bytes_per_record"] <= TARGET_BYTES_PER_RECORD
        if args.resume > 0:
            r = resume(args.resume, workdir)
            print(
                f"resume, {args.resume:,}-record journal ({r['bytes_per_record']:.1f} bytes/"
                f"record) and the same input: peak RSS {r['peak_rss_mb']:.1f} MB, "
                f"{r['wall']:.1f} s ({r['cpu']:.1f} s CPU); reading the journal alone "
                f"{r['read_seconds']:.1f} s ({r['read_cpu']:.1f} s CPU, "
                f"{r['read_records_per_s']:,.0f} records/s, peak RSS "
                f"{r['read_peak_rss_mb']:.1f} MB)",
                flush=True,
            )
            ok &= r["peak_rss_mb"] <= TARGET_RSS_MB
            ok &= r["bytes_per_record"] <= TARGET_BYTES_PER_RECORD
            ok &= r["wall"] <= TARGET_RESUME_SECONDS
    print(
        f"targets: peak RSS <= {TARGET_RSS_MB:.0f} MB, <= {TARGET_BYTES_PER_RECORD:.0f} "
        f"bytes/record, resume <= {TARGET_RESUME_SECONDS:.0f} s: {'met' if ok else 'NOT met'}"
    )
    return 1 if args.check and not ok else 0


if __name__ == "__main__":
    sys.exit(main())
