"""A persistent cache of compiled XLA programs, shared by every daskseg process on a machine.

Compiling the CREMI U-Net's train step takes 10-25 s on a CPU and each prediction worker compiles
its forward once. With the cache, a resumed training run, a second ``daskseg predict`` and every
further worker on the same machine (or a shared file system) load the compiled program instead.
The directory is ``daskseg.jax.compilation-cache`` (default ``~/.cache/daskseg/jax``; empty turns
it off); a directory chosen for JAX itself (``JAX_COMPILATION_CACHE_DIR``) wins.
"""

from __future__ import annotations

import logging
import os

from .. import config

logger = logging.getLogger(__name__)

DEFAULT_DIRECTORY = "~/.cache/daskseg/jax"


def enable_compilation_cache() -> str | None:
    """Point JAX at the compilation cache (before its first compile); returns the directory in use.

    An unusable directory (read-only home, say) is logged and compiling goes on without a cache.
    """
    import jax

    current = jax.config.jax_compilation_cache_dir
    if current:
        return current
    setting = config.get("jax.compilation-cache", DEFAULT_DIRECTORY)
    if not setting:
        return None
    directory = os.path.abspath(os.path.expanduser(os.path.expandvars(str(setting))))
    try:
        os.makedirs(directory, exist_ok=True)
    except OSError as e:
        logger.warning("compiling without a persistent cache: cannot create %s (%s)", directory, e)
        return None
    jax.config.update("jax_compilation_cache_dir", directory)
    logger.debug("compiled XLA programs are cached in %s", directory)
    return directory
