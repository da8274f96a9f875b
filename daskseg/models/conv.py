"""Fast formulations of the U-Net's convolutions for XLA:CPU, behind one switch: ``conv_impl``.

XLA:CPU runs a 3D convolution as one generic loop nest that is 10-15x slower than PyTorch's oneDNN
kernels at the U-Net's shapes (few channels, large volumes), while its 2D convolutions are fast.
These functions compute the same valid, unit-stride convolutions from fast primitives:

``"fold2d"`` (default on CPU)
    stack the ``kd`` shifted depth slabs of the input on the channel axis and run one 2D
    convolution with ``kd * C`` input channels over the ``(H, W)`` planes (batch ``N * D'``).
``"slices2d"``
    one 2D convolution per depth tap, summed.
``"xla"``
    ``lax.conv_general_dilated`` itself: the plain Flax convolution (and the choice on GPU/TPU,
    where cuDNN is fast).
``"auto"``
    ``"fold2d"`` on CPU, ``"xla"`` elsewhere.

Select with ``UNet(..., conv_impl=...)`` / the architecture's ``conv_impl``, or override everywhere
with the environment variable ``DASKSEG_CONV_IMPL``. All formulations give the plain convolution's
result up to float rounding (checked in tests/models/test_conv.py). Gradients follow by autodiff of
the same primitives, except the kernel gradient of the 2D convolutions on large planes with few
channels (the U-Net's top levels): XLA:CPU computes it as a convolution whose kernel is the whole
image, 4-7x slower than PyTorch and only ~1e-4 accurate; ``_kernel_grad_gemm`` computes it as
im2col GEMMs, a few planes per scan step, faster and accurate to ~1e-7 (float64 reference).

What was tried (CREMI training net, 2 cores; ratios side by side with PyTorch 2.x/oneDNN):
native 3D convolutions 10-15x slower forward; XLA:CPU flags (``--xla_cpu_use_onednn``,
``--xla_cpu_use_xnnpack``, YNNPACK ``individual_convolution`` fusion) changed native 3D convolutions
by at most ~1.4x; three summed 2D convolutions (``slices2d``) and the folded 2D convolution
(``fold2d``) reach PyTorch's forward time, ``fold2d`` slightly ahead at the top level; full im2col
+ GEMM and 27 shifted matmuls were 2-4x slower than ``fold2d``. See benchmarks/train_step.py.

Max pooling and the transposed convolution of the U-Net have kernel == stride, so they are written
as reshapes plus a reduction or one matrix product, which XLA runs well on every backend.
"""

from __future__ import annotations

import functools
import logging
import os
from collections.abc import Sequence

import jax
import jax.numpy as jnp
from jax import lax

logger = logging.getLogger(__name__)

CONV_IMPLS = ("auto", "xla", "fold2d", "slices2d")
ENV_VAR = "DASKSEG_CONV_IMPL"


def resolve_conv_impl(impl: str = "auto", backend: str | None = None) -> str:
    """The concrete formulation for ``impl`` (``DASKSEG_CONV_IMPL`` overrides) on ``backend``."""
    impl = os.environ.get(ENV_VAR, "") or impl
    if impl not in CONV_IMPLS:
        raise ValueError(f"conv_impl must be one of {CONV_IMPLS}, got {impl!r} (check ${ENV_VAR})")
    if impl != "auto":
        return impl
    backend = backend or jax.default_backend()
    return "fold2d" if backend == "cpu" else "xla"


def _xla_conv2d(x: jax.Array, k: jax.Array, precision=None) -> jax.Array:
    return lax.conv_general_dilated(
        x, k, (1, 1), "VALID", dimension_numbers=("NHWC", "HWIO", "NHWC"), precision=precision
    )


#: positions (rows of the per-step GEMM) per scan step of the kernel gradient
_DK_CHUNK_POSITIONS = 1 << 16


def _kernel_grad_gemm(x: jax.Array, dy: jax.Array, kh: int, kw: int) -> jax.Array:
    """d(loss)/d(kernel) of a valid 2D convolution as GEMMs, one group of images per scan step.

    ``dk[i, j, c, o] = sum_{b, h, w} x[b, h + i, w + j, c] * dy[b, h, w, o]``. XLA:CPU computes this
    as a convolution with a kernel the size of the image, which is 4-7x slower than PyTorch at the
    U-Net's top level. Here each step takes a few images, lays the ``kh * kw`` shifted copies of the
    smaller operand side by side (im2col, small enough to stay in cache) and contracts with one GEMM.
    """
    b, h, w, c = x.shape
    oh, ow, o = dy.shape[1:]
    chunk = max(1, min(b, _DK_CHUNK_POSITIONS // (h * w)))
    while b % chunk:
        chunk -= 1
    xs = x.reshape(b // chunk, chunk, h, w, c)
    ds = dy.reshape(b // chunk, chunk, oh, ow, o)
    expand_dy = o <= c

    def step(acc, xd):
        xc, dc = xd
        if expand_dy:  # (chunk, h, w, kh*kw*o): dy shifted to every tap, zero outside
            e = jnp.concatenate(
                [jnp.pad(dc, ((0, 0), (i, kh - 1 - i), (j, kw - 1 - j), (0, 0))) for i in range(kh) for j in range(kw)],
                axis=-1,
            )
            part = jnp.einsum("bhwc,bhwp->pc", xc, e, preferred_element_type=acc.dtype)  # (taps*o, c)
            part = part.reshape(kh, kw, o, c).transpose(0, 1, 3, 2)
        else:  # (chunk, oh, ow, kh*kw*c): im2col of x
            e = jnp.concatenate([xc[:, i : i + oh, j : j + ow] for i in range(kh) for j in range(kw)], axis=-1)
            part = jnp.einsum("bhwp,bhwo->po", e, dc, preferred_element_type=acc.dtype).reshape(kh, kw, c, o)
        return acc + part, None

    acc = jnp.zeros((kh, kw, c, o), jnp.promote_types(x.dtype, dy.dtype))
    if b // chunk == 1:
        return step(acc, (xs[0], ds[0]))[0]
    return lax.scan(step, acc, (xs, ds))[0]


@jax.custom_vjp
def _conv2d_gemm_dk(x: jax.Array, k: jax.Array) -> jax.Array:
    return _xla_conv2d(x, k)


def _conv2d_gemm_dk_fwd(x, k):
    return _xla_conv2d(x, k), (x, k)


def _conv2d_gemm_dk_bwd(res, dy):
    x, k = res
    _, vjp_x = jax.vjp(lambda x_: _xla_conv2d(x_, k), x)
    (dx,) = vjp_x(dy)
    dk = _kernel_grad_gemm(x, dy, k.shape[0], k.shape[1]).astype(k.dtype)
    return dx, dk


_conv2d_gemm_dk.defvjp(_conv2d_gemm_dk_fwd, _conv2d_gemm_dk_bwd)


def _use_gemm_kernel_grad(x_shape, k_shape) -> bool:
    """Whether the GEMM kernel gradient beats XLA's: large images with few channels (measured, see module doc)."""
    _, h, w, c = x_shape
    return h * w >= 24 * 24 and c * k_shape[-1] <= 144 * 24


def _conv2d(x: jax.Array, k: jax.Array, precision=None) -> jax.Array:
    """Valid 2D convolution, ``x`` (B, H, W, C) and ``k`` (kh, kw, C, O); fast kernel gradient where it pays."""
    if precision is None and _use_gemm_kernel_grad(x.shape, k.shape):
        return _conv2d_gemm_dk(x, k)
    return _xla_conv2d(x, k, precision)


def conv3d_fold2d(x: jax.Array, k: jax.Array, precision=None) -> jax.Array:
    """Valid 3D convolution (N, D, H, W, C) * (kd, kh, kw, C, O) as one 2D convolution over ``kd * C`` channels."""
    n, d, h, w, c = x.shape
    kd, kh, kw, _, o = k.shape
    od = d - kd + 1
    if kh == 1 and kw == 1 and kd == 1:
        return jnp.einsum("ndhwc,co->ndhwo", x, k[0, 0, 0], precision=precision)
    if kd == 1:
        xs = x.reshape(n * d, h, w, c)
    else:
        xs = jnp.concatenate([x[:, z : z + od] for z in range(kd)], axis=-1).reshape(n * od, h, w, kd * c)
    kk = jnp.transpose(k, (1, 2, 0, 3, 4)).reshape(kh, kw, kd * c, o)
    y = _conv2d(xs, kk, precision)
    return y.reshape(n, od, *y.shape[1:])


def conv3d_slices2d(x: jax.Array, k: jax.Array, precision=None) -> jax.Array:
    """Valid 3D convolution as the sum of one 2D convolution per depth tap."""
    n, d, h, w, c = x.shape
    kd = k.shape[0]
    od = d - kd + 1
    out = _conv2d(x[:, 0:od].reshape(n * od, h, w, c), k[0], precision)
    for z in range(1, kd):
        out = out + _conv2d(x[:, z : z + od].reshape(n * od, h, w, c), k[z], precision)
    return out.reshape(n, od, *out.shape[1:])


_FORMULATIONS = {"fold2d": conv3d_fold2d, "slices2d": conv3d_slices2d}


def _is_channels_last_5d(dimension_numbers, ndim: int) -> bool:
    if ndim != 5:
        return False
    if dimension_numbers is None:
        return False
    lhs, rhs, out = lax.conv_dimension_numbers((1,) * 5, (1,) * 5, dimension_numbers)
    return tuple(lhs) == (0, 4, 1, 2, 3) and tuple(rhs) == (4, 3, 0, 1, 2) and tuple(out) == (0, 4, 1, 2, 3)


def _all_ones(values) -> bool:
    return values is None or all(v == 1 for v in values)


def _is_valid_padding(padding) -> bool:
    if isinstance(padding, str):
        return padding.upper() == "VALID"
    return all(tuple(p) == (0, 0) for p in padding)


def conv_general_dilated(
    lhs,
    rhs,
    window_strides: Sequence[int],
    padding,
    lhs_dilation=None,
    rhs_dilation=None,
    dimension_numbers=None,
    feature_group_count: int = 1,
    precision=None,
    impl: str = "auto",
    **kwargs,
):
    """Drop-in for ``lax.conv_general_dilated`` (as ``nnx.Conv(conv_general_dilated=...)``) with fast 3D paths.

    Valid, unit-stride, undilated, ungrouped 3D convolutions in channels-last layout use the
    formulation ``impl`` resolves to; anything else goes to ``lax.conv_general_dilated`` unchanged.
    """
    chosen = resolve_conv_impl(impl)
    fast = (
        chosen in _FORMULATIONS
        and _is_channels_last_5d(dimension_numbers, lhs.ndim)
        and _all_ones(window_strides)
        and _all_ones(lhs_dilation)
        and _all_ones(rhs_dilation)
        and feature_group_count == 1
        and _is_valid_padding(padding)
        and not kwargs.get("preferred_element_type")
        and kwargs.get("out_sharding") is None
    )
    if fast:
        return _FORMULATIONS[chosen](lhs, rhs, precision)
    return lax.conv_general_dilated(
        lhs,
        rhs,
        window_strides,
        padding,
        lhs_dilation=lhs_dilation,
        rhs_dilation=rhs_dilation,
        dimension_numbers=dimension_numbers,
        feature_group_count=feature_group_count,
        precision=precision,
        **kwargs,
    )


@functools.cache
def conv_fn(impl: str = "auto"):
    """A ``conv_general_dilated`` bound to ``impl``, hashable and reused (for ``nnx.Conv``)."""
    if impl == "xla":
        return lax.conv_general_dilated
    return functools.partial(conv_general_dilated, impl=impl)


def max_pool(x: jax.Array, factors: Sequence[int]) -> jax.Array:
    """Max pooling of (N, *spatial, C) with window = stride = ``factors``; sizes must be divisible."""
    n, *spatial, c = x.shape
    if any(s % f for s, f in zip(spatial, factors)):
        raise ValueError(f"feature map of spatial shape {tuple(spatial)} is not divisible by {tuple(factors)}")
    shape = [n]
    for s, f in zip(spatial, factors):
        shape += [s // f, f]
    y = x.reshape(*shape, c)
    return jnp.max(y, axis=tuple(range(2, 2 * len(factors) + 1, 2)))


def depth_to_space(y: jax.Array, factors: Sequence[int], out_channels: int) -> jax.Array:
    """(N, *spatial, prod(factors) * O) -> (N, *(spatial * factors), O), factor offsets major in the channels."""
    n, *spatial, _ = y.shape
    dims = len(factors)
    y = y.reshape(n, *spatial, *factors, out_channels)
    # interleave: (n, s0, f0, s1, f1, ..., o)
    perm = [0]
    for i in range(dims):
        perm += [1 + i, 1 + dims + i]
    perm += [1 + 2 * dims]
    y = jnp.transpose(y, perm)
    return y.reshape(n, *(s * f for s, f in zip(spatial, factors)), out_channels)


def transposed_conv_as_matmul(x: jax.Array, kernel: jax.Array, precision=None) -> jax.Array:
    """``lax.conv_transpose(x, kernel, strides=kernel.shape[:-2], 'VALID')`` for kernel == stride, as one matmul.

    ``kernel`` has the ``nnx.ConvTranspose`` layout (*factors, in, out); that operation is the
    un-flipped kernel applied to an input dilated by the stride, so output offset ``a`` within a block
    takes the kernel tap ``f - 1 - a``.
    """
    *factors, cin, cout = kernel.shape
    flipped = jnp.flip(kernel, axis=tuple(range(len(factors))))
    w = jnp.moveaxis(flipped, -2, 0).reshape(cin, -1)  # (in, f0*f1*f2*out), offsets major
    y = jnp.einsum("...c,cp->...p", x, w, precision=precision)
    return depth_to_space(y, factors, cout)
