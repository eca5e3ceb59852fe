"""VAE priors: a trained VAE's decoder as a prior of standard-normal latents.

:class:`VAEPrior` implements the prior interface (:mod:`blindinv_jax.priors`)
with ``latent="normal"``: no clip, or, with ``radius``, the projection onto
the ball ``|z| <= radius``; it has no discriminator, so the perceptual term
is off (``alpha=0``).
"""
from __future__ import annotations

import json
from functools import partial
from typing import Any, Optional

import flax
import jax

from blindinv_jax import checkpoint
from blindinv_jax.models.dcgan import depth_shapes
from blindinv_jax.models.vae import (
  Decoder,
  Encoder,
  VAEConfig,
  init_variables_fn,
)
from blindinv_jax.priors.base import TrainedPrior, over_batch, project, sample
from blindinv_jax.priors.io import jsonable, register_kind, restore_like

PRIOR_KIND = "vae_prior"
TRAIN_KIND = "vae_train"


class VAEPrior(TrainedPrior, flax.struct.PyTreeNode):
  """A trained VAE's decoder (and encoder) variables plus architecture.

  ``generate(z)``: z ``[..., latent_dim]`` -> images ``[..., H, W, C]``;
  ``sample_latents``: standard normal; ``project_latents``: identity or the
  ball of ``radius``; ``encode(x)``: the encoder's mean ``[..., L]``.
  The intermediate-layer hook (``depth_shapes``, ``intermediate``,
  ``from_intermediate``) reads the decoder's depths.
  """
  dec_vars: Any
  enc_vars: Any
  config: VAEConfig = flax.struct.field(pytree_node=False)
  meta_json: str = flax.struct.field(pytree_node=False, default="{}")
  radius: Optional[float] = flax.struct.field(pytree_node=False, default=None)

  latent = "normal"
  has_discriminator = False

  def network(self):
    """The decoder's ``apply`` with its variables bound, and its depths'
    shapes."""
    return (partial(Decoder(self.config).apply, self.dec_vars),
            depth_shapes(self.config.dec_base, self.config.dec_stages))

  def encode(self, x: jax.Array) -> jax.Array:
    mean = lambda x: Encoder(self.config).apply(self.enc_vars, x)[0]
    return over_batch(mean, x, 3, (self.latent_dim,))

  def discriminate(self, x: jax.Array) -> jax.Array:
    raise ValueError("a VAE prior has no discriminator; the perceptual term "
                     "needs one (use alpha=0).")

  def sample_latents(self, key: jax.Array, shape) -> jax.Array:
    return sample("normal", key, shape, self.latent_dim)

  def project_latents(self, z: jax.Array, clip: float = 1.0) -> jax.Array:
    return project("normal", z, clip, self.radius)


def restore(state: dict, meta: dict, path) -> VAEPrior:
  """A :class:`VAEPrior` from a checkpoint's state dict and metadata (the
  ``restore`` of the ``vae_prior`` and ``vae_train`` kinds)."""
  config = VAEConfig.from_dict(meta["model"])
  e_ref, d_ref = jax.eval_shape(partial(init_variables_fn, config),
                                jax.random.key(0))
  return VAEPrior(dec_vars=restore_like(d_ref, state["dec_vars"], path,
                                        "decoder"),
                  enc_vars=restore_like(e_ref, state["enc_vars"], path,
                                        "encoder"),
                  config=config, meta_json=json.dumps(meta, sort_keys=True))


def save_prior(path, state, config: VAEConfig, meta: dict):
  """Writes a VAE prior file (decoder and encoder variables)."""
  tree = {"dec_vars": state.dec_vars, "enc_vars": state.enc_vars}
  return checkpoint.save(path, jax.device_get(tree), kind=PRIOR_KIND,
                         meta=jsonable({**meta, "model": config.to_dict()}))


register_kind(PRIOR_KIND, restore)
register_kind(TRAIN_KIND, restore)
