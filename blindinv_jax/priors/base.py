"""The prior interface, and priors made from a user's generator.

A *prior* is what the solver, the baselines, projection, the CLI and the
experiments take as ``prior``: a pytree (so it is a jit argument, never a
closed-over constant) with

* ``generate(z)``: latents ``[..., latent_dim]`` -> images ``[..., H, W, C]``;
* ``latent_dim`` (int) and ``image_shape`` (``(H, W, C)``);
* ``sample_latents(key, shape)``: ``[*shape, latent_dim]`` from the latent
  distribution;
* ``project_latents(z, clip)``: the projection P onto the latent domain that
  follows every latent step (``clip`` is ``SolverConfig.clip``);
* ``has_discriminator`` (bool) and, if True, ``discriminate(x)``: images
  ``[..., H, W, C]`` -> logits ``[...]`` for the perceptual term.

Two latent distributions are built in: ``"uniform"`` on ``[-1, 1]^L`` with P
the clip to ``[-clip, clip]`` (the paper's GANs), and ``"normal"`` (a VAE's
standard normal) with P the identity, or, with ``radius=r``, the projection
onto the ball ``|z| <= r``.

:func:`from_flax` wraps any ``flax.linen`` generator, :func:`from_function`
any pure function ``generate_fn(params, z)``. The project's DCGAN priors
(:class:`blindinv_jax.priors.GANPrior`) implement the same interface.
"""
from __future__ import annotations

from typing import Any, Callable, Optional, Tuple

import flax
import jax
import jax.numpy as jnp

LATENTS = ("uniform", "normal")
REQUIRED = ("generate", "sample_latents", "project_latents", "latent_dim",
            "image_shape", "has_discriminator")


def sample(latent: str, key, shape, latent_dim: int) -> jax.Array:
  """``[*shape, latent_dim]`` from ``latent`` ("uniform" on [-1, 1] or
  "normal")."""
  shape = (shape,) if isinstance(shape, int) else tuple(shape)
  if latent == "uniform":
    return jax.random.uniform(key, (*shape, latent_dim), minval=-1.0,
                              maxval=1.0)
  return jax.random.normal(key, (*shape, latent_dim))


def project(latent: str, z: jax.Array, clip: float,
            radius: Optional[float] = None) -> jax.Array:
  """The projection P: a clip to ``[-clip, clip]`` for uniform latents;
  for normal latents the identity, or the ball ``|z| <= radius``."""
  if latent == "uniform":
    return jnp.clip(z, -clip, clip)
  if radius is None:
    return z
  norm = jnp.linalg.norm(z, axis=-1, keepdims=True)
  return z * jnp.minimum(1.0, radius / jnp.maximum(norm, 1e-12))


def over_batch(fn: Callable, a: jax.Array, event_ndim: int,
               out_event_shape=()) -> jax.Array:
  """``fn`` on ``a [..., *event]`` flattened to ``[B, *event]`` (``event``:
  the last ``event_ndim`` axes); the output reshaped to ``[...,
  *out_event_shape]``."""
  lead = a.shape[:a.ndim - event_ndim]
  out = fn(a.reshape(-1, *a.shape[a.ndim - event_ndim:]))
  return out.reshape(*lead, *out_event_shape)


class TrainedPrior:
  """Members shared by the project's trained priors (DCGAN, VAE): the
  architecture in ``self.config``, the training metadata in
  ``self.meta_json``, and ``generate`` with the intermediate-layer hook
  (``depth_shapes``, ``intermediate``, ``from_intermediate``) from the
  subclass's :meth:`network`."""

  @property
  def meta(self) -> dict:
    """Training metadata recorded in the checkpoint (step, config, data)."""
    import json
    return json.loads(self.meta_json)

  @property
  def latent_dim(self) -> int:
    return self.config.latent_dim

  @property
  def image_shape(self) -> Tuple[int, int, int]:
    return tuple(self.config.image_shape)

  def network(self):
    """``(apply, depth_shapes)``: the generating network's
    ``apply(x, start=-1, stop=None)`` with its variables bound, and the
    ``(h, w, features)`` of each of its depths (the last: the image)."""
    raise NotImplementedError

  def generate(self, z: jax.Array) -> jax.Array:
    return over_batch(self.network()[0], z, 1, self.image_shape)

  @property
  def depth_shapes(self):
    """``(h, w, features)`` of each depth of G (the last: the image)."""
    return self.network()[1]

  def intermediate(self, z: jax.Array, depth: int) -> jax.Array:
    """z ``[..., L]`` -> G's output at ``depth`` ``[..., h, w, f]``."""
    apply, shapes = self.network()
    return over_batch(lambda z: apply(z, stop=depth), z, 1, shapes[depth])

  def from_intermediate(self, h: jax.Array, depth: int) -> jax.Array:
    """G's layers after ``depth``: ``[..., h, w, f]`` -> images."""
    return over_batch(lambda h: self.network()[0](h, start=depth), h, 3,
                      self.image_shape)


class GeneratorPrior(flax.struct.PyTreeNode):
  """A prior made of a pure generator function and its parameters.

  ``generate_fn(params, z [B, L]) -> [B, H, W, C]``; optional
  ``discriminate_fn(disc_params, x [B, H, W, C]) -> logits [B]`` (or
  ``[B, 1]``). Build one with :func:`from_flax` or :func:`from_function`.
  The functions are static (part of the jit cache key): pass the same
  function objects to reuse a compiled solve.
  """
  params: Any
  disc_params: Any
  generate_fn: Callable = flax.struct.field(pytree_node=False)
  discriminate_fn: Optional[Callable] = flax.struct.field(pytree_node=False)
  latent_dim: int = flax.struct.field(pytree_node=False)
  image_shape: Tuple[int, int, int] = flax.struct.field(pytree_node=False)
  latent: str = flax.struct.field(pytree_node=False, default="uniform")
  radius: Optional[float] = flax.struct.field(pytree_node=False, default=None)
  name: str = flax.struct.field(pytree_node=False, default="generator")

  @property
  def has_discriminator(self) -> bool:
    return self.discriminate_fn is not None

  def generate(self, z: jax.Array) -> jax.Array:
    return over_batch(lambda z: self.generate_fn(self.params, z), z, 1,
                      self.image_shape)

  def discriminate(self, x: jax.Array) -> jax.Array:
    if self.discriminate_fn is None:
      raise ValueError(f"prior {self.name!r} has no discriminator; the "
                       "perceptual term needs one (use alpha=0).")
    return over_batch(lambda x: self.discriminate_fn(self.disc_params, x),
                      x, 3)

  def sample_latents(self, key: jax.Array, shape) -> jax.Array:
    return sample(self.latent, key, shape, self.latent_dim)

  def project_latents(self, z: jax.Array, clip: float = 1.0) -> jax.Array:
    return project(self.latent, z, clip, self.radius)


def _check_latent(latent: str, radius) -> None:
  if latent not in LATENTS:
    raise ValueError(f"latent must be one of {LATENTS}, got {latent!r}.")
  if radius is not None:
    if latent != "normal":
      raise ValueError("radius applies to latent='normal' only (uniform "
                       "latents are clipped to [-1, 1]).")
    if not (isinstance(radius, (int, float)) and radius > 0):
      raise ValueError(f"radius must be a positive number, got {radius!r}.")


def _image_shape(fn, params, latent_dim: int, what: str) -> Tuple[int, ...]:
  """The generator's image shape, from ``jax.eval_shape`` (no compute)."""
  if (not isinstance(latent_dim, int) or isinstance(latent_dim, bool) or
      latent_dim < 1):
    raise ValueError(f"latent_dim must be a positive int, got {latent_dim!r}.")
  z = jax.ShapeDtypeStruct((2, latent_dim), jnp.float32)
  try:
    out = jax.eval_shape(fn, params, z)
  except Exception as e:
    raise ValueError(f"{what} cannot take latents [B, {latent_dim}] "
                     f"(latent_dim={latent_dim}): {type(e).__name__}: {e}"
                     ) from e
  shape = getattr(out, "shape", None)
  if shape is None or len(shape) != 4 or shape[0] != 2:
    got = shape if shape is not None else type(out).__name__
    raise ValueError(f"{what} must map latents [B, {latent_dim}] to images "
                     f"[B, H, W, C]; for B=2 it returned {got}.")
  return tuple(int(s) for s in shape[1:])


def _check_discriminator(fn, params, image_shape, what: str) -> None:
  x = jax.ShapeDtypeStruct((2, *image_shape), jnp.float32)
  try:
    out = jax.eval_shape(fn, params, x)
  except Exception as e:
    raise ValueError(f"{what} cannot take images [B, "
                     f"{', '.join(map(str, image_shape))}]: "
                     f"{type(e).__name__}: {e}") from e
  if tuple(getattr(out, "shape", ())) not in ((2,), (2, 1)):
    raise ValueError(f"{what} must map images [B, H, W, C] to logits [B]; "
                     f"for B=2 it returned {getattr(out, 'shape', out)}.")


def from_function(generate_fn: Callable, params, *, latent_dim: int,
                  discriminate_fn: Optional[Callable] = None,
                  discriminator_params=None, latent: str = "uniform",
                  radius: Optional[float] = None,
                  name: str = "function") -> GeneratorPrior:
  """A prior from a pure function ``generate_fn(params, z [B, latent_dim])
  -> images [B, H, W, C]`` (``params``: any pytree of arrays).

  ``discriminate_fn(discriminator_params, x [B, H, W, C]) -> logits [B]``
  enables the perceptual term (``alpha > 0``). ``latent``: ``"uniform"``
  (clipped to ``[-1, 1]``, as the paper's GANs) or ``"normal"`` (a VAE's;
  projected onto the ball of ``radius`` if given). The image shape is read
  with ``jax.eval_shape``; a wrong shape raises here, before any tracing.
  """
  if not callable(generate_fn):
    raise ValueError(f"generate_fn must be a function (params, z) -> images, "
                     f"got {type(generate_fn).__name__}.")
  _check_latent(latent, radius)
  shape = _image_shape(generate_fn, params, latent_dim, "generate_fn")
  if discriminate_fn is not None:
    _check_discriminator(discriminate_fn, discriminator_params, shape,
                         "discriminate_fn")
  return GeneratorPrior(params=params, disc_params=discriminator_params,
                        generate_fn=generate_fn,
                        discriminate_fn=discriminate_fn,
                        latent_dim=latent_dim, image_shape=shape,
                        latent=latent, radius=radius, name=name)


def from_flax(generator, variables, *, latent_dim: int, discriminator=None,
              discriminator_variables=None, latent: str = "uniform",
              radius: Optional[float] = None) -> GeneratorPrior:
  """A prior from a ``flax.linen`` generator mapping ``[B, latent_dim]`` to
  ``[B, H, W, C]``, with its ``variables`` (``{"params": ...}``).

  An optional ``discriminator`` module (images -> logits ``[B]``, with
  ``discriminator_variables``) enables the perceptual term. Both modules run
  with ``apply(variables, input)``: give a module whose ``__call__`` defaults
  to inference mode. See :func:`from_function` for ``latent`` and ``radius``.
  """
  import flax.linen as nn
  if not isinstance(generator, nn.Module):
    raise ValueError(f"from_flax takes a flax.linen Module, got "
                     f"{type(generator).__name__}; wrap a plain function with "
                     "priors.from_function(fn, params, latent_dim=...).")
  if discriminator is not None and not isinstance(discriminator, nn.Module):
    raise ValueError(f"discriminator must be a flax.linen Module, got "
                     f"{type(discriminator).__name__}.")
  return from_function(
      generator.apply, variables, latent_dim=latent_dim,
      discriminate_fn=None if discriminator is None else discriminator.apply,
      discriminator_params=discriminator_variables, latent=latent,
      radius=radius, name=type(generator).__name__)


def check_prior(prior) -> None:
  """One clear error if ``prior`` is not a prior (before any tracing)."""
  if callable(prior) and not hasattr(prior, "generate"):
    raise ValueError(
        f"prior is a {type(prior).__name__}, not a prior; wrap a generator "
        "function with blindinv_jax.priors.from_function(fn, params, "
        "latent_dim=...) or a Flax module with priors.from_flax(...).")
  missing = [a for a in REQUIRED if not hasattr(prior, a)]
  if missing:
    raise ValueError(
        f"prior {type(prior).__name__} lacks {', '.join(missing)}; build "
        "priors with blindinv_jax.priors.from_flax / from_function, or see "
        "docs/priors.md for the interface.")
  shape = tuple(prior.image_shape)
  if len(shape) != 3 or not all(isinstance(s, int) and s > 0 for s in shape):
    raise ValueError(f"prior.image_shape must be (H, W, C), got {shape!r}.")
  try:
    jax.tree_util.tree_leaves(prior)
    hash(jax.tree_util.tree_structure(prior))
  except Exception as e:
    raise ValueError(f"prior {type(prior).__name__} is not a pytree with "
                     f"hashable static fields ({e}); make it a "
                     "flax.struct.PyTreeNode.") from e
