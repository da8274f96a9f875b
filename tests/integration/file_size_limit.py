"""A Dask worker preload that makes the OS refuse writes past ``DASKSEG_TEST_FSIZE_LIMIT`` bytes a file.

``RLIMIT_FSIZE`` is enforced by the kernel on the worker process only (the client still writes the
output's metadata): a chunk write that would grow a file past the limit fails with ``EFBIG``, as a
write to a full disk fails with ``ENOSPC``. Python ignores ``SIGXFSZ``, so the write raises an
``OSError`` instead of killing the worker.
"""

from __future__ import annotations

import os
import resource


def dask_setup(worker) -> None:
    limit = int(os.environ["DASKSEG_TEST_FSIZE_LIMIT"])
    resource.setrlimit(resource.RLIMIT_FSIZE, (limit, resource.getrlimit(resource.RLIMIT_FSIZE)[1]))
