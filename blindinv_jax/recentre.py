"""Moving an off-centre solve back to the centre (``SolverConfig.recentre``).

Without a frame around the observations, a kernel shifted by ``c`` pixels
and sources shifted by ``-c`` fit the observations' interior alike, and a
solve often settles at such a pair (on edge maps most draws land a whole
pixel off, docs/notes/2026-12-04-unknown-borders.md). A blur or an edge
filter is centred by convention, and a prior trained on centred images
draws them most readily, so the pair can be moved back:

1. :func:`shift_sources`: the recovered sources shifted by the effective
   kernel's energy centroid (:func:`blindinv_jax.models.surrogates.
   kernel_centroid`), with a cubic spline, the background continuing;
2. their projection on the range of G (:func:`blindinv_jax.project.project`
   with :data:`blindinv_jax.project.WARM_START`): :func:`start`;
3. a second solve from those latents (``recentre_restarts`` restarts, each
   with its own fresh surrogate, one kept by ``select``; the same key,
   observations and schedule: :func:`second_config`), which
   :func:`blindinv_jax.solver.solve` runs;
4. :func:`keep`: of the two solves, the best fit among those whose kernel
   sits within ``solver.CENTRE_TOLERANCE`` of the more centred one's
   distance (the rule of ``select="centred"``).

A solve whose kernel sits within ``recentre`` pixels of the centre is
returned as it is, bit for bit. Only the linear conv families on the
prior's grid have a kernel to centre
(:func:`blindinv_jax.models.surrogates.centres_kernel`).
"""
from __future__ import annotations

import warnings

import jax
import jax.numpy as jnp
import numpy as np
from scipy import ndimage

from blindinv_jax import project
from blindinv_jax.models.surrogates import (
  centred_eligible,
  centres_kernel,
  kernel_centroid,
  kernel_off_centre,
)


def check(config, mesh=None) -> None:
  """A ValueError for what re-centring cannot run with: a mesh (the second
  solve would need every process's rows)."""
  if config.recentre is not None and mesh is not None:
    raise ValueError("SolverConfig.recentre (--recentre) runs a second "
                     "solve on one process's observations; it does not run "
                     "on a mesh. Drop mesh=, or recentre=None.")


def needed(result, config) -> bool:
  """Whether ``result`` should be re-centred under ``config.recentre`` (a
  distance in pixels; ``None``: never). A family with no kernel to centre
  warns and is returned as it is."""
  if config.recentre is None:
    return False
  if not centres_kernel(result.surrogate):
    warnings.warn(f"recentre={config.recentre} moves a linear conv kernel "
                  f"back to the centre; {type(result.surrogate).__name__} "
                  "has none, so the solve is returned as it is.",
                  UserWarning, stacklevel=3)
    return False
  return float(kernel_off_centre(result.surrogate_params)) > config.recentre


def second_config(config):
  """The second solve's config: ``config`` without re-centring, with
  ``recentre_restarts`` restarts."""
  return config.replace(recentre=None, restarts=config.recentre_restarts,
                        recentre_restarts=1)


def shift_sources(x, c) -> np.ndarray:
  """Sources ``x [..., H, W, C]`` moved by ``-c`` (``[2]``: rows, cols,
  pixels), cubic spline, the border continuing (``"nearest"``), clipped
  to ``[-1, 1]``: where digits recovered beside a kernel centred at ``c``
  sit under a centred one."""
  x = np.asarray(x, np.float64)
  c = np.asarray(c, np.float64)
  shift = (0,) * (x.ndim - 3) + (-c[0], -c[1], 0)
  return np.clip(ndimage.shift(x, shift, order=3, mode="nearest"),
                 -1, 1).astype(np.float32)


def start(result, prior, key, restarts: int = 1) -> jax.Array:
  """Latents of the second solve: the projection on G's range of
  ``result``'s sources ``[N, S, H, W, C]`` moved back by its kernel's
  centroid (:func:`shift_sources`); ``[N, S, L]``, or the same for each of
  ``restarts > 1`` restarts, ``[R, N, S, L]``."""
  x = np.asarray(result.sources)
  moved = shift_sources(x, kernel_centroid(result.surrogate_params))
  _, z, _ = project.project(prior, moved.reshape((-1,) + x.shape[2:]),
                            key=key, **project.WARM_START)
  z = z.reshape(x.shape[:2] + (-1,))
  return z if restarts == 1 else jnp.broadcast_to(z, (restarts,) + z.shape)


def pick_centred(off, fit, tolerance: float) -> int:
  """Index of the best (lowest) ``fit`` among the candidates whose kernel
  distance ``off`` is within ``tolerance`` of the smallest
  (:func:`blindinv_jax.models.surrogates.centred_eligible`)."""
  ok = np.asarray(centred_eligible(off, tolerance))
  return int(np.argmin(np.where(ok, np.asarray(fit, np.float64), np.inf)))


def keep(first, second, y, tolerance: float):
  """The kept one of two solves of ``y [N, ...]`` (SolveResults), with
  ``recentred`` saying what each was: the best L1 fit among those whose
  kernel sits within ``tolerance`` pixels of the more centred one."""
  off = [float(kernel_off_centre(r.surrogate_params)) for r in (first, second)]
  fit = [float(jnp.mean(jnp.abs(r.reconstruction - jnp.asarray(y))))
         for r in (first, second)]
  kept = pick_centred(off, fit, tolerance)
  info = {"off_centre": [round(v, 3) for v in off],
          "fit": [round(v, 6) for v in fit],
          "kept": ("first", "second")[kept]}
  return (first, second)[kept].replace(recentred=info)


def describe(info) -> str:
  """One line for a solve's ``recentred`` info (empty for None)."""
  if not info:
    return ""
  (a, b), (fa, fb) = info["off_centre"], info["fit"]
  return (f"re-centred: the kernel sat {a:.2f} px off centre (fit {fa:.4f}); "
          f"the second solve's sits {b:.2f} px off (fit {fb:.4f}); kept the "
          f"{info['kept']}")
