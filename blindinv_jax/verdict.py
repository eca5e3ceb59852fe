"""Will the recovery beat the observations? Two blind signals.

A blind user cannot score the observations against the truth, so the rule
"the prior's ceiling against your observations' quality" needs numbers the
user can compute. Both signals below compare the observations with their
own projection onto the range of G, ``P(y)`` (the fit of the *identity*
process: how well the prior explains the observations as they are). All
PSNRs are on the ``[-1, 1]`` scale mapped to ``[0, 1]``, pooled over every
pixel of every observation (:func:`pooled_db`).

* **Before a solve** (:func:`before_solve`, ``blindinv prior-report
  --observations``): ``PSNR(y, P(y))`` against the prior's ceiling, the
  same number for clean held-out images, ``PSNR(x, P(x))``. Observations
  that the prior draws about as closely as clean images (or more closely)
  hold no corruption that it can see beyond its own error: a recovery is
  likely worse than them. Observations far from the range (a strong blur,
  an edge map) are what the prior can improve.
* **After a solve** (:func:`after_solve`, ``SolveResult.blind_signal``,
  ``blindinv solve``): the learned process's fit, ``PSNR(F_hat(x_hat), y)``,
  against the identity's, ``PSNR(y, P(y))``. A learned F that explains the
  observations hardly better than no process at all did not find much to
  undo: the recovery is likely worse than the observations. Only where the
  observation is an image of the signal (one source, the prior's channels);
  elsewhere only the fit is reported.

The thresholds were chosen on the four MNIST tasks and the faces
walk-through (``docs/own-data.md``; ``experiments/tuning/verdict_cases.py``).
"""
from __future__ import annotations

import math
from typing import Optional

import numpy as np

#: Before a solve: warn when the observations are closer to the range than
#: the ceiling minus this many dB.
BEFORE_MARGIN_DB = 2.0
#: After a solve: warn when the learned process fits the observations less
#: than this many dB better than the identity.
AFTER_MARGIN_DB = 6.0


def pooled_db(a, b) -> float:
  """PSNR (dB) of ``a`` against ``b`` (``[-1, 1]``, any equal shapes) on
  the ``[0, 1]`` scale, from the mean squared error of every pixel; inf for
  equal arrays."""
  d = (np.asarray(a, np.float64) - np.asarray(b, np.float64)) / 2.0
  mse = float(np.mean(d * d))
  return math.inf if mse <= 0 else -10.0 * math.log10(mse)


def image_like(y_shape, source_shape) -> bool:
  """The observations ``[N, H, W, C_obs]`` can be read as images of the
  sources ``[N, S, H, W, C]``: one source, as many channels, the same
  grid."""
  return (source_shape[1] == 1 and source_shape[-1] == y_shape[-1] and
          tuple(y_shape[1:3]) == tuple(source_shape[2:4]))


def before_solve(projection_db: float, ceiling_db: float) -> dict:
  """The pre-solve verdict: ``projection_db = PSNR(y, P(y))`` of the
  observations, ``ceiling_db = PSNR(x, P(x))`` of clean held-out images.
  Returns ``{"projection_db", "ceiling_db", "warn", "message"}``."""
  warn = projection_db >= ceiling_db - BEFORE_MARGIN_DB
  if warn:
    msg = (f"warning: the prior draws your observations as closely as clean "
           f"held-out images ({projection_db:.1f} dB against "
           f"{ceiling_db:.1f} dB): it sees no corruption in them beyond its "
           "own error, so a blind solve is likely to return images worse "
           "than the observations. A prior that draws your images better "
           "(longer training, more images) is what would help.")
  else:
    msg = (f"the prior draws your observations {ceiling_db - projection_db:.1f}"
           f" dB less closely than clean held-out images ({projection_db:.1f} "
           f"against {ceiling_db:.1f} dB): they hold a corruption it can "
           "see, so a blind solve can be expected to improve them.")
  return {"projection_db": round(projection_db, 2),
          "ceiling_db": round(ceiling_db, 2), "warn": bool(warn),
          "message": msg}


def after_solve(fit_db: float, identity_db: Optional[float] = None,
                corruption_db: Optional[float] = None) -> dict:
  """The post-solve verdict: ``fit_db = PSNR(F_hat(x_hat), y)``,
  ``identity_db = PSNR(y, P(y))`` (None: not image-like, or not measured),
  ``corruption_db = PSNR(F_hat(x_hat), x_hat)`` (reported only). Returns
  ``{"fit_db", "identity_db", "corruption_db", "gain_db", "warn",
  "message"}``, ``gain_db = fit_db - identity_db``."""
  out = {"fit_db": round(fit_db, 2), "identity_db": None,
         "corruption_db": None if corruption_db is None else
         round(corruption_db, 2), "gain_db": None, "warn": False}
  if identity_db is None:
    out["message"] = (f"the learned process fits the observations to "
                      f"{fit_db:.1f} dB (PSNR of F_hat(x) against y); no "
                      "blind estimate of the recovery's quality against the "
                      "observations' is made (it needs observations that are"
                      " images of one source, and the prior).")
    return out
  gain = fit_db - identity_db
  out.update(identity_db=round(identity_db, 2), gain_db=round(gain, 2),
             warn=bool(gain < AFTER_MARGIN_DB))
  if out["warn"]:
    out["message"] = (
        f"warning: the learned process fits the observations only {gain:.1f}"
        f" dB better than no process at all ({fit_db:.1f} against "
        f"{identity_db:.1f} dB for the prior's closest images to y): it found"
        " little to undo, and the recovery is likely worse than the "
        "observations. Check the prior (blindinv prior-report "
        "--observations).")
  else:
    out["message"] = (
        f"the learned process fits the observations {gain:.1f} dB better "
        f"than no process at all ({fit_db:.1f} against {identity_db:.1f} dB):"
        " the recovery is likely better than the observations.")
  return out


def identity_fit_db(prior, y, steps: int = 500, seed: int = 0, *,
                    lr: float = 1e-2, restarts: int = 1) -> float:
  """``PSNR(y, P(y))``: the observations ``y [N, H, W, C]`` (the prior's
  channels, clipped to ``[-1, 1]``) projected onto the range of G
  (:func:`blindinv_jax.project.project`: ``steps`` Adam steps at ``lr``,
  ``restarts`` starts, key ``seed``), pooled."""
  import jax

  from blindinv_jax.project import project
  y = np.clip(np.asarray(y, np.float32), -1, 1)
  y_hat, _, _ = project(prior, y, steps=steps, lr=lr, restarts=restarts,
                        key=jax.random.key(seed))
  return pooled_db(y_hat, y)


def solve_signal(y, reconstruction, sources, prior=None,
                 steps: int = 500) -> dict:
  """:func:`after_solve` of a solve: y, reconstruction ``[N, H, W, C_obs]``,
  sources ``[N, S, H, W, C]``; with ``prior`` (and image-like observations)
  the identity's fit is measured by :func:`identity_fit_db`."""
  src = np.asarray(sources)
  fit = pooled_db(reconstruction, y)
  if not image_like(np.shape(y), src.shape):
    return after_solve(fit)
  corr = pooled_db(reconstruction, src[:, 0])
  ident = None if prior is None else identity_fit_db(prior, y, steps)
  return after_solve(fit, ident, corr)


def observation_psnr(y, truth) -> Optional[list]:
  """``[mean, std]`` PSNR of the observations against ``truth [N, S, H, W,
  C]`` where they are images of one source with its channels, else None."""
  from blindinv_jax import metrics
  y, truth = np.asarray(y), np.asarray(truth)
  if truth.ndim == 4:
    truth = truth[:, None]
  if not image_like(y.shape, truth.shape):
    return None
  return metrics.summary(np.asarray(metrics.psnr(np.clip(y, -1, 1),
                                                 truth[:, 0])))
