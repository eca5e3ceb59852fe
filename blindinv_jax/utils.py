"""Small helpers of the command-line entry points: output folders and
progress bars."""
from __future__ import annotations

import pathlib

import numpy as np


def prepare_out(out, overwrite: bool) -> pathlib.Path:
  """Creates an output folder; refuses a non-empty one unless ``overwrite``."""
  out = pathlib.Path(out)
  if out.exists() and not out.is_dir():
    raise ValueError(f"Output path {str(out)!r} exists and is not a folder.")
  if out.exists() and any(out.iterdir()) and not overwrite:
    raise ValueError(f"Output folder {str(out)!r} exists and is not empty; "
                     "pass --overwrite or choose another --out.")
  out.mkdir(parents=True, exist_ok=True)
  return out


def progress_callback(total: int, desc: str = "solve"):
  """A tqdm bar over outer steps showing both losses: ``(callback, close)``.

  ``callback(step, metrics)`` matches :func:`blindinv_jax.solver.solve`'s;
  a step count that starts again (the second solve of
  ``SolverConfig.recentre``) starts the bar again, so named.
  """
  from tqdm.auto import tqdm
  bar = tqdm(total=total, desc=desc, dynamic_ncols=True)

  def callback(step, m):
    if step < bar.n:
      bar.reset()
      bar.set_description(f"{desc} (re-centred)")
    bar.update(step - bar.n)
    bar.set_postfix(surrogate=f"{float(np.min(m['surrogate_loss'])):.4f}",
                    latent=f"{float(np.min(m['latent_loss'])):.4f}")
  return callback, bar.close


def count_callback(total: int, desc: str):
  """A tqdm bar over ``total`` chunks: ``(callback, close)``, with
  ``callback(done, total)`` as :func:`blindinv_jax.refine.refine_latents`
  calls it."""
  from tqdm.auto import tqdm
  bar = tqdm(total=total, desc=desc, dynamic_ncols=True)
  return (lambda done, _total: bar.update(done - bar.n)), bar.close
