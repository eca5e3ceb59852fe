"""Image-quality metrics on images in [-1, 1] (mapped to [0, 1])."""
from __future__ import annotations

import jax.numpy as jnp


def psnr(x, y, max_db: float = 100.0):
  """PSNR in dB per image: x, y [..., H, W, C] in [-1, 1] -> [...].

  Computed on the images mapped to [0, 1]; identical images give ``max_db``.
  """
  x = (jnp.clip(x, -1.0, 1.0) + 1.0) / 2.0
  y = (jnp.clip(y, -1.0, 1.0) + 1.0) / 2.0
  mse = jnp.mean((x - y) ** 2, axis=(-3, -2, -1))
  return jnp.minimum(-10.0 * jnp.log10(jnp.maximum(mse, 1e-30)), max_db)
