"""The surrogate families for observations that are not a filter on the
prior's grid: a mask, a filter then a mask, a filter then a smaller grid."""
import warnings

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from blindinv_jax import operators as ops
from blindinv_jax.models import surrogates


def _init(module, x):
  return module.init(jax.random.key(0), x)


def test_each_family_makes_its_shape():
  x = jnp.zeros((2, 28, 28, 2))                       # two sources
  for name, want in (("mask", (2, 28, 28, 1)), ("conv_mask", (2, 28, 28, 1)),
                     ("downsample", (2, 14, 14, 1))):
    m = surrogates.make_surrogate(name, 1, factor=2)
    out = jax.eval_shape(lambda v, m=m: m.init_with_output(
        jax.random.key(0), v)[0], x)
    assert out.shape == want, name
  m = surrogates.make_surrogate("downsample", 3, factor=4)
  assert m.apply(_init(m, jnp.zeros((1, 28, 28, 1))),
                 jnp.zeros((1, 28, 28, 1))).shape == (1, 7, 7, 3)
  with pytest.raises(ValueError, match="'downsample'"):
    surrogates.make_surrogate("upsample", 1)


def test_mask_starts_at_the_identity_and_draws_a_known_mask():
  x = jax.random.uniform(jax.random.key(1), (3, 8, 8, 1), minval=-1)
  m = surrogates.make_surrogate("mask", 1)
  p = _init(m, x)
  np.testing.assert_array_equal(m.apply(p, x), x)     # nothing lost yet
  keep = ops.random_pixel_mask(jax.random.key(2), (8, 8), 0.4)
  p = {"params": {"gain": keep[:, :, None], "offset":
                  (1 - keep)[:, :, None] * 0.5}}
  np.testing.assert_allclose(m.apply(p, x), ops.mask(x, keep, fill=0.5),
                             atol=1e-7)
  np.testing.assert_array_equal(surrogates.learned_mask(p)[..., 0], keep)


def test_downsample_with_a_delta_is_the_operator_and_its_kernel_composes():
  x = jax.random.uniform(jax.random.key(1), (2, 16, 16, 1), minval=-1)
  m = surrogates.make_surrogate("downsample", 1, factor=2)
  p = _init(m, x)
  k = np.asarray(surrogates.effective_kernel(p))[:, :, 0, 0]
  assert k.shape == (10, 10)
  # The full-grid filter with the composed kernel, sampled every 2 pixels:
  # y[i] = sum_v C[v] x[2i + v - 4] (v over the 10 taps, 4 = k - 1).
  xp = np.pad(np.asarray(x)[..., 0], ((0, 0), (4, 5), (4, 5)), mode="edge")
  full = np.stack([[[np.sum(k * xp[b, i:i + 10, j:j + 10]) for j in range(16)]
                    for i in range(16)] for b in range(2)])
  got = np.asarray(m.apply(p, x))[..., 0]
  # Equal away from the border (the surrogate pads per layer).
  np.testing.assert_allclose(got[:, 3:5, 3:5], full[:, 6:10:2, 6:10:2],
                             atol=1e-5)
  w1 = np.zeros((5, 5, 1, 16), np.float32)
  w1[2, 2, 0, 0] = 1.0
  w2 = np.zeros((5, 5, 16, 1), np.float32)
  w2[:, :, 0, 0] = np.asarray(ops.gaussian_kernel(5, 1.0))
  p = {"params": {"conv1": {"kernel": jnp.asarray(w1)},
                  "conv2": {"kernel": jnp.asarray(w2)},
                  "down": p["params"]["down"]}}
  want = ops.downsample(x, 2, ops.gaussian_kernel(5, 1.0))
  np.testing.assert_allclose(m.apply(p, x), want, atol=1e-6)


def test_a_smaller_grid_solves_with_downsample_and_a_bad_one_is_refused(
    tiny_run, tmp_path):
  from blindinv_jax import cli, solver
  _, prior = tiny_run
  x = prior.generate(prior.sample_latents(jax.random.key(5), 4))   # 8x8
  y = ops.downsample(x, 2, ops.gaussian_kernel(3, 1.0))             # 4x4
  cfg = solver.SolverConfig(outer_steps=2, surrogate_steps=5, latent_steps=5,
                            alpha=0.0, unroll=1)
  res = solver.solve(y, prior, config=cfg)                   # "auto"
  assert isinstance(res.surrogate, surrogates.DownsampleSurrogate)
  assert res.surrogate.factor == 2
  assert res.sources.shape == (4, 1, 8, 8, 1)
  assert res.reconstruction.shape == y.shape
  with pytest.raises(ValueError, match="no surrogate family makes that grid"):
    solver.solve(np.zeros((4, 3, 3, 1), np.float32), prior, config=cfg)
  with pytest.raises(ValueError, match="maps \\[1, 8, 8, 1\\] to"):
    solver.solve(y, prior, surrogate="conv_scene", config=cfg)
  np.save(tmp_path / "y.npy", np.asarray(y))
  argv = ["solve", "--observations", str(tmp_path / "y.npy"), "--prior",
          str(tiny_run[0]), "--out", str(tmp_path / "out"), "--outer-steps",
          "2", "--surrogate-steps", "3", "--latent-steps", "3"]
  assert cli.main(argv) == 0
  out = tmp_path / "out"
  assert np.load(out / "sources.npy").shape[-3:-1] == (8, 8)
  assert (out / "figure.png").is_file() and (out / "kernel.png").is_file()


def test_flat_measurements_solve_with_dense_and_a_mask_is_drawn(tiny_run,
                                                                 tmp_path):
  from blindinv_jax import cli, solver
  _, prior = tiny_run
  x = prior.generate(prior.sample_latents(jax.random.key(5), 6))   # 8x8
  a = ops.gaussian_matrix(jax.random.key(3), 64, 10)
  y = ops.measure(x, a)                                             # [6, 10]
  m = surrogates.make_surrogate("dense", 10)
  assert m.apply(_init(m, jnp.zeros((1, 8, 8, 1))),
                 jnp.zeros((2, 8, 8, 1))).shape == (2, 10)
  cfg = solver.SolverConfig(outer_steps=2, surrogate_steps=5, latent_steps=5,
                            alpha=0.0, unroll=1)
  with warnings.catch_warnings():
    warnings.simplefilter("error")                   # no channel note
    res = solver.solve(y, prior, config=cfg)                        # "auto"
  assert isinstance(res.surrogate, surrogates.DenseSurrogate)
  assert res.reconstruction.shape == (6, 10)
  assert res.sources.shape == (6, 1, 8, 8, 1)
  np.save(tmp_path / "y.npy", np.asarray(y))
  base = ["--prior", str(tiny_run[0]), "--outer-steps", "2",
          "--surrogate-steps", "3", "--latent-steps", "3"]
  assert cli.main(["solve", "--observations", str(tmp_path / "y.npy"),
                   "--out", str(tmp_path / "flat"), *base]) == 0
  assert (tmp_path / "flat" / "figure.png").is_file()
  keep = ops.random_pixel_mask(jax.random.key(4), (8, 8), 0.4)
  np.save(tmp_path / "m.npy", np.asarray(ops.mask(x, keep, fill=-1.0)))
  assert cli.main(["solve", "--observations", str(tmp_path / "m.npy"),
                   "--out", str(tmp_path / "mask"), "--surrogate", "mask",
                   *base]) == 0
  assert np.load(tmp_path / "mask" / "learned_mask.npy").shape == (8, 8, 1)
  assert (tmp_path / "mask" / "mask.png").is_file()


def test_new_shapes_resume_bit_for_bit_in_minibatch_mode(tiny_run, tmp_path):
  from blindinv_jax import solver
  _, prior = tiny_run
  x = prior.generate(prior.sample_latents(jax.random.key(5), 6))
  cases = {"dense": ops.measure(x, ops.gaussian_matrix(
               jax.random.key(3), 64, 10)),
           "downsample": ops.downsample(x, 2, ops.gaussian_kernel(3, 1.0))}
  cfg = solver.SolverConfig(outer_steps=4, surrogate_steps=3, latent_steps=3,
                            alpha=0.0, unroll=1, batch_size=4)
  for fam, y in cases.items():
    whole = solver.solve(y, prior, surrogate=fam, config=cfg)
    ck = tmp_path / fam
    solver.solve(y, prior, surrogate=fam, config=cfg.replace(outer_steps=2),
                 checkpoint_dir=ck, checkpoint_every=1)
    resumed = solver.solve(y, prior, surrogate=fam, config=cfg,
                           checkpoint_dir=ck, checkpoint_every=1)
    np.testing.assert_array_equal(resumed.sources, whole.sources, err_msg=fam)
    loaded = solver.load_result(ck, y, prior, surrogate=fam, config=cfg)
    np.testing.assert_array_equal(loaded.reconstruction,
                                  whole.reconstruction, err_msg=fam)
