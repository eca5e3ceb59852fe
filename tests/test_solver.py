from functools import partial

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from blindinv_jax import (
  algorithm,
  backend,
  metrics,
  operators as ops,
  runner,
  solver,
)
from blindinv_jax.models import surrogates
from blindinv_jax.models.surrogates import make_surrogate

from conftest import solve_step

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
  res = solver.solve(y, prior, surrogate="conv", num_sources=1, config=cfg)
  assert res.sources.shape == (6, 1, 8, 8, 1)
  assert res.latents.shape == (6, 1, 8)
  assert res.reconstruction.shape == y.shape
  assert res.history["latent_loss"].shape == (6, 1)
  h = np.asarray(res.history["latent_loss"][:, 0])
  assert h[-1] < h[0]
  assert float(jnp.abs(res.latents).max()) <= 1.0


def test_same_key_same_result_and_no_retrace(blur_problem):
  prior, _, y = blur_problem
  a = solver.solve(y, prior, surrogate="conv", config=FAST, key=jax.random.key(3))
  compiled = runner.run_chunk._cache_size()
  b = solver.solve(y + 0.01, prior, surrogate="conv", config=FAST, key=jax.random.key(3))
  c = solver.solve(y, prior, surrogate="conv", config=FAST, key=jax.random.key(3))
  assert runner.run_chunk._cache_size() == compiled   # data change: no retrace
  np.testing.assert_array_equal(a.sources, c.sources)
  np.testing.assert_array_equal(a.history["latent_loss"],
                                c.history["latent_loss"])
  assert not np.array_equal(a.sources, b.sources)


def test_vmapped_restarts_equal_a_loop_over_restarts(blur_problem):
  prior, _, y = blur_problem
  cfg = FAST.replace(restarts=3)
  module = make_surrogate("conv", 1)
  state = solver.init_state(jax.random.key(1), y, prior, module, cfg, 1)
  sl = lambda tree, r: jax.tree_util.tree_map(lambda a: a[r:r + 1], tree)
  singles = [state.replace(z=state.z[r:r + 1],
                           surrogate_params=sl(state.surrogate_params, r),
                           surrogate_opt=sl(state.surrogate_opt, r),
                           latent_opt=sl(state.latent_opt, r))
             for r in range(3)]
  batched, m = solve_step(jax.tree_util.tree_map(jnp.copy, state), y,
                                 prior, module, cfg)
  cfg1 = cfg.replace(restarts=1)
  for r, s in enumerate(singles):
    s = jax.tree_util.tree_map(jnp.copy, s)   # outer_step donates its state
    one, m1 = solve_step(s, y, prior, module, cfg1)
    np.testing.assert_allclose(one.z[0], batched.z[r], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(m1["latent_loss"][0], m["latent_loss"][r],
                               rtol=1e-5)


def test_latent_phase_equals_a_loop_over_observations(blur_problem):
  prior, _, y = blur_problem
  module = KnownBlur(KERNEL)
  z = prior.sample_latents(jax.random.key(2), (6, 1))
  cfg = FAST.replace(alpha=1e-2)
  phase = jax.jit(partial(algorithm.latent_phase, prior=prior, surrogate=module,
                          config=cfg, unroll=1))
  z_all = phase(z, optax.adam(1e-2).init(z), {}, y)[0]
  for j in range(6):
    z_j = phase(z[j:j + 1], optax.adam(1e-2).init(z[j:j + 1]), {},
                y[j:j + 1])[0]
    np.testing.assert_allclose(z_j[0], z_all[j], rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("batch_size", [None, 4])
def test_latent_gradient_in_pieces_equals_one_piece(blur_problem, batch_size):
  prior, _, y = blur_problem
  module = make_surrogate("conv", 1)
  base = FAST.replace(batch_size=batch_size, grad_pieces=1)
  state = solver.init_state(jax.random.key(4), y, prior, module, base, 1)
  one, m1 = solve_step(jax.tree_util.tree_map(jnp.copy, state), y, prior,
                      module, base)
  assert backend.piece_bounds(6, 4) == [(0, 2), (2, 3), (3, 4), (4, 6)]
  four, m4 = solve_step(jax.tree_util.tree_map(jnp.copy, state), y, prior,
                        module, base.replace(grad_pieces=4))
  np.testing.assert_allclose(four.z, one.z, rtol=1e-5, atol=1e-6)
  np.testing.assert_allclose(m4["latent_loss"], m1["latent_loss"], rtol=1e-5)


def test_known_forward_model_latent_phase_recovers_a_prior_sample(blur_problem):
  prior, x, y = blur_problem
  module = KnownBlur(KERNEL)
  cfg = FAST.replace(latent_steps=300, latent_lr=5e-2, alpha=0.0)
  z0 = prior.sample_latents(jax.random.key(11), (6, 1))
  z, _, _ = jax.jit(partial(algorithm.latent_phase, prior=prior, surrogate=module,
                            config=cfg, unroll=1))(
      z0, optax.adam(cfg.latent_lr).init(z0), {}, y)
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
    (np.zeros(8), {}, r"\[N, H, W, C_obs\]"),
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
    (np.zeros((2, 8, 8, 1)),
     {"config": solver.SolverConfig(grad_pieces=0)}, "grad_pieces"),
    (np.zeros((2, 8, 8, 1)), {"surrogate": nn.Conv(3, (3, 3))},
     r"observations need \[1, 8, 8, 1\]"),
    (np.zeros((2, 8, 8, 1)), {"checkpoint_every": 0}, "checkpoint_every"),
])
def test_bad_input_is_refused_before_tracing(tiny_run, y, kw, match):
  _, prior = tiny_run
  before = runner.run_chunk._cache_size()
  with pytest.raises(ValueError, match=match):
    solver.solve(y, prior, **kw)
  assert runner.run_chunk._cache_size() == before


class TwoChannelOnly(nn.Module):
  """A surrogate that only accepts 2 stacked input channels."""

  @nn.compact
  def __call__(self, x):
    if x.shape[-1] != 2:
      raise TypeError(f"expected 2 input channels, got {x.shape[-1]}")
    return nn.Dense(1)(x)


def test_more_sources_than_the_surrogate_takes_is_refused(tiny_run):
  _, prior = tiny_run
  with pytest.raises(ValueError, match="cannot take 3 source"):
    solver.solve(np.zeros((2, 8, 8, 1)), prior, num_sources=3,
                 surrogate=TwoChannelOnly())


def test_observations_far_out_of_range_warn(blur_problem):
  prior, _, y = blur_problem
  with pytest.warns(UserWarning, match="rescale"):
    solver.solve(np.asarray(y) * 127.5 + 127.5, prior, surrogate="conv",
                 config=FAST.replace(outer_steps=1))


def test_channel_note_only_for_one_source_with_more_channels(tiny_run):
  from blindinv_jax import validation
  _, prior = tiny_run                                   # grayscale
  rgb = np.zeros((2, 8, 8, 3), np.float32)
  assert "invent 2 channel(s)" in validation.channel_notes(rgb, prior, 1)[0]
  # Four mixtures of three digits: more mixtures than sources, no note.
  assert validation.channel_notes(np.zeros((2, 8, 8, 4)), prior, 3) == []
  assert validation.channel_notes(np.zeros((2, 8, 8, 1)), prior, 1) == []


@pytest.mark.filterwarnings("ignore:observations reach")
def test_non_finite_loss_stops_and_keeps_the_last_finite_state(blur_problem):
  prior, _, y = blur_problem
  # Finite observations whose L1 error overflows float32 at the first step.
  y_big = np.full(np.shape(y), 3e38, np.float32)
  with pytest.warns(RuntimeWarning, match="stopped at outer step 1 of 3"):
    res = solver.solve(y_big, prior, surrogate="conv", config=FAST)
  assert "latent loss" in res.message or "surrogate loss" in res.message
  assert int(res.state.step) == 0
  assert res.history["latent_loss"].shape == (0, 1)
  assert np.all(np.isfinite(res.sources)) and np.all(np.isfinite(res.latents))
  fresh = solver.init_state(jax.random.key(0), jnp.asarray(y_big), prior,
                            res.surrogate, FAST, 1)
  np.testing.assert_array_equal(res.state.z, fresh.z)


class Interrupt(Exception):
  pass


def test_killed_and_resumed_solve_is_bitwise_identical(blur_problem, tmp_path):
  prior, _, y = blur_problem
  cfg = FAST.replace(outer_steps=5, restarts=2)
  full = solver.solve(y, prior, surrogate="conv", config=cfg, key=jax.random.key(7))

  def kill_after_3(step, m):
    if step == 3:
      raise Interrupt()
  with pytest.raises(Interrupt):
    solver.solve(y, prior, surrogate="conv", config=cfg, key=jax.random.key(7),
                 checkpoint_dir=tmp_path, checkpoint_every=2,
                 callback=kill_after_3)
  from blindinv_jax import checkpoint
  assert checkpoint.read_header(tmp_path / "solve_state.ckpt")["meta"][
      "step"] == 2
  steps = []
  resumed = solver.solve(y, prior, surrogate="conv", config=cfg, key=jax.random.key(7),
                         checkpoint_dir=tmp_path, checkpoint_every=2,
                         callback=lambda t, m: steps.append(t))
  assert steps == [3, 4, 5]
  for a, b in ((full.sources, resumed.sources), (full.latents, resumed.latents),
               (full.state.latent_opt, resumed.state.latent_opt),
               (full.surrogate_params, resumed.surrogate_params),
               (full.history, resumed.history)):
    jax.tree_util.tree_map(np.testing.assert_array_equal, a, b)
  assert jax.random.key_data(resumed.state.key).tolist() == \
      jax.random.key_data(full.state.key).tolist()
  # Longer run from the finished checkpoint: only outer_steps may change.
  longer = solver.solve(y, prior, surrogate="conv", config=cfg.replace(outer_steps=6),
                        key=jax.random.key(7), checkpoint_dir=tmp_path)
  assert longer.history["latent_loss"].shape == (6, 2)


@pytest.mark.parametrize("change,match", [
    (dict(y_scale=1.01), "observations"),
    (dict(config=dict(latent_lr=1e-3)), r"solver config \(latent_lr"),
    (dict(key=8), "PRNG key"),
])
def test_resume_of_a_different_solve_is_refused(blur_problem, tmp_path,
                                                 change, match):
  prior, _, y = blur_problem
  cfg = FAST.replace(outer_steps=2)
  solver.solve(y, prior, surrogate="conv", config=cfg, key=jax.random.key(7),
               checkpoint_dir=tmp_path)
  y2 = y * change.get("y_scale", 1.0)
  cfg2 = cfg.replace(**change.get("config", {}))
  with pytest.raises(ValueError, match=match):
    solver.solve(y2, prior, surrogate="conv", config=cfg2,
                 key=jax.random.key(change.get("key", 7)),
                 checkpoint_dir=tmp_path)


def test_corrupted_solve_checkpoint_is_refused(blur_problem, tmp_path):
  from blindinv_jax import checkpoint
  prior, _, y = blur_problem
  cfg = FAST.replace(outer_steps=1)
  solver.solve(y, prior, surrogate="conv", config=cfg, checkpoint_dir=tmp_path)
  path = tmp_path / "solve_state.ckpt"
  data = bytearray(path.read_bytes())
  data[-5] ^= 0xFF
  path.write_bytes(bytes(data))
  with pytest.raises(checkpoint.CheckpointError, match="checksum"):
    solver.solve(y, prior, surrogate="conv", config=cfg, checkpoint_dir=tmp_path)


def test_init_latents_start_restart_zero_there(blur_problem, tmp_path):
  prior, x, y = blur_problem
  z_true = prior.sample_latents(jax.random.key(5), 6)[:, None]  # made x
  cfg = FAST.replace(outer_steps=1, restarts=2)
  # Through the true forward model, one outer step from the true latents
  # ends far below one from random latents.
  known = KnownBlur(KERNEL)
  warm = solver.solve(y, prior, config=cfg, surrogate=known,
                      init_latents=z_true)
  cold = solver.solve(y, prior, config=cfg, surrogate=known)
  assert warm.state.z.shape == cold.state.z.shape == (2, 6, 1, 8)
  np.testing.assert_array_equal(warm.state.z[1], cold.state.z[1])
  assert (float(warm.history["latent_loss"][0, 0]) <
          0.5 * float(cold.history["latent_loss"][0, 0]))
  with pytest.raises(ValueError, match=r"init_latents must be \[N, S, L\]"):
    solver.solve(y, prior, surrogate="conv", config=cfg, init_latents=z_true[:, 0])
  # A checkpoint remembers the start: resuming from another one is refused.
  solver.solve(y, prior, surrogate="conv", config=cfg, init_latents=z_true,
               checkpoint_dir=tmp_path)
  with pytest.raises(ValueError, match="initial latents"):
    solver.solve(y, prior, surrogate="conv", config=cfg, checkpoint_dir=tmp_path)
