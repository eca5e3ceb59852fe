"""Training on small data: the DCGAN family, --data from flags alone, EMA,
DiffAugment and R1 (deterministic, resumable, the EMA generator saved)."""
import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from PIL import Image

from blindinv_jax import cli, training
from blindinv_jax.models import dcgan
from blindinv_jax.priors import load_prior
from blindinv_jax.training import augment

TINY = dict(model="tiny", data="mnist5k", batch_size=8, steps=4,
            sample_every=2, checkpoint_every=2, snapshot_every=2, log_every=2)


def test_family_presets_fit_their_shapes():
  for size in dcgan.FAMILY_SIZES:
    for ch in (1, 3):
      cfg = dcgan.dcgan_for(size, ch)
      g, d = jax.eval_shape(lambda k, c=cfg: dcgan.init_variables_fn(c, k),
                            jax.random.key(0))
      out = jax.eval_shape(lambda gv, c=cfg: dcgan.Generator(c).apply(
          gv, jnp.zeros((2, 100))), g)
      assert out.shape == (2, size, size, ch)
  assert dcgan.preset_for_shape(25, 25, 1).name == "dcgan28_gray"
  assert dcgan.preset_for_shape(30, 31, 3).name == "dcgan32_rgb"
  assert dcgan.preset_for_shape(250, 250, 3).name == "dcgan64_rgb"
  with pytest.raises(ValueError, match="sizes"):
    dcgan.dcgan_for(48, 1)


def test_translation_shifts_and_cutout_zeroes_a_square():
  x = jnp.arange(2 * 8 * 8, dtype=jnp.float32).reshape(2, 8, 8, 1) + 1.0
  t = augment.translation(x, jax.random.key(0))
  for i in range(2):                     # a shift of at most 1 pixel (8/8)
    found = [(dy, dx) for dy in (-1, 0, 1) for dx in (-1, 0, 1)
             if np.array_equal(np.asarray(t[i, 1:-1, 1:-1]), np.asarray(
                 x[i, 1 - dy:7 - dy, 1 - dx:7 - dx]))]
    assert found
  c = augment.cutout(x, jax.random.key(1))
  zeros = np.asarray(c == 0).reshape(2, -1).sum(1)
  assert np.all(zeros > 0) and np.all(zeros <= 16)         # a 4x4 square
  np.testing.assert_array_equal(np.asarray(c)[np.asarray(c) != 0],
                                np.asarray(x)[np.asarray(c) != 0])
  with pytest.raises(ValueError, match="unknown DiffAugment"):
    augment.check_policy("translation,color")


@pytest.mark.slow          # CI's 15-minute budget; runs with -m slow
def test_tricks_are_deterministic_resume_and_save_the_ema_generator(tmp_path):
  cfg = training.TrainConfig(**TINY, ema_decay=0.9,
                             diffaug="translation,cutout", r1_gamma=1.0)
  a = training.train_prior(cfg, tmp_path / "a", progress=False)
  b = training.train_prior(cfg, tmp_path / "b", progress=False)
  for x, y in zip(jax.tree_util.tree_leaves(a), jax.tree_util.tree_leaves(b)):
    np.testing.assert_array_equal(x, y)
  snaps = sorted(p.name for p in (tmp_path / "a" / "snapshots").iterdir())
  assert snaps == ["prior_0000002.ckpt", "prior_0000004.ckpt",
                   "raw_prior_0000002.ckpt", "raw_prior_0000004.ckpt"]
  ema = load_prior(tmp_path / "a" / "snapshots" / "prior_0000004.ckpt")
  raw = load_prior(tmp_path / "a" / "snapshots" / "raw_prior_0000004.ckpt")
  z = ema.sample_latents(jax.random.key(0), 3)
  assert float(jnp.abs(ema.generate(z) - raw.generate(z)).max()) > 1e-4
  np.testing.assert_array_equal(                    # the prior is the EMA
      load_prior(tmp_path / "a").generate(z), ema.generate(z))
  training.train_prior(cfg.replace(steps=6), tmp_path / "a", progress=False)
  log = [json.loads(line) for line in
         (tmp_path / "a" / "log.jsonl").read_text().splitlines()]
  assert [r["step"] for r in log] == [2, 4, 6]
  with pytest.raises(ValueError, match="different config"):
    training.train_prior(cfg.replace(r1_gamma=2.0), tmp_path / "a",
                         progress=False)


@pytest.mark.slow          # CI's 15-minute budget; runs with -m slow
def test_train_prior_from_flags_on_a_folder(tmp_path, capsys):
  rng = np.random.default_rng(0)
  for split, n in (("train", 12), ("val", 4)):
    (tmp_path / "imgs" / split).mkdir(parents=True)
    for i in range(n):
      Image.fromarray(rng.integers(0, 255, (20, 20), np.uint8)).save(
          tmp_path / "imgs" / split / f"{i}.png")
  argv = ["train-prior", "--data", f"folder:{tmp_path / 'imgs'}", "--workdir",
          str(tmp_path / "run"), "--steps", "2", "--batch-size", "4"]
  assert cli.main(argv) == 0
  out = capsys.readouterr().out
  assert "12 images, 28x28, 1 channel(s), values in [" in out
  assert "model dcgan28_gray" in out and "compiling the training step..." in out
  cfg = json.loads((tmp_path / "run" / "config.json").read_text())
  assert cfg["train_config"]["model"] == "dcgan28_gray"
  assert load_prior(tmp_path / "run").image_shape == (28, 28, 1)
  assert cli.main(["train-prior", "--workdir", str(tmp_path / "x")]) == 2
  assert "needs the data" in capsys.readouterr().err


@pytest.mark.slow
def test_own_data_walkthrough_end_to_end(tmp_path, capsys, monkeypatch):
  """docs/own-data.md at tiny sizes: a folder of 20 PNGs -> train-prior ->
  prior-report -> simulate observations -> solve -> the kernel."""
  from blindinv_jax import data, operators as ops
  rng = np.random.default_rng(1)
  for split, n in (("train", 14), ("val", 3), ("test", 3)):
    (tmp_path / "faces" / split).mkdir(parents=True)
    for i in range(n):
      img = np.zeros((24, 24), np.uint8)
      img[rng.integers(4, 10):rng.integers(14, 20), 6:18] = 200
      Image.fromarray(img).save(tmp_path / "faces" / split / f"{i}.png")
  monkeypatch.chdir(tmp_path)
  src = "folder:faces"
  assert cli.main(["train-prior", "--data", src, "--workdir", "prior",
                   "--steps", "2", "--batch-size", "4"]) == 0
  assert cli.main(["prior-report", "--prior", "prior", "--data", src,
                   "--split", "val", "--steps", "3", "--out", "report"]) == 0
  assert "representation error" in capsys.readouterr().out
  x = data.load_images(src, "test", image_size=28)
  np.savez("obs.npz", y=np.asarray(ops.blur(x, ops.gaussian_kernel(5, 1.0))))
  assert cli.main(["solve", "--observations", "obs.npz", "--prior", "prior",
                   "--outer-steps", "1", "--surrogate-steps", "2",
                   "--latent-steps", "2", "--out", "out"]) == 0
  assert "estimated kernel:" in capsys.readouterr().out
  assert np.load("out/effective_kernel.npy").shape == (9, 9, 1, 1)
  assert (tmp_path / "out" / "kernel.png").exists()



def _mean_image_prior(mean, latent_dim=2):
  """The toy family's prior: every latent draws the image ``mean``."""
  from blindinv_jax import priors
  return priors.from_function(
      lambda p, z: jnp.broadcast_to(p, (z.shape[0], *p.shape)),
      jnp.asarray(mean), latent_dim=latent_dim)


def _mean_image_family(model) -> training.Family:
  """A toy training family, written outside loop.py: its "model" is the mean
  of the images seen so far (one running-mean step per batch)."""
  import flax

  from blindinv_jax import checkpoint
  from blindinv_jax.priors import io

  class State(flax.struct.PyTreeNode):
    step: jax.Array
    mean: jax.Array

  def make_step(cfg):
    def step(s, x, key):
      mean = s.mean + (x.mean(0) - s.mean) / (s.step + 1)
      return State(step=s.step + 1, mean=mean), {"gap": jnp.abs(
          x.mean(0) - s.mean).mean()}
    return jax.jit(step)

  def save(path, s, meta):
    checkpoint.save(path, {"mean": np.asarray(s.mean)}, kind="mean_prior",
                    meta=io.jsonable({**meta, "model": model.to_dict()}))

  return training.Family(
      model=model, train_kind="mean_train",
      init_state=lambda cfg: State(step=jnp.zeros((), jnp.int32),
                                   mean=jnp.zeros(model.image_shape)),
      make_step=make_step,
      generate=lambda s, z: jnp.broadcast_to(s.mean,
                                             (z.shape[0], *s.mean.shape)),
      sample_latents=lambda k, n: jax.random.normal(k, (n, model.latent_dim)),
      save_prior=save,
      make_prior=lambda s, meta_json: _mean_image_prior(s.mean,
                                                        model.latent_dim),
      postfix=(("gap", "gap"),))


def test_a_new_family_registers_without_editing_the_loop(tmp_path,
                                                          monkeypatch):
  """A family and its checkpoint kind registered from outside the package
  train with the shared loop and load with load_prior."""
  import dataclasses

  from blindinv_jax import data
  from blindinv_jax.priors import io

  @dataclasses.dataclass(frozen=True)
  class MeanModel:
    name: str = "mean8"
    image_shape: tuple = (8, 8, 1)
    latent_dim: int = 2

    def to_dict(self):
      return dataclasses.asdict(self)

  monkeypatch.setattr(training.loop, "FAMILIES", dict(training.FAMILIES))
  monkeypatch.setattr(io, "KINDS", dict(io.KINDS))
  training.register_family("mean", {"mean8": MeanModel()}, _mean_image_family)
  io.register_kind("mean_prior", lambda state, meta, path: _mean_image_prior(
      state["mean"]))
  assert training.family_of("MEAN8").train_kind == "mean_train"
  cfg = training.TrainConfig(model="mean8", data="mnist5k", limit=32,
                             batch_size=8, steps=4, sample_every=2,
                             checkpoint_every=2, snapshot_every=2,
                             log_every=2)
  trained = training.train_prior(cfg, tmp_path / "run", progress=False)
  x = data.load_images("mnist5k", "train", image_size=(8, 8), limit=32)
  np.testing.assert_allclose(trained.params, np.asarray(x).mean(0),
                             atol=1e-5)               # 4 batches: one epoch
  loaded = load_prior(tmp_path / "run")               # its prior.ckpt
  np.testing.assert_array_equal(loaded.params, trained.params)
  with pytest.raises(ValueError, match="already belong to family 'mean'"):
    training.register_family("other", {"mean8": MeanModel()}, None)
  with pytest.raises(ValueError, match=r"families: dcgan, mean, vae"):
    training.family_of("nope")


def test_the_loop_imports_no_family():
  import ast
  import pathlib
  tree = ast.parse(pathlib.Path(training.loop.__file__).read_text())
  taken = {n.module for n in ast.walk(tree)
           if isinstance(n, ast.ImportFrom) and n.module}
  taken |= {f"{n.module}.{a.name}" for n in ast.walk(tree)
            if isinstance(n, ast.ImportFrom) and n.module for a in n.names}
  assert not taken & {"blindinv_jax.training.gan", "blindinv_jax.training.vae"}


@pytest.mark.parametrize("tty", [False, True])
def test_progress_is_a_few_plain_lines_in_a_log_and_a_bar_on_a_terminal(
    tmp_path, tty):
  """train-prior's progress on a stream that is not a terminal (a log file):
  one line per tenth of the run with the logged losses, no redraws; on a
  terminal the tqdm bar redraws in place."""
  import io

  class Stream(io.StringIO):
    def isatty(self):
      return tty
  stream = Stream()
  cfg = training.TrainConfig(**{**TINY, "steps": 40, "log_every": 2,
                                "sample_every": 40, "checkpoint_every": 40,
                                "snapshot_every": 40})
  training.train_prior(cfg, tmp_path, stream=stream)
  text = stream.getvalue()
  if tty:
    assert "\r" in text and "train-prior" in text
    return
  lines = text.splitlines()
  assert "\r" not in text and len(lines) == 10, text
  assert lines[0].startswith("train-prior: step 4/40 (10%), ")
  assert lines[-1].startswith("train-prior: step 40/40 (100%), ")
  assert ", d " in lines[-1] and ", g " in lines[-1]      # the losses
  quiet = Stream()
  training.train_prior(cfg.replace(steps=44), tmp_path, stream=quiet,
                       progress=False)                     # resumes, silent
  assert quiet.getvalue() == ""
