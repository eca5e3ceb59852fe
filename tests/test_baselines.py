
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from blindinv_jax import baselines, metrics, operators as ops, solver

CFG = solver.SolverConfig(outer_steps=6, latent_steps=50, latent_lr=5e-2,
                          alpha=0.0, unroll=1, restarts=2)
K3 = ops.gaussian_kernel(3, 1.0)


def blur3(x):
  return ops.blur(x[:, 0], K3)


@pytest.fixture(scope="module")
def sample(tiny_run):
  _, prior = tiny_run
  x = prior.generate(prior.sample_latents(jax.random.key(5), 4))
  return prior, x


def test_pgd_with_known_forward_recovers_a_prior_sample(sample):
  prior, x = sample
  y = blur3(x[:, None])
  start = prior.generate(prior.sample_latents(jax.random.key(0), 4))
  losses = []
  x_hat, z, loss = baselines.pgd(y, prior, blur3, config=CFG,
                                 callback=lambda t, l: losses.append(l.min()))
  assert x_hat.shape == (4, 1, 8, 8, 1) and z.shape == (4, 1, 8)
  assert loss.shape == (2,) and losses[-1] < losses[0]
  got = float(metrics.psnr(x_hat[:, 0], x).mean())
  assert got > 30.0 and got > float(metrics.psnr(start, x).mean()) + 10


def test_pgd_without_forward_fits_the_observation_itself(sample):
  prior, x = sample
  x_hat, _, _ = baselines.pgd(x, prior, config=CFG)
  assert float(metrics.psnr(x_hat[:, 0], x).mean()) > 30.0
  with pytest.raises(ValueError, match="needs num_sources=1"):
    baselines.pgd(x, prior, num_sources=2, config=CFG)
  with pytest.raises(ValueError, match="forward must be a function"):
    baselines.pgd(x, prior, forward="blur", config=CFG)


def test_pgd_same_key_same_result(sample):
  prior, x = sample
  a = baselines.pgd(x, prior, config=CFG.replace(outer_steps=2),
                    key=jax.random.key(3))
  b = baselines.pgd(x, prior, config=CFG.replace(outer_steps=2),
                    key=jax.random.key(3))
  np.testing.assert_array_equal(a[0], b[0])


def test_naive_additive_fits_a_sum_of_two_sources(sample):
  prior, x = sample
  y = jnp.concatenate([x[:2] + x[2:]] * 3, axis=-1)     # 3 identical mixtures
  src, z, _ = baselines.naive_additive(y, prior, 2, config=CFG)
  assert src.shape == (2, 2, 8, 8, 1) and z.shape == (2, 2, 8)
  fit = baselines.additive_forward(src, 3)
  assert float(jnp.mean(jnp.abs(fit - y))) < 0.1


@pytest.mark.parametrize("boundary", ["zero", "scene"])
@pytest.mark.parametrize("kh,kw", [(3, 3), (4, 4), (3, 5), (9, 9)])
def test_wiener_inverts_a_noise_free_blur(kh, kw, boundary):
  """Images on a -1 background, blurred with either border convention: the
  Wiener filter that knows F (border included) inverts them exactly."""
  core = jax.random.uniform(jax.random.key(0), (2, 10, 10, 2), minval=-1,
                            maxval=1)
  x = jnp.full((2, 20, 20, 2), -1.0).at[:, 5:15, 5:15].set(core)
  k = jax.random.uniform(jax.random.key(kh * 10 + kw), (kh, kw)) + 0.3
  y = ops.blur(x, k, boundary)
  x_hat = baselines.wiener_deconvolution(y, k, balance=1e-7, background=-1.0,
                                         boundary=boundary)
  assert float(metrics.psnr(x_hat, x).min()) > 60.0
  # Without removing the background's response the inversion is much worse.
  naive = baselines.wiener_deconvolution(y, k, balance=1e-7,
                                         boundary=boundary)
  assert float(metrics.psnr(naive, x).mean()) < 40.0


def test_wiener_refuses_bad_input():
  with pytest.raises(ValueError, match="kernel must be 2-D"):
    baselines.wiener_deconvolution(np.zeros((1, 8, 8, 1)), np.ones(3))
  with pytest.raises(ValueError, match="balance must be >= 0"):
    baselines.wiener_deconvolution(np.zeros((1, 8, 8, 1)), np.ones((3, 3)),
                                   balance=-1)


def test_ica_separates_a_linear_2x2_mixture():
  rng = np.random.default_rng(0)
  h = w = 32
  # Two independent sparse (positively skewed) images.
  s = (rng.random((2, h, w)) < 0.15).astype(np.float64) * rng.uniform(
      0.5, 1, (2, h, w))
  s = 2 * s - 1
  m = np.array([[1.0, 0.6], [0.4, 1.0]])
  y = np.einsum("sk,shw->hwk", m, s)[None]             # [1, H, W, 2]
  est = baselines.ica(y, 2)
  true = np.asarray(metrics.normalize_intensity(jnp.asarray(
      s[None, :, :, :, None], jnp.float32)))
  _, _, scores = metrics.match_sources(est, true)
  assert scores.min() > 30.0
  # The unmixed mixtures themselves are far from the sources.
  mixed = np.asarray(metrics.normalize_intensity(jnp.asarray(
      np.moveaxis(y, -1, 1)[..., None], jnp.float32)))
  assert metrics.match_sources(mixed, true)[2].min() < 25.0
  assert baselines.ica(y[..., :1], 2) is None          # fewer mixtures


def test_bicubic_upsample_puts_each_sample_back_on_its_pixel():
  r = np.arange(16, dtype=np.float32) / 8 - 1            # a ramp in [-1, 1)
  x = jnp.asarray(np.add.outer(r, 0.5 * r)[None, :, :, None])
  y = ops.downsample(x, 2)
  up = baselines.bicubic_upsample(y, 2)
  assert up.shape == x.shape
  np.testing.assert_allclose(np.asarray(up)[0, ::2, ::2], np.asarray(y)[0],
                             atol=1e-5)                  # samples kept
  np.testing.assert_allclose(np.asarray(up)[0, 2:-3, 2:-3],
                             np.asarray(x)[0, 2:-3, 2:-3], atol=1e-4)
  # Past the last sample (bottom, right) the image continues: a constant
  # background stays itself at x4, it does not fade to 0.
  flat = baselines.bicubic_upsample(-jnp.ones((1, 4, 4, 1)), 4)
  np.testing.assert_allclose(np.asarray(flat), -1.0, atol=1e-5)


def test_pgd_with_a_known_downsampling_solves_a_smaller_grid(sample):
  prior, x = sample
  k = ops.gaussian_kernel(3, 1.0)
  y = ops.downsample(x, 2, k)
  fwd = lambda s: ops.downsample(s[:, 0], 2, k)
  x_hat, _, _ = baselines.pgd(y, prior, fwd, config=CFG)
  assert x_hat.shape == (4, 1, 8, 8, 1)
  assert float(metrics.psnr(x_hat[:, 0], x).mean()) > float(metrics.psnr(
      baselines.bicubic_upsample(y, 2), x).mean())


def test_known_matrix_baselines_invert_compressed_measurements():
  from blindinv_jax import data
  x = jnp.asarray(data.load_images("mnist5k", "val", limit=3, image_size=8))
  a = ops.gaussian_matrix(jax.random.key(0), 64, 40)       # K < M
  y = ops.measure(x, a)
  ls = baselines.least_squares_measurements(y, a, (8, 8, 1))
  np.testing.assert_allclose(ops.measure(ls, a), y, atol=1e-4)  # consistent
  lasso = baselines.lasso_measurements(y, a, (8, 8, 1), lam=1e-3)
  assert lasso.shape == x.shape
  assert float(metrics.psnr(lasso, x).mean()) > float(metrics.psnr(
      ls, x).mean())                         # sparsity helps below M
  full = ops.gaussian_matrix(jax.random.key(1), 64, 64)
  np.testing.assert_allclose(baselines.least_squares_measurements(
      ops.measure(x, full), full, (8, 8, 1)), x, atol=1e-3)


def test_biharmonic_inpainting_fills_only_the_lost_pixels():
  from blindinv_jax import data
  x = np.asarray(data.load_images("mnist5k", "val", limit=2))
  keep = np.asarray(ops.random_pixel_mask(jax.random.key(0), (28, 28), 0.4))
  y = np.asarray(ops.mask(x, keep, fill=0.0))
  out = baselines.inpaint_biharmonic(y, keep)
  seen = keep.astype(bool)
  np.testing.assert_allclose(out[:, seen], x[:, seen], atol=1e-6)
  assert float(metrics.psnr(out, x).mean()) > float(metrics.psnr(y, x).mean()) + 5
