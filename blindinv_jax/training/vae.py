"""Training a convolutional VAE prior: the negative ELBO, Adam, one jitted
step (:func:`blindinv_jax.models.vae.negative_elbo`). The loop, resume and
files are :mod:`blindinv_jax.training.loop`'s."""
from __future__ import annotations

import functools
from typing import Any, Callable

import flax
import jax
import jax.numpy as jnp
import optax

from blindinv_jax import backend
from blindinv_jax.models.vae import (
  PRESETS,
  Decoder,
  VAEConfig,
  get_preset,
  init_variables_fn,
  negative_elbo,
)
from blindinv_jax.priors import vae as vae_prior
from blindinv_jax.training.loop import Family, register_family


class VAETrainState(flax.struct.PyTreeNode):
  step: jax.Array
  enc_vars: Any
  dec_vars: Any
  opt: Any


def _adam(cfg):
  return optax.adam(cfg.lr, b1=cfg.b1, b2=cfg.b2)


@functools.partial(backend.jit_init, static_argnums=0)
def init_train_state(cfg) -> VAETrainState:
  """Initial encoder and decoder (from ``cfg.seed``) and Adam state."""
  enc, dec = init_variables_fn(get_preset(cfg.model), jax.random.key(cfg.seed))
  return VAETrainState(step=jnp.zeros((), jnp.int32), enc_vars=enc,
                       dec_vars=dec, opt=_adam(cfg).init((enc, dec)))


@functools.lru_cache(maxsize=8)
def _train_step(model_name: str, lr: float, b1: float, b2: float) -> Callable:
  model = get_preset(model_name)
  tx = optax.adam(lr, b1=b1, b2=b2)

  def step(state: VAETrainState, real, key):
    (loss, (rec, kl)), grads = jax.value_and_grad(
        lambda p: negative_elbo(model, *p, real, key), has_aux=True)(
            (state.enc_vars, state.dec_vars))
    upd, opt = tx.update(grads, state.opt, (state.enc_vars, state.dec_vars))
    enc, dec = optax.apply_updates((state.enc_vars, state.dec_vars), upd)
    return VAETrainState(step=state.step + 1, enc_vars=enc, dec_vars=dec,
                         opt=opt), {"loss": loss, "rec": rec, "kl": kl}

  return jax.jit(step, donate_argnums=0)


def make_train_step(cfg) -> Callable:
  """``step(state, real [B, H, W, C], key) -> (state, metrics)``, jitted."""
  return _train_step(cfg.model, cfg.lr, cfg.b1, cfg.b2)


def family(model: VAEConfig):
  """The VAE as a :class:`blindinv_jax.training.loop.Family`."""
  return Family(
      model=model, train_kind=vae_prior.TRAIN_KIND,
      init_state=init_train_state, make_step=make_train_step,
      generate=lambda s, z: Decoder(model).apply(s.dec_vars, z),
      sample_latents=lambda k, n: jax.random.normal(k, (n, model.latent_dim)),
      save_prior=lambda path, s, meta: vae_prior.save_prior(path, s, model,
                                                            meta),
      make_prior=lambda s, meta_json: vae_prior.VAEPrior(
          dec_vars=s.dec_vars, enc_vars=s.enc_vars, config=model,
          meta_json=meta_json),
      postfix=(("loss", "loss"), ("kl", "kl")))


register_family("vae", PRESETS, family)
