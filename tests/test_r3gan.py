"""R3GAN's loss terms on the tiny DCGAN: the relativistic pairing loss, and
the zero-centred R1/R2 penalties against finite differences."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from blindinv_jax import data, training
from blindinv_jax.models import dcgan
from blindinv_jax.training import gan

from conftest import TINY_TRAIN


@pytest.fixture(scope="module")
def tiny():
  model = dcgan.get_preset(TINY_TRAIN.model)
  state = training.init_train_state(TINY_TRAIN)
  real = jnp.asarray(data.load_images("mnist5k", limit=8, image_size=8))
  z = dcgan.sample_latents(jax.random.key(1), 8, model.latent_dim)
  fake = dcgan.Generator(model).apply(state.g_vars, z, train=True,
                                      mutable=["batch_stats"])[0]
  return model, state, real, fake


def _logits(model, d_vars):
  disc = dcgan.Discriminator(model)
  return lambda x: disc.apply(d_vars, x, train=True,
                              mutable=["batch_stats"])[0]


def test_relativistic_pairing_loss_scores_each_real_against_a_fake(tiny):
  model, state, real, fake = tiny
  loss, (_, r, f) = training.discriminator_loss(model, state.d_vars, real,
                                                fake, "rpgan")
  np.testing.assert_allclose(float(loss), float(jnp.mean(
      jax.nn.softplus(f - r))), rtol=1e-6)
  ns, _ = training.discriminator_loss(model, state.d_vars, real, fake)
  assert float(ns) != pytest.approx(float(loss))       # another loss
  # The same scores for both halves: the pairing loss is log 2, whatever
  # the scores are; the non-saturating loss is not.
  same, (_, r2, f2) = training.discriminator_loss(model, state.d_vars, real,
                                                  real, "rpgan")
  np.testing.assert_allclose(np.asarray(r2), np.asarray(f2), rtol=1e-6)
  assert float(same) == pytest.approx(np.log(2.0), rel=1e-6)


def test_gradient_penalty_is_zero_centred_and_matches_finite_differences(tiny):
  model, state, real, _ = tiny
  logits = _logits(model, state.d_vars)
  x = real[:2]
  pen = float(gan.gradient_penalty(logits, x))
  assert pen > 0
  # Central finite differences of sum_b D(x_b) along random directions
  # give the directional derivatives <grad, v>; the gradient the penalty
  # squares must match them.
  g = jax.grad(lambda v: jnp.sum(logits(v)))(x)
  np.testing.assert_allclose(pen, float(jnp.mean(jnp.sum(g * g, (1, 2, 3)))),
                             rtol=1e-6)
  rng = np.random.default_rng(0)
  f = lambda v: float(jnp.sum(logits(v)))
  for _ in range(3):
    v = jnp.asarray(rng.normal(size=x.shape), jnp.float32)
    eps = 1e-3            # BatchNorm over 2 images bends D quickly
    fd = (f(x + eps * v) - f(x - eps * v)) / (2 * eps)
    assert fd == pytest.approx(float(jnp.vdot(g, v)), rel=1e-2, abs=1e-3)
  # Zero-centred: a D whose output does not depend on its input (its last
  # layer zeroed) pays nothing, whatever its bias.
  params = jax.tree_util.tree_map(lambda a: a, state.d_vars["params"])
  last = sorted(k for k in params if k.startswith("Dense"))[-1]
  params[last] = {"kernel": jnp.zeros_like(params[last]["kernel"]),
                  "bias": params[last]["bias"] + 3.0}
  flat = _logits(model, {**state.d_vars, "params": params})
  assert float(gan.gradient_penalty(flat, x)) == 0.0


def test_an_r3gan_step_is_deterministic_and_lowers_the_pairing_loss(tiny):
  model, state, real, fake = tiny
  cfg = TINY_TRAIN.replace(gan_loss="rpgan", r1_gamma=0.1, r2_gamma=0.1,
                           b1=0.0, b2=0.99, ema_decay=0.9).validate()
  s0 = training.init_train_state(cfg)
  key = training.step_key(cfg.seed, 0)
  step = training.make_train_step(cfg)
  a, ma = step(jax.tree_util.tree_map(jnp.copy, s0), real, key)
  b, mb = step(jax.tree_util.tree_map(jnp.copy, s0), real, key)
  for x, y in zip(jax.tree_util.tree_leaves(a), jax.tree_util.tree_leaves(b)):
    np.testing.assert_array_equal(x, y)
  loss = lambda d: training.discriminator_loss(model, d, real, fake,
                                               "rpgan")[0]
  assert float(loss(a.d_vars)) < float(loss(s0.d_vars))
  assert np.isfinite(float(ma["g_loss"]))


def test_bad_gan_options_are_refused():
  with pytest.raises(ValueError, match="gan_loss must be one of"):
    TINY_TRAIN.replace(gan_loss="wgan").validate()
  with pytest.raises(ValueError, match="r2_gamma must be >= 0"):
    TINY_TRAIN.replace(r2_gamma=-1.0).validate()
