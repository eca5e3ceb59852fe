"""Range extension (issue 31): the intermediate-layer hook, the l1 ball, the
extended prior through solve and pgd, and the solve without it unchanged."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from blindinv_jax import (
  baselines,
  data,
  extension,
  operators as ops,
  priors,
  solver,
)
from blindinv_jax.config import SolverConfig

QUICK = SolverConfig(outer_steps=2, surrogate_steps=2, latent_steps=3,
                     latent_lr=1e-2, unroll=1)
KERNEL = ops.gaussian_kernel(3, 1.0)


@pytest.fixture(scope="module")
def digits():
  x = jnp.asarray(data.load_images("mnist5k", "val", limit=4, image_size=8))
  return x, ops.blur(x, KERNEL, "scene")


def test_every_depth_composes_to_the_generator(tiny_run):
  prior = tiny_run[1]
  z = prior.sample_latents(jax.random.key(0), (3, 2))
  x = prior.generate(z)
  shapes = prior.depth_shapes
  assert shapes[-1] == prior.image_shape
  for d, shape in enumerate(shapes):
    h = prior.intermediate(z, d)
    assert h.shape == (3, 2, *shape)
    np.testing.assert_allclose(prior.from_intermediate(h, d), x, atol=1e-6)


def test_the_vae_decoder_has_the_hook_too():
  from blindinv_jax.models import vae
  cfg = vae.VAE_TINY
  enc, dec = vae.init_variables_fn(cfg, jax.random.key(0))
  prior = priors.VAEPrior(dec_vars=dec, enc_vars=enc, config=cfg)
  z = prior.sample_latents(jax.random.key(1), (2,))
  for d in range(len(prior.depth_shapes)):
    np.testing.assert_allclose(
        prior.from_intermediate(prior.intermediate(z, d), d),
        prior.generate(z), atol=1e-6)


@pytest.mark.parametrize("radius", [0.5, 3.0, 100.0])
def test_l1_ball_projection_is_the_nearest_point_of_the_ball(radius):
  v = jax.random.normal(jax.random.key(0), (5, 40))
  p = extension.l1_ball(v, radius)
  norms = np.abs(np.asarray(p)).sum(-1)
  assert np.all(norms <= radius * (1 + 1e-5))
  inside = np.abs(np.asarray(v)).sum(-1) <= radius
  np.testing.assert_allclose(np.asarray(p)[inside], np.asarray(v)[inside])
  # the projection is nearer than random points of the ball's surface
  u = jax.random.normal(jax.random.key(1), (200, 40))
  u = radius * u / jnp.abs(u).sum(-1, keepdims=True)
  for i in np.flatnonzero(~inside):
    d = np.linalg.norm(np.asarray(p[i] - v[i]))
    assert d <= np.linalg.norm(np.asarray(u - v[i]), axis=-1).min() + 1e-5


def test_the_ball_keeps_every_step_within_its_radius(tiny_run, digits):
  prior = tiny_run[1]
  cfg = QUICK.replace(extension="ilo", extension_depth=1,
                      extension_radius=0.01, latent_lr=0.5)
  res = solver.solve(digits[1], prior, surrogate="conv_scene", config=cfg)
  xp = extension.extend(prior, cfg)
  size = xp.deviation_size
  assert res.deviations.shape == (4, 1, *prior.depth_shapes[1])
  assert res.latents.shape == (4, 1, prior.latent_dim)
  l1 = np.abs(np.asarray(res.deviations)).reshape(4, -1).sum(-1)
  assert np.all(l1 <= 0.01 * size * (1 + 1e-5)) and np.any(l1 > 0)
  np.testing.assert_allclose(
      res.sources, xp.generate(jnp.concatenate(
          [res.latents, res.deviations.reshape(4, 1, -1)], -1)), atol=1e-5)


def test_sparse_deviations_shrink_to_zero_with_a_large_threshold(tiny_run,
                                                                 digits):
  prior = tiny_run[1]
  cfg = QUICK.replace(extension="sparse", extension_shrink=10.0)
  res = solver.solve(digits[1], prior, surrogate="conv_scene", config=cfg)
  assert res.deviations.shape == (4, 1, *prior.image_shape)
  assert np.all(np.asarray(res.deviations) == 0)
  np.testing.assert_allclose(res.sources, prior.generate(res.latents),
                             atol=1e-6)


def test_without_the_extension_the_solve_is_unchanged(tiny_run, digits):
  prior = tiny_run[1]
  assert extension.extend(prior, QUICK) is prior
  a = solver.solve(digits[1], prior, surrogate="conv_scene", config=QUICK)
  b = solver.solve(digits[1], prior, surrogate="conv_scene", config=QUICK.replace(
      extension_radius=0.3, extension_shrink=0.2, extension_depth=2))
  np.testing.assert_array_equal(a.sources, b.sources)
  assert a.deviations is None and b.deviations is None
  ident = solver.solve_identity(np.asarray(digits[1]), prior, a.surrogate,
                                QUICK, 1, jax.random.key(0))
  assert not any(k.startswith("extension") for k in ident["config"])


def test_pgd_takes_the_extension(tiny_run, digits):
  prior = tiny_run[1]
  fwd = lambda s: ops.blur(s[:, 0], KERNEL, "scene")
  cfg = QUICK.replace(extension="ilo", extension_depth=0,
                      extension_radius=0.02)
  x, z, _ = baselines.pgd(digits[1], prior, fwd, config=cfg)
  assert x.shape == (4, 1, 8, 8, 1) and z.shape == (4, 1, prior.latent_dim)


def test_a_prior_without_the_hook_refuses_ilo_and_takes_sparse(digits):
  w = jax.random.normal(jax.random.key(2), (5, 64)) * 0.5
  prior = priors.from_function(
      lambda p, z: jnp.tanh(z @ p["w"]).reshape(z.shape[0], 8, 8, 1),
      {"w": w}, latent_dim=5)
  with pytest.raises(ValueError, match="does not expose its intermediate "
                     "layers .*extension='sparse'"):
    solver.solve(digits[1], prior, surrogate="conv_scene",
                 config=QUICK.replace(extension="ilo", alpha=0.0))
  res = solver.solve(digits[1], prior, surrogate="conv_scene",
                     config=QUICK.replace(extension="sparse", alpha=0.0))
  assert res.deviations.shape == (4, 1, 8, 8, 1)


@pytest.mark.parametrize("change, match", [
    ({"extension": "wavelet"}, "extension must be None or one of"),
    ({"extension": "ilo", "extension_depth": 9}, "extension_depth must be"),
    ({"extension_radius": 0.0}, "extension_radius"),
    ({"extension_shrink": -1.0}, "extension_shrink must be >= 0"),
])
def test_bad_extension_settings_are_refused(tiny_run, digits, change, match):
  with pytest.raises(ValueError, match=match):
    solver.solve(digits[1], tiny_run[1], surrogate="conv_scene",
                 config=QUICK.replace(**change))


def test_before_extension_from_the_steps_are_the_plain_solves(tiny_run,
                                                              digits):
  prior = tiny_run[1]
  plain = solver.solve(digits[1], prior, surrogate="conv_scene", config=QUICK)
  cfg = QUICK.replace(extension="ilo", extension_depth=1,
                      extension_radius=0.01)
  late = solver.solve(digits[1], prior, surrogate="conv_scene",
                      config=cfg.replace(extension_from=QUICK.outer_steps))
  np.testing.assert_allclose(late.sources, plain.sources, atol=1e-5)
  assert np.all(np.asarray(late.deviations) == 0)
  on = solver.solve(digits[1], prior, surrogate="conv_scene",
                    config=cfg.replace(extension_from=1, latent_lr=0.5))
  assert np.any(np.asarray(on.deviations) != 0)


def test_the_blind_signal_reads_the_range_part(tiny_run, digits):
  from blindinv_jax import verdict
  from blindinv_jax.algorithm import stack_sources
  prior, y = tiny_run[1], digits[1]
  res = solver.solve(y, prior, surrogate="conv_scene", config=QUICK.replace(
      extension="sparse", extension_shrink=0.0, latent_lr=0.5))
  assert np.any(np.asarray(res.deviations) != 0)
  sig = res.blind_signal(y, prior, steps=3)
  src = prior.generate(res.latents)
  ref = verdict.solve_signal(y, res.surrogate.apply(
      res.surrogate_params, stack_sources(src)), src, prior, 3)
  assert sig["fit_db"] == pytest.approx(ref["fit_db"])
  full = verdict.solve_signal(y, res.reconstruction, res.sources, prior, 3)
  assert sig["fit_db"] != pytest.approx(full["fit_db"])
