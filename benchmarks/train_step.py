"""Forward and train-step time of the CREMI U-Net in Flax, side by side with the same U-Net in PyTorch.

    python benchmarks/train_step.py                 # CREMI training net, input (84, 268, 268)
    python benchmarks/train_step.py --quick         # a smaller valid input, for a fast check
    python benchmarks/train_step.py --shape 56 322 322 --impls xla,fold2d,slices2d

For each ``conv_impl`` (``xla`` = plain Flax convolutions, ``auto`` = daskseg's fast CPU path) it
prints the JIT compile time and the best forward and train-step (forward + loss + backward + Adam)
times, and checks the outputs against the plain Flax forward. When ``torch`` is importable, the same
U-Net in PyTorch, with the same weights, is timed in the same run and its output compared; ratios
are JAX time / torch time. Without torch in this interpreter, the script re-runs itself under
``.venv-torch/bin/python`` (or ``$DASKSEG_TORCH_PYTHON``) when that interpreter exists, unless
``--no-reexec`` is given.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))


def _torch_available() -> bool:
    try:
        import torch  # noqa: F401
    except Exception:  # noqa: BLE001 - a broken torch install (OSError, ...) is "not available" too
        return False
    return True


# --- PyTorch twin of daskseg.models.UNet ---------------------------------------------------
def build_torch_unet(cfg, params):
    """The same U-Net in PyTorch (channels-first), with the Flax ``params`` copied in."""
    import torch
    from torch import nn

    def conv_from(p, cin, cout, ks):
        conv = nn.Conv3d(cin, cout, tuple(ks))
        with torch.no_grad():
            conv.weight.copy_(torch.from_numpy(np.asarray(p["kernel"]).transpose(4, 3, 0, 1, 2).copy()))
            conv.bias.copy_(torch.from_numpy(np.array(p["bias"])))
        return conv

    class TorchUNet(nn.Module):
        def __init__(self):
            super().__init__()
            L = len(cfg.downsample_factors)
            self.factors = cfg.downsample_factors
            self.down = nn.ModuleList()
            cin = cfg.in_channels
            for level in range(L + 1):
                layers = []
                for i, ks in enumerate(cfg.kernel_size_down[level]):
                    layers.append(conv_from(params["down"][level]["layers"][i], cin, cfg.fmaps(level), ks))
                    cin = cfg.fmaps(level)
                self.down.append(nn.ModuleList(layers))
            self.up = nn.ModuleList()
            self.up_convs = nn.ModuleList()
            for level in range(L):
                f = tuple(cfg.downsample_factors[level])
                up = nn.ConvTranspose3d(cfg.fmaps(level + 1), cfg.fmaps(level), f, stride=f)
                k = np.asarray(params["up"][level]["layer"]["kernel"])  # (*f, in, out), flax: un-flipped taps
                with torch.no_grad():
                    up.weight.copy_(torch.from_numpy(np.flip(k, (0, 1, 2)).transpose(3, 4, 0, 1, 2).copy()))
                    up.bias.copy_(torch.from_numpy(np.array(params["up"][level]["layer"]["bias"])))
                self.up.append(up)
                layers = []
                cin = 2 * cfg.fmaps(level)
                for i, ks in enumerate(cfg.kernel_size_up[level]):
                    layers.append(conv_from(params["up_convs"][level]["layers"][i], cin, cfg.fmaps(level), ks))
                    cin = cfg.fmaps(level)
                self.up_convs.append(nn.ModuleList(layers))
            self.head = conv_from(params["head"], cfg.fmaps(0), cfg.out_channels, (1, 1, 1))
            self.pools = nn.ModuleList([nn.MaxPool3d(tuple(f), stride=tuple(f)) for f in self.factors])

        @staticmethod
        def crop(x, shape):
            begin = [(s - t) // 2 for s, t in zip(x.shape[2:], shape)]
            return x[:, :, begin[0] : begin[0] + shape[0], begin[1] : begin[1] + shape[1], begin[2] : begin[2] + shape[2]]

        def forward(self, x):
            L = len(self.factors)
            skips = []
            for level in range(L):
                for conv in self.down[level]:
                    x = torch.relu(conv(x))
                skips.append(x)
                x = self.pools[level](x)
            for conv in self.down[L]:
                x = torch.relu(conv(x))
            for level in reversed(range(L)):
                x = self.up[level](x)
                x = torch.cat([self.crop(skips[level], x.shape[2:]), x], dim=1)
                for conv in self.up_convs[level]:
                    x = torch.relu(conv(x))
            return torch.sigmoid(self.head(x))

    return TorchUNet()


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--shape", type=int, nargs=3, default=None, help="input shape (default: CREMI training net)")
    parser.add_argument("--quick", action="store_true", help="a smaller valid input (29, 268, 268)")
    parser.add_argument("--impls", default="xla,auto", help="conv_impl values to time (comma separated)")
    parser.add_argument("--repeat", type=int, default=5, help="timed runs per measurement (best is reported)")
    parser.add_argument("--no-train", action="store_true", help="forward only")
    parser.add_argument("--no-torch", action="store_true", help="skip the PyTorch side")
    parser.add_argument("--no-reexec", action="store_true", help="never re-run under the torch interpreter")
    parser.add_argument(
        "--threads", type=int, default=None,
        help="threads for both frameworks (default: all cores); 1 is steadier on a shared machine",
    )
    args = parser.parse_args(argv)
    if args.threads is not None:  # before JAX starts its CPU client
        flags = os.environ.get("XLA_FLAGS", "")
        os.environ["XLA_FLAGS"] = (
            f"{flags} --xla_cpu_multi_thread_eigen={'true' if args.threads > 1 else 'false'} "
            f"intra_op_parallelism_threads={args.threads}"
        ).strip()

    if not args.no_torch and not args.no_reexec and not _torch_available():
        other = os.environ.get("DASKSEG_TORCH_PYTHON") or str(REPO / ".venv-torch" / "bin" / "python")
        other_prefix = Path(other).absolute().parent.parent
        if os.path.exists(other) and other_prefix != Path(sys.prefix).absolute():
            print(f"torch is not importable here; re-running under {other}", flush=True)
            return subprocess.call([other, __file__, *(argv if argv is not None else sys.argv[1:]), "--no-reexec"])

    import jax
    import jax.numpy as jnp
    from flax import nnx

    from daskseg.jax.model import FlaxUNetModel
    from daskseg.models import UNet, UNetConfig
    from daskseg.models.config import CREMI_TRAIN_INPUT_SHAPE

    base = UNetConfig()  # the gunpowder CREMI example's network
    shape = tuple(args.shape) if args.shape else ((29, 268, 268) if args.quick else CREMI_TRAIN_INPUT_SHAPE)
    out_shape = base.output_shape(shape)
    print(f"jax {jax.__version__} ({jax.default_backend()}), {os.cpu_count()} CPUs, threads: {args.threads or 'all'}; "
          "CREMI U-Net "
          f"num_fmaps={base.num_fmaps} fmap_inc_factor={base.fmap_inc_factor} factors={list(base.downsample_factors)}")
    print(f"input {shape} -> output {out_shape}, batch 1", flush=True)

    rng = np.random.default_rng(0)
    raw = rng.random(shape, dtype=np.float32)
    gt = (rng.random((3, *out_shape)) > 0.5).astype(np.float32)
    weights = rng.random((3, *out_shape), dtype=np.float32)
    inputs = {"raw": jnp.asarray(raw), "gt_affs": jnp.asarray(gt), "loss_weights": jnp.asarray(weights)}

    # build every variant and run it once (compile / warm-up), then time them round-robin so that
    # a change in machine load hits all of them alike
    results: dict[str, dict[str, float]] = {}
    timed: dict[str, dict[str, object]] = {}
    reference = None
    params0 = None
    for impl in [s for s in args.impls.split(",") if s]:
        net = UNet(base.replace(conv_impl=impl), rngs=nnx.Rngs(0))
        model = FlaxUNetModel(net)
        state = model.initialize()
        params0 = state["params"]
        fwd = jax.jit(model.forward)
        r: dict[str, float] = {}
        t = time.perf_counter()
        y = np.asarray(jax.block_until_ready(fwd(state, inputs))["pred_affs"])
        r["fwd_compile+run"] = time.perf_counter() - t
        if reference is None:
            reference = y
        r["maxdiff"] = float(np.abs(y - reference).max())
        fns = {"fwd": lambda fwd=fwd, state=state: jax.block_until_ready(fwd(state, inputs))}
        if not args.no_train:
            step = jax.jit(model.train_step, static_argnums=(2,))
            t = time.perf_counter()
            jax.block_until_ready(step(state, inputs, False))
            r["train_compile+run"] = time.perf_counter() - t
            fns["train"] = lambda step=step, state=state: jax.block_until_ready(step(state, inputs, False))
        name = f"jax[{impl}]"
        results[name], timed[name] = r, fns
        print(f"{name}: built; " + ", ".join(f"{k} {v:.3g}" for k, v in r.items()), flush=True)

    if not args.no_torch and _torch_available():
        import torch

        if args.threads is not None:
            torch.set_num_threads(args.threads)

        tnet = build_torch_unet(base, jax.tree.map(np.array, params0))
        x = torch.from_numpy(raw)[None, None]
        g = torch.from_numpy(gt)[None]
        w = torch.from_numpy(weights)[None]
        r = {}
        with torch.no_grad():
            t = time.perf_counter()
            ty = tnet(x)
            r["fwd_first"] = time.perf_counter() - t
        r["maxdiff"] = float(np.abs(ty[0].numpy() - reference).max()) if reference is not None else float("nan")

        def tfwd():
            with torch.no_grad():
                tnet(x)

        fns = {"fwd": tfwd}
        if not args.no_train:
            opt = torch.optim.Adam(tnet.parameters(), lr=0.5e-4, betas=(0.95, 0.999), eps=1e-8)

            def tstep():
                opt.zero_grad()
                p = tnet(x)
                loss = (w * (p - g) ** 2).sum() / torch.count_nonzero(w)
                loss.backward()
                opt.step()

            tstep()
            fns["train"] = tstep
        results["torch"], timed["torch"] = r, fns
        print(f"torch {torch.__version__} ({torch.get_num_threads()} threads): built; "
              + ", ".join(f"{k} {v:.3g}" for k, v in r.items()), flush=True)
    elif not args.no_torch:
        print("torch is not importable: no PyTorch side (pip install torch into this venv or .venv-torch)")

    samples: dict[tuple[str, str], list[float]] = {}
    for _ in range(args.repeat):
        for name, fns in timed.items():
            for what, fn in fns.items():
                t = time.perf_counter()
                fn()
                samples.setdefault((name, what), []).append(time.perf_counter() - t)
    for (name, what), times in samples.items():
        results[name][what] = min(times)
        results[name][what + "_median"] = float(np.median(times))
    for r in results.values():
        if "fwd_compile+run" in r:
            r["fwd_compile"] = max(r["fwd_compile+run"] - r["fwd"], 0.0)
        if "train_compile+run" in r:
            r["train_compile"] = max(r["train_compile+run"] - r["train"], 0.0)

    print(f"\nsummary (best of {args.repeat} round-robin runs, seconds; "
          "ratio = time / torch time, side by side in this run)")
    torch_r = results.get("torch")
    for name, r in results.items():
        line = f"  {name:16s} forward {r['fwd']:7.3f} s"
        if torch_r and name != "torch":
            line += f" ({r['fwd'] / torch_r['fwd']:5.2f}x torch)"
        if "train" in r:
            line += f"   train step {r['train']:7.3f} s"
            if torch_r and name != "torch" and "train" in torch_r:
                line += f" ({r['train'] / torch_r['train']:5.2f}x torch)"
        if "fwd_compile" in r:
            line += f"   compile fwd {r['fwd_compile']:.1f} s"
        if "train_compile" in r:
            line += f" train {r['train_compile']:.1f} s"
        line += f"   max |out - plain flax| {r['maxdiff']:.1e}"
        print(line)
    if torch_r:
        print("  medians:", ", ".join(
            f"{name} fwd {r['fwd_median'] / torch_r['fwd_median']:.2f}x"
            + (f" train {r['train_median'] / torch_r['train_median']:.2f}x" if "train_median" in r else "")
            for name, r in results.items() if name != "torch"
        ))
    if "jax[xla]" in results:
        for name, r in results.items():
            if name.startswith("jax[") and name != "jax[xla]":
                x = results["jax[xla]"]
                msg = f"  {name} vs plain Flax: forward {x['fwd'] / r['fwd']:.2f}x faster"
                if "train" in r and "train" in x:
                    msg += f", train step {x['train'] / r['train']:.2f}x faster"
                print(msg)
    return 0


if __name__ == "__main__":
    sys.exit(main())
