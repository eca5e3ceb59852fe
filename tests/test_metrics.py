import jax
import jax.numpy as jnp
import numpy as np
import pytest

from blindinv_jax import metrics, operators as ops


def _images(seed=0, shape=(3, 28, 28, 1)):
  return jax.random.uniform(jax.random.key(seed), shape, minval=-1, maxval=1)


def test_psnr_and_ssim_of_identical_images():
  x = _images()
  np.testing.assert_allclose(metrics.psnr(x, x), 100.0)
  np.testing.assert_allclose(metrics.ssim(x, x), 1.0, atol=1e-5)


def test_psnr_known_value_and_range_mapping():
  x = jnp.zeros((1, 8, 8, 1))
  # An error of 0.2 in [-1, 1] is 0.1 in [0, 1]: 20 dB.
  np.testing.assert_allclose(metrics.psnr(x + 0.2, x), 20.0, rtol=1e-5)


def test_ssim_falls_with_blur_and_keeps_leading_axes():
  x = _images(shape=(2, 3, 28, 28, 1))
  blurred = ops.blur(x.reshape(6, 28, 28, 1), ops.gaussian_kernel(9, 2.0))
  s_blur = metrics.ssim(blurred.reshape(x.shape), x)
  s_mild = metrics.ssim(jnp.clip(x + 0.05, -1, 1), x)
  assert s_blur.shape == (2, 3)
  assert np.all(s_blur < s_mild) and np.all(s_mild < 1.0)


def test_kernel_error_invariant_to_shift_and_scale():
  k = np.asarray(ops.gaussian_kernel(9, 2.0))
  shifted = np.roll(np.pad(k, 2), (1, -2), axis=(0, 1)) * -3.0
  res = metrics.kernel_error(shifted, k)
  assert res["error"] < 1e-6 and res["ncc"] < -0.999999  # signed
  assert res["shift"] == [-1, 2]
  np.testing.assert_allclose(res["scale"], -1 / 3.0, rtol=1e-6)
  other = metrics.kernel_error(np.asarray(ops.SOBEL, np.float64), k)
  assert other["error"] > 0.5


def test_kernel_error_refuses_non_2d():
  with pytest.raises(ValueError, match="2-D kernels"):
    metrics.kernel_error(np.ones((3, 3, 1)), np.ones((3, 3)))


def test_summary():
  assert metrics.summary([1.0, 3.0]) == [2.0, 1.0]


def test_frechet_distance_matches_closed_form_and_is_zero_on_itself():
  rng = np.random.default_rng(0)
  a = rng.normal(size=(4000, 3))
  b = rng.normal(size=(4000, 3)) * 2.0 + 1.0
  # N(0, I) vs N(1, 4I): |mu|^2 = 3, Tr(I + 4I - 2*2I) = 3.
  assert abs(metrics.frechet_distance(a, b) - 6.0) < 0.3
  assert abs(metrics.frechet_distance(a, a)) < 1e-6
  with pytest.raises(ValueError, match="same d"):
    metrics.frechet_distance(a, b[:, :2])


def test_mask_iou_counts_lost_pixels_where_images_vary():
  true = np.ones((4, 4))
  true[1, 1] = true[2, 2] = 0                       # two lost pixels
  gain = np.ones((4, 4))
  gain[1, 1] = 0.1                                  # one found ...
  gain[0, 0] = 0.2                                  # ... one false alarm
  assert metrics.mask_iou(gain, true) == 1 / 3
  where = np.ones((4, 4), bool)
  where[0, 0] = False                               # never varies: ignored
  assert metrics.mask_iou(gain, true, where) == 0.5
  assert metrics.mask_iou(np.ones((4, 4)), np.ones((4, 4))) == 1.0
