"""The input checks every public entry point shares.

Each check runs on host values before any tracing and raises one
``ValueError`` that names the problem and the fix.
"""
from __future__ import annotations

import warnings
from typing import List, Optional

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
  check_perceptual(prior, alpha)


def check_perceptual(prior, alpha: float) -> None:
  """A positive perceptual weight ``alpha`` set explicitly needs a prior's
  discriminator (the default, ``config.DEFAULT_ALPHA``, becomes 0 without
  one: :func:`blindinv_jax.config.resolve_alpha`)."""
  if (alpha > 0 and not getattr(alpha, "is_default", False) and
      not prior.has_discriminator):
    raise ValueError(
        f"alpha = {alpha:g} weighs the perceptual term log(1 - D(G(z))), but "
        f"this prior ({type(prior).__name__}) has no discriminator; set "
        "alpha=0 or leave alpha at its default, which is 0 for such a prior "
        "(SolverConfig(alpha=0), or no --alpha on the command line).")


#: How each certain problem is fixed: in Python (the default) or on the
#: command line (:data:`CLI_FIXES`).
PYTHON_FIXES = {
    "layout": "transpose them with np.transpose(y, (0, 2, 3, 1))",
    "channel": "add a channel axis (y[..., None]) for single-channel images",
    "nonfinite": "remove or repair them before solving",
    "range01": "rescale them as 2 * y - 1",
    "range255": "rescale them as y / 127.5 - 1",
}
CLI_FIXES = {
    "layout": "pass --layout nchw",
    "channel": "save them as [N, H, W, 1]",
    "nonfinite": "remove or repair them before solving",
    "range01": "pass --range 0,1",
    "range255": "pass --range 0,255",
}


def grid_factor(shape, image_shape) -> Optional[int]:
  """``s`` when observations of ``shape`` ``[N, h, w, C]`` sit on the
  prior's ``H x W`` grid (``image_shape``) shrunk by an integer ``s`` in
  both axes (1: the same grid); ``None`` otherwise."""
  if len(shape) != 4:
    return None
  (h, w), (hh, ww) = tuple(shape[1:3]), tuple(image_shape[:2])
  if h < 1 or w < 1 or hh % h or ww % w or hh // h != ww // w:
    return None
  return hh // h


def observation_problems(y, image_shape, what: str = "observations",
                         fixes: Optional[dict] = None,
                         smaller_grids: bool = False) -> List[str]:
  """Everything certainly wrong with ``y`` (meant as ``[N, H, W, C]`` on a
  prior's ``image_shape`` grid; with ``smaller_grids`` also on that grid
  shrunk by an integer factor, :func:`grid_factor`, or flat measurements
  ``[N, K]``), as sentences naming the fix, all at once: the number of
  axes, the dtype, an NCHW layout, the grid size, NaN/Inf."""
  fixes = {**PYTHON_FIXES, **(fixes or {})}
  y = np.asarray(y)
  h, w = tuple(image_shape[:2])
  if y.ndim == 3:
    return [f"{what} must be [N, H, W, C_obs]; got shape {y.shape}: "
            f"{fixes['channel']}."]
  flat = smaller_grids and y.ndim == 2            # [N, K] measurements
  if y.ndim != 4 and not flat:
    return [f"{what} must be [N, H, W, C_obs]" + (
        " (or flat measurements [N, K])" if smaller_grids else "") +
        f", got shape {y.shape}."]
  out = []
  if not (np.issubdtype(y.dtype, np.floating) or
          np.issubdtype(y.dtype, np.integer)) or y.dtype == np.bool_:
    out.append(f"{what} must be real numbers (a float or int array), got "
               f"dtype {y.dtype}.")
  if y.shape[0] < 1:
    out.append(f"{what}: need at least one observation (N >= 1).")
  smaller = smaller_grids and grid_factor(y.shape, image_shape) is not None
  if not flat and tuple(y.shape[1:3]) != (h, w) and not smaller:
    if tuple(y.shape[2:4]) == (h, w) and y.shape[1] in (1, 3, 4):
      out.append(f"{what} have shape {list(y.shape)}, which looks like [N, C, "
                 f"H, W]; the solver takes [N, H, W, C]: {fixes['layout']}.")
    elif smaller_grids:
      out.append(f"{what} are {y.shape[1]}x{y.shape[2]} but the prior "
                 f"generates {h}x{w} images, and no surrogate family makes "
                 f"that grid: the families make {h}x{w} ('conv', "
                 "'conv_scene', 'mixing', 'conv_mlp', 'mask', 'conv_mask') "
                 f"or {h}/s x {w}/s for an integer s ('downsample'), and flat "
                 "[N, K] measurements ('dense'); resize them, or use a prior "
                 "trained at another size.")
    else:
      out.append(f"{what} are {y.shape[1]}x{y.shape[2]} but the prior "
                 f"generates {h}x{w} images; resize them or use a prior "
                 "trained at that size.")
  if np.issubdtype(y.dtype, np.floating):
    finite = np.isfinite(y)
    if not np.all(finite):
      out.append(f"{what} contain {int(finite.size - finite.sum())} NaN or "
                 f"Inf values; {fixes['nonfinite']}.")
  return out


#: ``--range`` values: the scale of the user's arrays -> to ``[-1, 1]``.
RANGES = {"-1,1": lambda a: a, "0,1": lambda a: 2.0 * a - 1.0,
          "0,255": lambda a: a / 127.5 - 1.0}


def convert_input(a, layout: str = "nhwc", value_range: Optional[str] = None):
  """A user's array on the solver's conventions: ``layout="nchw"`` moves the
  channel axis of ``[N, C, H, W]`` (or ``[N, S, C, H, W]``) last;
  ``value_range`` (:data:`RANGES`) rescales it to ``[-1, 1]``. Returns a
  float32 numpy array (the input itself when nothing is asked)."""
  a = np.asarray(a)
  if layout not in ("nhwc", "nchw"):
    raise ValueError(f"layout must be 'nhwc' or 'nchw', got {layout!r}.")
  if value_range is not None and value_range not in RANGES:
    raise ValueError(f"range must be one of {sorted(RANGES)}, got "
                     f"{value_range!r}.")
  if layout == "nchw":
    if a.ndim < 4:
      raise ValueError(f"--layout nchw needs [N, C, H, W] (or [N, S, C, H, "
                       f"W]) arrays, got shape {list(a.shape)}.")
    a = np.moveaxis(a, -3, -1)
  if value_range is not None:
    a = RANGES[value_range](a.astype(np.float32))
  return a


def refuse(problems: List[str]) -> None:
  """One ``ValueError`` with every problem (none: nothing)."""
  if len(problems) == 1:
    raise ValueError(problems[0])
  if problems:
    raise ValueError(f"{len(problems)} problems, all to fix before "
                     "anything runs:\n" + "\n".join(f"  - {p}"
                                                      for p in problems))


def validate_observations(y, prior, num_sources, alpha: float = 0.0,
                          smaller_grids: bool = False) -> np.ndarray:
  """Checks y (and the prior, for the perceptual weight ``alpha``) before any
  tracing, every problem in one message (:func:`observation_problems`);
  returns y as float32 ``[N, h, w, C_obs]`` (``h, w`` the prior's grid, or
  with ``smaller_grids`` that grid over an integer factor)."""
  check_prior(prior)
  refuse(observation_problems(y, prior.image_shape,
                              smaller_grids=smaller_grids))
  y = np.asarray(y).astype(np.float32)
  check_positive_int("num_sources", num_sources)
  check_perceptual(prior, alpha)
  return y


def range_notes(y: np.ndarray, limit: float = 10.0,
                fixes: Optional[dict] = None, what: str = "observations"
                ) -> list:
  """What may be wrong with the value range of ``y``, as sentences naming
  the fix (``fixes``: :data:`PYTHON_FIXES` or :data:`CLI_FIXES`).

  The prior's images are in ``[-1, 1]``: a blur of them stays in ``[-1,
  1]``, a Sobel edge map in ``[-8, 8]``, a mixture ``|M^T X|`` of three
  sources within a few units. Values beyond ``limit`` usually mean 0..255
  data; values all within ``[0, 1]`` often mean 0..1 data (but a
  non-negative process, e.g. ``|mixtures|``, makes them too).
  """
  fixes = {**PYTHON_FIXES, **(fixes or {})}
  notes = []
  peak = float(np.max(np.abs(y)))
  if peak > limit:
    notes.append(
        f"{what} reach |y| = {peak:g}, far outside the range the prior's "
        f"images [-1, 1] produce (|y| <= 8 for the built-in forward models); "
        f"if they are 0..255 images, {fixes['range255']}, or the solver may "
        "not converge.")
  elif float(np.min(y)) >= 0.0 and peak <= 1.0 and peak > 0.0:
    notes.append(
        f"{what} lie in [0, 1] while the prior's images are in [-1, 1]: if "
        f"they are images scaled to 0..1, {fixes['range01']} (a process "
        "whose output is non-negative, e.g. |mixtures|, can be left as it "
        "is).")
  return notes


def warn_if_out_of_range(y: np.ndarray, limit: float = 10.0, prior=None,
                         num_sources: int = 1) -> None:
  """Warns (``UserWarning``) with each of :func:`range_notes` (and, given
  the prior, :func:`channel_notes`)."""
  notes = range_notes(y, limit)
  if prior is not None:
    notes += channel_notes(y, prior, num_sources)
  for note in notes:
    warnings.warn(note, UserWarning, stacklevel=3)


def channel_notes(y: np.ndarray, prior, num_sources: int) -> list:
  """Observation channels that the prior's one source may not explain (e.g.
  RGB observations, grayscale prior). With several sources, more channels
  than sources are more mixtures than sources, as in separation with four
  mixtures of three: nothing to say."""
  c, c_obs = prior.image_shape[-1], y.shape[-1]
  if np.ndim(y) == 4 and num_sources == 1 and c_obs > c:
    return [f"observations have {c_obs} channels but the prior draws "
            f"{num_sources} source(s) of {c} channel(s): the surrogate must "
            f"invent {c_obs - c * num_sources} channel(s) (e.g. colour from "
            "grayscale); use a prior with the observations' channels if that "
            "is not intended."]
  return []


def check_surrogate(module, prior, num_sources: int, out_shape) -> None:
  """Checks (abstractly, no compute) that the surrogate maps the stacked
  sources ``[1, H, W, S*C]`` to one observation, ``[1, *out_shape]`` (an
  int ``out_shape`` is C_obs on the prior's grid)."""
  h, w, c = prior.image_shape
  x_like = jax.ShapeDtypeStruct((1, h, w, num_sources * c), jnp.float32)
  if isinstance(out_shape, (int, np.integer)):
    out_shape = (h, w, int(out_shape))
  want = (1,) + tuple(out_shape)
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
        f"{list(out.shape)}, but the observations need {list(want)}.")


def validate_init_latents(init_latents, n: int, num_sources: int,
                          latent_dim: int, restarts: int = 1) -> np.ndarray:
  """Checks warm-start latents: float32 ``[N, S, L]`` (restart 0's) or
  ``[R, N, S, L]`` (every restart's), finite."""
  init_latents = np.asarray(init_latents, np.float32)
  want = (n, num_sources, latent_dim)
  if init_latents.shape not in (want, (restarts,) + want):
    raise ValueError(f"init_latents must be [N, S, L] = {list(want)} or "
                     f"[R, N, S, L] = {[restarts, *want]}, got shape "
                     f"{list(init_latents.shape)}.")
  if not np.all(np.isfinite(init_latents)):
    raise ValueError("init_latents contains NaN or Inf.")
  return init_latents


def check_restart_starts(init_latents, refused: bool) -> None:
  """A ValueError for latents ``[R, N, S, L]`` (one start per restart)
  where ``refused``: with ``"auto"`` or a mesh, which take ``[N, S, L]``."""
  if refused and np.ndim(init_latents) == 4:
    raise ValueError("init_latents [R, N, S, L] (one start per restart) "
                     "runs with a named surrogate and num_sources, without "
                     "a mesh; pass [N, S, L] (restart 0's start) instead.")


def shape_family(y, prior) -> Optional[str]:
  """The one family that makes observations of y's shape when it is not
  the prior's grid: ``"downsample"`` for ``[N, H/s, W/s, C]``, ``"dense"``
  for ``[N, K]``; ``None`` otherwise (and for shapes no family makes,
  which validation refuses)."""
  shape, grid = np.shape(y), getattr(prior, "image_shape", None)
  if grid is None:
    return None
  if len(shape) == 2:
    return "dense"
  if (len(shape) == 4 and tuple(shape[1:3]) != tuple(grid[:2]) and
      grid_factor(shape, grid)):
    return "downsample"
  return None
