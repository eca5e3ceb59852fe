"""Observations made the way another library makes them, for a new user's trial.

  python experiments/trials/foreign_arrays.py --out runs/trial
  cd runs/trial
  blindinv solve --observations digits_obs.npy --layout nchw --range 0,1 \\
      --prior mnist --sources 1 --truth digits_truth.npy --out digits_auto
  blindinv solve --observations digits_obs.npy --layout nchw --range 0,1 \\
      --prior mnist --sources 1 --truth digits_truth.npy --out digits_config \\
      --surrogate conv_scene --recentre 0 --recentre-restarts 4 --select centred
  blindinv train-prior --data folder:faces --workdir faces_prior \\
      --steps 2000 --batch-size 32
  blindinv prior-report --prior faces_prior --data folder:faces --split val \\
      --observations faces_obs.npy --layout nchw --range 0,1 --out faces_report
  blindinv solve --observations faces_obs.npy --layout nchw --range 0,1 \\
      --prior faces_prior --truth faces_truth.npy --out faces_solve

Nothing here calls :mod:`blindinv_jax.operators`: the arrays are what a
PyTorch pipeline holds, ``[N, 1, 28, 28]`` float32 in ``[0, 1]``, blurred by
``scipy.ndimage.convolve`` with scipy's own borders. Writes to ``--out``:

* ``digits_obs.npy``, ``digits_truth.npy``, ``digits_kernel.npy``: the
  first 16 mnist5k test digits (all ten classes), a 9x9 anisotropic
  Gaussian (sigma 1.8 px down, 2.7 px across; not the demo's kernel),
  ``mode="reflect"`` (scipy's default), noise of sigma 0.005;
* ``faces/{train,val,test}/``: the first 100 of scikit-image's LFW crops
  (``skimage.data.lfw_subset()``, 68/16/16) as PNG files, a user's folder;
* ``faces_obs.npy``, ``faces_truth.npy``: the 16 test faces resized to
  28x28, a 7-tap horizontal motion blur, ``mode="nearest"`` (the scene
  continuing), noise of sigma 0.015.

The results of that trial are in docs/own-data.md.
"""
from __future__ import annotations

import argparse
import pathlib

import numpy as np
from PIL import Image
from scipy import ndimage


def convolve_nchw(x, k, mode: str) -> np.ndarray:
  """``x [N, C, H, W]`` convolved channel by channel with ``k [h, w]``."""
  return np.stack([[ndimage.convolve(im, k, mode=mode) for im in c]
                   for c in x])


def digits(out: pathlib.Path) -> None:
  from blindinv_jax import data  # the embedded digits, nothing more
  x = np.asarray(data.load_images("mnist5k", "test", limit=16))
  x01 = ((x + 1) / 2).transpose(0, 3, 1, 2)           # [16, 1, 28, 28]
  r = np.arange(-4, 5)
  k = np.exp(-(r[:, None] ** 2 + (r[None, :] / 1.5) ** 2) / (2 * 1.8 ** 2))
  k /= k.sum()
  y = convolve_nchw(x01, k, "reflect")
  y = y + np.random.default_rng(0).normal(0, 0.005, y.shape)
  np.save(out / "digits_obs.npy", y.astype(np.float32))
  np.save(out / "digits_truth.npy", x01.astype(np.float32))
  np.save(out / "digits_kernel.npy", k)


def faces(out: pathlib.Path) -> None:
  from skimage.data import lfw_subset  # pip install scikit-image
  for i, face in enumerate(lfw_subset()[:100]):        # 25x25 in [0, 1]
    split = "train" if i < 68 else "val" if i < 84 else "test"
    (out / "faces" / split).mkdir(parents=True, exist_ok=True)
    Image.fromarray((face * 255).round().astype(np.uint8)).save(
        out / "faces" / split / f"{i:03d}.png")
  x = np.stack([np.asarray(Image.open(f).resize((28, 28), Image.BILINEAR),
                           np.float32) / 255
                for f in sorted((out / "faces" / "test").glob("*.png"))])
  x = x[:, None]                                        # [16, 1, 28, 28]
  k = np.zeros((7, 7))
  k[3, :] = 1 / 7
  y = convolve_nchw(x, k, "nearest")
  y = y + np.random.default_rng(0).normal(0, 0.015, y.shape)
  np.save(out / "faces_obs.npy", y.astype(np.float32))
  np.save(out / "faces_truth.npy", x)


def main(argv=None) -> None:
  ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  ap.add_argument("--out", required=True, help="folder for the arrays and "
                  "the faces folder")
  out = pathlib.Path(ap.parse_args(argv).out)
  out.mkdir(parents=True, exist_ok=True)
  digits(out)
  faces(out)
  print(f"wrote digits_*.npy, faces/, faces_*.npy to {out}")


if __name__ == "__main__":
  main()
