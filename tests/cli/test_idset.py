"""The compact id structures against plain Python sets and dicts (hypothesis properties)."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from freedompay_async.cli import _idset
from freedompay_async.cli._idset import IdMap, IdSet

# Ids clustered in a few 65,536-wide buckets (so buckets fill, fold and merge), plus
# some anywhere up to the largest payment id (20 digits).
_CLUSTERED = st.integers(1, 3 * 65_536) | st.integers(10**19 - 200_000, 10**19)
IDS = _CLUSTERED | st.integers(1, 10**20 - 1)
STICKY = 8


def _reference(pairs: list[tuple[int, int]], sticky: int) -> dict[int, int]:
    """The journal's rule, one record at a time: a sticky code is replaced only by
    another sticky code."""
    ref: dict[int, int] = {}
    for pid, code in pairs:
        old = ref.get(pid)
        if old is None or code & sticky or not old & sticky:
            ref[pid] = code
    return ref


@settings(max_examples=150, deadline=None)
@given(
    st.lists(st.tuples(IDS, st.integers(1, 15)), max_size=600),
    st.integers(1, 300),
    st.sampled_from([0, STICKY]),
    st.integers(1, 50),
)
def test_idmap_matches_a_dict_with_the_sticky_rule(
    pairs: list[tuple[int, int]], buffer: int, sticky: int, split: int
) -> None:
    ref = _reference(pairs, sticky)
    compact = IdMap(sticky=sticky, buffer=buffer)
    # Some single adds, some bulk updates, interleaved with lookups that force folds.
    for start in range(0, len(pairs), split):
        part = pairs[start : start + split]
        if start % 2:
            compact.update([pid for pid, _ in part], bytes(code for _, code in part))
        else:
            for pid, code in part:
                compact.add(pid, code)
        if start % 3 == 0 and part:
            compact.get(part[0][0])
    assert len(compact) == len(ref)
    assert dict(compact.items()) == ref
    assert list(compact.items()) == sorted(ref.items())
    for pid, code in ref.items():
        assert compact.get(pid) == code
        assert pid in compact
    assert compact.get(10**20 + 5) == 0
    assert compact.get(0) == 0
    counted: dict[int, int] = {}
    for code in ref.values():
        counted[code] = counted.get(code, 0) + 1
    assert dict(compact.counts()) == counted


@settings(max_examples=150, deadline=None)
@given(st.lists(IDS, max_size=800), st.integers(1, 200))
def test_idset_matches_a_python_set(ids: list[int], buffer: int) -> None:
    compact = IdSet(buffer=buffer)
    reference: set[int] = set()
    for pid in ids:
        assert compact.add(pid) == (pid not in reference)
        reference.add(pid)
        assert pid in compact
        assert len(compact) == len(reference)
    assert sorted(compact) == sorted(reference)
    assert (max(reference, default=0) + 1) not in compact


@settings(max_examples=100, deadline=None)
@given(
    st.dictionaries(IDS, st.integers(1, 15), max_size=300),
    st.dictionaries(IDS, st.integers(1, 15), max_size=300),
)
def test_relabel_joins_two_maps_and_swap_marks_once(
    mine: dict[int, int], theirs: dict[int, int]
) -> None:
    ours, other = IdMap(buffer=64), IdMap(buffer=64)
    ours.update(list(mine), bytes(mine.values()))
    other.update(list(theirs), bytes(theirs.values()))
    table = bytes(2 if code & STICKY else 1 for code in range(256))
    counts = ours.relabel(other, table)
    expected: dict[int, int] = {}
    for pid in mine:
        code = theirs.get(pid, 0)
        expected[code] = expected.get(code, 0) + 1
    assert dict(counts) == expected
    assert dict(ours.items()) == {pid: table[theirs.get(pid, 0)] for pid in mine}
    for pid in mine:
        wanted = ours.get(pid) == 1
        assert ours.swap(pid, 1, 3) is wanted
        assert ours.swap(pid, 1, 3) is False  # already swapped
    assert ours.swap(10**20 + 1, 1, 3) is False


def test_ten_thousand_clustered_ids_cost_about_three_bytes_each() -> None:
    ids = list(range(5_000_000, 5_030_000, 3))
    compact = IdMap()
    compact.update(ids, b"\1" * len(ids))
    assert len(compact) == len(ids)
    # 2 bytes of low bits and 1 code byte per id; nothing per id in Python objects.
    assert compact.nbytes() == 3 * len(ids)
    assert _idset._SHIFT == 16
