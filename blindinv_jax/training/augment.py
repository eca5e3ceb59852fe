"""Differentiable augmentation for GAN training on few images (DiffAugment,
Zhao et al. 2020): the same random transformation family applied to real and
generated images before the discriminator, so D cannot memorise the few real
images and G still receives gradients.

Policies (a comma-separated string, e.g. ``"translation,cutout"``):

* ``translation``: shift each image by up to 1/8 of its size in each
  direction, filling with zeros;
* ``cutout``: zero one square of half the image size at a random position.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp

POLICIES = ("translation", "cutout")


def check_policy(policy: str) -> tuple:
  """The policy's parts; a ValueError for unknown ones."""
  parts = tuple(p for p in policy.split(",") if p)
  bad = [p for p in parts if p not in POLICIES]
  if bad:
    raise ValueError(f"unknown DiffAugment policy {bad}; choose from "
                     f"{POLICIES} (comma-separated).")
  return parts


def translation(x: jax.Array, key: jax.Array, ratio: float = 0.125):
  """x ``[B, H, W, C]`` shifted per image by up to ``ratio`` of its size."""
  b, h, w, c = x.shape
  sh, sw = int(h * ratio + 0.5), int(w * ratio + 0.5)
  ky, kx = jax.random.split(key)
  dy = jax.random.randint(ky, (b,), -sh, sh + 1)
  dx = jax.random.randint(kx, (b,), -sw, sw + 1)
  xp = jnp.pad(x, ((0, 0), (sh, sh), (sw, sw), (0, 0)))
  one = lambda im, dy, dx: jax.lax.dynamic_slice(im, (sh - dy, sw - dx, 0),
                                                 (h, w, c))
  return jax.vmap(one)(xp, dy, dx)


def cutout(x: jax.Array, key: jax.Array, ratio: float = 0.5):
  """x ``[B, H, W, C]`` with one zeroed square of ``ratio`` of its size."""
  b, h, w, _ = x.shape
  ch, cw = int(h * ratio + 0.5), int(w * ratio + 0.5)
  ky, kx = jax.random.split(key)
  oy = jax.random.randint(ky, (b, 1, 1), 0, h + (1 - ch % 2)) - ch // 2
  ox = jax.random.randint(kx, (b, 1, 1), 0, w + (1 - cw % 2)) - cw // 2
  yy, xx = jnp.arange(h)[None, :, None], jnp.arange(w)[None, None, :]
  inside = (yy >= oy) & (yy < oy + ch) & (xx >= ox) & (xx < ox + cw)
  return x * (1.0 - inside[..., None].astype(x.dtype))


def augment(x: jax.Array, key: jax.Array, policy: tuple) -> jax.Array:
  """``policy``'s transformations in order, each with its own key."""
  for i, name in enumerate(policy):
    x = {"translation": translation, "cutout": cutout}[name](
        x, jax.random.fold_in(key, i))
  return x
