"""report.py: kernel summaries, scoring against the truth, array files."""
import numpy as np
import pytest

from blindinv_jax import operators as ops, report


def test_kernel_summary_of_a_known_kernel():
  k = np.asarray(ops.gaussian_kernel(9, 1.0))
  s = report.kernel_summary(k)
  assert s["centre_offset"] == [0.0, 0.0]
  assert s["size"] == [5, 5]                       # exp(-4.5) < 5% of peak
  shifted = np.roll(k, 2, axis=1)
  assert report.kernel_summary(shifted)["centre_offset"][1] == pytest.approx(
      2.0, abs=0.05)


def test_score_sources_shapes_and_perfect_recovery():
  x = np.random.default_rng(0).uniform(-1, 1, (3, 1, 8, 8, 1)).astype(
      np.float32)
  s = report.score_sources(x, x[:, 0])              # [N, H, W, C] truth
  assert s["psnr"][0] >= 99 and s["ssim"][0] == pytest.approx(1.0, abs=1e-4)
  with pytest.raises(ValueError, match="does not match"):
    report.score_sources(x, x[:2])


def test_load_array_keys(tmp_path):
  np.savez(tmp_path / "a.npz", observations=np.ones(3), other=np.zeros(2))
  assert report.load_array(tmp_path / "a.npz", "--x").sum() == 3
  np.savez(tmp_path / "b.npz", p=np.ones(3), q=np.zeros(2))
  with pytest.raises(ValueError, match="name the array"):
    report.load_array(tmp_path / "b.npz", "--x")
