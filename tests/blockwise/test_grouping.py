"""Blocks per task: fixed groups, and groups sized from measured seconds per block."""

from __future__ import annotations

import pickle

import pytest

from daskseg.blockwise import AdaptiveGroups, fixed_groups
from daskseg.blockwise.grouping import DEFAULT_MAX_BLOCKS, compact, max_blocks_per_task


def test_fixed_groups_cover_every_index_once_in_order():
    assert [list(g) for g in fixed_groups(range(7), 3)] == [[0, 1, 2], [3, 4, 5], [6]]
    assert [list(g) for g in fixed_groups([0, 2, 3, 4, 9], 3)] == [[0, 2, 3], [4, 9]]
    assert list(fixed_groups(range(0), 3)) == []
    with pytest.raises(ValueError, match="at least 1"):
        list(fixed_groups(range(3), 0))


def test_consecutive_groups_are_ranges_of_a_few_bytes():
    assert compact([4, 5, 6, 7]) == range(4, 8)
    assert compact([4, 6, 7]) == (4, 6, 7)
    assert compact([4, 5, 5, 6]) == (4, 5, 5, 6)
    assert compact([3]) == (3,)
    assert len(pickle.dumps(compact(list(range(10_000, 11_024))))) < 100


def test_adaptive_groups_start_with_one_block():
    groups = iter(AdaptiveGroups(range(10)))
    assert list(next(groups)) == [0] and list(next(groups)) == [1]


def test_adaptive_size_is_target_over_median_seconds_per_block():
    groups = AdaptiveGroups(range(100), target_seconds=1.0, max_blocks=64)
    groups.observe(1, 0.1)  # 0.1 s per block -> 10 blocks make a second
    assert groups.size == 10
    groups.observe(4, 0.2)  # 0.05 s per block; median of (0.1, 0.05) = 0.075 -> 13 blocks
    assert groups.size == 13
    groups.observe(1, 100.0)  # one outlier (a compile) does not move the median much: (0.05, 0.1, 100) -> 0.1
    assert groups.size == 10


def test_adaptive_size_stays_between_one_and_the_maximum():
    groups = AdaptiveGroups(range(100), target_seconds=0.5, max_blocks=16)
    groups.observe(1, 0.0)
    assert groups.size == 16
    slow = AdaptiveGroups(range(100), target_seconds=0.5, max_blocks=16)
    slow.observe(1, 30.0)
    assert slow.size == 1


def test_adaptive_groups_cover_every_index_once_while_the_size_changes():
    groups = AdaptiveGroups(range(1000), target_seconds=1.0, max_blocks=50)
    taken = []
    for n, group in enumerate(groups):
        taken.extend(group)
        groups.observe(len(group), len(group) * (0.2 if n < 5 else 0.01))
    assert taken == list(range(1000))
    assert groups.size == 50


def test_adaptive_groups_refuse_nonsense():
    with pytest.raises(ValueError, match="target_seconds"):
        AdaptiveGroups(range(3), target_seconds=0)
    with pytest.raises(ValueError, match="max_blocks"):
        AdaptiveGroups(range(3), max_blocks=0)


def test_largest_group_is_a_quarter_of_a_threads_share():
    assert max_blocks_per_task(800, 2) == 100  # 800 blocks / 2 threads / 4
    assert max_blocks_per_task(10**7, 2) == DEFAULT_MAX_BLOCKS
    assert max_blocks_per_task(3, 8) == 1
    assert max_blocks_per_task(100, 0) == 25  # no workers yet: counted as one thread
