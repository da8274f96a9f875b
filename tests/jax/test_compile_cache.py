"""The persistent compilation cache: a second process loads the compiled forward instead of compiling.

Each case runs in a fresh interpreter, because JAX reads its cache setting once, at the first compile.
"""

from __future__ import annotations

import os
import subprocess
import sys

FORWARD = """
import logging, sys
import numpy as np
from daskseg.jax.inference import load_predictor
from daskseg.jax.compile_cache import enable_compilation_cache
from daskseg.models.config import UNetConfig
logging.basicConfig(level=logging.WARNING)
net = UNetConfig(num_fmaps=4, fmap_inc_factor=2, downsample_factors=[(1, 2, 2)])
predictor = load_predictor(net)
predictor(np.zeros(sys.argv[1:4] and tuple(int(v) for v in sys.argv[1:4]), np.float32))
print("CACHE", enable_compilation_cache())
"""


def run_forward(setting: str, tmp_path, shape=(13, 44, 44)) -> subprocess.CompletedProcess:
    env = dict(os.environ, DASK_DASKSEG__JAX__COMPILATION_CACHE=setting, JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS="0")
    env.pop("JAX_COMPILATION_CACHE_DIR", None)
    return subprocess.run([sys.executable, "-c", FORWARD, *map(str, shape)], capture_output=True, text=True,
                          env=env, cwd=tmp_path, timeout=300)


def entries(directory) -> set[str]:
    return {name for name in os.listdir(directory) if not name.startswith(".")} if os.path.isdir(directory) else set()


def test_second_process_reuses_the_compiled_forward(tmp_path):
    cache = tmp_path / "cache"
    first = run_forward(str(cache), tmp_path)
    assert first.returncode == 0, first.stderr
    assert f"CACHE {cache}" in first.stdout
    compiled = entries(cache)
    assert compiled, "the first process wrote no compiled program"
    second = run_forward(str(cache), tmp_path)
    assert second.returncode == 0, second.stderr
    assert entries(cache) == compiled  # a hit: nothing new was compiled
    third = run_forward(str(cache), tmp_path, shape=(13, 48, 48))  # another input shape is another program
    assert third.returncode == 0, third.stderr
    assert entries(cache) > compiled


def test_empty_setting_turns_the_cache_off(tmp_path):
    off = run_forward("", tmp_path)
    assert off.returncode == 0, off.stderr
    assert "CACHE None" in off.stdout


def test_unusable_directory_is_reported_and_compiling_goes_on(tmp_path):
    (tmp_path / "a_file").write_text("not a directory")
    blocked = run_forward(str(tmp_path / "a_file" / "cache"), tmp_path)
    assert blocked.returncode == 0, blocked.stderr
    assert "CACHE None" in blocked.stdout
    assert "compiling without a persistent cache: cannot create" in blocked.stderr
