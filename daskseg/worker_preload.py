"""A Dask worker preload for the LocalClusters daskseg starts: Ctrl-C is the client's to handle.

A terminal sends Ctrl-C (SIGINT) to the whole foreground process group, so the worker processes of
a ``LocalCluster`` get it too and each died printing a ``KeyboardInterrupt`` traceback under the
command's own clean message. With this preload they ignore SIGINT; the client, which handles
Ctrl-C, closes its cluster and so ends them. Workers of a cluster started by other means (a
``--scheduler``) are not touched.
"""

from __future__ import annotations

import logging
import signal
import threading
from typing import Any

logger = logging.getLogger(__name__)


def dask_setup(worker: Any) -> None:
    """Ignore SIGINT in this worker process (called by distributed when the worker starts)."""
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        logger.debug("worker %s ignores SIGINT; its LocalCluster's client handles Ctrl-C", getattr(worker, "name", ""))
