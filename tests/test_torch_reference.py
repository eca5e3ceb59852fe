"""The PyTorch reference computes what the JAX solver computes (torch extra)."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

torch = pytest.importorskip("torch")

from blindinv_jax import operators as ops, solver  # noqa: E402
from blindinv_jax.models.surrogates import make_surrogate  # noqa: E402
from blindinv_jax.priors import load_prior  # noqa: E402

from conftest import load_experiment_module, solve_step  # noqa: E402


@pytest.fixture(scope="module")
def ref():
  return load_experiment_module("perf/torch_reference")


@pytest.fixture(scope="module")
def mnist():
  return load_prior("mnist")


def _nchw(a):
  return np.transpose(np.asarray(a), (0, 3, 1, 2))


def test_generator_and_discriminator_match(ref, mnist):
  g, d = ref.load_prior_into_torch(mnist)
  z = mnist.sample_latents(jax.random.key(0), 6)
  x = mnist.generate(z)
  with torch.no_grad():
    xt = g(torch.from_numpy(np.array(z)))
    np.testing.assert_allclose(xt.numpy(), _nchw(x), atol=2e-5)
    lt = d(torch.from_numpy(_nchw(x)))
  np.testing.assert_allclose(lt.numpy(), mnist.discriminate(x), rtol=1e-4,
                             atol=1e-4)


def test_rgb_transposed_convolutions_match(ref):
  """CELEBA64's 5x5 stride-2 layers (asymmetric SAME padding) too."""
  import dataclasses

  from blindinv_jax.models import dcgan
  from blindinv_jax.priors import GANPrior
  cfg = dataclasses.replace(dcgan.TINY, name="tiny_rgb5", image_shape=(8, 8, 3),
                            g_stages=((8, 5, 2), (3, 5, 2)),
                            d_stages=((8, 5, 2), (16, 5, 2)))
  gv, dv = dcgan.init_variables_fn(cfg, jax.random.key(1))
  prior = GANPrior(g_vars=gv, d_vars=dv, config=cfg, meta_json="{}")
  g, d = ref.load_prior_into_torch(prior)
  z = prior.sample_latents(jax.random.key(0), 3)
  with torch.no_grad():
    np.testing.assert_allclose(g(torch.from_numpy(np.array(z))).numpy(),
                               _nchw(prior.generate(z)), atol=2e-5)


@pytest.mark.parametrize("kind", ["conv", "mixing"])
def test_one_surrogate_step_and_one_latent_step_match(ref, mnist, kind):
  cfg = solver.PAPER.replace(surrogate_steps=1, latent_steps=1, outer_steps=1,
                             unroll=1, latent_lr=1e-2)
  from blindinv_jax.data import load_images
  x = jnp.asarray(load_images("mnist5k", "test", limit=4))
  if kind == "conv":
    y, s = ops.blur(x, ops.gaussian_kernel(9, 2.0)), 1
  else:
    x = x.reshape(2, 2, 28, 28, 1)
    y, s = ops.mix(x, ops.random_mixing(jax.random.key(0), 2, 3)), 2
  module = make_surrogate(kind, y.shape[-1])
  st = solver.init_state(jax.random.key(0), y, prior=mnist, surrogate=module,
                         config=cfg, num_sources=s)
  z0 = np.asarray(st.z[0])
  p0 = jax.tree_util.tree_map(lambda a: np.asarray(a[0]), st.surrogate_params)
  new, m = solve_step(jax.tree_util.tree_map(jnp.copy, st), y, mnist,
                             module, cfg)
  g, d, sur, s_opt, z, z_opt, yt = ref.make_problem(mnist, y, cfg, z0, p0,
                                                    kind)
  s_loss, dl = ref.outer_step(g, d, sur, s_opt, z, z_opt, yt, cfg)
  np.testing.assert_allclose(s_loss / yt.numel(), m["surrogate_loss"][0],
                             rtol=1e-4)
  np.testing.assert_allclose(dl / yt.numel(), m["latent_loss"][0], rtol=1e-4)
  np.testing.assert_allclose(z.detach().numpy(), new.z[0], atol=1e-5)
  p1 = jax.tree_util.tree_map(lambda a: np.asarray(a[0]),
                              new.surrogate_params)["params"]
  name = "conv1" if kind == "conv" else "dense1"
  w = (getattr(sur, name).conv.weight if kind == "conv" else
       getattr(sur, name).weight).detach().numpy()
  expect = (np.transpose(p1[name]["kernel"], (3, 2, 0, 1)) if kind == "conv"
            else p1[name]["kernel"].T)
  np.testing.assert_allclose(w, expect, atol=1e-5)
