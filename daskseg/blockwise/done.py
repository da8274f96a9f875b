"""Durable records of finished blocks: one byte per block, and the layout they belong to.

A ``DoneRecord`` lives in a directory (for Zarr outputs, the output array's own directory, so it is
removed with the array): ``daskseg_done.json`` holds the block layout and its hash,
``daskseg_done.bin`` one byte per block (1 = written). The bytes are a memory map, so a byte set is
in the operating system's page cache at once and survives the death of the process that set it;
``flush`` (done regularly and on close) pushes it to disk.

The record is only ever written by the client, and only after the worker reported that the block's
data was fully written; a crash or Ctrl-C can lose a "done" mark (the block is then done again), but
never mark a block done whose data was not written. zarr 3 does not store chunks that equal the fill
value, so the presence of a chunk is no proof of a finished block: this record is.

A record made for one layout refuses to serve another (``LayoutMismatchError``, naming what changed):
blocks of two layouts must not be silently mixed. The byte file is locked (``flock``) while open, so
two runs cannot share one record.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from ..errors import BlockwiseError, LayoutMismatchError, RecordLockedError
from .grid import layout_hash

logger = logging.getLogger(__name__)

RECORD_JSON = "daskseg_done.json"
RECORD_BIN = "daskseg_done.bin"
FORMAT_VERSION = 1


def _diff(old, new, prefix: str = "") -> list[str]:
    if isinstance(old, dict) and isinstance(new, dict):
        out = []
        for k in sorted(set(old) | set(new)):
            out += _diff(old.get(k), new.get(k), f"{prefix}.{k}" if prefix else str(k))
        return out
    return [] if old == new else [f"{prefix}: was {old!r}, now {new!r}"]


def _write_json_atomic(path: Path, content: dict) -> None:
    tmp = path.with_name(path.name + f".{os.getpid()}.tmp")
    with open(tmp, "w") as f:
        json.dump(content, f, indent=1, sort_keys=True)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


class DoneRecord:
    """One byte per block of a layout, recording which blocks were fully written.

    Args:
        directory (str | Path): where the record lives (created if missing).
        layout (dict): JSON-able description of the blocks (``BlockGrid.layout()`` plus whatever else
            decides the output: the processor, the output array). Its hash identifies the record.
        num_blocks (int): the number of blocks of the layout.
        resume (bool): keep the marks of an existing record of the same layout. If False, an
            existing record (of any layout) is reset to "nothing done".

    Raises:
        LayoutMismatchError: ``resume`` is set and an existing record belongs to another layout.
        RecordLockedError: another process has the record open.

    Use as a context manager, or call ``close()``.
    """

    def __init__(self, directory: str | os.PathLike, layout: dict, num_blocks: int, resume: bool = True):
        self.directory = Path(directory)
        self.layout = layout
        self.num_blocks = int(num_blocks)
        self.hash = layout_hash({"layout": layout, "num_blocks": self.num_blocks})
        self.json_path = self.directory / RECORD_JSON
        self.bin_path = self.directory / RECORD_BIN
        self._fd: int | None = None
        self._map: np.memmap | None = None
        self._open(resume)

    # --- opening -------------------------------------------------------------------------------
    def _open(self, resume: bool) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.bin_path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise RecordLockedError(
                f"the done record {self.bin_path} is in use by another process: is another run writing to this "
                f"output? Wait for it to finish (or stop it) before starting this one."
            ) from None
        self._fd = fd
        try:
            existing = self._read_json()
            if existing is not None and existing.get("hash") == self.hash and resume and self._size_ok():
                self.resumed = True
            else:
                if existing is not None and resume and existing.get("hash") != self.hash:
                    changes = _diff(
                        {"layout": existing.get("layout"), "num_blocks": existing.get("num_blocks")},
                        {"layout": self.layout, "num_blocks": self.num_blocks},
                    )
                    raise LayoutMismatchError(
                        f"the output was started with a different block layout (record {self.json_path}): "
                        + "; ".join(changes or ["layout hash differs"])
                        + ". Resuming would mix blocks of two layouts. Start over without resume "
                        "(--no-resume) to recompute every block, or write to a new output."
                    )
                self._reset()
                self.resumed = False
            self._map = np.memmap(self.bin_path, dtype=np.uint8, mode="r+", shape=(max(self.num_blocks, 1),))
        except BaseException:
            self.close()
            raise

    def _read_json(self) -> dict | None:
        if not self.json_path.exists():
            return None
        try:
            with open(self.json_path) as f:
                return json.load(f)
        except (OSError, ValueError) as e:
            raise BlockwiseError(
                f"the done record {self.json_path} is unreadable ({e}); remove it (and {self.bin_path}) and run "
                f"without resume"
            ) from e

    def _open_fd(self) -> int:
        if self._fd is None:
            raise BlockwiseError(f"the done record {self.bin_path} is closed")
        return self._fd

    def _size_ok(self) -> bool:
        return os.fstat(self._open_fd()).st_size == max(self.num_blocks, 1)

    def _reset(self) -> None:
        # invalidate first: a crash during the reset leaves no record rather than a wrong one
        self.json_path.unlink(missing_ok=True)
        fd = self._open_fd()
        os.ftruncate(fd, 0)
        os.ftruncate(fd, max(self.num_blocks, 1))
        os.fsync(fd)
        _write_json_atomic(
            self.json_path,
            {"version": FORMAT_VERSION, "hash": self.hash, "num_blocks": self.num_blocks, "layout": self.layout},
        )

    # --- marks ---------------------------------------------------------------------------------
    def _bytes(self) -> np.memmap:
        if self._map is None:
            raise BlockwiseError(f"the done record {self.bin_path} is closed")
        return self._map

    def is_done(self, index: int) -> bool:
        return bool(self._bytes()[index])

    def mark_done(self, index: int) -> None:
        """Record block ``index`` as fully written (call only after its data was written)."""
        self._bytes()[index] = 1

    def count_done(self) -> int:
        m = self._bytes()
        chunk = 1 << 22
        return int(sum(int(np.count_nonzero(m[i : i + chunk])) for i in range(0, self.num_blocks, chunk)))

    def pending(self, chunk: int = 1 << 16) -> Iterator[int]:
        """The indices of blocks not done yet, in order, reading the record ``chunk`` bytes at a time."""
        m = self._bytes()
        for start in range(0, self.num_blocks, chunk):
            part = np.array(m[start : min(start + chunk, self.num_blocks)])
            for i in np.flatnonzero(part == 0):
                yield start + int(i)

    def flush(self) -> None:
        if self._map is not None:
            self._map.flush()

    def close(self) -> None:
        if self._map is not None:
            self._map.flush()
            self._map = None  # the mapping closes with its last reference
        if self._fd is not None:
            os.close(self._fd)  # releases the flock
            self._fd = None

    def __enter__(self) -> DoneRecord:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"DoneRecord({self.directory}, {self.num_blocks} blocks)"


@contextlib.contextmanager
def lock_existing_record(directory: str | os.PathLike) -> Iterator[None]:
    """Hold the lock of an existing done record in ``directory`` (if any) for the ``with`` block.

    Taken before an output is reused, deleted or replaced, so that a run cannot touch an output
    another run is writing.

    Raises:
        RecordLockedError: another process holds the record open.
    """
    path = Path(directory) / RECORD_BIN
    try:
        fd = os.open(path, os.O_RDWR)
    except (FileNotFoundError, NotADirectoryError):  # no record yet: nothing to lock
        yield
        return
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise RecordLockedError(
                f"the done record {path} is in use by another process: is another run writing to this "
                f"output? Wait for it to finish (or stop it) before starting this one; nothing was changed."
            ) from None
        yield
    finally:
        os.close(fd)


def read_done(directory: str | os.PathLike) -> tuple[dict, np.ndarray] | None:
    """The layout and the done bytes of the record in ``directory`` (None if there is none), read-only."""
    directory = Path(directory)
    if not (directory / RECORD_JSON).exists():
        return None
    with open(directory / RECORD_JSON) as f:
        meta = json.load(f)
    marks = np.fromfile(directory / RECORD_BIN, dtype=np.uint8)[: meta["num_blocks"]]
    return meta, marks
