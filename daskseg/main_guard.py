"""Refuse to start worker processes from a script's module level without ``if __name__ == "__main__":``.

Dask starts a ``LocalCluster``'s workers by spawning fresh Python processes, and each of them
imports the script that started it (as ``__mp_main__``). A script that builds a ``PreCache``
pipeline (or anything that starts a ``LocalCluster``) at module level, outside that guard, would
start the cluster again in every worker: Dask then reports only ``Nanny failed to start`` and
hundreds of lines of tracebacks. This module finds that case before any process starts and says so.
"""

from __future__ import annotations

import ast
import logging
import multiprocessing
import os
import sys
from types import FrameType

from .errors import ClusterError

logger = logging.getLogger(__name__)

HINT = (
    'put the code that builds and runs the pipeline under `if __name__ == "__main__":` (e.g. in a main() '
    "called there): Dask's worker processes import the script again, and would start the cluster again"
)


def _is_main_guard(node: ast.stmt) -> bool:
    """Whether ``node`` is ``if __name__ == "__main__":`` (either way round)."""
    if not isinstance(node, ast.If) or not isinstance(node.test, ast.Compare) or len(node.test.ops) != 1:
        return False
    sides = [node.test.left, *node.test.comparators]
    names = [s for s in sides if isinstance(s, ast.Name) and s.id == "__name__"]
    consts = [s for s in sides if isinstance(s, ast.Constant) and s.value == "__main__"]
    return isinstance(node.test.ops[0], ast.Eq) and len(names) == 1 and len(consts) == 1


def guarded_lines(source: str) -> list[tuple[int, int]]:
    """The line ranges (first, last) of the bodies of the module-level ``__main__`` guards in ``source``."""
    tree = ast.parse(source)
    ranges = []
    for node in tree.body:
        if _is_main_guard(node) and isinstance(node, ast.If):
            ranges.append((node.body[0].lineno, node.end_lineno or node.body[-1].lineno))
    return ranges


def _main_module_frame(frame: FrameType | None, path: str) -> FrameType | None:
    """The frame running ``path`` (the ``__main__`` script) at module level, if on the stack."""
    while frame is not None:
        if frame.f_code.co_name == "<module>" and os.path.abspath(frame.f_code.co_filename) == path:
            return frame
        frame = frame.f_back
    return None


def check_main_guard(what: str = "Dask worker processes") -> None:
    """Raise a :class:`ClusterError` if this call starts ``what`` from the ``__main__`` script's
    module level outside ``if __name__ == "__main__":`` (or from a worker importing such a script).

    Interactive sessions, ``python -c`` and scripts that cannot be read or parsed pass.
    """
    if getattr(multiprocessing.current_process(), "_inheriting", False):
        raise ClusterError(f"a spawned worker process is importing the script that started it and would start {what} "
                           f"again: {HINT}")
    main = sys.modules.get("__main__")
    path = getattr(main, "__file__", None)
    if not path or not os.path.isfile(path):
        return
    path = os.path.abspath(path)
    frame = _main_module_frame(sys._getframe(1), path)
    if frame is None:
        return
    try:
        with open(path, encoding="utf-8") as f:
            ranges = guarded_lines(f.read())
    except (OSError, SyntaxError, UnicodeDecodeError, ValueError):
        logger.debug("check_main_guard: cannot read %s; not checked", path)
        return
    line = frame.f_lineno
    if not any(first <= line <= last for first, last in ranges):
        raise ClusterError(
            f"{path}, line {line}, starts {what} at module level, outside `if __name__ == \"__main__\":`: {HINT}"
        )
