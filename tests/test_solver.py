from functools import partial

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from blindinv_jax import metrics, operators as ops, solver
from blindinv_jax.models import surrogates

FAST = solver.SolverConfig(outer_steps=3, surrogate_steps=4, latent_steps=4,
                           latent_lr=3e-2, unroll=2)


class KnownBlur(nn.Module):
  """The true forward model as a parameter-free 'surrogate'."""
  kernel: tuple

  @nn.compact
  def __call__(self, x):
    return ops.blur(x, jnp.asarray(self.kernel))


KERNEL = tuple(map(tuple, np.asarray(ops.gaussian_kernel(3, 1.0)).tolist()))


@pytest.fixture(scope="module")
def blur_problem(tiny_run):
  _, prior = tiny_run
  x = prior.generate(prior.sample_latents(jax.random.key(5), 6))
  y = ops.blur(x, jnp.asarray(KERNEL))
  return prior, x, y


def test_solve_shapes_history_and_loss_falls(blur_problem):
  prior, x, y = blur_problem
  cfg = FAST.replace(outer_steps=6)
  res = solver.solve(y, prior, num_sources=1, config=cfg)
  assert res.sources.shape == (6, 1, 8, 8, 1)
  assert res.latents.shape == (6, 1, 8)
  assert res.reconstruction.shape == y.shape
  assert res.history["latent_loss"].shape == (6, 1)
  h = np.asarray(res.history["latent_loss"][:, 0])
  assert h[-1] < h[0]
  assert float(jnp.abs(res.latents).max()) <= 1.0


def test_same_key_same_result_and_no_retrace(blur_problem):
  prior, _, y = blur_problem
  a = solver.solve(y, prior, config=FAST, key=jax.random.key(3))
  compiled = solver.outer_step._cache_size()
  b = solver.solve(y + 0.01, prior, config=FAST, key=jax.random.key(3))
  c = solver.solve(y, prior, config=FAST, key=jax.random.key(3))
  assert solver.outer_step._cache_size() == compiled   # data change: no retrace
  np.testing.assert_array_equal(a.sources, c.sources)
  np.testing.assert_array_equal(a.history["latent_loss"],
                                c.history["latent_loss"])
  assert not np.array_equal(a.sources, b.sources)


def test_vmapped_restarts_equal_a_loop_over_restarts(blur_problem):
  prior, _, y = blur_problem
  cfg = FAST.replace(restarts=3)
  module = solver.make_surrogate("conv", 1)
  state = solver.init_state(jax.random.key(1), y, prior, module, cfg, 1)
  sl = lambda tree, r: jax.tree_util.tree_map(lambda a: a[r:r + 1], tree)
  singles = [state.replace(z=state.z[r:r + 1],
                           surrogate_params=sl(state.surrogate_params, r),
                           surrogate_opt=sl(state.surrogate_opt, r),
                           latent_opt=sl(state.latent_opt, r))
             for r in range(3)]
  batched, m = solver.outer_step(jax.tree_util.tree_map(jnp.copy, state), y,
                                 prior, module, cfg)
  cfg1 = cfg.replace(restarts=1)
  for r, s in enumerate(singles):
    s = jax.tree_util.tree_map(jnp.copy, s)   # outer_step donates its state
    one, m1 = solver.outer_step(s, y, prior, module, cfg1)
    np.testing.assert_allclose(one.z[0], batched.z[r], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(m1["latent_loss"][0], m["latent_loss"][r],
                               rtol=1e-5)


def test_latent_phase_equals_a_loop_over_observations(blur_problem):
  prior, _, y = blur_problem
  module = KnownBlur(KERNEL)
  z = prior.sample_latents(jax.random.key(2), (6, 1))
  cfg = FAST.replace(alpha=1e-2)
  phase = jax.jit(partial(solver.latent_phase, prior=prior, surrogate=module,
                          config=cfg, unroll=1))
  z_all = phase(z, solver.optax.adam(1e-2).init(z), {}, y)[0]
  for j in range(6):
    z_j = phase(z[j:j + 1], solver.optax.adam(1e-2).init(z[j:j + 1]), {},
                y[j:j + 1])[0]
    np.testing.assert_allclose(z_j[0], z_all[j], rtol=1e-5, atol=1e-6)


def test_known_forward_model_latent_phase_recovers_a_prior_sample(blur_problem):
  prior, x, y = blur_problem
  module = KnownBlur(KERNEL)
  cfg = FAST.replace(latent_steps=300, latent_lr=5e-2, alpha=0.0)
  z0 = prior.sample_latents(jax.random.key(11), (6, 1))
  z, _, _ = jax.jit(partial(solver.latent_phase, prior=prior, surrogate=module,
                            config=cfg, unroll=1))(
      z0, solver.optax.adam(cfg.latent_lr).init(z0), {}, y)
  start = float(metrics.psnr(prior.generate(z0)[:, 0], x).mean())
  got = float(metrics.psnr(prior.generate(z)[:, 0], x).mean())
  assert got > 30.0 and got > start + 10.0


def test_effective_kernel_of_a_known_surrogate():
  k = np.random.default_rng(0).normal(size=(5, 5)).astype(np.float32)
  w1 = np.zeros((5, 5, 1, 16), np.float32)
  w1[2, 2, 0, 3] = 1.0                          # filter 3 passes the input
  w2 = np.zeros((5, 5, 16, 1), np.float32)
  w2[:, :, 3, 0] = k
  params = {"params": {"conv1": {"kernel": w1, "bias": np.zeros(16)},
                       "conv2": {"kernel": w2, "bias": np.zeros(1)}}}
  eff = np.asarray(surrogates.effective_kernel(params))
  expect = np.zeros((9, 9), np.float32)
  expect[2:7, 2:7] = k
  np.testing.assert_allclose(eff[:, :, 0, 0], expect, atol=1e-6)


@pytest.mark.parametrize("y,kw,match", [
    (np.zeros((4, 8, 8)), {}, "add a channel axis"),
    (np.zeros((8, 8)), {}, r"\[N, H, W, C_obs\]"),
    (np.zeros((2, 28, 28, 1)), {}, "prior generates 8x8"),
    (np.full((2, 8, 8, 1), np.nan), {}, "NaN or Inf"),
    (np.zeros((2, 8, 8, 1)), {"num_sources": 0}, "num_sources"),
    (np.zeros((2, 8, 8, 1)), {"surrogate": "mlp"}, "Unknown surrogate"),
    (np.zeros((2, 8, 8, 1)),
     {"config": solver.SolverConfig(latent_lr=0.0)}, "latent_lr"),
    (np.zeros((2, 8, 8, 1)),
     {"config": solver.SolverConfig(outer_steps=0)}, "outer_steps"),
    (np.zeros((2, 8, 8, 1)),
     {"config": solver.SolverConfig(unroll=True)}, "unroll"),
])
def test_bad_input_is_refused_before_tracing(tiny_run, y, kw, match):
  _, prior = tiny_run
  before = solver.outer_step._cache_size()
  with pytest.raises(ValueError, match=match):
    solver.solve(y, prior, **kw)
  assert solver.outer_step._cache_size() == before
