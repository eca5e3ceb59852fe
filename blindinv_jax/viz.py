"""Figures: image grids (PIL) and labelled panels (matplotlib, imported lazily)."""
from __future__ import annotations

import math
import pathlib
from typing import Optional, Sequence

import numpy as np


def to_uint8(images) -> np.ndarray:
  """[-1, 1] floats -> uint8 [0, 255]."""
  x = (np.clip(np.asarray(images, np.float32), -1.0, 1.0) + 1.0) * 127.5
  return np.round(x).astype(np.uint8)


def image_grid(images, ncols: Optional[int] = None, pad: int = 2) -> np.ndarray:
  """images [n, H, W, C] in [-1, 1] -> uint8 grid [rows*(H+pad)+pad, ..., C]."""
  images = to_uint8(images)
  n, h, w, c = images.shape
  ncols = ncols or int(math.ceil(math.sqrt(n)))
  nrows = int(math.ceil(n / ncols))
  grid = np.full((nrows * (h + pad) + pad, ncols * (w + pad) + pad, c), 255,
                 np.uint8)
  for i, im in enumerate(images):
    r, q = divmod(i, ncols)
    grid[pad + r * (h + pad):pad + r * (h + pad) + h,
         pad + q * (w + pad):pad + q * (w + pad) + w] = im
  return grid


def save_grid(path, images, ncols: Optional[int] = None, scale: int = 2):
  """Writes images [n, H, W, C] in [-1, 1] as one PNG grid."""
  from PIL import Image
  grid = image_grid(images, ncols)
  pil = Image.fromarray(grid[..., 0] if grid.shape[-1] == 1 else grid)
  if scale > 1:
    pil = pil.resize((pil.width * scale, pil.height * scale),
                     Image.Resampling.NEAREST)
  path = pathlib.Path(path)
  path.parent.mkdir(parents=True, exist_ok=True)
  pil.save(path)
  return path


def side_by_side(images, gap: int = 2) -> np.ndarray:
  """[n, S, H, W, C] -> [n, H, S*W + (S-1)*gap, C]: each item's S images in
  one strip, separated by white (1.0) columns (e.g. separated sources)."""
  images = np.asarray(images, np.float32)
  n, s, h, w, c = images.shape
  out = np.ones((n, h, s * w + (s - 1) * gap, c), np.float32)
  for i in range(s):
    out[:, :, i * (w + gap):i * (w + gap) + w] = images[:, i]
  return out


def save_rows(path, rows: Sequence, labels: Sequence[str], title: str = ""):
  """A figure of labelled rows of images, like the paper's Figure 1.

  rows: list of arrays [n, H, W, C] in [-1, 1], all with the same n (rows
  may differ in W, e.g. strips from :func:`side_by_side`).
  """
  plt = _pyplot()
  n = max(len(r) for r in rows)
  aspect = max(r.shape[2] / r.shape[1] for r in rows)
  fig, axes = plt.subplots(len(rows), n, figsize=(1.1 * aspect * n + 1.6,
                                                   1.15 * len(rows) + 0.4),
                           squeeze=False)
  for i, (row, label) in enumerate(zip(rows, labels)):
    for j in range(n):
      ax = axes[i, j]
      ax.set_xticks([])
      ax.set_yticks([])
      for s in ax.spines.values():
        s.set_visible(False)
      if j < len(row):
        im = to_uint8(row[j])
        ax.imshow(im[..., 0] if im.shape[-1] == 1 else im, cmap="gray",
                  vmin=0, vmax=255)
      if j == 0:
        ax.set_ylabel(label, rotation=0, ha="right", va="center", fontsize=9)
  return _finish(fig, path, title)


def _pyplot():
  import matplotlib
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt
  return plt


def _finish(fig, path, title: str):
  """Title, layout, write the PNG (folders created), close the figure."""
  if title:
    fig.suptitle(title, fontsize=10)
    # Keep ~0.4 inch above the axes for the title (tall figures otherwise
    # let it run into the first row).
    fig.tight_layout(rect=(0, 0, 1, 1 - 0.4 / fig.get_size_inches()[1]))
  else:
    fig.tight_layout()
  path = pathlib.Path(path)
  path.parent.mkdir(parents=True, exist_ok=True)
  fig.savefig(path, dpi=110)
  _pyplot().close(fig)
  return path


def save_kernels(path, kernels: Sequence, labels: Sequence[str],
                 title: str = ""):
  """Side-by-side heat maps of 2-D kernels (e.g. true and estimated blur).

  Each kernel gets its own symmetric colour scale, since a blind estimate is
  only defined up to scale.
  """
  plt = _pyplot()
  fig, axes = plt.subplots(1, len(kernels),
                           figsize=(max(3.2, 2.4 * len(kernels)), 2.6),
                           squeeze=False)
  for ax, k, label in zip(axes[0], kernels, labels):
    k = np.asarray(k, np.float32)
    lim = float(np.max(np.abs(k))) or 1.0
    im = ax.imshow(k, cmap="RdBu_r", vmin=-lim, vmax=lim)
    ax.set_title(label, fontsize=9)
    ax.set_xticks([])
    ax.set_yticks([])
    fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04)
  return _finish(fig, path, title)
