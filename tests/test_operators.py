from functools import partial

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from blindinv_jax import data, operators as ops


@pytest.mark.parametrize("size,sigma", [(9, 2.0), (20, 5.0), (1, 1.0)])
def test_gaussian_kernel(size, sigma):
  k = np.asarray(ops.gaussian_kernel(size, sigma))
  assert k.shape == (size, size)
  np.testing.assert_allclose(k.sum(), 1.0, rtol=1e-6)
  np.testing.assert_allclose(k, k.T, atol=1e-8)
  np.testing.assert_allclose(k, k[::-1, ::-1], atol=1e-8)   # centred
  assert k.argmax() == (size // 2) * size + size // 2 or size % 2 == 0


def test_blur_impulse_response_is_the_kernel():
  x = jnp.zeros((1, 9, 9, 2)).at[0, 4, 4, :].set(1.0)
  k = jax.random.normal(jax.random.key(0), (3, 3))
  y = ops.blur(x, k)
  assert y.shape == x.shape
  # Cross-correlation: the response to a delta is the flipped kernel.
  np.testing.assert_allclose(y[0, 3:6, 3:6, 0], k[::-1, ::-1], atol=1e-6)
  np.testing.assert_allclose(y[..., 0], y[..., 1])


def test_blur_preserves_constants_in_the_interior_and_edges_kill_them():
  x = jnp.full((2, 16, 16, 1), 0.3)
  y = ops.blur(x, ops.gaussian_kernel(5, 1.0))
  np.testing.assert_allclose(y[:, 4:-4, 4:-4], 0.3, rtol=1e-5)
  e = ops.edges(x)
  np.testing.assert_allclose(e[:, 1:-1, 1:-1], 0.0, atol=1e-6)


@pytest.mark.parametrize("op", [
    partial(ops.blur, kernel=ops.gaussian_kernel(9, 2.0)),
    partial(ops.blur, kernel=ops.gaussian_kernel(20, 5.0)),
    ops.edges])
def test_linear_operators_pass_the_dot_product_test(op):
  kx, ky = jax.random.split(jax.random.key(1))
  x = jax.random.normal(kx, (2, 12, 10, 3))
  y = jax.random.normal(ky, (2, 12, 10, 3))
  adj = ops.adjoint(op, x)
  lhs = jnp.vdot(op(x), y)
  rhs = jnp.vdot(x, adj(y))
  np.testing.assert_allclose(lhs, rhs, rtol=1e-4)
  np.testing.assert_allclose(op(2.0 * x + y), 2.0 * op(x) + op(y),
                             rtol=1e-4, atol=1e-4)


def test_random_mixing_statistics_and_mix():
  m = ops.random_mixing(jax.random.key(0), 300, 400)
  assert m.shape == (300, 400)
  assert abs(float(m.mean()) + 0.5) < 0.01 and abs(float(m.std()) - 0.5) < 0.01
  src = jax.random.uniform(jax.random.key(1), (2, 3, 4, 5, 1), minval=-1)
  mm = ops.random_mixing(jax.random.key(2), 3, 4)
  y = ops.mix(src, mm)
  assert y.shape == (2, 4, 5, 4)
  expect = np.abs(np.einsum("nshw,sk->nhwk", np.asarray(src[..., 0]),
                            np.asarray(mm)))
  np.testing.assert_allclose(y, expect, rtol=1e-5, atol=1e-6)
  rgb = ops.mix(jnp.ones((1, 3, 2, 2, 3)), mm)
  assert rgb.shape == (1, 2, 2, 12)


@pytest.mark.parametrize("call,match", [
    (lambda: ops.blur(jnp.zeros((4, 4, 1)), jnp.ones((3, 3))), "N, H, W, C"),
    (lambda: ops.blur(jnp.zeros((1, 4, 4, 1)), jnp.ones(3)), "2-D kernel"),
    (lambda: ops.mix(jnp.zeros((1, 3, 4, 4, 1)), jnp.ones((2, 1))), "S=3"),
    (lambda: ops.gaussian_kernel(0, 1.0), "size"),
    (lambda: ops.gaussian_kernel(3, 0.0), "sigma"),
    (lambda: ops.random_mixing(jax.random.key(0), 0, 1), "num_sources"),
])
def test_operator_errors(call, match):
  with pytest.raises(ValueError, match=match):
    call()


def test_add_noise_is_reproducible_per_key_and_has_its_sigma():
  y = jnp.zeros((4, 28, 28, 1)) - 1.0
  a = ops.add_noise(jax.random.key(3), y, 0.05)
  b = ops.add_noise(jax.random.key(3), y, 0.05)
  c = ops.add_noise(jax.random.key(4), y, 0.05)
  np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
  assert not np.allclose(np.asarray(a), np.asarray(c))
  n = np.asarray(a - y)
  assert abs(n.std() - 0.05) < 0.003 and abs(n.mean()) < 0.005
  assert ops.add_noise(jax.random.key(3), y, 0.0) is y
  with pytest.raises(ValueError, match="sigma must be >= 0"):
    ops.add_noise(jax.random.key(3), y, -0.1)


@pytest.mark.parametrize("boundary, scipy_mode", [
    ("zero", "constant"), ("scene", "nearest"), ("reflect", "mirror"),
    ("circular", "wrap")])
@pytest.mark.parametrize("kshape", [(5, 4), (3, 3)])
def test_blur_boundaries_match_scipy(boundary, scipy_mode, kshape):
  from scipy import ndimage
  rng = np.random.default_rng(0)
  x = rng.normal(size=(2, 12, 10, 1)).astype(np.float32)
  k = rng.normal(size=kshape).astype(np.float32)
  got = np.asarray(ops.blur(x, k, boundary=boundary))
  # lax's SAME puts an even kernel's extra padding after: scipy's origin -1
  origin = tuple(-1 if s % 2 == 0 else 0 for s in kshape)
  ref = np.stack([ndimage.correlate(x[i, ..., 0], k, mode=scipy_mode,
                                    origin=origin) for i in range(2)])
  np.testing.assert_allclose(got[..., 0], ref, atol=1e-5)


def test_blur_boundaries_agree_inside_and_the_scene_has_no_frame():
  x = np.asarray(data.load_images("mnist5k", "test", limit=2))
  k = ops.gaussian_kernel(9, 2.0)
  outs = {b: np.asarray(ops.blur(x, k, boundary=b)) for b in ops.BOUNDARIES}
  for b, out in outs.items():                  # 4 pixels from the border
    np.testing.assert_allclose(out[:, 4:-4, 4:-4], outs["zero"][:, 4:-4, 4:-4],
                               atol=1e-6, err_msg=b)
  flat = -np.ones((1, 28, 28, 1), np.float32)   # the background alone
  np.testing.assert_allclose(ops.blur(flat, k, boundary="scene"), flat,
                             atol=1e-6)
  assert float(ops.blur(flat, k, "zero")[0, 0, 0, 0]) > -0.5   # grey frame
  np.testing.assert_array_equal(ops.blur(x, k), outs["scene"])  # default
  np.testing.assert_array_equal(ops.edges(x, boundary="circular"),
                                ops.blur(x, ops.SOBEL, boundary="circular"))
  with pytest.raises(ValueError, match="boundary must be one of"):
    ops.blur(x, k, boundary="mirror")


def test_downsample_filters_then_keeps_every_factor_th_pixel():
  x = jax.random.uniform(jax.random.key(0), (2, 8, 12, 1), minval=-1)
  np.testing.assert_array_equal(ops.downsample(x, 2), x[:, ::2, ::2])
  k = ops.gaussian_kernel(3, 1.0)
  y = ops.downsample(x, 4, k)
  assert y.shape == (2, 2, 3, 1)
  np.testing.assert_allclose(y, ops.blur(x, k)[:, ::4, ::4], atol=1e-6)
  with pytest.raises(ValueError, match="multiple of factor 5"):
    ops.downsample(x, 5)


def test_mask_fills_lost_pixels_and_masks_have_their_share():
  x = jax.random.uniform(jax.random.key(0), (3, 28, 28, 1), minval=-1)
  m = ops.random_pixel_mask(jax.random.key(1), (28, 28), 0.4)
  assert set(np.unique(np.asarray(m))) == {0.0, 1.0}
  assert abs(1 - float(m.mean()) - 0.4) < 0.06
  y = ops.mask(x, m, fill=-1.0)
  seen = np.asarray(m, bool)
  np.testing.assert_array_equal(np.asarray(y)[:, seen], np.asarray(x)[:, seen])
  assert np.all(np.asarray(y)[:, ~seen] == -1.0)
  s = np.asarray(ops.scratch_mask(jax.random.key(2), (28, 28), count=3,
                                  width=2.0))
  assert 0.05 < 1 - s.mean() < 0.5                 # three thick lines
  with pytest.raises(ValueError, match="does not fit"):
    ops.mask(x, jnp.ones((27, 28, 2, 2)))


def test_measure_is_a_linear_map_of_the_flattened_images():
  x = jax.random.uniform(jax.random.key(0), (4, 6, 6, 1), minval=-1)
  a = ops.gaussian_matrix(jax.random.key(1), 36, 10)
  y = ops.measure(x, a)
  assert y.shape == (4, 10)
  np.testing.assert_allclose(y, np.asarray(x).reshape(4, -1) @ np.asarray(a),
                             rtol=1e-5, atol=1e-5)
  with pytest.raises(ValueError, match="must be \\[M=36, K\\]"):
    ops.measure(x, a[:35])
