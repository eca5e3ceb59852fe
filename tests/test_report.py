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


def test_snapshots_are_scored_once_and_the_best_named(tiny_run):
  workdir, _ = tiny_run
  files = report.snapshot_files(workdir)
  assert list(files) == ["ema_3", "ema_6"]
  assert files["ema_6"] == report.snapshot_path(workdir, "ema_6")
  assert report.snapshot_files(workdir, kinds=("raw",)) == {}
  assert list(report.snapshot_files(workdir, select=lambda s: s > 3)) == [
      "ema_6"]
  seen, calls = [], []
  score = lambda prior: calls.append(1) or {"psnr": [-prior.meta["step"],
                                                     0.0]}
  scores = report.score_snapshots(workdir, score, on_score=lambda label, row,
                                  new: seen.append((label, new)))
  assert scores == {"ema_3": {"psnr": [-3, 0.0]}, "ema_6": {"psnr": [-6, 0.0]}}
  assert seen == [("ema_3", True), ("ema_6", True)]
  report.score_snapshots(workdir, score, scores=scores, on_score=lambda label,
                         row, new: seen.append((label, new)))
  assert len(calls) == 2 and seen[2:] == [("ema_3", False), ("ema_6", False)]
  assert report.best_snapshot(scores) == "ema_3"
  assert report.best_snapshot(scores, key=lambda r: -r["psnr"][0]) == "ema_6"
  assert report.best_snapshot(
      scores, eligible=lambda r: r["psnr"][0] < -4) == "ema_6"
  with pytest.raises(ValueError, match="eligible"):
    report.best_snapshot(scores, kinds=("raw",))
  with pytest.raises(FileNotFoundError, match="raw_prior_"):
    report.score_snapshots(workdir, score, kinds=("raw",))


@pytest.mark.parametrize("n,title", [
    (20, "the first 12 of 20 observations (all of them in sources.npy)"),
    (5, "")])
def test_the_solve_figure_says_when_it_shows_fewer_than_were_solved(
    n, title, tmp_path, monkeypatch):
  import types

  from blindinv_jax import viz
  from blindinv_jax.models.surrogates import MixingSurrogate
  y = np.zeros((n, 8, 8, 1), np.float32)
  res = types.SimpleNamespace(
      sources=np.zeros((n, 1, 8, 8, 1), np.float32), reconstruction=y,
      surrogate_params={}, surrogate=MixingSurrogate(1), history={})
  seen = {}
  real = viz.save_rows
  monkeypatch.setattr(viz, "save_rows", lambda path, rows, labels, title="":
                      seen.update(n=len(rows[0]), title=title) or
                      real(path, rows, labels, title))
  report.write_solve_outputs(tmp_path, res, y, None, {})
  assert seen == {"n": min(n, report.FIGURE_MAX), "title": title}
  assert (tmp_path / "figure.png").stat().st_size > 0
