"""DoneRecord: one durable byte per block, tied to its layout, usable by one run at a time."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import numpy as np
import pytest

from daskseg.blockwise import DoneRecord, LayoutMismatchError, RecordLockedError
from daskseg.blockwise.done import read_done

LAYOUT = {"grid": {"block_shape": [4, 4], "output_roi": [[0, 0], [16, 16]]}, "processor": {"name": "mean3"}}


def test_marks_survive_reopening_with_resume(tmp_path):
    with DoneRecord(tmp_path, LAYOUT, 10) as record:
        assert not record.resumed
        assert list(record.pending()) == list(range(10))
        for i in (0, 3, 9):
            record.mark_done(i)
        assert record.count_done() == 3
    with DoneRecord(tmp_path, LAYOUT, 10, resume=True) as record:
        assert record.resumed
        assert record.is_done(3) and not record.is_done(4)
        assert list(record.pending(chunk=4)) == [1, 2, 4, 5, 6, 7, 8]


def test_without_resume_everything_is_pending_again(tmp_path):
    with DoneRecord(tmp_path, LAYOUT, 5) as record:
        record.mark_done(2)
    with DoneRecord(tmp_path, LAYOUT, 5, resume=False) as record:
        assert record.count_done() == 0
    meta, marks = read_done(tmp_path)
    assert meta["num_blocks"] == 5 and not marks.any()


def test_another_layout_is_refused_naming_the_change(tmp_path):
    with DoneRecord(tmp_path, LAYOUT, 16) as record:
        record.mark_done(1)
    changed = {**LAYOUT, "grid": {**LAYOUT["grid"], "block_shape": [8, 8]}}
    with pytest.raises(LayoutMismatchError, match=r"grid\.block_shape: was \[4, 4\], now \[8, 8\]"):
        DoneRecord(tmp_path, changed, 4, resume=True)
    # the refused record is untouched; starting over is explicit
    with DoneRecord(tmp_path, LAYOUT, 16) as record:
        assert record.is_done(1)
    with DoneRecord(tmp_path, changed, 4, resume=False) as record:
        assert record.count_done() == 0 and record.num_blocks == 4


def test_a_second_run_on_the_same_record_is_refused(tmp_path):
    with DoneRecord(tmp_path, LAYOUT, 3):
        with pytest.raises(RecordLockedError, match="another process"):
            DoneRecord(tmp_path, LAYOUT, 3)
    DoneRecord(tmp_path, LAYOUT, 3).close()  # released on close


def test_a_mark_survives_the_death_of_the_process_that_set_it(tmp_path):
    script = textwrap.dedent(
        f"""
        import os
        from daskseg.blockwise import DoneRecord
        record = DoneRecord({str(tmp_path)!r}, {LAYOUT!r}, 100)
        record.mark_done(42)
        record.mark_done(7)
        os._exit(3)  # no flush, no close
        """
    )
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert proc.returncode == 3, proc.stderr
    meta, marks = read_done(tmp_path)
    assert np.flatnonzero(marks).tolist() == [7, 42]
    with DoneRecord(tmp_path, LAYOUT, 100) as record:  # and the lock died with it
        assert record.count_done() == 2


def test_unreadable_record_names_the_file(tmp_path):
    DoneRecord(tmp_path, LAYOUT, 3).close()
    (tmp_path / "daskseg_done.json").write_text("{not json")
    with pytest.raises(Exception, match="daskseg_done.json"):
        DoneRecord(tmp_path, LAYOUT, 3)
