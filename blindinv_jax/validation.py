"""The input checks every public entry point shares.

Each check runs on host values before any tracing and raises one
``ValueError`` that names the problem and the fix.
"""
from __future__ import annotations

import warnings

import jax
import jax.numpy as jnp
import numpy as np


def check_positive_int(label: str, value) -> int:
  """``value`` as an int, or a ValueError naming ``label`` (bools refused)."""
  if (not isinstance(value, (int, np.integer)) or isinstance(value, bool) or
      value < 1):
    raise ValueError(f"{label} must be a positive int, got {value!r}.")
  return int(value)


def check_positive_number(label: str, value) -> float:
  """``value`` as a float, or a ValueError naming ``label``."""
  if not (isinstance(value, (int, float)) and not isinstance(value, bool) and
          np.isfinite(value) and value > 0):
    raise ValueError(f"{label} must be a positive number, got {value!r}.")
  return float(value)


def check_prior(prior, alpha: float = 0.0) -> None:
  """``prior`` implements the prior interface (:mod:`blindinv_jax.priors`),
  and has a discriminator if the perceptual weight ``alpha`` is positive."""
  from blindinv_jax.priors.base import check_prior as check_interface
  check_interface(prior)
  if alpha > 0 and not prior.has_discriminator:
    raise ValueError(
        f"alpha = {alpha:g} weighs the perceptual term log(1 - D(G(z))), but "
        f"this prior ({type(prior).__name__}) has no discriminator; set "
        "alpha=0 (SolverConfig(alpha=0), or --alpha 0 on the command line).")


def validate_observations(y, prior, num_sources) -> np.ndarray:
  """Checks y before any tracing; returns it as float32 ``[N, H, W, C_obs]``."""
  check_prior(prior)
  y = np.asarray(y)
  if y.ndim == 3:
    raise ValueError(f"observations must be [N, H, W, C_obs]; got shape "
                     f"{y.shape}: add a channel axis (y[..., None]) for "
                     "single-channel images.")
  if y.ndim != 4:
    raise ValueError(f"observations must be [N, H, W, C_obs], got shape "
                     f"{y.shape}.")
  if not (np.issubdtype(y.dtype, np.floating) or
          np.issubdtype(y.dtype, np.integer)) or y.dtype == np.bool_:
    raise ValueError(f"observations must be real numbers (a float or int "
                     f"array), got dtype {y.dtype}.")
  y = y.astype(np.float32)
  if y.shape[0] < 1:
    raise ValueError("observations: need at least one observation (N >= 1).")
  if tuple(y.shape[1:3]) != tuple(prior.image_shape[:2]):
    raise ValueError(
        f"observations are {y.shape[1]}x{y.shape[2]} but the prior generates "
        f"{prior.image_shape[0]}x{prior.image_shape[1]} images; resize them or "
        "use a prior trained at that size.")
  if not np.all(np.isfinite(y)):
    bad = int(np.size(y) - np.count_nonzero(np.isfinite(y)))
    raise ValueError(f"observations contain {bad} NaN or Inf values; remove "
                     "or repair them before solving.")
  check_positive_int("num_sources", num_sources)
  return y


def warn_if_out_of_range(y: np.ndarray, limit: float = 10.0) -> None:
  """Warns when observations are far outside what images in [-1, 1] give.

  A blur of images in ``[-1, 1]`` stays in ``[-1, 1]``, a Sobel edge map in
  ``[-8, 8]``, a mixture ``|M^T X|`` of three sources within a few units.
  Values beyond ``limit`` usually mean the data were not rescaled (e.g.
  uint8 0..255).
  """
  peak = float(np.max(np.abs(y)))
  if peak > limit:
    warnings.warn(
        f"observations reach |y| = {peak:g}, far outside the range the prior's "
        f"images [-1, 1] produce (|y| <= 8 for the built-in forward models); "
        "rescale them the way the prior's training images were "
        "(e.g. y / 127.5 - 1 for 0..255 data), or the solver may not converge.",
        UserWarning, stacklevel=3)


def check_surrogate(module, prior, num_sources: int, out_channels: int) -> None:
  """Checks (abstractly, no compute) that the surrogate maps the stacked
  sources ``[1, H, W, S*C]`` to ``[1, H, W, C_obs]``."""
  h, w, c = prior.image_shape
  x_like = jax.ShapeDtypeStruct((1, h, w, num_sources * c), jnp.float32)
  want = (1, h, w, out_channels)
  name = type(module).__name__
  try:
    out, _ = jax.eval_shape(lambda x: module.init_with_output(
        jax.random.key(0), x), x_like)
  except Exception as e:  # a module that cannot take S*C input channels
    raise ValueError(
        f"surrogate {name} cannot take {num_sources} source(s) of {c} "
        f"channel(s) (input [1, {h}, {w}, {num_sources * c}]): {e}") from e
  if tuple(out.shape) != want:
    raise ValueError(
        f"surrogate {name} maps [1, {h}, {w}, {num_sources * c}] to "
        f"{list(out.shape)}, but the observations need {list(want)} "
        f"(C_obs = {out_channels}).")


def validate_init_latents(init_latents, n: int, num_sources: int,
                          latent_dim: int) -> np.ndarray:
  """Checks warm-start latents: float32 ``[N, S, L]``, finite."""
  init_latents = np.asarray(init_latents, np.float32)
  want = (n, num_sources, latent_dim)
  if init_latents.shape != want:
    raise ValueError(f"init_latents must be [N, S, L] = {list(want)}, got "
                     f"shape {list(init_latents.shape)}.")
  if not np.all(np.isfinite(init_latents)):
    raise ValueError("init_latents contains NaN or Inf.")
  return init_latents
