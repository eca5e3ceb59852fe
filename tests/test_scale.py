"""Minibatch mode and sharding over devices."""
import os
import subprocess
import sys
import textwrap

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from blindinv_jax import algorithm, minibatch, operators as ops, runner, solver
from blindinv_jax.minibatch import minibatch_plan
from blindinv_jax.models.surrogates import make_surrogate

from conftest import solve_step

CFG = solver.SolverConfig(outer_steps=3, surrogate_steps=4, latent_steps=4,
                          latent_lr=3e-2, unroll=1, restarts=2)


@pytest.fixture(scope="module")
def problem(tiny_run):
  _, prior = tiny_run
  x = prior.generate(prior.sample_latents(jax.random.key(5), 10))
  return prior, ops.blur(x, ops.gaussian_kernel(3, 1.0))


def _copy(tree):
  return jax.tree_util.tree_map(jnp.copy, tree)   # steps donate their state


def test_minibatch_step_with_one_batch_equals_the_full_step(problem):
  prior, y = problem
  module = make_surrogate("conv", 1)
  s0 = solver.init_state(jax.random.key(1), y, prior, module, CFG, 1)
  full, mf = solve_step(_copy(s0), y, prior, module, CFG)
  mini, mm = solve_step(_copy(s0), y, prior, module,
                        CFG.replace(batch_size=10))
  np.testing.assert_allclose(mini.z, full.z, atol=1e-6)
  jax.tree_util.tree_map(lambda a, b: np.testing.assert_allclose(
      a, b, rtol=1e-5, atol=1e-6), (mini.surrogate_params, mini.latent_opt),
                         (full.surrogate_params, full.latent_opt))
  np.testing.assert_allclose(mm["latent_loss"], mf["latent_loss"], rtol=1e-5)
  # solve() with batch_size >= N is the full-batch solver, bit for bit.
  a = solver.solve(y, prior, surrogate="conv", config=CFG)
  b = solver.solve(y, prior, surrogate="conv", config=CFG.replace(batch_size=64))
  np.testing.assert_array_equal(a.sources, b.sources)


def test_minibatch_epoch_updates_every_latent_once(problem):
  prior, y = problem
  cfg = CFG.replace(batch_size=4)                 # 3 batches, 2 padding rows
  module = make_surrogate("conv", 1)
  s0 = solver.init_state(jax.random.key(1), y, prior, module, cfg, 1)
  s1, m = solve_step(_copy(s0), y, prior, module, cfg)
  adam = s1.latent_opt[0]
  np.testing.assert_array_equal(adam.count, [4, 4])        # T2 per epoch
  # Every latent moved and got first moments (no row skipped) ...
  assert np.all(np.any(np.asarray(s1.z != s0.z), axis=(2, 3)))
  assert np.all(np.any(np.asarray(adam.mu) != 0, axis=(2, 3)))
  idx, valid = minibatch_plan(s0.key, s0.step, 10, 4)
  assert sorted(np.asarray(idx)[np.asarray(valid) > 0].tolist()) == list(
      range(10))
  res = solver.solve(y, prior, surrogate="conv", config=cfg.replace(outer_steps=6))
  h = np.asarray(res.history["latent_loss"][:, 0])
  assert h[-1] < h[0]
  again = solver.solve(y, prior, surrogate="conv", config=cfg.replace(outer_steps=6))
  np.testing.assert_array_equal(res.sources, again.sources)


def test_minibatch_step_memory_does_not_grow_with_n(tiny_run):
  """Compiled scratch memory: activations scale with B, not N.

  What still scales with N is one copy of the per-observation state (the
  latents and their two Adam moments, kept for the NaN rollback, and the
  shuffled index): about 100 bytes per observation here, 1.2 kB for MNIST.
  The full-batch step's scratch grows with N times the activations.
  """
  _, prior = tiny_run
  module = make_surrogate("conv", 1)
  cfg = CFG.replace(batch_size=8, restarts=1)

  def temp_bytes(n, step):
    y = jnp.zeros((n, 8, 8, 1))
    s = solver.init_state(jax.random.key(0), y, prior, module, cfg, 1)
    compiled = runner.run_chunk.lower(
        s, (y,), prior, step=step, settings=runner.Settings.of(cfg),
        static=(("config", cfg), ("surrogate", module))).compile()
    return compiled.memory_analysis().temp_size_in_bytes

  grow = (temp_bytes(1024, minibatch.minibatch_outer_step) -
          temp_bytes(64, minibatch.minibatch_outer_step)) / 960
  s, latent = 1, prior.latent_dim
  state_per_obs = 4 * 3 * s * latent + 4           # z, mu, nu (f32) + index
  assert grow <= 1.5 * state_per_obs, (grow, state_per_obs)
  full_grow = (temp_bytes(1024, algorithm.outer_step) -
               temp_bytes(64, algorithm.outer_step)) / 960
  assert full_grow > 10 * grow, (full_grow, grow)


def test_mesh_errors(problem):
  prior, y = problem
  mesh = jax.make_mesh((1,), ("batch",))
  with pytest.raises(ValueError, match="axis named 'data'"):
    solver.solve(y, prior, surrogate="conv", config=CFG, mesh=mesh)


SHARDED = textwrap.dedent("""
  import jax, jax.numpy as jnp, numpy as np
  from blindinv_jax import operators as ops, solver
  from blindinv_jax.models import dcgan
  from blindinv_jax.priors import GANPrior
  assert len(jax.devices()) == 4, jax.devices()
  g, d = dcgan.init_variables_fn(dcgan.TINY, jax.random.key(0))
  prior = GANPrior(g_vars=g, d_vars=d, config=dcgan.TINY, meta_json="{}")
  x = prior.generate(prior.sample_latents(jax.random.key(5), 8))
  y = ops.blur(x, ops.gaussian_kernel(3, 1.0))
  cfg = solver.SolverConfig(outer_steps=3, surrogate_steps=3, latent_steps=3,
                            latent_lr=3e-2, unroll=1, restarts=2)
  mesh = jax.make_mesh((4,), ("data",))
  for c in (cfg, cfg.replace(batch_size=4)):
    ref = solver.solve(y, prior, surrogate="conv", config=c)
    shd = solver.solve(y, prior, surrogate="conv", config=c, mesh=mesh)
    np.testing.assert_allclose(shd.sources, ref.sources, atol=2e-5)
    np.testing.assert_allclose(shd.history["latent_loss"],
                               ref.history["latent_loss"], rtol=1e-4)
    spec = shd.state.z.sharding.spec
    assert "data" in str(spec), spec
  try:
    solver.solve(y[:6], prior, surrogate="conv", config=cfg, mesh=mesh)
  except ValueError as e:
    assert "split evenly" in str(e)
  else:
    raise AssertionError("N=6 on 4 devices was not refused")
  print("SHARDED-OK")
""")


def test_sharded_equals_unsharded_on_4_simulated_devices():
  env = dict(os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=4",
             JAX_PLATFORMS="cpu")
  out = subprocess.run([sys.executable, "-c", SHARDED], env=env,
                       capture_output=True, text=True, timeout=900)
  assert "SHARDED-OK" in out.stdout, out.stderr[-3000:]
