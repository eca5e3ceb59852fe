import json
import shutil

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from blindinv_jax import (
  checkpoint,
  data,
  latent,
  metrics,
  priors,
  project as project_lib,
  runner,
  training,
)
from blindinv_jax.models import dcgan

from conftest import TINY_TRAIN


def _tree_equal(a, b):
  return all(jax.tree_util.tree_leaves(jax.tree_util.tree_map(
      lambda x, y: bool(np.array_equal(x, y)), a, b)))


def test_one_gan_step_lowers_discriminator_loss_on_fixed_batch():
  cfg = TINY_TRAIN
  model = dcgan.get_preset(cfg.model)
  real = jnp.asarray(data.load_images("mnist5k", limit=16, image_size=8))
  state = training.init_train_state(cfg)
  key = training.step_key(cfg.seed, 0)
  z = dcgan.sample_latents(key, 16, model.latent_dim)
  fake = jax.jit(lambda g, z: dcgan.Generator(model).apply(
      g, z, train=True, mutable=["batch_stats"])[0])(state.g_vars, z)
  d_loss = jax.jit(lambda d, r, f: training.discriminator_loss(
      model, d, r, f)[0])
  before = d_loss(state.d_vars, real, fake)
  new_state, metrics_ = training.make_train_step(cfg)(
      jax.tree_util.tree_map(jnp.copy, state), real, key)
  after = d_loss(new_state.d_vars, real, fake)
  assert float(after) < float(before)
  assert np.isclose(float(metrics_["d_loss"]), float(before), rtol=1e-5)
  assert int(new_state.step) == 1


def test_batch_indices_are_epochs_of_permutations():
  n, b = 10, 4
  idx = np.concatenate([training.batch_indices(0, s, n, b) for s in range(5)])
  assert sorted(idx[:10].tolist()) == list(range(10))      # epoch 0
  assert sorted(idx[10:20].tolist()) == list(range(10))    # epoch 1
  np.testing.assert_array_equal(training.batch_indices(0, 3, n, b),
                                training.batch_indices(0, 3, n, b))
  assert not np.array_equal(training.batch_indices(1, 0, n, b),
                            training.batch_indices(0, 0, n, b))


def test_training_writes_outputs_and_is_deterministic(tiny_run, tmp_path):
  workdir, prior = tiny_run
  for name in ("config.json", "checkpoint.ckpt", "prior.ckpt", "log.jsonl",
               "samples/step_0000006.png", "snapshots/prior_0000003.ckpt"):
    assert (workdir / name).exists(), name
  logged = [json.loads(l) for l in (workdir / "log.jsonl").read_text().splitlines()]
  assert [r["step"] for r in logged] == [2, 4, 6]
  again = training.train_prior(TINY_TRAIN, tmp_path, progress=False)
  assert _tree_equal((prior.g_vars, prior.d_vars), (again.g_vars, again.d_vars))


def test_resume_is_bitwise_identical(tiny_run, tmp_path):
  _, full = tiny_run
  training.train_prior(TINY_TRAIN.replace(steps=3), tmp_path, progress=False)
  resumed = training.train_prior(TINY_TRAIN, tmp_path, progress=False)
  assert _tree_equal((full.g_vars, full.d_vars),
                     (resumed.g_vars, resumed.d_vars))


def test_resume_with_other_config_is_refused(tiny_run, tmp_path):
  workdir, _ = tiny_run
  shutil.copytree(workdir, tmp_path / "run")
  with pytest.raises(ValueError, match="different config.*lr"):
    training.train_prior(TINY_TRAIN.replace(lr=1e-3), tmp_path / "run",
                          progress=False)


def test_load_prior_roundtrip(tiny_run):
  workdir, trained = tiny_run
  z = trained.sample_latents(jax.random.key(3), (2, 3))
  for path in (workdir, workdir / "prior.ckpt", workdir / "checkpoint.ckpt"):
    loaded = priors.load_prior(str(path))
    assert loaded.image_shape == (8, 8, 1) and loaded.latent_dim == 8
    assert loaded.meta["step"] == 6
    np.testing.assert_allclose(loaded.generate(z), trained.generate(z),
                               atol=1e-6)
    assert loaded.generate(z).shape == (2, 3, 8, 8, 1)
    assert loaded.discriminate(loaded.generate(z)).shape == (2, 3)


def test_load_prior_errors(tiny_run, tmp_path):
  workdir, _ = tiny_run
  with pytest.raises(FileNotFoundError, match="No prior named"):
    priors.load_prior(str(tmp_path / "nope.ckpt"))
  raw = (workdir / "prior.ckpt").read_bytes()
  (tmp_path / "trunc.ckpt").write_bytes(raw[:len(raw) // 2])
  with pytest.raises(checkpoint.CheckpointError, match="truncated"):
    priors.load_prior(str(tmp_path / "trunc.ckpt"))
  # A file whose weights do not match the architecture it records.
  state, meta = checkpoint.load(workdir / "prior.ckpt",
                                kind=priors.PRIOR_KIND)
  meta["model"] = dcgan.MNIST28.to_dict()
  checkpoint.save(tmp_path / "mismatch.ckpt", state,
                  kind=priors.PRIOR_KIND, meta=meta)
  with pytest.raises(checkpoint.CheckpointError, match="do not match"):
    priors.load_prior(str(tmp_path / "mismatch.ckpt"))
  checkpoint.save(tmp_path / "other.ckpt", state, kind="solver_state",
                  meta=meta)
  with pytest.raises(checkpoint.CheckpointError, match="not a GAN prior"):
    priors.load_prior(str(tmp_path / "other.ckpt"))


def test_project_recovers_points_in_the_range_of_g(tiny_run):
  _, prior = tiny_run
  z_true = prior.sample_latents(jax.random.key(7), 6)
  x = prior.generate(z_true)
  start = prior.generate(prior.sample_latents(jax.random.key(0), 6))
  x_hat, z, loss = project_lib.project(prior, x, steps=200, lr=5e-2)
  assert x_hat.shape == x.shape and z.shape == (6, 8) and loss.shape == (6,)
  assert float(jnp.abs(z).max()) <= 1.0
  assert float(metrics.psnr(x_hat, x).mean()) > float(
      metrics.psnr(start, x).mean()) + 10.0


def test_project_vmap_equals_loop_and_lowerings_agree(tiny_run):
  _, prior = tiny_run
  x = jnp.asarray(data.load_images("mnist5k", "test", limit=4, image_size=8))
  kw = dict(steps=12, lr=1e-2, key=jax.random.key(1))
  batch = project_lib.project(prior, x, **kw)
  looped = project_lib.project(prior, x, steps_per_call=12, unroll=1, **kw)
  for a, b in zip(batch, looped):
    np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)
  # Each image is solved independently of the others in the batch.
  z0 = prior.sample_latents(jax.random.key(1), (1, 4))
  _, opt0 = project_lib.project_init(prior, x[2:3], jax.random.key(1), 1e-2,
                                   restarts=1)
  state = latent.LatentState(z=z0[:, 2:3], opt=opt0)
  single = runner.Compiled(project_lib.project_step,
                           settings=runner.Settings(unroll="full"),
                           steps=12)(state, x[2:3], 1e-2, prior=prior)[0].z
  np.testing.assert_allclose(single[0, 0], batch[1][2], rtol=1e-4, atol=1e-5)


def test_project_restarts_keep_the_best(tiny_run):
  _, prior = tiny_run
  x = jnp.asarray(data.load_images("mnist5k", "test", limit=5, image_size=8))
  one = project_lib.project(prior, x, steps=10, key=jax.random.key(4))
  many = project_lib.project(prior, x, steps=10, key=jax.random.key(4),
                           restarts=3)
  # Restart 0 of the batch uses a different draw, so compare to the min.
  assert many[2].shape == (5,)
  assert float(many[2].mean()) <= float(one[2].mean()) + 1e-3


def test_project_rejects_bad_input(tiny_run):
  _, prior = tiny_run
  with pytest.raises(ValueError, match=r"x must be \[N, 8, 8, 1\]"):
    project_lib.project(prior, jnp.zeros((2, 28, 28, 1)))
  with pytest.raises(ValueError, match="steps must be a positive int"):
    project_lib.project(prior, jnp.zeros((2, 8, 8, 1)), steps=0)


def test_shipped_mnist_prior():
  prior = priors.load_prior("mnist")
  assert prior.image_shape == (28, 28, 1) and prior.latent_dim == 100
  assert prior.config == dcgan.MNIST28
  assert prior.meta["step"] >= 1000
  assert "blindinv train-prior" in prior.meta["command"]
  x = prior.generate(prior.sample_latents(jax.random.key(0), 4))
  assert x.shape == (4, 28, 28, 1) and bool(jnp.isfinite(x).all())


def test_project_does_not_retrace_when_only_data_changes(tiny_run):
  _, prior = tiny_run
  x = jnp.asarray(data.load_images("mnist5k", "test", limit=8, image_size=8))
  project_lib.project(prior, x[:4], steps=20)
  sizes = [f._cache_size() for f in (project_lib.project_init,
                                     runner.run_chunk,
                                     project_lib.project_best)]
  project_lib.project(prior, x[4:], steps=20, key=jax.random.key(9))
  assert sizes == [f._cache_size() for f in (project_lib.project_init,
                                             runner.run_chunk,
                                             project_lib.project_best)]


def test_ship_prior_copies_a_snapshot_with_its_provenance(tiny_run, tmp_path,
                                                          monkeypatch):
  from blindinv_jax.priors import dcgan as dcgan_priors, io as prior_io

  from conftest import load_experiment_module
  workdir, _ = tiny_run
  ship = load_experiment_module("assets/ship_prior")
  api_snap = sorted((workdir / "snapshots").glob("prior_*.ckpt"))[-1]
  with pytest.raises(SystemExit, match="train-prior command"):
    ship.main([str(api_snap), "--as", "mnist-v3", "--chosen-by", "x"])
  original = priors.load_prior(str(api_snap))
  snap = tmp_path / "prior_0000006.ckpt"
  dcgan_priors.save_prior(snap, original, original.config, {
      **original.meta, "command": "blindinv train-prior --config c.py"})
  monkeypatch.setattr(prior_io, "ASSETS", tmp_path / "assets")
  (tmp_path / "assets").mkdir()
  ship.main([str(snap), "--as", "mnist-v3", "--chosen-by", "val rule"])
  shipped = priors.load_prior("mnist-v3")
  assert _tree_equal(shipped.g_vars, original.g_vars)
  assert _tree_equal(shipped.d_vars, original.d_vars)
  assert shipped.meta["chosen_by"] == "val rule"
  assert shipped.meta["step"] == original.meta["step"]
  assert shipped.meta["command"] == "blindinv train-prior --config c.py"
  assert str(snap) in shipped.meta["snapshot"]


def test_projection_restarts_reports_each_count(tiny_run, tmp_path):
  from conftest import load_experiment_module
  workdir, _ = tiny_run
  script = load_experiment_module("assets/projection_restarts")
  out = tmp_path / "r.json"
  res = script.main(["--prior", str(workdir / "prior.ckpt"), "--n", "4",
                     "--restarts", "1,3", "--out", str(out)])
  one, three = res["rows"]
  assert (one["restarts"], three["restarts"]) == (1, 3)
  assert three["mean"] >= one["mean"] - 0.01
  assert json.loads(out.read_text())["rows"] == res["rows"]


def test_prior_quality_chooses_the_best_range_among_good_enough_samples():
  from conftest import load_experiment_module
  script = load_experiment_module("assets/prior_quality")
  row = lambda psnr, conf, fd: {"psnr": [psnr, 1.0], "confident": conf,
                                "fd_ratio": fd}
  val = {"ema_4000": row(26.0, 0.70, 2.0), "ema_8000": row(25.5, 0.80, 1.6),
         "ema_12000": row(25.0, 0.85, 1.3)}
  assert script.choose(val) == "ema_4000"
  assert script.choose(val, min_confident=0.791) == "ema_8000"
  assert script.choose(val, 0.791, max_fd_ratio=1.5) == "ema_12000"
  with pytest.raises(SystemExit, match="lower --min-confident"):
    script.choose(val, min_confident=0.9)
