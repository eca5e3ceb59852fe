"""Image-quality metrics on images in [-1, 1] (mapped to [0, 1]).

``psnr`` and ``ssim`` are pure JAX (``ssim`` is dm-pix's, Wang et al. 2004
with an 11x11 Gaussian window of sigma 1.5, as ``tf.image.ssim``);
``kernel_error`` compares an estimated blur/edge kernel with the true one.
"""
from __future__ import annotations

import warnings

import jax.numpy as jnp
import numpy as np


def to_unit(x):
  """[-1, 1] -> [0, 1], clipped."""
  return (jnp.clip(x, -1.0, 1.0) + 1.0) / 2.0


def psnr(x, y, max_db: float = 100.0):
  """PSNR in dB per image: x, y [..., H, W, C] in [-1, 1] -> [...].

  Computed on the images mapped to [0, 1]; identical images give ``max_db``.
  """
  mse = jnp.mean((to_unit(x) - to_unit(y)) ** 2, axis=(-3, -2, -1))
  return jnp.minimum(-10.0 * jnp.log10(jnp.maximum(mse, 1e-30)), max_db)


def ssim(x, y):
  """SSIM per image: x, y [..., H, W, C] in [-1, 1] -> [...] (1 if equal).

  dm-pix's SSIM on the images mapped to [0, 1] (``max_val=1``), averaged
  over pixels and channels.
  """
  import dm_pix
  x, y = jnp.broadcast_arrays(to_unit(x), to_unit(y))
  lead = x.shape[:-3]
  flat = lambda a: a.reshape((-1,) + a.shape[-3:])
  return dm_pix.ssim(flat(x), flat(y), max_val=1.0).reshape(lead)


def summary(values) -> list:
  """``[mean, std]`` of a metric over images, as Python floats."""
  v = np.asarray(values, np.float64)
  return [float(v.mean()), float(v.std())]


def score(est, true, separation: bool) -> dict:
  """PSNR/SSIM of estimates ``est [N, S, H, W, C]`` against ``true`` (same
  shape), per image and summarised: ``{"psnr": [mean, std], "ssim": [mean,
  std], "psnr_per_image": [N*S], "matched": est as scored}``. For
  separation both sides are intensity normalised and each estimate matched
  to its true source first (:func:`match_sources`). The one scoring of
  recoveries: experiments, ``blindinv solve --truth`` and the demo."""
  est, true = jnp.asarray(est), jnp.asarray(true)
  if separation:
    est = normalize_intensity(est)
    true = normalize_intensity(true)
    est, _, _ = match_sources(est, true)
  p = np.asarray(psnr(est, true))
  s = np.asarray(ssim(est, true))
  return {"psnr": summary(p), "ssim": summary(s),
          "psnr_per_image": p.round(3).tolist(), "matched": np.asarray(est)}


def frechet_distance(feats_a, feats_b) -> float:
  """Frechet distance between Gaussians fitted to two feature sets
  ``[n_a, d]`` and ``[n_b, d]``: ``|mu_a - mu_b|^2 + Tr(S_a + S_b -
  2 (S_a S_b)^(1/2))`` (the FID formula, in whatever features are given).
  It is biased upwards for small n: compare distances only at equal n."""
  from scipy import linalg
  a = np.asarray(feats_a, np.float64)
  b = np.asarray(feats_b, np.float64)
  if a.ndim != 2 or b.ndim != 2 or a.shape[1] != b.shape[1]:
    raise ValueError(f"frechet_distance takes [n, d] features with the same "
                     f"d, got {a.shape} and {b.shape}.")
  mu = a.mean(0) - b.mean(0)
  ca, cb = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
  with warnings.catch_warnings():      # dead ReLU features: singular, fine
    warnings.simplefilter("ignore", linalg.LinAlgWarning)
    root, _ = linalg.sqrtm(ca @ cb, disp=False)
  return float(mu @ mu + np.trace(ca + cb - 2 * np.real(root)))


def kernel_error(k_est, k_true, max_shift: int = 3) -> dict:
  """How far an estimated kernel is from the true one, up to shift and scale.

  Both kernels are 2-D (different sizes are fine: they are centred in a
  common frame). Over integer shifts of ``k_est`` up to ``max_shift`` pixels,
  picks the shift whose least-squares scale ``s`` gives the smallest
  normalised error ``|s * k_est - k_true| / |k_true|``, and reports it with
  the normalised cross-correlation at that shift (1 = same shape), the shift
  and the scale. A surrogate is only identifiable up to such a shift and
  scale, which the sources absorb.
  """
  k_est = np.asarray(k_est, np.float64)
  k_true = np.asarray(k_true, np.float64)
  if k_est.ndim != 2 or k_true.ndim != 2:
    raise ValueError(f"kernel_error needs 2-D kernels, got shapes "
                     f"{k_est.shape} and {k_true.shape}.")
  size = max(k_est.shape + k_true.shape) + 2 * max_shift

  def embed(k):
    out = np.zeros((size, size))
    oy, ox = (size - k.shape[0]) // 2, (size - k.shape[1]) // 2
    out[oy:oy + k.shape[0], ox:ox + k.shape[1]] = k
    return out

  e, t = embed(k_est), embed(k_true)
  t_norm = max(np.linalg.norm(t), 1e-12)
  best = None
  for dy in range(-max_shift, max_shift + 1):
    for dx in range(-max_shift, max_shift + 1):
      s = np.roll(e, (dy, dx), axis=(0, 1))
      scale = float(np.vdot(s, t) / max(np.vdot(s, s), 1e-12))
      err = float(np.linalg.norm(scale * s - t) / t_norm)
      ncc = float(np.vdot(s, t) / (np.linalg.norm(s) * t_norm + 1e-12))
      if best is None or err < best["error"]:
        best = {"error": err, "ncc": ncc, "shift": [dy, dx], "scale": scale}
  return best


def mask_iou(gain, true_mask, where=None, threshold: float = 0.5) -> float:
  """Intersection over union of the lost pixels: a learned mask's per-pixel
  ``gain [H, W]`` below ``threshold`` against the true mask ``[H, W]`` (1:
  seen, 0: lost), over the pixels ``where [H, W]`` is True (e.g. where the
  clean images vary: a pixel that is background in every image cannot tell
  a mask from no mask). 1.0 when neither has a lost pixel there."""
  gain, true_mask = np.asarray(gain), np.asarray(true_mask)
  where = np.ones(gain.shape, bool) if where is None else np.asarray(where)
  est, tru = (gain < threshold) & where, (true_mask < 0.5) & where
  union = np.sum(est | tru)
  return 1.0 if union == 0 else float(np.sum(est & tru) / union)


def normalize_intensity(x, eps: float = 1e-8):
  """Per-image min-max stretch to ``[-1, 1]`` (the paper's "intensity
  normalized" display of separated sources): x ``[..., H, W, C]``.

  Separated sources are only defined up to scale and offset (a mixture does
  not say how bright each source is), so the separation metrics compare
  ``normalize_intensity`` of every method's sources with that of the truth.
  A constant image maps to -1.
  """
  lo = jnp.min(x, axis=(-3, -2, -1), keepdims=True)
  hi = jnp.max(x, axis=(-3, -2, -1), keepdims=True)
  return 2.0 * (x - lo) / jnp.maximum(hi - lo, eps) - 1.0


def match_sources(estimated, true, metric=psnr):
  """Reorders estimated sources to best match the true ones.

  estimated, true: ``[N, S, H, W, C]``. Per observation, picks the
  permutation of the S estimates with the highest total ``metric`` against
  the S true sources (Hungarian assignment on the ``S x S`` score matrix).
  Returns ``(matched [N, S, H, W, C], perm [N, S], scores [N, S])`` where
  ``matched[n, i] = estimated[n, perm[n, i]]`` is compared with
  ``true[n, i]``.
  """
  from scipy.optimize import linear_sum_assignment
  est, tru = jnp.asarray(estimated), jnp.asarray(true)
  if est.ndim != 5 or est.shape != tru.shape:
    raise ValueError(f"match_sources needs two [N, S, H, W, C] arrays of the "
                     f"same shape, got {est.shape} and {tru.shape}.")
  # scores[n, i, j] = metric(estimated j, true i)
  scores = np.asarray(metric(est[:, None, :], tru[:, :, None]))
  perm = np.stack([linear_sum_assignment(-s)[1] for s in scores])
  matched = jnp.take_along_axis(
      est, jnp.asarray(perm)[:, :, None, None, None], axis=1)
  best = np.take_along_axis(scores, perm[:, :, None], axis=2)[:, :, 0]
  return matched, perm, best
