"""Every experiment config builds and runs end to end (TINY prior, 2 steps)."""
import dataclasses
import json
import pathlib

import jax
import numpy as np
import pytest

from blindinv_jax import experiment as E, metrics, solver
from blindinv_jax.models import dcgan
from blindinv_jax.priors import GANPrior

from conftest import load_experiment_module

ROOT = pathlib.Path(__file__).parent.parent
QUICK = solver.SolverConfig(outer_steps=2, surrogate_steps=2, latent_steps=2,
                            latent_lr=1e-2, unroll=1)


def _reproduce():
  return load_experiment_module("paper/reproduce")


def _quick(cfg, n=2, **data):
  return cfg.replace(solver=QUICK, show=2, data=dataclasses.replace(
      cfg.data, n=n, **data))


@pytest.mark.parametrize("name", ["mnist_deblur", "mnist_edges", "mnist_sep1",
                                  "mnist_sep4"])
def test_mnist_config_runs_end_to_end(name, tiny_run, tmp_path):
  _, prior = tiny_run
  rep = _reproduce()
  cfg = rep.load_config(ROOT / "experiments" / "paper" / "configs" / f"{name}.py")
  assert cfg.name == name and cfg.data.split == "test"
  res = E.run_experiment(_quick(cfg), tmp_path, progress=False, prior=prior)
  saved = json.loads((tmp_path / "metrics.json").read_text())
  assert saved["methods"].keys() == set(cfg.methods)
  assert (tmp_path / "figure.png").exists()
  assert json.loads((tmp_path / "config.json").read_text())["config"][
      "name"] == name
  for m, e in res["methods"].items():
    if m == "ica" and cfg.task.num_mixtures < cfg.task.num_sources:
      assert "not_applicable" in e
      continue
    per_image = 2 * (cfg.task.num_sources if cfg.task.kind == "mix" else 1)
    assert np.size(e["psnr_per_image"]) == per_image
    assert np.isfinite(e["psnr"][0]) and -1 <= e["ssim"][0] <= 1
  if "blind_ica" in cfg.methods:
    # Started from ICA's sources: compared, paired, with every other method.
    assert set(res["blind_ica_minus"]) == set(cfg.methods) - {"blind_ica"}
  if cfg.task.kind != "mix":
    assert "observation" in res
    assert set(res["methods"]["blind"]["kernel_error"]) == {
        "error", "ncc", "shift", "scale"}
  # Rerun: every method is loaded from workdir/methods, not recomputed.
  again = E.run_experiment(_quick(cfg), tmp_path, progress=False, prior=prior)
  for m in cfg.methods:
    assert again["methods"][m]["seconds"] == res["methods"][m]["seconds"]
    assert again["methods"][m].get("psnr") == res["methods"][m].get("psnr")


def test_separation_scores_are_permutation_invariant(tiny_run):
  _, prior = tiny_run
  cfg = _quick(_reproduce().load_config(
      ROOT / "experiments" / "paper" / "configs" / "mnist_sep4.py"))
  x, y, forward, info = E.simulate(cfg, prior.image_shape)
  assert x.shape == (2, 3, 8, 8, 1) and y.shape == (2, 8, 8, 4)
  assert info["mixing"].shape == (3, 4)
  noisy = np.clip(np.asarray(x) + 0.1, -1, 1)
  a = metrics.score(noisy, x, True)
  b = metrics.score(noisy[:, ::-1], x, True)
  assert a["psnr"] == b["psnr"] and a["psnr"][0] > 20


def _rgb_tiny_prior():
  cfg = dataclasses.replace(dcgan.TINY, name="tiny_rgb", image_shape=(8, 8, 3),
                            g_stages=((8, 4, 2), (3, 4, 2)))
  g, d = dcgan.init_variables_fn(cfg, jax.random.key(0))
  return GANPrior(g_vars=g, d_vars=d, config=cfg, meta_json="{}")


@pytest.mark.parametrize("name", ["celeba_deblur", "celeba_edges"])
def test_celeba_config_runs_on_mock_data(name, tmp_path):
  tfds = pytest.importorskip("tensorflow_datasets")
  cfg = _reproduce().load_config(ROOT / "experiments" / "paper" / "configs" /
                                 f"{name}.py")
  assert cfg.data.source == "tfds:celeb_a"
  if name == "celeba_deblur":
    assert (cfg.task.kernel_size, cfg.task.sigma) == (20, 5.0)
  with tfds.testing.mock_data(num_examples=4,
                              policy=tfds.testing.MockPolicy.USE_CODE):
    res = E.run_experiment(_quick(cfg), tmp_path, progress=False,
                           prior=_rgb_tiny_prior())
  assert set(res["methods"]) == set(cfg.methods)
  assert np.load(tmp_path / "effective_kernel.npy").shape == (9, 9)


def test_results_table_and_bad_configs():
  rep = _reproduce()
  row = {"title": "t", "observation": {"psnr": [1, 0], "ssim": [0.1, 0]},
         "classifier_accuracy": {"clean": 0.98, "blind": 0.9},
         "methods": {"blind": {"psnr": [2, 1], "ssim": [0.5, 0.1],
                               "seconds": 3, "kernel_error": {"error": 0.1},
                               "accuracy": 0.9},
                     "ica": {"not_applicable": "x", "seconds": 0}}}
  table = rep.results_table([row])
  assert ("| t | Recovered (blind) | 2.00 ± 1.00 | 0.500 ± 0.100 | 0.100 | "
          "90% | 3 |") in table and "| t | ICA | n/a |" in table
  assert "| t | clean digits | | | | 98% | |" in table
  base = E.ExperimentConfig(name="x", title="x")
  with pytest.raises(ValueError, match="unknown method"):
    base.replace(methods=("blind", "magic")).validate()
  with pytest.raises(ValueError, match="Wiener"):
    base.replace(task=E.TaskSpec(kind="mix", num_sources=2)).validate()
  with pytest.raises(ValueError, match="blind_ica.*mix tasks only"):
    base.replace(methods=("blind", "blind_ica")).validate()
  with pytest.raises(FileNotFoundError, match="no file"):
    rep.load_config("nope.py")


def test_paired_differences():
  methods = {"blind": {"psnr_per_image": [[10.0, 12.0], [14.0, 9.0]]},
             "ica": {"psnr_per_image": [[9.0, 12.5], [13.0, 9.0]]},
             "wiener": {"not_applicable": "why"}}
  d = E.paired_differences(methods)
  assert set(d) == {"ica"}
  diff = np.array([1.0, -0.5, 1.0, 0.0])
  assert d["ica"]["mean_db"] == pytest.approx(diff.mean())
  assert d["ica"]["standard_error_db"] == pytest.approx(
      diff.std(ddof=1) / 2, abs=1e-3)
  assert (d["ica"]["better_on"], d["ica"]["images"]) == (2, 4)
  assert E.paired_differences({"ica": {}}) == {}


def test_surrogate_fit_reloads_the_finished_solve(tiny_run, tmp_path):
  _, prior = tiny_run
  cfg = _quick(_reproduce().load_config(
      ROOT / "experiments" / "paper" / "configs" / "mnist_sep4.py")).replace(
          methods=("blind",))
  with pytest.raises(FileNotFoundError, match="no finished blind solve"):
    E.surrogate_fit(cfg, tmp_path, prior=prior)
  E.run_experiment(cfg, tmp_path, progress=False, prior=prior)
  out = E.surrogate_fit(cfg, tmp_path, prior=prior)
  assert set(out["loss"]) == {"recovered", "truth", "truth_projected",
                              "recovered_through_true_F"}
  assert all(len(v) == 2 and np.all(np.isfinite(v))
             for v in out["loss"].values())
  assert out["mean_loss"]["recovered"] == pytest.approx(
      np.mean(out["loss"]["recovered"]), abs=0.01)
  assert out["truth_preferred"] in (0.0, 0.5, 1.0)
  with pytest.raises(ValueError, match="method must be one of"):
    E.surrogate_fit(cfg, tmp_path, method="ica", prior=prior)


def test_noise_sigma_adds_keyed_noise_and_keeps_the_cache_key(tiny_run):
  _, prior = tiny_run
  cfg = _quick(_reproduce().load_config(
      ROOT / "experiments" / "paper" / "configs" / "mnist_deblur.py"))
  _, y0, _, _ = E.simulate(cfg, prior.image_shape)
  noisy = cfg.replace(task=dataclasses.replace(cfg.task, noise_sigma=0.05))
  _, y1, _, _ = E.simulate(noisy, prior.image_shape)
  _, y2, _, _ = E.simulate(noisy, prior.image_shape)
  np.testing.assert_array_equal(np.asarray(y1), np.asarray(y2))
  assert abs(float(np.std(np.asarray(y1 - y0))) - 0.05) < 0.01
  assert E._key(noisy) != E._key(cfg)
  with pytest.raises(ValueError, match="noise_sigma"):
    cfg.replace(task=dataclasses.replace(cfg.task, noise_sigma=-1.0)).validate()


def test_compare_priors_pairs_per_image_and_refuses_other_observations(
    tmp_path):
  cmp = load_experiment_module("paper/compare_priors")
  obs = {"psnr_per_image": [10.0, 11.0, 12.0]}
  base = {"n": 3, "observation": obs, "methods": {
      "blind": {"psnr_per_image": [20.0, 21.0, 22.0], "accuracy": 1.0},
      "wiener": {"psnr_per_image": [1.0, 1.0, 1.0]}}}
  new = {"n": 3, "observation": obs, "methods": {
      "blind": {"psnr_per_image": [21.0, 21.0, 21.5], "accuracy": 0.5}}}
  (tmp_path / "a").mkdir()
  (tmp_path / "a" / "mnist_deblur.json").write_text(json.dumps(base))
  (tmp_path / "b" / "mnist_deblur").mkdir(parents=True)
  (tmp_path / "b" / "mnist_deblur" / "metrics.json").write_text(json.dumps(new))
  rows = cmp.main(["--base", str(tmp_path / "a"), "--new", str(tmp_path / "b"),
                   "--out", str(tmp_path / "c.json")])
  assert len(rows) == 1                      # wiener: only in the base run
  r = rows[0]
  assert r["method"] == "blind" and r["new_better_on"] == 1
  assert r["new_minus_base"] == pytest.approx(0.5 / 3, abs=1e-3)
  assert (r["read_base"], r["read_new"]) == (1.0, 0.5)
  new["observation"] = {"psnr_per_image": [9.0, 11.0, 12.0]}
  (tmp_path / "b" / "mnist_deblur" / "metrics.json").write_text(json.dumps(new))
  with pytest.raises(SystemExit, match="different observations"):
    cmp.main(["--base", str(tmp_path / "a"), "--new", str(tmp_path / "b")])


def test_refine_methods_run_reuse_blind_and_key_on_their_restarts(
    tiny_run, tmp_path):
  _, prior = tiny_run
  cfg = _quick(_reproduce().load_config(
      ROOT / "experiments" / "paper" / "configs" / "mnist_sep4.py")).replace(
          methods=("blind", "blind_refine", "pgd_known_refine"),
          refine_restarts=2)
  res = E.run_experiment(cfg, tmp_path, progress=False, prior=prior)
  assert "kept the given latents" in res["methods"]["blind_refine"]["refine"]
  for m in ("blind_refine", "pgd_known_refine"):
    assert np.size(res["methods"][m]["psnr_per_image"]) == 2 * 3
  # blind_refine starts from blind's finished solve, and is paired.
  assert (tmp_path / "checkpoints" / "blind" / "solve_state.ckpt").exists()
  assert not (tmp_path / "checkpoints" / "blind_refine").exists()
  assert set(res["blind_refine_minus"]) == set(cfg.methods) - {"blind_refine"}
  # Another number of restarts recomputes the refine methods only.
  cfg3 = cfg.replace(refine_restarts=3, methods=("blind", "blind_refine"))
  saved = {m: (tmp_path / "methods" / f"{m}.ckpt").stat().st_mtime_ns
           for m in ("blind", "blind_refine")}
  again = E.run_experiment(cfg3, tmp_path, progress=False, prior=prior)
  assert E._key(cfg) == E._key(cfg3)
  assert again["methods"]["blind"]["seconds"] == \
      res["methods"]["blind"]["seconds"]
  # Rewritten (recomputed) or not: the files, not the timings, which can tie.
  now = {m: (tmp_path / "methods" / f"{m}.ckpt").stat().st_mtime_ns
         for m in saved}
  assert now["blind"] == saved["blind"]
  assert now["blind_refine"] != saved["blind_refine"]
  with pytest.raises(ValueError, match="refine_restarts"):
    cfg.replace(refine_restarts=0).validate()


@pytest.mark.parametrize("task,surrogate,methods", [
    (dict(kind="downsample", kernel_size=3, sigma=1.0, factor=2),
     "downsample", ("blind", "pgd", "pgd_known", "bicubic")),
    (dict(kind="mask", missing=0.4, fill=-1.0), "mask",
     ("blind", "pgd_known", "biharmonic")),
    (dict(kind="measure", num_measurements=20), "dense",
     ("blind", "pgd_known", "lasso", "least_squares"))])
def test_tasks_of_other_shapes_run_end_to_end(task, surrogate, methods,
                                              tiny_run, tmp_path):
  _, prior = tiny_run
  cfg = E.ExperimentConfig(
      name="shape", title="shape", task=E.TaskSpec(**task),
      surrogate=surrogate, methods=methods, solver=QUICK, show=2,
      data=E.DataSpec(split="val", n=4))
  res = E.run_experiment(cfg, tmp_path, progress=False, prior=prior)
  for m in methods:
    e = res["methods"][m]
    if m == "pgd":
      assert "not_applicable" in e
      continue
    assert np.isfinite(e["psnr"][0]), m
  assert ("observation" in res) == (task["kind"] == "mask")
  if task["kind"] == "downsample":
    assert res["methods"]["blind"]["kernel_error"]["error"] >= 0
  assert (tmp_path / "figure.png").is_file()
  assert "lasso_lam" not in E._key(cfg) and "factor" not in E._key(cfg)["task"]
  with pytest.raises(ValueError, match="Wiener deconvolution applies"):
    cfg.replace(methods=("wiener",)).validate()
