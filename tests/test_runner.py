"""The runner: every method's chunks, precision, NaN stop, checkpoint +
resume, one compile."""
import collections
import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from blindinv_jax import (
  algorithm,
  baselines,
  latent,
  operators as ops,
  project,
  refine,
  runner,
  solver,
)
from blindinv_jax.models.surrogates import make_surrogate

CFG = solver.FAST.replace(outer_steps=4, surrogate_steps=2, latent_steps=2)
KERNEL = ops.gaussian_kernel(3, 1.0)


def blur1(x):
  return ops.blur(x[:, 0], KERNEL)


@pytest.fixture(scope="module")
def problem(tiny_run):
  _, prior = tiny_run
  from blindinv_jax.data import load_images
  x = jnp.asarray(load_images("mnist5k", "val", limit=4, image_size=8))
  return prior, x, ops.blur(x, KERNEL)


def _products(jaxpr, out=None):
  """Counter of the operand dtypes of every convolution and matrix product
  in a jaxpr, nested jaxprs included."""
  out = collections.Counter() if out is None else out
  for e in jaxpr.eqns:
    for sub in jax.extend.core.jaxprs_in_params(e.params):
      _products(sub, out)
    if e.primitive.name in ("conv_general_dilated", "dot_general"):
      out[tuple(str(v.aval.dtype) for v in e.invars)] += 1
  return out


def _traced_products(step, state, args, prior, precision, **static):
  """The products of one runner chunk of ``step`` at ``precision``."""
  cfg = CFG.replace(precision=precision)
  static = tuple(sorted({**static, "config": cfg}.items()))
  chunk = functools.partial(runner._chunk, step=step,
                            settings=runner.Settings.of(cfg), static=static)
  return _products(jax.make_jaxpr(chunk)(state, args, prior).jaxpr)


def test_solver_and_pgd_run_g_and_d_at_the_configured_precision(problem):
  prior, _, y = problem
  module = make_surrogate("conv", 1)
  s0 = solver.init_state(jax.random.key(0), y, prior, module, CFG, 1)
  z = prior.sample_latents(jax.random.key(1), (1, y.shape[0], 1))
  pgd_state = latent.init(z, CFG)
  methods = {
      "blind solve": (algorithm.outer_step, s0, (y,),
                      {"surrogate": module}),
      "PGD + known F": (latent.step, pgd_state, (y, None),
                        {"forward": latent.ParamForward(known=blur1)}),
      "PGD": (latent.step, pgd_state, (y, None), {
          "forward": latent.ParamForward(known=baselines.identity_forward)}),
  }
  for name, (step, state, args, static) in methods.items():
    full = _traced_products(step, state, args, prior, None, **static)
    low = _traced_products(step, state, args, prior, "bfloat16", **static)
    assert ("bfloat16", "bfloat16") not in full, name
    # G's and D's products forward and backward are all bfloat16 ...
    assert low[("bfloat16", "bfloat16")] >= 10, (name, low)
    # ... and only the surrogate's (or the known blur's) stay float32.
    assert low[("float32", "float32")] < full[("float32", "float32")], name


def test_pgd_checkpoint_resumes_bit_for_bit(problem, tmp_path):
  prior, _, y = problem
  cfg = CFG.replace(restarts=2)
  whole = baselines.pgd(y, prior, blur1, config=cfg)
  baselines.pgd(y, prior, blur1, config=cfg.replace(outer_steps=2),
                checkpoint_dir=tmp_path)
  assert (tmp_path / "pgd_state.ckpt").is_file()
  before = runner.run_chunk._cache_size()
  resumed = baselines.pgd(y, prior, blur1, config=cfg,
                          checkpoint_dir=tmp_path)
  assert runner.run_chunk._cache_size() == before       # no retrace
  for a, b in zip(whole, resumed):
    np.testing.assert_array_equal(a, b)
  with pytest.raises(ValueError, match="key"):
    baselines.pgd(y, prior, blur1, config=cfg, key=jax.random.key(5),
                  checkpoint_dir=tmp_path)


def test_refine_and_project_checkpoint_resume_bit_for_bit(problem, tmp_path):
  prior, x, y = problem
  res = solver.solve(y, prior, surrogate="conv", config=CFG)
  fwd = latent.ParamForward(surrogate=res.surrogate)
  args = (y, prior, fwd, res.surrogate_params, res.latents)
  whole = refine.refine_latents(*args, restarts=2, config=CFG)
  refine.refine_latents(*args, restarts=2, config=CFG.replace(outer_steps=3),
                        checkpoint_dir=tmp_path / "r", checkpoint_every=1)
  resumed = refine.refine_latents(*args, restarts=2, config=CFG,
                                  checkpoint_dir=tmp_path / "r")
  for a, b in zip(whole, resumed):
    np.testing.assert_array_equal(a, b)
  whole = project.project(prior, x, steps=25, steps_per_call=10)
  project.project(prior, x, steps=10, steps_per_call=10,
                  checkpoint_dir=tmp_path / "p")
  resumed = project.project(prior, x, steps=25, steps_per_call=10,
                            checkpoint_dir=tmp_path / "p")
  for a, b in zip(whole, resumed):
    np.testing.assert_array_equal(a, b)
  with pytest.raises(ValueError, match="lr"):          # another run
    project.project(prior, x, steps=25, lr=0.1, steps_per_call=10,
                    checkpoint_dir=tmp_path / "p")


def test_a_non_finite_step_is_not_taken_and_stops_the_run(problem):
  prior, _, y = problem
  seen = []

  def explode(state, y, *, prior, unroll, at):
    new = state + 1.0
    new = jnp.where(new >= at, jnp.nan, new)
    return new, {"loss": jnp.sum(new)}
  with pytest.warns(RuntimeWarning, match="stopped at step 3 of 5: loss"):
    out = runner.run(explode, jnp.zeros(()), y, prior=prior, steps=5,
                     static={"at": 3.0}, callback=lambda t, m: seen.append(t))
  assert float(out.state) == 2.0 and out.steps == 2 and seen == [1, 2]
  assert len(out.history) == 2 and "finite" not in out.history[0]
  assert "returning the state after step 2" in out.message


def test_one_compile_for_every_call_of_a_method(problem):
  prior, _, y = problem
  baselines.pgd(y, prior, blur1, config=CFG)
  before = runner.run_chunk._cache_size()
  baselines.pgd(y + 0.01, prior, blur1, config=CFG, key=jax.random.key(9))
  assert runner.run_chunk._cache_size() == before
