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
