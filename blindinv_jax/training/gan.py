"""Training a DCGAN prior: non-saturating GAN loss, Adam (2e-4, beta1 0.5),
one jitted step. The loop, resume and files are
:mod:`blindinv_jax.training.loop`'s. Same seed, same weights.

Options (``TrainConfig``): ``ema_decay`` keeps an exponential moving average
of G's parameters (the prior is then the EMA generator), ``diffaug``
applies differentiable augmentation to real and generated images before D
(:mod:`blindinv_jax.training.augment`), ``r1_gamma`` / ``r2_gamma`` add the
zero-centred penalties ``gamma/2 * |grad_x D(x)|^2`` on real (R1) and
generated (R2) images to D's loss, and ``gan_loss="rpgan"`` replaces the
non-saturating loss by R3GAN's relativistic pairing loss (Huang et al.
2024): with ``d = D(real) - D(fake)`` over pairs of the batch, D minimises
``softplus(-d)`` and G minimises ``softplus(d)``.
"""
from __future__ import annotations

import functools
from typing import Any, Callable

import flax
import jax
import jax.numpy as jnp
import optax

from blindinv_jax import backend
from blindinv_jax.models.dcgan import (
  PRESETS,
  DCGANConfig,
  Discriminator,
  Generator,
  get_preset,
  init_variables_fn,
  sample_latents,
)
from blindinv_jax.priors.dcgan import TRAIN_KIND, GANPrior, save_prior
from blindinv_jax.training.loop import Family, TrainConfig, register_family


class TrainState(flax.struct.PyTreeNode):
  step: jax.Array
  g_vars: Any
  d_vars: Any
  g_opt: Any
  d_opt: Any
  g_ema: Any = None          # EMA of G's variables (``TrainConfig.ema_decay``)


def prior_generator(state: TrainState):
  """The generator variables a prior uses: the EMA ones if kept."""
  return state.g_vars if state.g_ema is None else state.g_ema


def _adam(lr: float, b1: float, b2: float):
  return optax.adam(lr, b1=b1, b2=b2)


@functools.partial(backend.jit_init, static_argnums=0)
def init_train_state(cfg: TrainConfig) -> TrainState:
  """Initial networks (from ``cfg.seed``) and optimiser states."""
  model = get_preset(cfg.model)
  g_vars, d_vars = init_variables_fn(model, jax.random.key(cfg.seed))
  tx = _adam(cfg.lr, cfg.b1, cfg.b2)
  return TrainState(step=jnp.zeros((), jnp.int32), g_vars=g_vars,
                    d_vars=d_vars, g_opt=tx.init(g_vars["params"]),
                    d_opt=tx.init(d_vars["params"]),
                    g_ema=None if cfg.ema_decay is None else g_vars)


def discriminator_loss(model: DCGANConfig, d_vars, real, fake,
                       gan_loss: str = "ns"):
  """D's loss on ``real`` and ``fake [B, H, W, C]``, BatchNorm in training
  mode on each batch: non-saturating (``"ns"``) or relativistic pairing
  (``"rpgan"``: real image i against fake image i).

  Returns ``(loss, (new_batch_stats, real_logits, fake_logits))``.
  """
  disc = Discriminator(model)
  real_logits, mut = disc.apply(d_vars, real, train=True,
                                mutable=["batch_stats"])
  fake_logits, mut = disc.apply({**d_vars, **mut}, fake, train=True,
                                mutable=["batch_stats"])
  if gan_loss == "rpgan":
    loss = jnp.mean(jax.nn.softplus(fake_logits - real_logits))
  else:  # -log D(x) - log(1 - D(G(z))), written with softplus on logits.
    loss = (jnp.mean(jax.nn.softplus(-real_logits)) +
            jnp.mean(jax.nn.softplus(fake_logits)))
  return loss, (mut["batch_stats"], real_logits, fake_logits)


def make_train_step(cfg: TrainConfig) -> Callable:
  """``step(state, real [B,H,W,C], key) -> (state, metrics)``, jitted.

  Cached per (model, optimiser, options) so repeated runs reuse one
  compiled step.
  """
  return _train_step(cfg.model, cfg.lr, cfg.b1, cfg.b2, cfg.ema_decay,
                     cfg.diffaug, cfg.r1_gamma, cfg.r2_gamma, cfg.gan_loss)


def gradient_penalty(logits: Callable, x: jax.Array) -> jax.Array:
  """``mean_b |grad_x logits(x)_b|^2`` over a batch ``x [B, H, W, C]``."""
  g = jax.grad(lambda v: jnp.sum(logits(v)))(x)
  return jnp.mean(jnp.sum(g * g, (1, 2, 3)))


@functools.lru_cache(maxsize=8)
def _train_step(model_name: str, lr: float, b1: float, b2: float,
                ema_decay=None, diffaug: str = "", r1_gamma: float = 0.0,
                r2_gamma: float = 0.0, gan_loss: str = "ns") -> Callable:
  from blindinv_jax.training.augment import augment, check_policy
  model = get_preset(model_name)
  gen, disc = Generator(model), Discriminator(model)
  tx = _adam(lr, b1, b2)
  policy = check_policy(diffaug)
  aug = ((lambda x, k: augment(x, k, policy)) if policy else
         (lambda x, k: x))

  def step(state: TrainState, real, key):
    z = sample_latents(key, real.shape[0], model.latent_dim)
    fake = gen.apply(state.g_vars, z, train=True, mutable=["batch_stats"])[0]
    k_real, k_fake, k_gen = (jax.random.fold_in(key, i) for i in (1, 2, 3))
    real_in = aug(real, k_real)

    fake_in = aug(jax.lax.stop_gradient(fake), k_fake)

    def d_loss_fn(d_params):
      d_vars = {**state.d_vars, "params": d_params}
      loss, aux = discriminator_loss(model, d_vars, real_in, fake_in,
                                     gan_loss)
      logits = lambda x: disc.apply(d_vars, x, train=True,
                                    mutable=["batch_stats"])[0]
      for gamma, x in ((r1_gamma, real_in), (r2_gamma, fake_in)):
        if gamma > 0:
          loss = loss + 0.5 * gamma * gradient_penalty(logits, x)
      return loss, aux

    (d_loss, (d_stats, real_logits, fake_logits)), d_grads = (
        jax.value_and_grad(d_loss_fn, has_aux=True)(state.d_vars["params"]))
    upd, d_opt = tx.update(d_grads, state.d_opt, state.d_vars["params"])
    d_vars = {"params": optax.apply_updates(state.d_vars["params"], upd),
              "batch_stats": d_stats}

    if gan_loss == "rpgan":   # the real images' scores by the updated D
      real_now = jax.lax.stop_gradient(disc.apply(
          d_vars, real_in, train=True, mutable=["batch_stats"])[0])

    def g_loss_fn(g_params):
      fake, mut = gen.apply({**state.g_vars, "params": g_params}, z,
                            train=True, mutable=["batch_stats"])
      logits, _ = disc.apply(d_vars, aug(fake, k_gen), train=True,
                             mutable=["batch_stats"])
      if gan_loss == "rpgan":
        return (jnp.mean(jax.nn.softplus(real_now - logits)),
                mut["batch_stats"])
      # Non-saturating generator loss -log D(G(z)).
      return jnp.mean(jax.nn.softplus(-logits)), mut["batch_stats"]

    (g_loss, g_stats), g_grads = jax.value_and_grad(
        g_loss_fn, has_aux=True)(state.g_vars["params"])
    upd, g_opt = tx.update(g_grads, state.g_opt, state.g_vars["params"])
    g_vars = {"params": optax.apply_updates(state.g_vars["params"], upd),
              "batch_stats": g_stats}
    g_ema = state.g_ema
    if ema_decay is not None:
      g_ema = {"params": optax.incremental_update(
          g_vars["params"], g_ema["params"], 1.0 - ema_decay),
               "batch_stats": g_stats}
    metrics = {"d_loss": d_loss, "g_loss": g_loss,
               "d_real": jnp.mean(jax.nn.sigmoid(real_logits)),
               "d_fake": jnp.mean(jax.nn.sigmoid(fake_logits))}
    return TrainState(step=state.step + 1, g_vars=g_vars, d_vars=d_vars,
                      g_opt=g_opt, d_opt=d_opt, g_ema=g_ema), metrics

  return jax.jit(step, donate_argnums=0)


def family(model: DCGANConfig):
  """The DCGAN as a :class:`blindinv_jax.training.loop.Family`."""
  return Family(
      model=model, train_kind=TRAIN_KIND, init_state=init_train_state,
      make_step=make_train_step,
      generate=lambda s, z: Generator(model).apply(prior_generator(s), z),
      sample_latents=lambda k, n: sample_latents(k, n, model.latent_dim),
      save_prior=lambda path, s, meta: _save(path, s, model, meta),
      make_prior=lambda s, meta_json: GANPrior(
          g_vars=prior_generator(s), d_vars=s.d_vars, config=model,
          meta_json=meta_json),
      postfix=(("d", "d_loss"), ("g", "g_loss")))


def _save(path, state: TrainState, model: DCGANConfig, meta: dict):
  """The prior file (the EMA generator if kept); with EMA, the raw
  generator's snapshot is written beside it as ``raw_<name>``, so the two can
  be compared."""
  save_prior(path, state.replace(g_vars=prior_generator(state)), model, meta)
  if state.g_ema is not None and path.parent.name == "snapshots":
    save_prior(path.with_name("raw_" + path.name), state, model,
               {**meta, "generator": "raw (not EMA)"})


register_family("dcgan", PRESETS, family)
