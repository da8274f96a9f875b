"""Compile time of the CREMI U-Net with an empty and with a filled persistent compilation cache.

    python benchmarks/compile_cache.py           # CREMI train step (84, 268, 268) and forward (120, 322, 322)
    python benchmarks/compile_cache.py --quick   # smaller valid shapes

Each measurement runs in a fresh process, as a new training run or a new prediction worker would:
first with an empty cache directory (a cold compile, which fills it), then again with that directory
(the compiled programs are loaded). Compile time = first call (compile + run) minus the best of
three further calls (run only). Prints both and their ratio.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))


def child(train_shape: tuple[int, ...], predict_shape: tuple[int, ...]) -> dict[str, float]:
    """Compile (via daskseg's cache) and run the train step and the forward; seconds each."""
    import jax
    import jax.numpy as jnp
    import numpy as np
    from flax import nnx

    from daskseg.jax.compile_cache import enable_compilation_cache
    from daskseg.jax.model import FlaxUNetModel
    from daskseg.models import UNet, UNetConfig

    enable_compilation_cache()
    config = UNetConfig()
    model = FlaxUNetModel(UNet(config, rngs=nnx.Rngs(0)))
    state = model.initialize()
    rng = np.random.default_rng(0)

    def inputs(shape):
        out = config.output_shape(shape)
        return {"raw": jnp.asarray(rng.random(shape, dtype=np.float32)),
                "gt_affs": jnp.asarray((rng.random((3, *out)) > 0.5).astype(np.float32)),
                "loss_weights": jnp.asarray(rng.random((3, *out), dtype=np.float32))}

    def compile_seconds(fn, *args) -> float:
        t = time.perf_counter()
        jax.block_until_ready(fn(*args))
        first = time.perf_counter() - t
        runs = []
        for _ in range(3):
            t = time.perf_counter()
            jax.block_until_ready(fn(*args))
            runs.append(time.perf_counter() - t)
        return max(first - min(runs), 0.0)

    step = jax.jit(model.train_step, static_argnums=(2,))
    forward = jax.jit(model.forward)
    return {"train_step": compile_seconds(step, state, inputs(train_shape), False),
            "forward": compile_seconds(forward, state, inputs(predict_shape))}


def run_child(cache: str, args) -> dict[str, float]:
    env = dict(os.environ, DASK_DASKSEG__JAX__COMPILATION_CACHE=cache)
    env.pop("JAX_COMPILATION_CACHE_DIR", None)
    out = subprocess.run([sys.executable, __file__, "--child", json.dumps([args.train_shape, args.predict_shape])],
                         capture_output=True, text=True, env=env, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="smaller shapes")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        train_shape, predict_shape = json.loads(args.child)
        print(json.dumps(child(tuple(train_shape), tuple(predict_shape))))
        return 0
    from daskseg.models.config import CREMI_PREDICT_INPUT_SHAPE, CREMI_TRAIN_INPUT_SHAPE

    args.train_shape = [29, 268, 268] if args.quick else list(CREMI_TRAIN_INPUT_SHAPE)
    args.predict_shape = [29, 268, 268] if args.quick else list(CREMI_PREDICT_INPUT_SHAPE)
    with tempfile.TemporaryDirectory(prefix="daskseg-compile-cache-") as cache:
        cold = run_child(cache, args)
        warm = run_child(cache, args)
    print(f"CREMI U-Net, train step input {tuple(args.train_shape)}, forward input {tuple(args.predict_shape)}; "
          "compile seconds in a fresh process:")
    for name in cold:
        print(f"  {name:10}  empty cache {cold[name]:6.1f} s   filled cache {warm[name]:6.1f} s   "
              f"ratio {cold[name] / max(warm[name], 1e-3):.1f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
