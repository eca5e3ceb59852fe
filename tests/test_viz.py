import numpy as np
from PIL import Image

from blindinv_jax import viz


def test_image_grid_layout_and_values():
  images = np.stack([np.full((4, 5, 1), v, np.float32) for v in (-1, 0, 1)])
  grid = viz.image_grid(images, ncols=2, pad=1)
  assert grid.shape == (2 * 5 + 1, 2 * 6 + 1, 1) and grid.dtype == np.uint8
  assert grid[1, 1, 0] == 0 and grid[1, 7, 0] == 128 and grid[6, 1, 0] == 255


def test_save_grid_and_rows(tmp_path):
  images = np.random.default_rng(0).uniform(-1, 1, (6, 8, 8, 1))
  path = viz.save_grid(tmp_path / "g.png", images, ncols=3, scale=2)
  assert Image.open(path).size == (2 * (3 * 10 + 2), 2 * (2 * 10 + 2))
  path = viz.save_rows(tmp_path / "r.png", [images, images[:4]],
                       ["a", "b"], title="t")
  assert Image.open(path).size[0] > 100
