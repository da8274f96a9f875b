"""The fast convolution formulations equal the plain XLA/Flax ones (values and gradients)."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx
from jax import lax

from daskseg.models import conv


def _lax3d(x, k):
    return lax.conv_general_dilated(x, k, (1, 1, 1), "VALID", dimension_numbers=("NDHWC", "DHWIO", "NDHWC"))


CASES = [
    # (input N, D, H, W, C), kernel (kd, kh, kw), out channels
    ((1, 5, 12, 11, 1), (3, 3, 3), 4),
    ((2, 4, 9, 9, 6), (3, 3, 3), 6),
    ((1, 3, 10, 10, 5), (1, 3, 3), 3),
    ((1, 6, 7, 8, 3), (3, 1, 2), 2),
    ((1, 4, 6, 6, 7), (1, 1, 1), 3),
]


@pytest.mark.parametrize("impl", ["fold2d", "slices2d"])
@pytest.mark.parametrize("shape,kernel,cout", CASES)
def test_formulations_equal_lax(impl, shape, kernel, cout):
    rng = np.random.default_rng(0)
    x = jnp.asarray(rng.standard_normal(shape, dtype=np.float32))
    k = jnp.asarray(rng.standard_normal((*kernel, shape[-1], cout), dtype=np.float32))
    ref = _lax3d(x, k)
    out = conv._FORMULATIONS[impl](x, k)
    assert out.shape == ref.shape
    np.testing.assert_allclose(out, ref, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("impl", ["fold2d", "slices2d"])
def test_nnx_conv_with_fast_function_equals_plain_flax(impl):
    plain = nnx.Conv(4, 5, (3, 3, 3), padding="VALID", rngs=nnx.Rngs(1))
    fast = nnx.Conv(4, 5, (3, 3, 3), padding="VALID", conv_general_dilated=conv.conv_fn(impl), rngs=nnx.Rngs(1))
    x = jnp.asarray(np.random.default_rng(1).standard_normal((2, 5, 9, 10, 4), dtype=np.float32))
    np.testing.assert_array_equal(plain.kernel[...], fast.kernel[...])
    np.testing.assert_allclose(fast(x), plain(x), rtol=1e-5, atol=1e-5)
    # unbatched input (Flax adds and removes the batch axis)
    np.testing.assert_allclose(fast(x[0]), plain(x[0]), rtol=1e-5, atol=1e-5)


def test_unsupported_convolutions_fall_back_to_lax():
    x = jnp.ones((1, 6, 6, 6, 2))
    k = jnp.ones((3, 3, 3, 2, 2))
    dn = ("NDHWC", "DHWIO", "NDHWC")
    same = conv.conv_general_dilated(x, k, (1, 1, 1), "SAME", dimension_numbers=dn, impl="fold2d")
    ref = lax.conv_general_dilated(x, k, (1, 1, 1), "SAME", dimension_numbers=dn)
    np.testing.assert_array_equal(same, ref)
    strided = conv.conv_general_dilated(x, k, (2, 2, 2), "VALID", dimension_numbers=dn, impl="fold2d")
    assert strided.shape == (1, 2, 2, 2, 2)


def _grads(f, x, k):
    return jax.grad(lambda x, k: jnp.sum(jnp.sin(f(x, k))), argnums=(0, 1))(x, k)


@pytest.mark.parametrize("impl", ["fold2d", "slices2d"])
@pytest.mark.parametrize("chunk", [None, 200])
def test_gradients_equal_lax(impl, chunk, monkeypatch):
    """Large planes with few channels take the GEMM kernel gradient (in scan steps when ``chunk`` is small)."""
    if chunk is not None:
        monkeypatch.setattr(conv, "_DK_CHUNK_POSITIONS", chunk)
    rng = np.random.default_rng(2)
    x = jnp.asarray(rng.standard_normal((1, 6, 27, 26, 2), dtype=np.float32))
    k = jnp.asarray(rng.standard_normal((3, 3, 3, 2, 3), dtype=np.float32) * 0.3)
    assert conv._use_gemm_kernel_grad((4, 27, 26, 6), k.shape)
    dx_ref, dk_ref = _grads(_lax3d, x, k)
    dx, dk = jax.jit(lambda x, k: _grads(conv._FORMULATIONS[impl], x, k))(x, k)
    np.testing.assert_allclose(dx, dx_ref, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(dk, dk_ref, rtol=1e-4, atol=1e-3)


def test_gemm_kernel_gradient_expanding_either_operand():
    rng = np.random.default_rng(3)
    for c, o in [(2, 5), (5, 2)]:  # expand x (im2col) or dy
        x = jnp.asarray(rng.standard_normal((3, 26, 25, c), dtype=np.float32))
        dy = jnp.asarray(rng.standard_normal((3, 24, 23, o), dtype=np.float32))
        k = jnp.zeros((3, 3, c, o))
        _, vjp = jax.vjp(lambda k: conv._xla_conv2d(x, k), k)
        (ref,) = vjp(dy)
        np.testing.assert_allclose(conv._kernel_grad_gemm(x, dy, 3, 3), ref, rtol=1e-4, atol=1e-3)


def test_max_pool_equals_flax():
    x = jnp.asarray(np.random.default_rng(4).standard_normal((2, 4, 9, 6, 3), dtype=np.float32))
    ref = nnx.max_pool(x, window_shape=(1, 3, 3), strides=(1, 3, 3), padding="VALID")
    np.testing.assert_array_equal(conv.max_pool(x, (1, 3, 3)), ref)
    with pytest.raises(ValueError, match="not divisible"):
        conv.max_pool(x, (3, 3, 3))


def test_transposed_conv_as_matmul_equals_flax():
    layer = nnx.ConvTranspose(4, 3, kernel_size=(1, 3, 2), strides=(1, 3, 2), padding="VALID", rngs=nnx.Rngs(0))
    x = jnp.asarray(np.random.default_rng(5).standard_normal((2, 3, 4, 5, 4), dtype=np.float32))
    ref = layer(x)
    out = conv.transposed_conv_as_matmul(x, layer.kernel[...]) + layer.bias[...]
    assert out.shape == ref.shape == (2, 3, 12, 10, 3)
    np.testing.assert_allclose(out, ref, rtol=1e-5, atol=1e-5)


def test_resolve_conv_impl(monkeypatch):
    monkeypatch.delenv(conv.ENV_VAR, raising=False)
    assert conv.resolve_conv_impl("auto", backend="cpu") == "fold2d"
    assert conv.resolve_conv_impl("auto", backend="gpu") == "xla"
    assert conv.resolve_conv_impl("slices2d") == "slices2d"
    monkeypatch.setenv(conv.ENV_VAR, "xla")
    assert conv.resolve_conv_impl("fold2d") == "xla"
    monkeypatch.setenv(conv.ENV_VAR, "cudnn")
    with pytest.raises(ValueError, match="DASKSEG_CONV_IMPL"):
        conv.resolve_conv_impl("auto")
