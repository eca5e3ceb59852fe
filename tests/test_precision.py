"""SolverConfig.precision: which arithmetic G and D run in, and nothing else."""
import collections

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from blindinv_jax import operators as ops, precision, solver
from blindinv_jax.data import load_images
from blindinv_jax.models.surrogates import make_surrogate

FEW = solver.TUNED.replace(outer_steps=2, surrogate_steps=3, latent_steps=3,
                           unroll=1)


def _products(jaxpr, out=None):
  """(primitive, operand dtypes) of every convolution and matrix product,
  nested jaxprs (custom VJPs, loops) included."""
  out = collections.Counter() if out is None else out
  for e in jaxpr.eqns:
    for sub in jax.extend.core.jaxprs_in_params(e.params):
      _products(sub, out)
    if e.primitive.name in ("conv_general_dilated", "dot_general"):
      out[e.primitive.name, tuple(str(v.aval.dtype) for v in e.invars)] += 1
  return out


@pytest.fixture(scope="module")
def mnist():
  from blindinv_jax.priors import load_prior
  return load_prior("mnist")


@pytest.fixture(scope="module")
def blurred():
  x = jnp.asarray(load_images("mnist5k", "test", limit=3))
  return ops.blur(x, ops.gaussian_kernel(9, 2.0))


@pytest.fixture(scope="module")
def default_solve(mnist, blurred):
  return solver.solve(blurred, mnist, surrogate="conv", config=FEW)


def test_unknown_precision_is_refused():
  with pytest.raises(ValueError, match="precision must be None"):
    solver.TUNED.replace(precision="fp16").validate()


def test_bfloat16_runs_every_product_of_g_and_d_in_bfloat16(mnist):
  low = precision.lower_prior(mnist, "bfloat16")
  z = mnist.sample_latents(jax.random.key(0), (2, 1))

  def loss(z):
    return jnp.sum(low.discriminate(low.generate(z)))
  jx = jax.make_jaxpr(jax.value_and_grad(loss))(z)
  prods = _products(jx.jaxpr)
  assert prods and all(d == ("bfloat16", "bfloat16") for _, d in prods), prods
  # the forward and backward passes of both networks, all in bfloat16
  assert sum(prods.values()) > 40
  assert [str(a.dtype) for a in jx.out_avals] == ["float32", "float32"]
  assert low.generate(z).shape == (2, 1, 28, 28, 1)
  assert low.latent_dim == mnist.latent_dim
  assert low.image_shape == mnist.image_shape


def test_bfloat16_solve_keeps_state_and_losses_float32_and_is_close(
    mnist, blurred, default_solve):
  full = default_solve
  low = solver.solve(blurred, mnist, surrogate="conv",
                     config=FEW.replace(precision="bfloat16"))
  dtypes = {str(a.dtype) for a in jax.tree_util.tree_leaves(low.state)
            if jnp.issubdtype(a.dtype, jnp.floating)}
  assert dtypes == {"float32"}
  assert low.sources.dtype == jnp.float32
  assert np.all(np.isfinite(low.history["latent_loss"]))
  assert not np.array_equal(low.latents, full.latents)    # it did change
  # a few steps apart: the losses agree to bfloat16's ~3 digits
  np.testing.assert_allclose(low.history["latent_loss"],
                             full.history["latent_loss"], rtol=0.03)


@pytest.mark.skipif(jax.default_backend() != "cpu",
                    reason="the default is TF32 on recent GPUs")
def test_float32_on_cpu_is_the_default_bit_for_bit(mnist, blurred,
                                                   default_solve):
  a = default_solve
  b = solver.solve(blurred, mnist, surrogate="conv",
                   config=FEW.replace(precision="float32"))
  c = solver.solve(blurred, mnist, surrogate="conv",
                   config=FEW.replace(precision="tensorfloat32"))
  for r in (b, c):
    np.testing.assert_array_equal(a.latents, r.latents)
    np.testing.assert_array_equal(a.sources, r.sources)


def test_a_user_generator_function_can_run_in_bfloat16():
  from blindinv_jax import priors
  w = jax.random.normal(jax.random.key(0), (4, 16)) * 0.3
  prior = priors.from_function(
      lambda p, z: jnp.tanh(z @ p).reshape(-1, 4, 4, 1), w, latent_dim=4)
  low = precision.lower_prior(prior, "bfloat16")
  z = prior.sample_latents(jax.random.key(1), (3,))
  prods = _products(jax.make_jaxpr(low.generate)(z).jaxpr)
  assert set(prods) == {("dot_general", ("bfloat16", "bfloat16"))}
  np.testing.assert_allclose(low.generate(z), prior.generate(z), atol=0.02)


def test_the_default_leaves_checkpoint_identities_as_they_were(mnist, blurred):
  module = make_surrogate("conv", 1)
  ident = solver.solve_identity(np.asarray(blurred), mnist, module, FEW, 1,
                                jax.random.key(0))
  assert "precision" not in ident["config"]
  ident = solver.solve_identity(np.asarray(blurred), mnist, module,
                                FEW.replace(precision="bfloat16"), 1,
                                jax.random.key(0))
  assert ident["config"]["precision"] == "bfloat16"


def test_cpu_bf16_features_reads_the_flags():
  feats = precision.cpu_bf16_features()
  assert set(feats) <= {"avx512_bf16", "amx_bf16"}
