"""The project's DCGAN priors: the frozen networks as a pytree, and their files.

* :class:`GANPrior` holds a trained generator's and discriminator's variables
  and their architecture (:class:`blindinv_jax.models.dcgan.DCGANConfig`).
  It is a pytree (variables as leaves, architecture static), so it is passed
  to jitted functions as an argument, never closed over.
* :func:`restore` makes one from a checkpoint of the kinds ``gan_prior``
  (:func:`save_prior` writes those) and ``gan_train`` (a training
  checkpoint); both are registered with :mod:`blindinv_jax.priors.io`, whose
  ``load_prior`` loads ``"mnist"`` (shipped with the package: the first MNIST
  prior, also ``"mnist-v1"``; two later candidates ship as ``"mnist-v2"``
  and ``"mnist-v3"``), a prior file, a training checkpoint or a training
  workdir.
"""
from __future__ import annotations

import json
from functools import partial
from typing import Any

import flax
import jax
import jax.numpy as jnp

from blindinv_jax import checkpoint
from blindinv_jax.models.dcgan import (
  DCGANConfig,
  Discriminator,
  Generator,
  depth_shapes,
  init_variables_fn,
  sample_latents,
)
from blindinv_jax.priors.base import TrainedPrior, over_batch
from blindinv_jax.priors.io import jsonable, register_kind, restore_like

PRIOR_KIND = "gan_prior"
TRAIN_KIND = "gan_train"


class GANPrior(TrainedPrior, flax.struct.PyTreeNode):
  """A frozen GAN: generator and discriminator variables plus architecture.

  ``generate(z)``: z ``[..., latent_dim]`` -> images ``[..., H, W, C]``.
  ``discriminate(x)``: images ``[..., H, W, C]`` -> logits ``[...]``.
  ``sample_latents(key, shape)``: ``[*shape, latent_dim]`` uniform in
  ``[-1, 1]``; ``project_latents(z, clip)``: the clip to ``[-clip, clip]``.
  Both networks run in inference mode (BatchNorm running averages).
  The intermediate-layer hook (``depth_shapes``, ``intermediate``,
  ``from_intermediate``; :mod:`blindinv_jax.extension`) reads the
  generator's depths (:class:`blindinv_jax.models.dcgan.Generator`).
  """
  g_vars: Any
  d_vars: Any
  config: DCGANConfig = flax.struct.field(pytree_node=False)
  meta_json: str = flax.struct.field(pytree_node=False, default="{}")

  latent = "uniform"
  has_discriminator = True

  def network(self):
    """G's ``apply`` with its variables bound, and its depths' shapes."""
    return (partial(Generator(self.config).apply, self.g_vars),
            depth_shapes(self.config.g_base, self.config.g_stages))

  def discriminate(self, x: jax.Array) -> jax.Array:
    return over_batch(partial(Discriminator(self.config).apply, self.d_vars),
                      x, 3)

  def sample_latents(self, key: jax.Array, shape) -> jax.Array:
    return sample_latents(key, shape, self.latent_dim)

  def project_latents(self, z: jax.Array, clip: float = 1.0) -> jax.Array:
    return jnp.clip(z, -clip, clip)


def restore(state: dict, meta: dict, path) -> GANPrior:
  """A :class:`GANPrior` from a checkpoint's state dict and metadata (the
  ``restore`` of the ``gan_prior`` and ``gan_train`` kinds)."""
  config = DCGANConfig.from_dict(meta["model"])
  g_ref, d_ref = jax.eval_shape(partial(init_variables_fn, config),
                                jax.random.key(0))
  g_vars = restore_like(g_ref, state["g_vars"], path, "generator")
  d_vars = restore_like(d_ref, state["d_vars"], path, "discriminator")
  return GANPrior(g_vars=g_vars, d_vars=d_vars, config=config,
                  meta_json=json.dumps(meta, sort_keys=True))


def save_prior(path, prior_or_state, config: DCGANConfig, meta: dict):
  """Writes a prior file (G and D variables only, no optimiser state)."""
  tree = {"g_vars": prior_or_state.g_vars, "d_vars": prior_or_state.d_vars}
  meta = {**meta, "model": config.to_dict()}
  return checkpoint.save(path, jax.device_get(tree), kind=PRIOR_KIND,
                         meta=jsonable(meta))


register_kind(PRIOR_KIND, restore)
register_kind(TRAIN_KIND, restore)
