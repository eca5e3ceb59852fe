"""Small helpers shared across the package (argument checks, output folders)."""
from __future__ import annotations

import pathlib

import numpy as np


def check_positive_int(label: str, value) -> int:
  """``value`` as an int, or a ValueError naming ``label`` (bools refused)."""
  if (not isinstance(value, (int, np.integer)) or isinstance(value, bool) or
      value < 1):
    raise ValueError(f"{label} must be a positive int, got {value!r}.")
  return int(value)


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

  ``callback(step, metrics)`` matches :func:`blindinv_jax.solver.solve`'s.
  """
  from tqdm.auto import tqdm
  bar = tqdm(total=total, desc=desc, dynamic_ncols=True)

  def callback(step, m):
    bar.update(step - bar.n)
    bar.set_postfix(surrogate=f"{float(np.min(m['surrogate_loss'])):.4f}",
                    latent=f"{float(np.min(m['latent_loss'])):.4f}")
  return callback, bar.close


def median_time(fn, repeats: int = 5) -> float:
  """Median wall seconds of ``fn()`` over ``repeats`` calls after one
  warm-up call (``fn`` must block until its result is ready)."""
  return interleaved_medians({"fn": fn}, repeats)["fn"]


def interleaved_medians(fns: dict, repeats: int) -> dict:
  """name -> median seconds of ``fns[name]()``, after one warm-up call each,
  the functions taking turns within every repeat (so drift in the machine's
  speed hits all of them alike)."""
  import statistics
  import time
  for fn in fns.values():
    fn()
  times = {k: [] for k in fns}
  for _ in range(repeats):
    for k, fn in fns.items():
      t0 = time.perf_counter()
      fn()
      times[k].append(time.perf_counter() - t0)
  return {k: statistics.median(v) for k, v in times.items()}


def usable_cores() -> int:
  """CPU cores this process may run on (its affinity mask where the OS has
  one, else all cores)."""
  import os
  try:
    return max(1, len(os.sched_getaffinity(0)))
  except AttributeError:                        # not Linux
    return max(1, os.cpu_count() or 1)
