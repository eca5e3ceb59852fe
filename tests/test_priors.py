"""The prior interface: a user's generator (Flax module or pure function)
through solve, pgd, project and the CLI; priors without a discriminator;
Gaussian latents; the DCGAN prior is one implementation of the interface."""
import json
import textwrap

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from blindinv_jax import (
  baselines,
  cli,
  config as solver_config,
  data,
  operators as ops,
  priors,
  solver,
)
from blindinv_jax.models import dcgan
from blindinv_jax.project import project

QUICK = solver.SolverConfig(outer_steps=2, surrogate_steps=2, latent_steps=3,
                            latent_lr=1e-2, unroll=1)
KERNEL = ops.gaussian_kernel(3, 1.0)


class MLPGenerator(nn.Module):
  """A user's generator: z [B, 6] -> [B, 8, 8, 1] in [-1, 1]."""

  @nn.compact
  def __call__(self, z):
    h = nn.relu(nn.Dense(32)(z))
    return jnp.tanh(nn.Dense(64)(h)).reshape(z.shape[0], 8, 8, 1)


class MLPCritic(nn.Module):
  @nn.compact
  def __call__(self, x):
    return nn.Dense(1)(x.reshape(x.shape[0], -1))[:, 0]


def mlp_prior(latent="uniform", discriminator=False):
  g = MLPGenerator()
  gv = g.init(jax.random.key(0), jnp.zeros((1, 6)))
  kw = {}
  if discriminator:
    d = MLPCritic()
    kw = dict(discriminator=d, discriminator_variables=d.init(
        jax.random.key(1), jnp.zeros((1, 8, 8, 1))))
  return priors.from_flax(g, gv, latent_dim=6, latent=latent, **kw)


def linear_generate(params, z):
  """A pure function: z [B, 5] -> [B, 8, 8, 1]."""
  return jnp.tanh(z @ params["w"]).reshape(z.shape[0], 8, 8, 1)


def function_prior(latent="uniform"):
  w = jax.random.normal(jax.random.key(2), (5, 64)) * 0.5
  return priors.from_function(linear_generate, {"w": w}, latent_dim=5,
                              latent=latent)


@pytest.fixture(scope="module")
def digits():
  x = jnp.asarray(data.load_images("mnist5k", "test", limit=4, image_size=8))
  return x, ops.blur(x, KERNEL)


@pytest.mark.slow          # CI's 15-minute budget; runs with -m slow
@pytest.mark.parametrize("make", [mlp_prior, function_prior],
                         ids=["from_flax", "from_function"])
def test_a_users_generator_goes_through_solve_pgd_and_project(make, digits):
  prior = make()
  x, y = digits
  assert prior.image_shape == (8, 8, 1) and not prior.has_discriminator
  cfg = QUICK.replace(alpha=0.0)
  res = solver.solve(y, prior, config=cfg)
  assert res.sources.shape == (4, 1, 8, 8, 1)
  assert np.all(np.isfinite(res.history["latent_loss"]))
  assert float(res.history["latent_loss"][-1, 0]) <= float(
      res.history["latent_loss"][0, 0]) + 1e-6
  src, z, _ = baselines.pgd(y, prior, lambda s: ops.blur(s[:, 0], KERNEL),
                            config=cfg)
  assert src.shape == (4, 1, 8, 8, 1) and z.shape == (4, 1, prior.latent_dim)
  x_hat, z, loss = project(prior, x, steps=20, lr=5e-2, restarts=2)
  assert x_hat.shape == x.shape and loss.shape == (4,)
  start = project(prior, x, steps=1, lr=5e-2, restarts=2)[2]
  assert float(loss.mean()) < float(start.mean())


def test_no_discriminator_refuses_alpha_clearly(digits):
  _, y = digits
  prior = mlp_prior()
  with pytest.raises(ValueError, match="no discriminator; set alpha=0"):
    solver.solve(y, prior, config=QUICK.replace(alpha=1e-4))
  with pytest.raises(ValueError, match="no discriminator"):
    baselines.pgd(y, prior, config=QUICK.replace(alpha=1e-2))
  with_d = mlp_prior(discriminator=True)
  assert with_d.has_discriminator
  assert with_d.discriminate(jnp.zeros((2, 3, 8, 8, 1))).shape == (2, 3)
  res = solver.solve(y, with_d, config=QUICK.replace(alpha=1e-2))
  assert np.all(res.history["perceptual"] < 0)


def test_no_discriminator_turns_the_default_alpha_off_with_a_note(digits):
  """The default alpha (the presets') is 0 for a generator alone, with a
  note, and the solve is the one of an explicit alpha=0; with a
  discriminator it is today's 1e-4, the same config and the same solve."""
  _, y = digits
  prior = function_prior()
  assert isinstance(QUICK.alpha, solver_config.DefaultAlpha)
  with pytest.warns(UserWarning, match="no discriminator, so the perceptual "
                    r"term is off \(alpha=0"):
    res = solver.solve(y, prior, config=QUICK, surrogate="conv")
  zero = solver.solve(y, prior, config=QUICK.replace(alpha=0.0),
                      surrogate="conv")
  np.testing.assert_array_equal(res.sources, zero.sources)
  assert np.all(res.history["perceptual"] == 0)
  with pytest.warns(UserWarning, match="perceptual term is off"):
    src, _, _ = baselines.pgd(y, prior, lambda s: ops.blur(s[:, 0], KERNEL),
                              config=QUICK)
  assert np.all(np.isfinite(src))
  cfg, note = solver_config.resolve_alpha(QUICK, prior)
  assert cfg.alpha == 0.0 and "no discriminator" in note
  with_d = mlp_prior(discriminator=True)
  cfg, note = solver_config.resolve_alpha(QUICK, with_d)
  assert (cfg, note) == (QUICK.replace(alpha=1e-4), "")
  assert type(cfg.alpha) is float and hash(cfg) == hash(QUICK)
  explicit = QUICK.replace(alpha=1e-4)            # set by the user: kept
  assert solver_config.resolve_alpha(explicit, prior) == (explicit, "")
  a = solver.solve(y, with_d, config=QUICK, surrogate="conv")
  b = solver.solve(y, with_d, config=explicit, surrogate="conv")
  np.testing.assert_array_equal(a.sources, b.sources)
  np.testing.assert_array_equal(a.history["perceptual"],
                                b.history["perceptual"])
  assert np.all(a.history["perceptual"] < 0)


def test_gaussian_latents_are_never_clipped(digits):
  _, y = digits
  prior = function_prior(latent="normal")
  z = prior.sample_latents(jax.random.key(0), (1000,))
  assert float(jnp.abs(z).max()) > 2.0               # normal, not uniform
  np.testing.assert_array_equal(prior.project_latents(3 * z), 3 * z)
  init = jnp.full((4, 1, 5), 3.0)
  res = solver.solve(y, prior, config=QUICK.replace(alpha=0.0),
                     init_latents=init)
  assert float(jnp.abs(res.state.z).max()) > 1.0
  ball = priors.from_function(linear_generate, prior.params, latent_dim=5,
                              latent="normal", radius=2.0)
  np.testing.assert_allclose(
      jnp.linalg.norm(ball.project_latents(3 * z), axis=-1).max(), 2.0,
      rtol=1e-5)


@pytest.mark.slow          # CI's 15-minute budget; runs with -m slow
def test_dcgan_through_the_interface_is_bit_identical(tiny_run, digits):
  """GANPrior and the same networks wrapped by from_function give the same
  solve, bit for bit: the DCGAN is one implementation of the interface."""
  _, gan = tiny_run
  _, y = digits
  cfg = gan.config
  wrapped = priors.from_function(
      lambda p, z: dcgan.Generator(cfg).apply(p, z), gan.g_vars,
      latent_dim=cfg.latent_dim,
      discriminate_fn=lambda p, x: dcgan.Discriminator(cfg).apply(p, x),
      discriminator_params=gan.d_vars)
  a = solver.solve(y, gan, config=QUICK.replace(alpha=1e-2))
  b = solver.solve(y, wrapped, config=QUICK.replace(alpha=1e-2))
  np.testing.assert_array_equal(a.sources, b.sources)
  np.testing.assert_array_equal(a.history["perceptual"],
                                b.history["perceptual"])


@pytest.mark.parametrize("build,match", [
    (lambda: priors.from_function(linear_generate, {"w": jnp.zeros((5, 64))},
                                  latent_dim=7), "cannot take latents"),
    (lambda: priors.from_function(lambda p, z: z @ p, jnp.zeros((5, 64)),
                                  latent_dim=5), r"\[B, H, W, C\]"),
    (lambda: priors.from_flax(linear_generate, {}, latent_dim=5),
     "flax.linen Module"),
    (lambda: priors.from_function(linear_generate, {"w": jnp.zeros((5, 64))},
                                  latent_dim=5, latent="beta"),
     "latent must be one of"),
])
def test_bad_generators_get_one_clear_error(build, match):
  with pytest.raises(ValueError, match=match):
    build()


@pytest.mark.parametrize("not_a_prior,match", [
    (linear_generate, "wrap a generator function"),
    (object(), "lacks generate"),
])
def test_things_that_are_not_priors_are_refused(not_a_prior, match, digits):
  with pytest.raises(ValueError, match=match):
    solver.solve(digits[1], not_a_prior, config=QUICK)


@pytest.mark.slow          # CI's 15-minute budget; runs with -m slow
def test_cli_takes_module_factory(tmp_path, monkeypatch, digits, capsys):
  (tmp_path / "my_prior.py").write_text(textwrap.dedent("""
      import jax, jax.numpy as jnp
      from blindinv_jax import priors

      def generate(params, z):
        return jnp.tanh(z @ params).reshape(z.shape[0], 8, 8, 1)

      def make():
        w = jax.random.normal(jax.random.key(2), (5, 64)) * 0.5
        return priors.from_function(generate, w, latent_dim=5)

      class MLP(nn.Module):
        @nn.compact
        def __call__(self, z):
          h = nn.relu(nn.Dense(32)(z))
          return jnp.tanh(nn.Dense(64)(h)).reshape(z.shape[0], 8, 8, 1)

      def make_flax():
        g = MLP()
        return priors.from_flax(g, g.init(jax.random.key(0), jnp.zeros((1, 6))),
                                latent_dim=6)
      """).replace("import jax, jax.numpy as jnp",
                   "import flax.linen as nn, jax, jax.numpy as jnp"))
  monkeypatch.chdir(tmp_path)
  np.save(tmp_path / "y.npy", np.asarray(digits[1]))
  argv = ["solve", "--observations", "y.npy", "--prior", "my_prior:make",
          "--outer-steps", "1", "--surrogate-steps", "2", "--latent-steps",
          "2", "--alpha", "0", "--out", "out"]
  assert cli.main(argv) == 0, capsys.readouterr().err
  hist = json.loads((tmp_path / "out" / "history.json").read_text())
  assert hist["prior"] == "my_prior:make"
  assert np.load(tmp_path / "out" / "sources.npy").shape == (4, 1, 8, 8, 1)
  assert cli.main(argv[:4] + ["my_prior:nope"] + argv[5:-1] + ["out2"]) == 2
  assert "has no function 'nope'" in capsys.readouterr().err
  assert cli.main(argv[:4] + ["my_prior:make_flax"] + argv[5:-1] +
                  ["out3"]) == 0
  assert np.load(tmp_path / "out3" / "sources.npy").shape == (4, 1, 8, 8, 1)


def test_cli_generator_alone_solves_with_a_note_and_refuses_set_alpha(
    tmp_path, monkeypatch, digits, capsys):
  (tmp_path / "gen_only.py").write_text(textwrap.dedent("""
      import jax, jax.numpy as jnp
      from blindinv_jax import priors

      def make():
        w = jax.random.normal(jax.random.key(2), (5, 64)) * 0.5
        return priors.from_function(
            lambda p, z: jnp.tanh(z @ p).reshape(z.shape[0], 8, 8, 1), w,
            latent_dim=5)
      """))
  monkeypatch.chdir(tmp_path)
  np.save(tmp_path / "y.npy", np.asarray(digits[1]))
  argv = ["solve", "--observations", "y.npy", "--prior", "gen_only:make",
          "--surrogate", "conv", "--outer-steps", "1", "--surrogate-steps",
          "2", "--latent-steps", "2", "--out", "out"]
  assert cli.main(argv) == 0, capsys.readouterr().err
  err = capsys.readouterr().err
  assert err.count("no discriminator, so the perceptual term is off") == 1
  hist = json.loads((tmp_path / "out" / "history.json").read_text())
  assert hist["config"]["alpha"] == 0.0
  assert cli.main(argv[:-1] + ["out2", "--alpha", "1e-4"]) == 2
  assert "no discriminator; set alpha=0" in capsys.readouterr().err


@pytest.mark.slow          # CI's 15-minute budget; runs with -m slow
def test_vae_prior_trains_loads_and_solves(tmp_path, digits):
  from blindinv_jax import training
  cfg = training.TrainConfig(model="vae_tiny", batch_size=16, steps=4,
                             sample_every=2, checkpoint_every=2,
                             snapshot_every=2, log_every=2, lr=1e-3, b1=0.9)
  trained = training.train_prior(cfg, tmp_path, progress=False)
  again = training.train_prior(cfg, tmp_path / "again", progress=False)
  np.testing.assert_array_equal(                   # deterministic
      jax.tree_util.tree_leaves(trained.dec_vars)[0],
      jax.tree_util.tree_leaves(again.dec_vars)[0])
  loaded = priors.load_prior(tmp_path)
  assert isinstance(loaded, priors.VAEPrior) and loaded.latent == "normal"
  z = jnp.ones((2, loaded.latent_dim))
  np.testing.assert_allclose(loaded.generate(z), trained.generate(z),
                             rtol=1e-6)
  res = solver.solve(digits[1], loaded, config=QUICK.replace(alpha=0.0))
  assert res.sources.shape == (4, 1, 8, 8, 1)
  longer = training.train_prior(cfg.replace(steps=6), tmp_path,
                                progress=False)             # resumes
  log = [json.loads(line) for line in
         (tmp_path / "log.jsonl").read_text().splitlines()]
  assert [r["step"] for r in log] == [2, 4, 6]
  assert longer.latent_dim == loaded.latent_dim


def _mean_image_prior(mean):
  """A toy prior family: every latent draws the same image ``mean``."""
  return priors.from_function(
      lambda p, z: jnp.broadcast_to(p, (z.shape[0], *p.shape)) + 0 * z[
          :, :1, None, None], jnp.asarray(mean), latent_dim=2)


def test_a_checkpoint_kind_registered_once_loads(tmp_path, monkeypatch):
  from blindinv_jax import checkpoint
  from blindinv_jax.priors import io
  monkeypatch.setattr(io, "KINDS", dict(io.KINDS))     # leave no trace
  restore = lambda state, meta, path: _mean_image_prior(state["mean"])
  priors.register_kind("mean_image", restore)
  priors.register_kind("mean_image", restore)           # the same: no-op
  mean = np.linspace(-1, 1, 16, dtype=np.float32).reshape(4, 4, 1)
  checkpoint.save(tmp_path / "p.ckpt", {"mean": mean}, kind="mean_image",
                  meta={"model": {}})
  prior = priors.load_prior(tmp_path / "p.ckpt")
  np.testing.assert_array_equal(prior.generate(jnp.zeros((3, 2))),
                                np.broadcast_to(mean, (3, 4, 4, 1)))
  with pytest.raises(ValueError, match="'mean_image' is already registered"):
    priors.register_kind("mean_image", lambda *a: None)


def test_an_unknown_checkpoint_kind_names_the_known_ones(tmp_path):
  from blindinv_jax import checkpoint
  checkpoint.save(tmp_path / "x.ckpt", {"a": np.zeros(2)}, kind="mystery",
                  meta={"model": {}})
  with pytest.raises(checkpoint.CheckpointError) as e:
    priors.load_prior(tmp_path / "x.ckpt")
  for kind in ("'mystery'", "'gan_prior'", "'gan_train'", "'vae_prior'",
               "'vae_train'"):
    assert kind in str(e.value)


def test_mnist_is_another_name_of_mnist_v1():
  from blindinv_jax.priors import io
  assert io.shipped_path("mnist") == io.shipped_path("mnist-v1")
  assert io.shipped_path("mnist").is_file()
  assert priors.shipped_names() == ["mnist", "mnist-v1", "mnist-v2",
                                    "mnist-v3"]
  a, b = priors.load_prior("mnist"), priors.load_prior("mnist-v1")
  assert jax.tree_util.tree_all(jax.tree_util.tree_map(
      lambda u, v: bool(np.array_equal(u, v)), a.g_vars, b.g_vars))


def test_no_prior_family_imports_another():
  import ast
  import pathlib
  folder = pathlib.Path(priors.__file__).parent
  families = {"dcgan", "vae"}
  for name in families:
    tree = ast.parse((folder / f"{name}.py").read_text())
    taken = {n.module for n in ast.walk(tree)
             if isinstance(n, ast.ImportFrom) and n.module}
    taken |= {f"{n.module}.{a.name}" for n in ast.walk(tree)
              if isinstance(n, ast.ImportFrom) and n.module for a in n.names}
    others = {f"blindinv_jax.priors.{f}" for f in families - {name}}
    assert not taken & others, (name, taken & others)
