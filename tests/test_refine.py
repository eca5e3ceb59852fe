"""Latent restarts per observation under a fixed forward model (refine.py)."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from blindinv_jax import latent, metrics, operators as ops, refine, solver

CFG = solver.SolverConfig(outer_steps=4, latent_steps=25, latent_lr=5e-2,
                          alpha=0.0, unroll=1)
K3 = ops.gaussian_kernel(3, 1.0)


def blur3(params, x):
  return ops.blur(x[:, 0], K3)


@pytest.fixture(scope="module")
def sample(tiny_run):
  _, prior = tiny_run
  z = prior.sample_latents(jax.random.key(5), (6, 1))
  return prior, z, blur3(None, prior.generate(z))


def _errors(prior, z, y):
  return np.asarray(latent.observation_errors(z[None], None, y, prior,
                                              blur3))[0]


def test_refine_never_raises_an_observations_error_and_keeps_a_perfect_z(
    sample):
  prior, z_true, y = sample
  # A poor start: other latents. Every observation's L1 error may only fall.
  z0 = prior.sample_latents(jax.random.key(9), (6, 1))
  z, picked, err = refine.refine_latents(y, prior, blur3, None, z0,
                                         restarts=3, config=CFG)
  assert z.shape == z0.shape and picked.shape == (6,) and err.shape == (6,)
  assert set(np.asarray(picked).tolist()) <= {0, 1, 2, 3}
  before = _errors(prior, z0, y)
  np.testing.assert_allclose(np.asarray(err), _errors(prior, z, y),
                             rtol=1e-4, atol=1e-3)
  assert np.all(np.asarray(err) <= before + 1e-3)
  assert np.mean(np.asarray(err)) < np.mean(before)
  # Fresh starts found better latents, and the sources are closer.
  x_true = prior.generate(z_true)[:, 0]
  assert float(metrics.psnr(prior.generate(z)[:, 0], x_true).mean()) > \
      float(metrics.psnr(prior.generate(z0)[:, 0], x_true).mean())
  # Given the true latents (error 0), every observation keeps them.
  _, picked, err = refine.refine_latents(y, prior, blur3, None, z_true,
                                         restarts=2, config=CFG)
  assert np.all(np.asarray(picked) == 0)
  assert float(np.max(np.asarray(err))) < 1e-3


def test_refine_same_key_same_result_and_bad_input(sample):
  prior, _, y = sample
  z0 = prior.sample_latents(jax.random.key(3), (6, 1))
  a = refine.refine_latents(y, prior, blur3, None, z0, restarts=2, config=CFG,
                            key=jax.random.key(4))
  b = refine.refine_latents(y, prior, blur3, None, z0, restarts=2, config=CFG,
                            key=jax.random.key(4))
  for u, v in zip(a, b):
    np.testing.assert_array_equal(np.asarray(u), np.asarray(v))
  with pytest.raises(ValueError, match="z must be \\[N, S, L\\]"):
    refine.refine_latents(y, prior, blur3, None, z0[:3], config=CFG)
  with pytest.raises(ValueError, match="restarts"):
    refine.refine_latents(y, prior, blur3, None, z0, restarts=0, config=CFG)
  assert refine.picked_summary(np.array([0, 2, 0])) == (
      "kept the given latents for 2 of 3 observations; a fresh start for 1")


@pytest.mark.slow          # CI's 15-minute budget; test_cli covers --refine
@pytest.mark.parametrize("grid", ["same", "smaller"])
def test_refine_solve_through_the_surrogate(sample, grid):
  """On the sources' grid (conv) and on a grid half as fine (the
  downsample family: super-resolution, ``blind_refine``'s x2 row)."""
  prior, z, y = sample
  if grid == "smaller":
    y = ops.downsample(prior.generate(z)[:, 0], 2, K3)        # [6, 4, 4, 1]
  cfg = solver.SolverConfig(outer_steps=3, surrogate_steps=5, latent_steps=5,
                            latent_lr=5e-2, unroll=1)
  res = solver.solve(y, prior, surrogate="conv" if grid == "same" else
                     "downsample", config=cfg)
  err0 = np.sum(np.abs(np.asarray(res.reconstruction - y)), axis=(1, 2, 3))
  new, picked = refine.refine_solve(res, y, prior, restarts=2, config=cfg)
  assert new.sources.shape == res.sources.shape
  assert new.latents.shape == res.latents.shape
  err1 = np.sum(np.abs(np.asarray(new.reconstruction - y)), axis=(1, 2, 3))
  assert np.all(err1 <= err0 + 1e-3)
  # The surrogate is the solve's; kept observations keep their sources.
  assert jax.tree_util.tree_all(jax.tree_util.tree_map(
      lambda a, b: bool(jnp.all(a == b)), new.surrogate_params,
      res.surrogate_params))
  keep = np.asarray(picked) == 0
  np.testing.assert_allclose(np.asarray(new.sources)[keep],
                             np.asarray(res.sources)[keep], atol=1e-6)
