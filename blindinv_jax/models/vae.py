"""A convolutional VAE (Flax Linen, NHWC): the second prior family.

The decoder maps standard-normal latents ``z [B, latent_dim]`` to images
``[B, H, W, C]`` in ``[-1, 1]`` (``tanh``); the encoder maps images to the
mean and log-variance of ``q(z | x)``. As a prior, only the decoder is used
(:class:`blindinv_jax.priors.VAEPrior`).

Presets:
  * ``VAE28``: 28x28x1, latent 32; encoder convs 32, 64 (stride 2) and a
    Dense 256; decoder Dense 256 -> 7x7x64, transposed convs 32, 1 (stride 2).
  * ``VAE_TINY``: 8x8x1, latent 4, for tests only.
"""
from __future__ import annotations

import dataclasses
from typing import Optional, Tuple

import flax.linen as nn
import jax
import jax.numpy as jnp

from blindinv_jax.models.dcgan import check_upsampling, config_from_dict
from blindinv_jax.models.layers import Conv, PhaseConvTranspose

Stage = Tuple[int, int, int]  # (features, kernel, stride)


@dataclasses.dataclass(frozen=True)
class VAEConfig:
  """Architecture of a VAE prior.

  Attributes:
    name: preset name, stored in checkpoints.
    image_shape: (H, W, C).
    latent_dim: dimension of z (standard normal prior).
    enc_stages: encoder convolutions (features, kernel, stride).
    hidden: width of the Dense layer on each side of the latent.
    dec_base: (h, w, features) the decoder's Dense layer reshapes to.
    dec_stages: decoder layers after it; stride 2 is a transposed conv. The
      last outputs the image (``tanh``).
    obs_sigma: standard deviation of the Gaussian likelihood p(x | z) on the
      ``[-1, 1]`` scale (weights reconstruction against the KL term).
  """
  name: str
  image_shape: Tuple[int, int, int]
  latent_dim: int
  enc_stages: Tuple[Stage, ...]
  hidden: int
  dec_base: Tuple[int, int, int]
  dec_stages: Tuple[Stage, ...]
  obs_sigma: float = 0.1
  kind: str = "vae"

  def to_dict(self) -> dict:
    return dataclasses.asdict(self)

  @classmethod
  def from_dict(cls, d: dict) -> "VAEConfig":
    return config_from_dict(cls, d)

  def __post_init__(self):
    check_upsampling(self.name, self.image_shape, self.dec_base,
                     self.dec_stages)


VAE28 = VAEConfig(name="vae28", image_shape=(28, 28, 1), latent_dim=32,
                  enc_stages=((32, 4, 2), (64, 4, 2)), hidden=256,
                  dec_base=(7, 7, 64), dec_stages=((32, 4, 2), (1, 4, 2)))
VAE_TINY = VAEConfig(name="vae_tiny", image_shape=(8, 8, 1), latent_dim=4,
                     enc_stages=((8, 4, 2),), hidden=16, dec_base=(2, 2, 8),
                     dec_stages=((8, 4, 2), (1, 4, 2)))
PRESETS = {c.name: c for c in (VAE28, VAE_TINY)}


class Encoder(nn.Module):
  """x ``[B, H, W, C]`` -> (mean, log-variance) of q(z | x), each ``[B, L]``."""
  config: VAEConfig

  @nn.compact
  def __call__(self, x: jax.Array):
    for i, (feat, k, s) in enumerate(self.config.enc_stages):
      x = nn.relu(Conv(features=feat, kernel_size=(k, k), strides=(s, s),
                       name=f"conv{i}")(x))
    x = nn.relu(nn.Dense(self.config.hidden, name="hidden")(
        x.reshape(x.shape[0], -1)))
    mean = nn.Dense(self.config.latent_dim, name="mean")(x)
    logvar = nn.Dense(self.config.latent_dim, name="logvar")(x)
    return mean, logvar


class Decoder(nn.Module):
  """z ``[B, latent_dim]`` -> images ``[B, H, W, C]`` in ``[-1, 1]``.

  Depths as the DCGAN generator's (:class:`blindinv_jax.models.dcgan.
  Generator`): depth 0 is the ``dec_base`` tensor after the two Dense
  layers, depth i the output of stage i; ``start``/``stop`` run the layers
  in between.
  """
  config: VAEConfig

  @nn.compact
  def __call__(self, z: jax.Array, start: int = -1,
               stop: Optional[int] = None) -> jax.Array:
    cfg = self.config
    stop = len(cfg.dec_stages) if stop is None else stop
    x = z
    if start < 0 <= stop:
      h, w, f = cfg.dec_base
      x = nn.relu(nn.Dense(cfg.hidden, name="hidden")(z))
      x = nn.relu(nn.Dense(h * w * f, name="base")(x)).reshape(-1, h, w, f)
    for i, (feat, k, s) in enumerate(cfg.dec_stages, start=1):
      if not start < i <= stop:
        continue
      last = i == len(cfg.dec_stages)
      layer = (Conv if s == 1 else PhaseConvTranspose)
      kw = {} if s == 1 else {"strides": (s, s)}
      x = layer(features=feat, kernel_size=(k, k), name=f"conv{i}", **kw)(x)
      x = jnp.tanh(x) if last else nn.relu(x)
    return x


def get_preset(name: str) -> VAEConfig:
  try:
    return PRESETS[name.lower()]
  except KeyError:
    raise ValueError(f"Unknown VAE preset {name!r}; choose one of "
                     f"{sorted(PRESETS)}.") from None


def init_variables_fn(config: VAEConfig, key: jax.Array):
  """Initial (encoder, decoder) variables (not jitted)."""
  ke, kd = jax.random.split(key)
  x = jnp.zeros((1, *config.image_shape), jnp.float32)
  z = jnp.zeros((1, config.latent_dim), jnp.float32)
  return Encoder(config).init(ke, x), Decoder(config).init(kd, z)


def negative_elbo(config: VAEConfig, enc_vars, dec_vars, x, key):
  """Mean over the batch of ``-ELBO = E_q[-log p(x | z)] + KL(q || N(0, I))``
  (one reparameterised sample; Gaussian likelihood of ``obs_sigma``, up to a
  constant). Returns ``(loss, (reconstruction term, KL))``."""
  mean, logvar = Encoder(config).apply(enc_vars, x)
  z = mean + jnp.exp(0.5 * logvar) * jax.random.normal(key, mean.shape)
  x_hat = Decoder(config).apply(dec_vars, z)
  rec = 0.5 * jnp.sum(((x_hat - x) / config.obs_sigma) ** 2, axis=(1, 2, 3))
  kl = 0.5 * jnp.sum(jnp.exp(logvar) + mean ** 2 - 1.0 - logvar, axis=-1)
  return jnp.mean(rec + kl), (jnp.mean(rec), jnp.mean(kl))
