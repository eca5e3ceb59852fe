"""SolverConfig.recentre: the shift, the second solve, the rule that keeps one."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from blindinv_jax import operators as ops, recentre, solver
from blindinv_jax.models import surrogates

CFG = solver.SolverConfig(outer_steps=2, surrogate_steps=5, latent_steps=5,
                          alpha=0.0, unroll=1)


def test_shift_sources_moves_the_sources_back_by_the_centroid():
  x = -np.ones((1, 1, 8, 8, 1), np.float32)
  x[0, 0, 4, 3, 0] = 1.0
  moved = recentre.shift_sources(x, [1.0, -2.0])    # whole pixels: exact
  assert moved.shape == x.shape
  assert np.unravel_index(np.argmax(moved[0, 0, :, :, 0]), (8, 8)) == (3, 5)
  np.testing.assert_allclose(recentre.shift_sources(x, [0.0, 0.0]), x)
  half = recentre.shift_sources(x, [0.5, 0.0])[0, 0, :, 3, 0]
  assert half[3] == pytest.approx(half[4], abs=1e-5) and half.max() < 1.0
  assert moved.min() >= -1.0 and half.max() <= 1.0         # clipped


def test_the_shift_undoes_what_an_off_centre_kernel_does():
  """An effective kernel centred at c maps sources shifted by +c to what a
  centred one maps the sources themselves to (rows, cols)."""
  m = surrogates.make_surrogate("conv_scene", 1)
  x = -np.ones((1, 12, 12, 1), np.float32)
  x[0, 5:7, 4:6, 0] = 1.0
  w1 = np.zeros((5, 5, 1, 16), np.float32)
  w1[2, 2, 0, 0] = 1.0
  w2 = np.zeros((5, 5, 16, 1), np.float32)
  w2[3, 1, 0, 0] = 1.0                               # centroid (+1, -1)
  p = {"params": {"conv1": {"kernel": jnp.asarray(w1)},
                  "conv2": {"kernel": jnp.asarray(w2)}}}
  c = np.asarray(surrogates.kernel_centroid(p))
  np.testing.assert_allclose(c, [1.0, -1.0], atol=1e-6)
  x_pair = recentre.shift_sources(x[None], -c)[0]   # the solve's sources
  np.testing.assert_allclose(m.apply(p, jnp.asarray(x_pair)), x, atol=1e-5)
  np.testing.assert_allclose(recentre.shift_sources(x_pair[None], c)[0], x,
                             atol=1e-5)             # moved back


def _observations(prior):
  x = prior.generate(prior.sample_latents(jax.random.key(5), 4))
  return ops.blur(x, ops.gaussian_kernel(3, 1.0), boundary="scene")


def test_recentre_off_or_centred_enough_is_the_plain_solve_bit_for_bit(
    tiny_run):
  _, prior = tiny_run
  y = _observations(prior)
  plain = solver.solve(y, prior, surrogate="conv_scene", config=CFG)
  far = solver.solve(y, prior, surrogate="conv_scene",
                     config=CFG.replace(recentre=100.0))
  assert far.recentred is None and plain.recentred is None
  for a, b in zip(jax.tree_util.tree_leaves(
      (plain.state.z, plain.state.surrogate_params, plain.sources)),
                  jax.tree_util.tree_leaves(
      (far.state.z, far.state.surrogate_params, far.sources))):
    np.testing.assert_array_equal(a, b)


def test_recentre_runs_a_second_solve_and_keeps_by_the_centred_rule(
    tiny_run, tmp_path):
  _, prior = tiny_run
  y = _observations(prior)
  first = solver.solve(y, prior, surrogate="conv_scene", config=CFG)
  res = solver.solve(y, prior, surrogate="conv_scene",
                     config=CFG.replace(recentre=0.0),
                     checkpoint_dir=tmp_path)
  z = recentre.start(first, prior, jax.random.key(0))
  assert z.shape == first.latents.shape
  second = solver.solve(y, prior, surrogate="conv_scene", config=CFG,
                        init_latents=z)
  info = res.recentred
  off = [float(surrogates.kernel_off_centre(r.surrogate_params))
         for r in (first, second)]
  fit = [float(jnp.mean(jnp.abs(r.reconstruction - y)))
         for r in (first, second)]
  np.testing.assert_allclose(info["off_centre"], off, atol=1e-3)
  np.testing.assert_allclose(info["fit"], fit, rtol=1e-4)
  ok = [i for i in (0, 1) if off[i] <= min(off) + solver.CENTRE_TOLERANCE]
  want = min(ok, key=lambda i: fit[i])
  assert info["kept"] == ("first", "second")[want]
  np.testing.assert_allclose(res.sources, (first, second)[want].sources,
                             atol=1e-6)
  assert (tmp_path / "recentred" / solver.CHECKPOINT_NAME).is_file()
  assert (tmp_path / solver.CHECKPOINT_NAME).is_file()
  assert "kept the" in recentre.describe(info)


def test_recentre_restarts_start_every_restart_from_the_moved_back_sources(
    tiny_run):
  """recentre_restarts=R: the second solve is R restarts, all from the
  moved-back latents with their own surrogates, one kept by ``select``; it
  is the plain solve of those latents [R, N, S, L] at ``restarts=R``."""
  _, prior = tiny_run
  y = _observations(prior)
  cfg = CFG.replace(recentre=0.0, recentre_restarts=3, select="centred")
  two = recentre.second_config(cfg)
  assert (two.restarts, two.recentre, two.recentre_restarts) == (3, None, 1)
  assert recentre.second_config(CFG.replace(recentre=0.0)) == CFG
  first = solver.solve(y, prior, surrogate="conv_scene", config=cfg.replace(
      recentre=None, recentre_restarts=1))
  z = recentre.start(first, prior, jax.random.key(0), 3)
  assert z.shape == (3,) + first.latents.shape
  second = solver.solve(y, prior, surrogate="conv_scene", config=two,
                        init_latents=z)
  from blindinv_jax import algorithm
  module = surrogates.make_surrogate("conv_scene", 1)
  st = algorithm.init_state(jax.random.key(0), y, prior, module, two, 1, z)
  np.testing.assert_allclose(st.z, prior.project_latents(z, two.clip))
  w = st.surrogate_params["params"]["conv1"]["kernel"]
  assert not np.allclose(w[0], w[1])                # their own surrogates
  res = solver.solve(y, prior, surrogate="conv_scene", config=cfg)
  kept = (first, second)[("first", "second").index(res.recentred["kept"])]
  np.testing.assert_allclose(res.sources, kept.sources, atol=1e-6)
  np.testing.assert_allclose(
      res.recentred["off_centre"][1],
      float(surrogates.kernel_off_centre(second.surrogate_params)), atol=1e-3)
  with pytest.raises(ValueError, match="one start per restart"):
    solver.solve(y, prior, surrogate="auto", config=two, init_latents=z)
  with pytest.raises(ValueError, match=r"\[R, N, S, L\] = \[1,"):
    solver.solve(y, prior, surrogate="conv_scene", config=CFG, init_latents=z)
  with pytest.raises(ValueError, match="recentre_restarts must be"):
    CFG.replace(recentre_restarts=0).validate()


def test_recentre_refusals_and_families_without_a_kernel(tiny_run):
  _, prior = tiny_run
  y = _observations(prior)
  with pytest.raises(ValueError, match="recentre must be None or a distance"):
    CFG.replace(recentre=-1.0).validate()
  CFG.replace(recentre=0.0).validate()                  # 0: always
  with pytest.raises(ValueError, match="does not run on a mesh"):
    recentre.check(CFG.replace(recentre=0.25), mesh=object())
  with pytest.warns(UserWarning, match="has none"):
    res = solver.solve(y, prior, surrogate="mixing",
                       config=CFG.replace(recentre=0.25))
  assert res.recentred is None


def test_an_experiment_records_what_recentre_kept(tiny_run, tmp_path):
  """reproduce.py's blind method with recentre: metrics.json says which
  solve was kept, and a rerun loads it from the method's checkpoint."""
  import dataclasses
  import json

  from blindinv_jax import experiment as E

  from conftest import ROOT, load_experiment_module
  _, prior = tiny_run
  rep = load_experiment_module("paper/reproduce")
  cfg = rep.load_config(ROOT / "experiments" / "paper" / "configs" /
                        "mnist_edges.py")
  assert cfg.solver.recentre == 0.0                 # the edge-map config's
  cfg = cfg.replace(methods=("blind",), show=2,
                    solver=CFG.replace(recentre=0.0),
                    data=dataclasses.replace(cfg.data, n=2))
  E.run_experiment(cfg, tmp_path, progress=False, prior=prior)
  saved = json.loads((tmp_path / "metrics.json").read_text())
  info = saved["methods"]["blind"]["recentred"]
  assert info["kept"] in ("first", "second") and len(info["fit"]) == 2
  again = E.run_experiment(cfg, tmp_path, progress=False, prior=prior)
  assert again["methods"]["blind"]["recentred"] == info
