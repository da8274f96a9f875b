"""The 3D U-Net in Flax NNX: valid convolutions, max-pool down, transposed-conv (or nearest) up,
crop-and-concatenate skips, and an affinity head.

Layout is Flax's channels-last: ``UNet(x)`` takes ``(N, D, H, W, C)`` (or ``(D, H, W, C)``) and
returns ``(N, D', H', W', out_channels)``. The Train/Predict nodes convert gunpowder's
channels-first arrays. Convolutions are ``nnx.Conv`` layers; ``conv_impl`` only swaps the function
they call (see ``daskseg.models.conv``), so parameters, checkpoints and results do not depend on it.
"""

from __future__ import annotations

import functools
import logging
import math
from collections.abc import Sequence

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from . import conv as convlib
from .config import UNetConfig

logger = logging.getLogger(__name__)


@functools.cache
def variance_scaling_init(scale: float):
    """Truncated-normal fan-in initialiser (``scale=2``: He, for ReLU; ``1``: LeCun, Flax's default).

    Draws with numpy from the given key: on CPU, JAX would compile a random kernel for every new
    weight shape (about a second each), which dominated building a network. Under tracing (e.g.
    ``nnx.eval_shape``) it falls back to ``flax.nnx.initializers.variance_scaling``.
    """
    fallback = nnx.initializers.variance_scaling(scale, "fan_in", "truncated_normal")

    def init(key, shape, dtype=jnp.float32):
        if isinstance(key, jax.core.Tracer):
            return fallback(key, shape, dtype)
        seed = np.asarray(jax.random.key_data(key)).ravel().astype(np.uint64)
        rng = np.random.default_rng(seed)
        fan_in = math.prod(shape[:-1])
        # std of a standard normal truncated to [-2, 2] is 0.8796..., as in Flax
        std = math.sqrt(scale / max(fan_in, 1)) / 0.87962566103423978
        a = rng.standard_normal(shape)
        bad = np.abs(a) > 2
        while bad.any():
            a[bad] = rng.standard_normal(int(bad.sum()))
            bad = np.abs(a) > 2
        return jnp.asarray((a * std).astype(dtype))

    return init


def _conv(cin: int, cout: int, kernel: Sequence[int], impl: str, rngs: nnx.Rngs, scale: float = 2.0) -> nnx.Conv:
    return nnx.Conv(
        cin,
        cout,
        kernel_size=tuple(kernel),
        padding="VALID",
        conv_general_dilated=convlib.conv_fn(impl),
        kernel_init=variance_scaling_init(scale),
        rngs=rngs,
    )


class ConvPass(nnx.Module):
    """Valid convolutions, each followed by ReLU."""

    def __init__(self, cin: int, cout: int, kernel_sizes: Sequence[Sequence[int]], impl: str, *, rngs: nnx.Rngs):
        layers = []
        for kernel in kernel_sizes:
            layers.append(_conv(cin, cout, kernel, impl, rngs))
            cin = cout
        self.layers = nnx.List(layers)

    def __call__(self, x: jax.Array) -> jax.Array:
        for layer in self.layers:
            x = jax.nn.relu(layer(x))
        return x


class Upsample(nnx.Module):
    """Upsampling by ``factors`` to ``cout`` channels: transposed convolution (kernel = stride) or nearest + 1x1x1 conv."""

    def __init__(self, cin: int, cout: int, factors: Sequence[int], mode: str, impl: str, *, rngs: nnx.Rngs):
        self.factors = tuple(factors)
        self.mode = mode
        self.impl = impl
        self.layer: nnx.ConvTranspose | nnx.Conv
        if mode == "transposed_conv":
            self.layer = nnx.ConvTranspose(
                cin,
                cout,
                kernel_size=self.factors,
                strides=self.factors,
                padding="VALID",
                kernel_init=variance_scaling_init(1.0),
                rngs=rngs,
            )
        else:
            self.layer = _conv(cin, cout, (1,) * len(self.factors), impl, rngs, scale=1.0)

    def __call__(self, x: jax.Array) -> jax.Array:
        if self.mode == "transposed_conv":
            if convlib.resolve_conv_impl(self.impl) == "xla":
                return self.layer(x)
            y = convlib.transposed_conv_as_matmul(x, self.layer.kernel[...])
            bias = self.layer.bias
            return y if bias is None else y + bias[...]
        for axis, f in enumerate(self.factors):
            if f > 1:
                x = jnp.repeat(x, f, axis=axis + 1)
        return self.layer(x)


def center_crop(x: jax.Array, shape: Sequence[int]) -> jax.Array:
    """Crop the spatial axes of (N, *spatial, C) to ``shape`` around the centre."""
    spatial = x.shape[1:-1]
    begin = [(s - t) // 2 for s, t in zip(spatial, shape)]
    slices = (slice(None),) + tuple(slice(b, b + t) for b, t in zip(begin, shape)) + (slice(None),)
    return x[slices]


class UNet(nnx.Module):
    """3D U-Net with valid convolutions and an affinity head (``out_channels``, sigmoid).

    Convolutions followed by ReLU start from He initialisation, the upsampling and the head from
    LeCun's (both truncated normal, fan-in), drawn from ``rngs``.

    Args:
        config: the architecture (``UNetConfig``); keyword arguments override its fields, e.g.
            ``UNet(num_fmaps=12, downsample_factors=[(1, 3, 3), (1, 3, 3), (3, 3, 3)], rngs=nnx.Rngs(0))``.
        rngs: parameter initialisation.

    The gunpowder CREMI example's network is the default: ``num_fmaps=6``, ``fmap_inc_factor=4``,
    ``downsample_factors=[(1,3,3)]*3``, two 3x3x3 convolutions with ReLU per level.
    Shape arithmetic: ``unet.output_shape(input_shape)``, ``unet.context``, ``unet.config.shapes``.
    """

    def __init__(self, config: UNetConfig | None = None, *, rngs: nnx.Rngs, **overrides):
        config = UNetConfig() if config is None else config
        if isinstance(config, dict):
            config = UNetConfig.from_dict(config)
        if overrides:
            config = config.replace(**overrides)
        self.config = config
        kernels_down, kernels_up = config.kernel_size_down, config.kernel_size_up
        if kernels_down is None or kernels_up is None:  # UNetConfig fills both in
            raise ValueError(f"UNet: {config} has no kernel sizes")
        impl = config.conv_impl
        levels = len(config.downsample_factors)
        down = []
        cin = config.in_channels
        for level in range(levels + 1):
            down.append(ConvPass(cin, config.fmaps(level), kernels_down[level], impl, rngs=rngs))
            cin = config.fmaps(level)
        self.down = nnx.List(down)
        ups, up_convs = [], []
        for level in range(levels):
            ups.append(
                Upsample(
                    config.fmaps(level + 1),
                    config.fmaps(level),
                    config.downsample_factors[level],
                    config.upsampling,
                    impl,
                    rngs=rngs,
                )
            )
            up_convs.append(
                ConvPass(2 * config.fmaps(level), config.fmaps(level), kernels_up[level], impl, rngs=rngs)
            )
        self.up = nnx.List(ups)
        self.up_convs = nnx.List(up_convs)
        self.head = _conv(config.fmaps(0), config.out_channels, (1,) * config.dims, impl, rngs, scale=1.0)
        if config.lsd_channels:
            # multitask (MtLSD): local shape descriptors from the same features
            self.lsd_head = _conv(config.fmaps(0), config.lsd_channels, (1,) * config.dims, impl, rngs, scale=1.0)

    # --- shapes ------------------------------------------------------------------------------
    def output_shape(self, input_shape: Sequence[int]) -> tuple[int, ...]:
        """Spatial output shape for a spatial ``input_shape``; ``ShapeError`` names the nearest valid ones."""
        return self.config.output_shape(input_shape)

    @property
    def context(self) -> tuple[int, ...]:
        """``input - output`` in voxels."""
        return self.config.context

    # --- forward -----------------------------------------------------------------------------
    def logits(self, x: jax.Array) -> jax.Array:
        """The head's output before its activation."""
        y, unbatched = self.features(x)
        y = self.head(y)
        return y[0] if unbatched else y

    def heads(self, x: jax.Array) -> dict[str, jax.Array]:
        """Every head's output for channels-last ``x``: ``{"affs": ...}``, and ``"lsds"`` (sigmoid)
        when the network has an LSD head; the features are computed once."""
        features, unbatched = self.features(x)
        y = self.head(features)
        out = {"affs": jax.nn.sigmoid(y) if self.config.head_activation == "sigmoid" else y}
        if self.config.lsd_channels:
            out["lsds"] = jax.nn.sigmoid(self.lsd_head(features))
        return {k: v[0] for k, v in out.items()} if unbatched else out

    def features(self, x: jax.Array) -> tuple[jax.Array, bool]:
        """The top level's features (batched) for channels-last ``x``, and whether ``x`` was unbatched."""
        unbatched = x.ndim == self.config.dims + 1
        if unbatched:
            x = x[None]
        if x.ndim != self.config.dims + 2 or x.shape[-1] != self.config.in_channels:
            raise ValueError(
                f"UNet expects (N, *spatial, C={self.config.in_channels}) channels-last input with "
                f"{self.config.dims} spatial dims, got shape {x.shape}"
            )
        self.config.output_shape(x.shape[1:-1])  # clear error for invalid shapes
        levels = len(self.config.downsample_factors)
        skips = []
        for level in range(levels):
            x = self.down[level](x)
            skips.append(x)
            x = convlib.max_pool(x, self.config.downsample_factors[level])
        x = self.down[levels](x)
        for level in reversed(range(levels)):
            x = self.up[level](x)
            skip = center_crop(skips[level], x.shape[1:-1])
            x = jnp.concatenate([skip, x], axis=-1)
            x = self.up_convs[level](x)
        return x, unbatched

    def __call__(self, x: jax.Array) -> jax.Array:
        """Affinities (sigmoid of the head) for channels-last ``x``."""
        y = self.logits(x)
        return jax.nn.sigmoid(y) if self.config.head_activation == "sigmoid" else y

    def set_conv_impl(self, impl: str) -> UNet:
        """Switch every convolution of this network to ``impl`` in place (parameters unchanged)."""
        convlib.resolve_conv_impl(impl)  # validate
        self.config = self.config.replace(conv_impl=impl)
        for _, module in nnx.iter_graph(self):
            if isinstance(module, nnx.Conv):
                module.conv_general_dilated = convlib.conv_fn(impl)
            elif isinstance(module, Upsample):
                module.impl = impl
        return self



def parameter_shapes(config: UNetConfig) -> dict[str, tuple[int, ...]]:
    """``{keystr: shape}`` of the U-Net's parameters for ``config``, without allocating them."""
    module = nnx.eval_shape(lambda: UNet(config, rngs=nnx.Rngs(0)))
    params = nnx.to_pure_dict(nnx.split(module, nnx.Param)[1])
    return {jax.tree_util.keystr(k): tuple(v.shape) for k, v in jax.tree_util.tree_leaves_with_path(params)}
