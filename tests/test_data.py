import numpy as np
import pytest
from PIL import Image

from blindinv_jax import data


@pytest.mark.parametrize("split,n", [("train", 4500), ("test", 500),
                                     ("val", 500)])
def test_mnist5k_shapes_and_range(split, n):
  x = data.load_images("mnist5k", split)
  assert x.shape == (n, 28, 28, 1)
  assert x.dtype == np.float32
  assert x.min() == -1.0 and x.max() == 1.0


def test_mnist5k_split_is_deterministic_disjoint_and_stratified():
  a, b = data.mnist5k_split_indices(), data.mnist5k_split_indices()
  np.testing.assert_array_equal(a["train"], b["train"])
  np.testing.assert_array_equal(a["test"], b["test"])
  assert not set(a["train"]) & set(a["test"])
  assert len(set(a["train"]) | set(a["test"])) == 5000
  # val is the class-balanced tail of train, never test.
  assert set(a["val"]) <= set(a["train"])
  np.testing.assert_array_equal(a["val"], a["train"][-500:])
  for split, per_class in (("train", 450), ("test", 50), ("val", 50)):
    labels = data.mnist5k_labels(split)
    np.testing.assert_array_equal(np.bincount(labels), [per_class] * 10)
  # Any prefix is class-balanced: the first 10 test digits are 0..9 once each.
  assert sorted(data.mnist5k_labels("test")[:10].tolist()) == list(range(10))
  np.testing.assert_array_equal(
      data.load_images("mnist5k", "test", limit=7),
      data.load_images("mnist5k", "test")[:7])


def test_mnist5k_resize_and_limit():
  x = data.load_images("mnist5k", "test", limit=5, image_size=14)
  assert x.shape == (5, 14, 14, 1)
  assert -1.0 <= x.min() and x.max() <= 1.0


def test_open_images_random_access_matches_load():
  src = data.open_images("mnist5k", "test")
  assert len(src) == 500 and src.image_shape == (28, 28, 1)
  full = data.load_images("mnist5k", "test")
  np.testing.assert_array_equal(src[[3, 1, 499]], full[[3, 1, 499]])
  with pytest.raises(IndexError):
    src[[500]]


@pytest.mark.parametrize("kwargs,match", [
    (dict(source="mnist"), "Unknown data source"),
    (dict(source="mnist5k", split="validation"), "Unknown split"),
    (dict(source="mnist5k", limit=0), "limit must be a positive int"),
    (dict(source="mnist5k", image_size=(0, 3)), "image_size"),
    (dict(source="tfds:"), "Give a dataset name"),
])
def test_bad_arguments_raise_clear_errors(kwargs, match):
  with pytest.raises(ValueError, match=match):
    data.load_images(**kwargs)


def _write(path, array):
  path.parent.mkdir(parents=True, exist_ok=True)
  Image.fromarray(array).save(path)


def test_folder_source_grayscale_and_rgb(tmp_path):
  rng = np.random.default_rng(0)
  for i in range(3):
    _write(tmp_path / "gray" / f"{i}.png",
           rng.integers(0, 256, (10, 12), dtype=np.uint8))
  x = data.load_images(f"folder:{tmp_path / 'gray'}")
  assert x.shape == (3, 10, 12, 1) and x.dtype == np.float32
  _write(tmp_path / "rgb" / "a.jpg", rng.integers(0, 256, (20, 30, 3),
                                                 dtype=np.uint8))
  _write(tmp_path / "rgb" / "b.png", rng.integers(0, 256, (40, 40, 3),
                                                 dtype=np.uint8))
  with pytest.raises(ValueError, match="different sizes"):
    data.load_images(f"folder:{tmp_path / 'rgb'}")
  x = data.load_images(f"folder:{tmp_path / 'rgb'}", image_size=16)
  assert x.shape == (2, 16, 16, 3)
  assert -1.0 <= x.min() and x.max() <= 1.0


def test_folder_source_uses_split_subfolder(tmp_path):
  for split, n in (("train", 3), ("test", 2)):
    for i in range(n):
      _write(tmp_path / split / f"{i}.png", np.full((8, 8), 255, np.uint8))
  assert len(data.load_images(f"folder:{tmp_path}", "train")) == 3
  assert len(data.load_images(f"folder:{tmp_path}", "test")) == 2


def test_folder_source_errors(tmp_path):
  with pytest.raises(FileNotFoundError, match="does not exist"):
    data.load_images(f"folder:{tmp_path / 'nope'}")
  (tmp_path / "empty").mkdir()
  with pytest.raises(ValueError, match="no PNG or JPEG"):
    data.load_images(f"folder:{tmp_path / 'empty'}")
  bad = tmp_path / "bad"
  bad.mkdir()
  (bad / "broken.png").write_bytes(b"not an image")
  with pytest.raises(ValueError, match="broken.png"):
    data.load_images(f"folder:{bad}")


def test_tfds_mnist_and_celeba_with_mock_data():
  tfds = pytest.importorskip("tensorflow_datasets")
  with tfds.testing.mock_data(num_examples=6,
                              policy=tfds.testing.MockPolicy.USE_CODE):
    x = data.load_images("tfds:mnist", "train", limit=4)
    assert x.shape == (4, 28, 28, 1) and x.dtype == np.float32
    assert -1.0 <= x.min() and x.max() <= 1.0
    faces = data.load_images("tfds:celeb_a", "test")
    assert faces.shape == (6, 64, 64, 3)
    assert -1.0 <= faces.min() and faces.max() <= 1.0
    small = data.load_images("tfds:celeb_a", "test", image_size=32, limit=2)
    assert small.shape == (2, 32, 32, 3)


def test_tfds_not_prepared_says_how_to_prepare(tmp_path):
  pytest.importorskip("tensorflow_datasets")
  with pytest.raises(FileNotFoundError, match="tfds build mnist"):
    data.load_images("tfds:mnist", data_dir=str(tmp_path))


def test_own_data_faces_script_runs_with_the_test_extra(tmp_path, monkeypatch):
  """docs/own-data.md's first step as written: scikit-image (in the test
  extra of setup.py) ships the faces; the folder it writes loads as the
  splits the walk-through uses."""
  import pathlib
  import re
  root = pathlib.Path(__file__).parent.parent
  extra = re.search(r'"test": \[(.*?)\]', (root / "setup.py").read_text(),
                    re.S).group(1)
  assert re.search(r'"scikit-image==[\d.]+"', extra)
  doc = (root / "docs" / "own-data.md").read_text()
  script = next(b for b in re.findall(r"```python\n(.*?)```", doc, re.S)
                if "lfw_subset" in b)
  monkeypatch.chdir(tmp_path)
  exec(compile(script, "docs/own-data.md", "exec"), {})
  sizes = {s: data.load_images("folder:faces", s).shape
           for s in ("train", "val", "test")}
  assert sum(v[0] for v in sizes.values()) == 100
  assert all(v[1:] == (25, 25, 1) for v in sizes.values()), sizes
