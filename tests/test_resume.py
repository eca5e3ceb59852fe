"""One resume mechanism: JSON result caches and method results that say
which fields of another run differ."""
import argparse
import dataclasses
import json
import os

import numpy as np
import pytest

from blindinv_jax import experiment as E, methods as methods_lib, resume
from blindinv_jax.config import SolverConfig

from conftest import load_experiment_module


def test_differences_name_nested_fields_and_values():
  old = {"config": {"solver": {"steps": 10, "lr": 0.1}, "seed": 0}, "n": 16}
  new = {"config": {"solver": {"steps": 20, "lr": 0.1}, "seed": 0}, "n": 8}
  assert resume.differences(old, new) == ["config (solver.steps: 10 -> 20)",
                                          "n"]
  assert resume.differences(old, new, values=True)[1] == "n: 16 -> 8"
  assert resume.differences(old, new, ignore=("config",), values=True) == [
      "n: 16 -> 8"]


def test_result_cache_reuses_its_rows_for_the_same_run(tmp_path):
  path = tmp_path / "rows.json"
  ident = {"split": "val", "n": 16, "seeds": (0, 1)}
  cache = resume.ResultCache(path, ident)
  assert cache.rows == {} and not path.exists()
  cache.rows["mnist_deblur"] = {"psnr": [23.0, 1.0]}
  cache.save()
  saved = json.loads(path.read_text())
  assert list(saved) == ["identity", "mnist_deblur"]    # rows where they were
  assert saved["identity"] == {"split": "val", "n": 16, "seeds": [0, 1]}
  again = resume.ResultCache(path, ident)
  assert again.rows == {"mnist_deblur": {"psnr": [23.0, 1.0]}}
  assert not again.adopted
  assert sorted(os.listdir(tmp_path)) == ["rows.json"]  # no temporary file
  again.rows["identity"] = 1
  with pytest.raises(ValueError, match="reserved"):
    again.save()


def test_result_cache_of_another_run_is_refused_naming_the_field(tmp_path):
  path = tmp_path / "rows.json"
  cache = resume.ResultCache(path, {"split": "val", "n": 16})
  cache.rows["a"] = 1
  cache.save()
  with pytest.raises(resume.RunMismatch,
                     match=r"n: 16 -> 8 \(saved -> this run\).*its arguments"
                     r".*another --out"):
    resume.ResultCache(path, {"split": "val", "n": 8})
  assert json.loads(path.read_text())["a"] == 1         # left as it was
  # A key this run's rows do not depend on may differ; the saved one is kept.
  kept = resume.ResultCache(path, {"split": "val", "n": 8}, ignore=("n",))
  assert kept.identity == {"split": "val", "n": 16} and kept.rows == {"a": 1}


def test_result_cache_save_is_atomic(tmp_path, monkeypatch):
  path = tmp_path / "rows.json"
  cache = resume.ResultCache(path, {"n": 1})
  cache.rows["done"] = [1, 2]
  cache.save()
  before = path.read_text()

  def broken(obj, f, **kw):
    f.write('{"identity": {"n": 1}, "done": [1,')     # killed mid-write
    raise KeyboardInterrupt
  monkeypatch.setattr(resume.json, "dump", broken)
  cache.rows["more"] = [3]
  with pytest.raises(KeyboardInterrupt):
    cache.save()
  assert path.read_text() == before
  assert sorted(os.listdir(tmp_path)) == ["rows.json"]


def test_result_cache_adopts_or_checks_files_without_an_identity(tmp_path):
  path = tmp_path / "rows.json"
  path.write_text(json.dumps({"mnist_deblur": {"0": {"blind": [23.0, 1.0]}}}))
  notes = []
  cache = resume.ResultCache(path, {"n": 16, "prior": None}, note=notes.append)
  assert cache.adopted and cache.rows == {
      "mnist_deblur": {"0": {"blind": [23.0, 1.0]}}}
  assert "before results recorded their identity" in notes[0]
  assert "another --out" in notes[0]
  cache.save()
  assert json.loads(path.read_text())["identity"] == {"n": 16, "prior": None}
  # What an old file recorded (here an older "setting" key) is checked.
  path.write_text(json.dumps({"setting": {"split": "test", "n": 16},
                              "family": {"x": 1}}))
  legacy = lambda rows: rows.pop("setting", None)
  with pytest.raises(resume.RunMismatch, match="split: 'test' -> 'val'"):
    resume.ResultCache(path, {"split": "val", "n": 16, "prior": "mnist"},
                       legacy=legacy, note=notes.append)
  ok = resume.ResultCache(path, {"split": "test", "n": 16, "prior": "mnist"},
                          legacy=legacy, note=notes.append)
  assert ok.rows == {"family": {"x": 1}} and "split, n match" in notes[-1]
  path.write_text("[1, 2]")
  with pytest.raises(ValueError, match="not a JSON object"):
    resume.ResultCache(path, {"n": 16})


def test_train_tricks_refuses_another_runs_rows_before_training(tmp_path):
  script = load_experiment_module("tuning/train_tricks")
  ident = {"data": "mnist5k", "model": "auto", "limit": 4000,
           "batch_size": 32, "ema": 0.999, "r1": 1.0, "val_n": 100}
  argv = ["--data", "mnist5k", "--limit", "3000", "--out", str(tmp_path)]
  (tmp_path / "tricks.json").write_text(json.dumps({
      "identity": ident, "base": {"val_psnr": {}}}))
  with pytest.raises(SystemExit, match="limit: 4000 -> 3000"):
    script.main(argv)
  # A file of the old format: its "setting" (every argument) is checked.
  (tmp_path / "tricks.json").write_text(json.dumps({
      "setting": {**ident, "limit": 3000, "val_n": 50, "steps": 2000,
                  "every": 500, "variants": "base"},
      "base": {"val_psnr": {}}}))
  with pytest.raises(SystemExit, match="val_n: 50 -> 100"):
    script.main(argv)


def test_prior_quality_refuses_another_projection_and_keeps_val_n(tmp_path):
  script = load_experiment_module("assets/prior_quality")
  path = tmp_path / "prior_quality.json"
  protocol = {"samples": 512, "confident_p": 0.9, "mlp_train_digits": 4000,
              "val_n": 100, "project": "1000 Adam steps, lr 1e-2, 1 restart"}
  path.write_text(json.dumps({"protocol": protocol, "test": {}}))   # legacy
  with pytest.raises(SystemExit, match="project: .*1 restart' -> .*4 restarts"):
    script.main(["--prior", "mnist", "--restarts", "4", "--out",
                 str(tmp_path)])
  with pytest.raises(SystemExit, match="val_n: 100 -> 200"):
    script.main(["--workdir", str(tmp_path / "run"), "--out", str(tmp_path)])
  # Reporting on test only: val_n does not count, and stays the saved one.
  args = argparse.Namespace(restarts=1, val_n=200)
  cache = resume.ResultCache(path, script.identity(args), ignore=("val_n",),
                             legacy=lambda rows: rows.get("protocol"))
  assert cache.identity == protocol


class _Stub:
  """A method that counts its runs."""

  def __init__(self):
    self.calls = 0

  def run(self, problem):
    self.calls += 1
    return np.zeros((2, 1, 4, 4, 1), np.float32), {"note": "stub"}


def _problem(tmp_path, config, progress=True):
  return methods_lib.Problem(config, None, None, None, None, {}, tmp_path,
                             progress)


def test_method_result_of_another_config_names_the_field(tmp_path, capsys,
                                                         monkeypatch):
  stub = _Stub()
  monkeypatch.setitem(methods_lib.REGISTRY, "wiener", methods_lib.Method(
      "wiener", E.LABELS["wiener"], stub.run))
  cfg = E.ExperimentConfig(name="t", title="t", solver=SolverConfig())
  est, extras, _ = E.run_method(_problem(tmp_path, cfg), "wiener", E._key(cfg))
  assert stub.calls == 1 and extras["note"] == "stub"
  again = E.run_method(_problem(tmp_path, cfg), "wiener", E._key(cfg))
  assert stub.calls == 1                                 # reused
  np.testing.assert_array_equal(again[0], est)
  other = cfg.replace(
      solver=dataclasses.replace(cfg.solver, outer_steps=7),
      data=dataclasses.replace(cfg.data, n=9))
  capsys.readouterr()
  E.run_method(_problem(tmp_path, other), "wiener", E._key(other))
  assert stub.calls == 2                                 # recomputed
  out = capsys.readouterr().out
  assert "another config" in out and "recomputing" in out
  assert f"solver.outer_steps: {cfg.solver.outer_steps} -> 7" in out
  assert "data.n: 50 -> 9" in out
  with pytest.raises(resume.RunMismatch, match="data.n: 9 -> 50"):
    E._load_method(tmp_path / "methods" / "wiener.ckpt", {"config": E._key(cfg)})


def test_method_result_saved_under_the_config_hash_is_still_reused(
    tmp_path, monkeypatch):
  stub = _Stub()
  monkeypatch.setitem(methods_lib.REGISTRY, "wiener", methods_lib.Method(
      "wiener", E.LABELS["wiener"], stub.run))
  cfg = E.ExperimentConfig(name="t", title="t")
  key = E._key(cfg)
  assert json.loads(json.dumps(key)) == key              # a readable dict
  resume.save(tmp_path / "methods" / "wiener.ckpt",
              {"sources": np.ones((2, 1, 4, 4, 1), np.float32), "arrays": {}},
              kind=E.METHOD_KIND, identity={"config": E._hash(key)},
              meta={"applicable": True, "extras": {}, "seconds": 1.5})
  est, _, seconds = E.run_method(_problem(tmp_path, cfg, False), "wiener", key)
  assert stub.calls == 0 and seconds == 1.5 and est.mean() == 1.0
  noisy = cfg.replace(task=dataclasses.replace(cfg.task, noise_sigma=0.1))
  with pytest.raises(resume.RunMismatch, match="config: '[0-9a-f]{16}' -> "):
    E._load_method(tmp_path / "methods" / "wiener.ckpt",
                   {"config": E._key(noisy)})
