"""The blind verdict: before a solve (prior-report --observations) and after
(SolveResult.blind_signal, blindinv solve's summary)."""
import json
import math

import numpy as np
import pytest

from blindinv_jax import cli, verdict


def _images(n=6, seed=0):
  rng = np.random.default_rng(seed)
  return np.clip(rng.normal(-0.6, 0.5, (n, 8, 8, 1)), -1, 1).astype(
      np.float32)


def test_pooled_db():
  a = np.zeros((2, 4, 4, 1))
  assert math.isinf(verdict.pooled_db(a, a))
  # 0.2 apart on [-1, 1] is 0.1 on [0, 1]: 20 dB
  assert verdict.pooled_db(a, a + 0.2) == pytest.approx(20.0)


def test_before_solve_warns_where_the_prior_draws_the_observations_as_well_as_clean_images():
  """The faces case (docs/own-data.md): observations 24.7 dB from the
  range against a 20.9 dB ceiling: warn. MNIST deblurring: 16.9 against
  21.7: no warning."""
  faces = verdict.before_solve(24.71, 20.92)
  assert faces["warn"] and faces["message"].startswith("warning:")
  digits = verdict.before_solve(16.92, 21.68)
  assert not digits["warn"] and "can be expected to improve" in digits[
      "message"]
  edge = verdict.BEFORE_MARGIN_DB
  assert verdict.before_solve(20.0 - edge, 20.0)["warn"]
  assert not verdict.before_solve(20.0 - edge - 0.01, 20.0)["warn"]


def test_after_solve_warns_where_the_learned_process_fits_hardly_better_than_none():
  faces = verdict.after_solve(29.02, 24.71, 20.54)        # gain 4.3 dB
  assert faces["warn"] and "likely worse" in faces["message"]
  assert faces["gain_db"] == pytest.approx(4.31)
  digits = verdict.after_solve(40.24, 16.92, 14.48)       # gain 23.3 dB
  assert not digits["warn"] and "likely better" in digits["message"]
  mix = verdict.after_solve(30.0)
  assert not mix["warn"] and mix["gain_db"] is None


def test_solve_signal_measures_the_identity_fit(tiny_run):
  """solve_signal projects image-like observations onto the prior; with
  several sources it reports the fit alone."""
  _, prior = tiny_run
  y = _images(3)
  sig = verdict.solve_signal(y, y + 0.02, y[:, None], prior, steps=3)
  assert sig["identity_db"] is not None and sig["fit_db"] == pytest.approx(
      40.0, abs=0.01)
  two = verdict.solve_signal(y, y, np.stack([y, y], 1), prior, steps=3)
  assert two["identity_db"] is None and not two["warn"]


def test_observation_psnr_only_for_image_like_observations():
  x = _images()
  assert verdict.observation_psnr(x, x[:, None])[0] == 100.0
  assert verdict.observation_psnr(x, np.stack([x, x], 1)) is None


def test_prior_report_takes_observations(tiny_run, tmp_path, capsys):
  """prior-report --observations projects them too and prints the
  verdict; NCHW [0, 1] arrays are read with --layout/--range, and
  observations with the wrong channels get one message."""
  workdir, _ = tiny_run
  y = (np.transpose(_images(4), (0, 3, 1, 2)) + 1) / 2     # NCHW, [0, 1]
  np.save(tmp_path / "y.npy", y)
  out = tmp_path / "rep"
  argv = ["prior-report", "--prior", str(workdir), "--data", "mnist5k",
          "--n", "3", "--steps", "3", "--out", str(out),
          "--observations", str(tmp_path / "y.npy")]
  assert cli.main(argv + ["--layout", "nchw", "--range", "0,1"]) == 0
  rep = json.loads((out / "report.json").read_text())
  obs = rep["observations"]
  assert set(obs) == {"projection_db", "ceiling_db", "warn", "message"}
  assert obs["message"] in capsys.readouterr().out
  np.save(tmp_path / "y3.npy", np.repeat(_images(4), 3, axis=-1))
  argv[-1] = str(tmp_path / "y3.npy")
  assert cli.main(argv + ["--overwrite"]) == 2
  assert "no verdict before a solve" in capsys.readouterr().err
