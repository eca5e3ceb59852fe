"""Small helpers shared by the command line and the demo."""
from __future__ import annotations

import pathlib


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
