"""What a user reads after a command: a prior's report, a solve's summary.

* :func:`prior_report`: can this prior draw images like mine? The
  representation error (PSNR/SSIM of :func:`blindinv_jax.project.project` on
  held-out images), its spread, the worst images, and a one-line verdict.
* :func:`kernel_summary`: the size and centre of an estimated kernel.
* :func:`score_sources`: PSNR/SSIM of recovered sources against the truth.
"""
from __future__ import annotations

import pathlib

import jax
import numpy as np


def verdict(psnr_mean: float) -> str:
  """One line that explains a representation error (dB)."""
  return (f"recoveries cannot be much better than ~{psnr_mean:.1f} dB on "
          "images like these (the prior draws them no closer); if that is "
          "below your observations' quality, train the prior longer or on "
          "more data.")


def prior_report(prior, x, *, steps: int = 1000, lr: float = 1e-2,
                 restarts: int = 1, seed: int = 0, out=None,
                 show: int = 8) -> dict:
  """The representation error of ``prior`` on images ``x [N, H, W, C]``.

  Projects x onto the range of G; returns PSNR/SSIM (mean, std, median,
  min), the indices of the worst images and the verdict. With ``out``
  writes ``samples.png`` (64 samples), ``worst.png`` (the ``show`` worst
  images above their projections) and ``report.json``.
  """
  import json

  from blindinv_jax import metrics, viz
  from blindinv_jax.project import project
  x_hat, _, _ = project(prior, x, steps=steps, lr=lr, restarts=restarts,
                        key=jax.random.key(seed))
  p = np.asarray(metrics.psnr(x_hat, x))
  s = np.asarray(metrics.ssim(x_hat, x))
  worst = np.argsort(p)[:show]
  rep = {"n": int(len(p)), "steps": steps, "lr": lr, "restarts": restarts,
         "psnr": metrics.summary(p), "psnr_median": float(np.median(p)),
         "psnr_min": float(p.min()), "ssim": metrics.summary(s),
         "worst": worst.tolist(), "psnr_per_image": p.round(2).tolist(),
         "verdict": verdict(float(p.mean()))}
  if out is not None:
    out = pathlib.Path(out)
    out.mkdir(parents=True, exist_ok=True)
    viz.save_grid(out / "samples.png", prior.generate(prior.sample_latents(
        jax.random.key(seed), 64)), ncols=8, scale=3)
    viz.save_rows(out / "worst.png",
                  [np.asarray(x)[worst], np.asarray(x_hat)[worst]],
                  ["image", "closest the\nprior draws"],
                  title=f"the {len(worst)} worst of {len(p)}: "
                  + ", ".join(f"{v:.1f}" for v in p[worst]) + " dB")
    (out / "report.json").write_text(json.dumps(rep, indent=1))
  return rep


def kernel_summary(kernel: np.ndarray, threshold: float = 0.05) -> dict:
  """Size and centre of a 2-D kernel: the bounding box of the entries above
  ``threshold`` of the largest magnitude, and the magnitude-weighted centre
  (row, column), relative to the array's centre."""
  k = np.abs(np.asarray(kernel, np.float64))
  if k.max() <= 0:
    return {"size": [0, 0], "centre_offset": [0.0, 0.0]}
  rows, cols = np.nonzero(k >= threshold * k.max())
  size = [int(rows.max() - rows.min() + 1), int(cols.max() - cols.min() + 1)]
  r, c = np.indices(k.shape)
  centre = [float((k * r).sum() / k.sum() - (k.shape[0] - 1) / 2),
            float((k * c).sum() / k.sum() - (k.shape[1] - 1) / 2)]
  return {"size": size, "centre_offset": [round(v, 2) for v in centre]}


def score_sources(sources, truth) -> dict:
  """PSNR/SSIM of recovered ``sources [N, S, H, W, C]`` against ``truth``
  (same shape, or ``[N, H, W, C]`` for S = 1); for S > 1 each estimate is
  matched to its true source first (intensity-normalised)."""
  import jax.numpy as jnp

  from blindinv_jax import metrics
  est, true = jnp.asarray(sources), jnp.asarray(truth, jnp.float32)
  if true.ndim == 4:
    true = true[:, None]
  if true.shape != est.shape:
    raise ValueError(f"--truth: shape {list(true.shape)} does not match the "
                     f"recovered sources {list(est.shape)} ([N, S, H, W, C] "
                     "or [N, H, W, C] for one source).")
  if est.shape[1] > 1:
    est, true = (metrics.normalize_intensity(est),
                 metrics.normalize_intensity(true))
    est, _, _ = metrics.match_sources(est, true)
  return {"psnr": metrics.summary(metrics.psnr(est, true)),
          "ssim": metrics.summary(metrics.ssim(est, true))}


def load_array(path, what: str, keys=("y", "observations")) -> np.ndarray:
  """An array from ``.npy``, or ``.npz`` (one of ``keys``, or its only array)."""
  path = pathlib.Path(path)
  if not path.is_file():
    raise FileNotFoundError(f"{what}: no file at {str(path)!r}.")
  if path.suffix not in (".npy", ".npz"):
    raise ValueError(f"{what}: {path} is not a .npy or .npz file; save the "
                     "array with numpy.save or numpy.savez.")
  try:
    data = np.load(path, allow_pickle=False)
  except Exception as e:
    raise ValueError(f"{what}: {path} is not a readable {path.suffix} file of "
                     f"numbers ({type(e).__name__}); save the array with "
                     "numpy.save or numpy.savez.") from e
  if isinstance(data, np.ndarray):
    return data
  names = list(data.keys())
  for k in keys:
    if k in names:
      return data[k]
  if len(names) == 1:
    return data[names[0]]
  raise ValueError(f"{what}: {path} holds arrays {names}; name the array "
                   f"{' or '.join(repr(k) for k in keys)}.")
