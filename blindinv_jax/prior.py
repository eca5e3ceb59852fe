"""GAN priors: training, saving/loading, and projection onto the range of G.

* :func:`train_prior` trains a DCGAN (non-saturating loss, Adam 2e-4, beta1
  0.5) with one jitted step, writes sample grids and checkpoints that resume
  exactly where they stopped. Same seed, same weights.
* :class:`GANPrior` holds the frozen generator/discriminator variables. It is a
  pytree, so it is passed to jitted functions as an argument.
* :func:`load_prior` loads ``"mnist"`` (shipped with the package) or a path.
* :func:`project` is PGD on the latents: ``min_z ||G(z) - x||_1``, z clipped to
  ``[-1, 1]``, vmapped over images and restarts.
"""
from __future__ import annotations

import dataclasses
import functools
import json
import pathlib
import time
from functools import partial
from typing import Any, Callable, Optional, Tuple

import flax
import jax
import jax.numpy as jnp
import numpy as np
import optax

from blindinv_jax import checkpoint
from blindinv_jax.utils import check_positive_int
from blindinv_jax.models.dcgan import (DCGANConfig, Discriminator, Generator,
                                       FAST_COMPILE, get_preset,
                                       init_variables_fn,
                                       sample_latents)

PRIOR_KIND = "gan_prior"
TRAIN_KIND = "gan_train"
SHIPPED = {"mnist": "mnist_prior.ckpt"}


# -------------------------------------------------------------------- prior

class GANPrior(flax.struct.PyTreeNode):
  """A frozen GAN: generator and discriminator variables plus architecture.

  ``generate(z)``: z ``[..., latent_dim]`` -> images ``[..., H, W, C]``.
  ``discriminate(x)``: images ``[..., H, W, C]`` -> logits ``[...]``.
  Both run the networks in inference mode (BatchNorm running averages).
  """
  g_vars: Any
  d_vars: Any
  config: DCGANConfig = flax.struct.field(pytree_node=False)
  meta_json: str = flax.struct.field(pytree_node=False, default="{}")

  @property
  def meta(self) -> dict:
    """Training metadata recorded in the checkpoint (step, config, data)."""
    return json.loads(self.meta_json)

  @property
  def latent_dim(self) -> int:
    return self.config.latent_dim

  @property
  def image_shape(self) -> Tuple[int, int, int]:
    return tuple(self.config.image_shape)

  def generate(self, z: jax.Array) -> jax.Array:
    lead = z.shape[:-1]
    x = Generator(self.config).apply(self.g_vars, z.reshape(-1, z.shape[-1]))
    return x.reshape(*lead, *self.image_shape)

  def discriminate(self, x: jax.Array) -> jax.Array:
    lead = x.shape[:-3]
    logits = Discriminator(self.config).apply(
        self.d_vars, x.reshape(-1, *x.shape[-3:]))
    return logits.reshape(lead)

  def sample_latents(self, key: jax.Array, shape) -> jax.Array:
    return sample_latents(key, shape, self.latent_dim)


def load_prior(name_or_path: str) -> GANPrior:
  """Loads ``"mnist"`` (package data) or a checkpoint path.

  Accepts a prior file (``prior.ckpt``), a training checkpoint, or a training
  workdir (its latest checkpoint). The architecture comes from the file.
  """
  if not isinstance(name_or_path, (str, pathlib.Path)):
    raise ValueError("load_prior takes a prior name "
                     f"({sorted(SHIPPED)}) or a path, got {name_or_path!r}.")
  if str(name_or_path) in SHIPPED:
    path = pathlib.Path(__file__).parent / "assets" / SHIPPED[name_or_path]
    if not path.is_file():
      raise FileNotFoundError(
          f"The shipped {name_or_path!r} prior is missing from the package "
          f"({path}); reinstall blindinv-jax or train one with "
          "`blindinv train-prior`.")
  else:
    path = pathlib.Path(name_or_path).expanduser()
    if path.is_dir():
      for cand in ("prior.ckpt", "checkpoint.ckpt"):
        if (path / cand).is_file():
          path = path / cand
          break
    if not path.exists():
      raise FileNotFoundError(
          f"No prior named or at {str(name_or_path)!r}. Use one of "
          f"{sorted(SHIPPED)}, a prior .ckpt file or a train-prior workdir.")
  kind = checkpoint.read_header(path).get("kind")
  if kind not in (PRIOR_KIND, TRAIN_KIND):
    raise checkpoint.CheckpointError(
        f"{path} is a {kind!r} checkpoint, not a GAN prior.")
  state, meta = checkpoint.load(path, kind=kind)
  if "model" not in meta:
    raise checkpoint.CheckpointError(f"{path} does not record its model "
                                     "architecture ('model' metadata).")
  config = DCGANConfig.from_dict(meta["model"])
  g_ref, d_ref = jax.eval_shape(partial(init_variables_fn, config),
                                jax.random.key(0))
  g_vars = _restore_like(g_ref, state["g_vars"], path, "generator")
  d_vars = _restore_like(d_ref, state["d_vars"], path, "discriminator")
  return GANPrior(g_vars=g_vars, d_vars=d_vars, config=config,
                  meta_json=json.dumps(meta, sort_keys=True))


def save_prior(path, prior_or_state, config: DCGANConfig, meta: dict):
  """Writes a prior file (G and D variables only, no optimiser state)."""
  tree = {"g_vars": prior_or_state.g_vars, "d_vars": prior_or_state.d_vars}
  meta = {**meta, "model": config.to_dict()}
  return checkpoint.save(path, jax.device_get(tree), kind=PRIOR_KIND,
                         meta=_jsonable(meta))


def _restore_like(ref, state, path, what):
  ref_shapes = jax.tree_util.tree_map(lambda a: tuple(a.shape),
                                      flax.core.unfreeze(ref))
  try:
    got = jax.tree_util.tree_map(lambda a: tuple(np.shape(a)), state)
  except Exception:  # pragma: no cover - defensive
    got = None
  if got != ref_shapes:
    raise checkpoint.CheckpointError(
        f"{path}: the {what} weights do not match the architecture recorded "
        "in the file (mismatched or corrupted checkpoint).")
  return jax.tree_util.tree_map(jnp.asarray, state)


# ------------------------------------------------------------- projection

def default_lowering() -> str:
  """How iterative solvers run their steps on the default backend.

  ``"loop"``: one jitted ``lax.fori_loop`` over all steps. ``"chunked"``: a
  host loop over a jitted, unrolled chunk of steps (no host sync between
  chunks). Measured for ``project`` on 50 MNIST28 digits on 2 CPU cores with
  the shipped prior: ``"chunked"`` 56 ms per step after an 8 s compile,
  ``"loop"`` 69 ms per step after a 2 s compile, so for the default 1,000
  steps CPU uses ``"chunked"``; accelerators use ``"loop"``. (Before the
  layers of ``models/layers.py`` gave convolution gradients a canonical
  layout, ``"loop"`` took 500-690 ms per step on CPU.)
  """
  return "chunked" if jax.default_backend() == "cpu" else "loop"


def _l1(prior, z, x):
  """Per-image mean |G(z) - x|: z [..., latent], x [..., H, W, C] -> [...]."""
  return jnp.mean(jnp.abs(prior.generate(z) - x), axis=(-3, -2, -1))


def _project_steps(prior, x, z, opt, lr, steps: int, use_loop: bool):
  """``steps`` Adam+clip steps on z [R, N, latent] towards x [N, H, W, C].

  Written for one image and one restart (``step_one``), then vmapped over
  images and restarts.
  """
  tx = optax.adam(lr)

  def step_one(z, opt, target):                   # z [latent], target [H,W,C]
    g = jax.grad(lambda z: _l1(prior, z, target))(z)
    upd, opt = tx.update(g, opt, z)
    return jnp.clip(optax.apply_updates(z, upd), -1.0, 1.0), opt

  step = jax.vmap(jax.vmap(step_one), in_axes=(0, 0, None))

  def body(_, carry):
    return step(*carry, x)

  if use_loop:
    return jax.lax.fori_loop(0, steps, body, (z, opt))
  for i in range(steps):
    z, opt = body(i, (z, opt))
  return z, opt


_project_loop = jax.jit(partial(_project_steps, use_loop=True),
                        static_argnames=("steps",))
_project_chunk = jax.jit(partial(_project_steps, use_loop=False),
                         static_argnames=("steps",), donate_argnums=(2, 3))


@partial(jax.jit, static_argnames=("restarts",))
def _project_init(prior, x, key, lr, restarts: int):
  z = prior.sample_latents(key, (restarts, x.shape[0]))
  return z, jax.vmap(jax.vmap(optax.adam(lr).init))(z)


@jax.jit
def _project_best(prior, x, z):
  loss = _l1(prior, z, x[None])                         # [R, N]
  best = jnp.argmin(loss, axis=0)
  z = jnp.take_along_axis(z, best[None, :, None], axis=0)[0]
  return prior.generate(z), z, jnp.min(loss, axis=0)


def project(prior: GANPrior, x, steps: int = 1000, lr: float = 1e-2, *,
            key: Optional[jax.Array] = None, restarts: int = 1,
            lowering: Optional[str] = None, chunk: int = 10):
  """Projects images onto the range of G by PGD on the latents.

  Solves ``min_z mean|G(z) - x|`` per image with Adam, clipping z to
  ``[-1, 1]`` after every step, from ``restarts`` random initialisations
  (uniform in ``[-1, 1]``), and keeps the lowest final loss per image.

  Args:
    prior: a :class:`GANPrior`.
    x: images ``[N, H, W, C]`` in ``[-1, 1]``.
    steps: Adam steps.
    lr: Adam learning rate.
    key: PRNG key for the initial latents (default ``key(0)``).
    restarts: independent initialisations per image.
    lowering: ``"loop"`` or ``"chunked"`` (see :func:`default_lowering`).
    chunk: steps per jitted call with ``"chunked"``.

  Returns:
    ``(x_hat [N, H, W, C], z [N, latent_dim], loss [N])``.
  """
  x = jnp.asarray(x, jnp.float32)
  if x.ndim != 4 or tuple(x.shape[1:]) != prior.image_shape:
    raise ValueError(f"project: x must be [N, {', '.join(map(str, prior.image_shape))}]"
                     f" for this prior, got shape {tuple(x.shape)}.")
  for name, v in (("steps", steps), ("restarts", restarts), ("chunk", chunk)):
    check_positive_int(f"project: {name}", v)
  lowering = lowering or default_lowering()
  if lowering not in ("loop", "chunked"):
    raise ValueError(f"project: lowering must be 'loop' or 'chunked', got "
                     f"{lowering!r}.")
  key = jax.random.key(0) if key is None else key
  z, opt = _project_init(prior, x, key, lr, restarts)
  if lowering == "loop":
    z, opt = _project_loop(prior, x, z, opt, lr, steps=steps)
  else:
    done = 0
    while done < steps:
      k = min(chunk, steps - done)
      z, opt = _project_chunk(prior, x, z, opt, lr, steps=k)
      done += k
  return _project_best(prior, x, z)


# --------------------------------------------------------------- training

@dataclasses.dataclass(frozen=True)
class TrainConfig:
  """How to train a prior (``blindinv train-prior --config ...``)."""
  model: str = "mnist28"
  data: str = "mnist5k"
  split: str = "train"
  data_dir: Optional[str] = None
  limit: Optional[int] = None
  batch_size: int = 64
  steps: int = 10_000
  lr: float = 2e-4
  b1: float = 0.5
  b2: float = 0.999
  seed: int = 0
  sample_every: int = 500
  checkpoint_every: int = 500
  snapshot_every: int = 1000
  log_every: int = 50

  def replace(self, **kw) -> "TrainConfig":
    return dataclasses.replace(self, **kw)

  def validate(self):
    get_preset(self.model)
    for f in ("batch_size", "steps", "sample_every", "checkpoint_every",
              "snapshot_every", "log_every"):
      check_positive_int(f"TrainConfig.{f}", getattr(self, f))
    if not self.lr > 0:
      raise ValueError(f"TrainConfig.lr must be positive, got {self.lr!r}.")
    return self


class TrainState(flax.struct.PyTreeNode):
  step: jax.Array
  g_vars: Any
  d_vars: Any
  g_opt: Any
  d_opt: Any


@partial(jax.jit, static_argnums=0, compiler_options=FAST_COMPILE)
def init_train_state(cfg: TrainConfig) -> TrainState:
  """Initial networks (from ``cfg.seed``) and optimiser states."""
  model = get_preset(cfg.model)
  g_vars, d_vars = init_variables_fn(model, jax.random.key(cfg.seed))
  tx = _adam(cfg.lr, cfg.b1, cfg.b2)
  return TrainState(step=jnp.zeros((), jnp.int32), g_vars=g_vars,
                    d_vars=d_vars, g_opt=tx.init(g_vars["params"]),
                    d_opt=tx.init(d_vars["params"]))


def discriminator_loss(model: DCGANConfig, d_vars, real, fake):
  """Non-saturating D loss, BatchNorm in training mode on each batch.

  Returns ``(loss, (new_batch_stats, real_logits, fake_logits))``.
  """
  disc = Discriminator(model)
  real_logits, mut = disc.apply(d_vars, real, train=True,
                                mutable=["batch_stats"])
  fake_logits, mut = disc.apply({**d_vars, **mut}, fake, train=True,
                                mutable=["batch_stats"])
  # -log D(x) - log(1 - D(G(z))), written with softplus on logits.
  loss = (jnp.mean(jax.nn.softplus(-real_logits)) +
          jnp.mean(jax.nn.softplus(fake_logits)))
  return loss, (mut["batch_stats"], real_logits, fake_logits)


def make_train_step(cfg: TrainConfig) -> Callable:
  """``step(state, real [B,H,W,C], key) -> (state, metrics)``, jitted.

  Cached per (model, optimiser) so repeated runs reuse one compiled step.
  """
  return _train_step(cfg.model, cfg.lr, cfg.b1, cfg.b2)


def _adam(lr: float, b1: float, b2: float):
  return optax.adam(lr, b1=b1, b2=b2)


@functools.lru_cache(maxsize=8)
def _train_step(model_name: str, lr: float, b1: float, b2: float) -> Callable:
  model = get_preset(model_name)
  gen, disc = Generator(model), Discriminator(model)
  tx = _adam(lr, b1, b2)

  def step(state: TrainState, real, key):
    z = sample_latents(key, real.shape[0], model.latent_dim)
    fake = gen.apply(state.g_vars, z, train=True, mutable=["batch_stats"])[0]

    def d_loss_fn(d_params):
      return discriminator_loss(
          model, {**state.d_vars, "params": d_params}, real,
          jax.lax.stop_gradient(fake))

    (d_loss, (d_stats, real_logits, fake_logits)), d_grads = (
        jax.value_and_grad(d_loss_fn, has_aux=True)(state.d_vars["params"]))
    upd, d_opt = tx.update(d_grads, state.d_opt, state.d_vars["params"])
    d_vars = {"params": optax.apply_updates(state.d_vars["params"], upd),
              "batch_stats": d_stats}

    def g_loss_fn(g_params):
      fake, mut = gen.apply({**state.g_vars, "params": g_params}, z,
                            train=True, mutable=["batch_stats"])
      logits, _ = disc.apply(d_vars, fake, train=True, mutable=["batch_stats"])
      # Non-saturating generator loss -log D(G(z)).
      return jnp.mean(jax.nn.softplus(-logits)), mut["batch_stats"]

    (g_loss, g_stats), g_grads = jax.value_and_grad(
        g_loss_fn, has_aux=True)(state.g_vars["params"])
    upd, g_opt = tx.update(g_grads, state.g_opt, state.g_vars["params"])
    g_vars = {"params": optax.apply_updates(state.g_vars["params"], upd),
              "batch_stats": g_stats}
    metrics = {"d_loss": d_loss, "g_loss": g_loss,
               "d_real": jnp.mean(jax.nn.sigmoid(real_logits)),
               "d_fake": jnp.mean(jax.nn.sigmoid(fake_logits))}
    return TrainState(step=state.step + 1, g_vars=g_vars, d_vars=d_vars,
                      g_opt=g_opt, d_opt=d_opt), metrics

  return jax.jit(step, donate_argnums=0)


def batch_indices(seed: int, step: int, n: int, batch_size: int) -> np.ndarray:
  """Indices of the batch at ``step``: epochs of a seeded permutation.

  A pure function of its arguments, so a resumed run sees the same batches.
  """
  out, pos = [], step * batch_size
  while len(out) < batch_size:
    epoch, offset = divmod(pos, n)
    perm = np.random.default_rng([seed, epoch]).permutation(n)
    take = perm[offset:offset + batch_size - len(out)]
    out.extend(take.tolist())
    pos += len(take)
  return np.asarray(out, np.int64)


def step_key(seed: int, step) -> jax.Array:
  return jax.random.fold_in(jax.random.key(seed), step)


def train_prior(cfg: TrainConfig, workdir, *, progress: bool = True,
                command: Optional[str] = None) -> GANPrior:
  """Trains (or resumes) a GAN prior in ``workdir``.

  Writes ``workdir/config.json``, ``checkpoint.ckpt`` (latest, with optimiser
  state) every ``checkpoint_every`` steps, ``snapshots/prior_<step>.ckpt``
  every ``snapshot_every`` steps, ``samples/step_<step>.png`` every
  ``sample_every`` steps, ``log.jsonl``, and ``prior.ckpt`` at the end.
  Re-running with the same config resumes from ``checkpoint.ckpt``; a larger
  ``steps`` extends a finished run.
  """
  from blindinv_jax import data as data_lib, viz
  cfg.validate()
  workdir = pathlib.Path(workdir)
  workdir.mkdir(parents=True, exist_ok=True)
  model = get_preset(cfg.model)
  source = data_lib.open_images(cfg.data, cfg.split, data_dir=cfg.data_dir,
                                image_size=model.image_shape[:2])
  if tuple(source.image_shape) != tuple(model.image_shape):
    raise ValueError(f"Data {cfg.data!r} has images of shape "
                     f"{source.image_shape}, model {cfg.model!r} expects "
                     f"{model.image_shape}.")
  n = len(source) if cfg.limit is None else min(cfg.limit, len(source))
  in_memory = source[np.arange(n)] if n * np.prod(model.image_shape) <= 2**28 \
      else None
  fetch = (lambda idx: in_memory[idx]) if in_memory is not None else \
      (lambda idx: source[idx])

  state = init_train_state(cfg)
  ckpt_path = workdir / "checkpoint.ckpt"
  if ckpt_path.exists():
    saved, meta = checkpoint.load(ckpt_path, kind=TRAIN_KIND)
    old = dict(meta.get("train_config", {}))
    new = dataclasses.asdict(cfg)
    diff = {k for k in new if k != "steps" and old.get(k) != new[k]}
    if diff:
      raise ValueError(
          f"{workdir} holds a run with a different config "
          f"({', '.join(f'{k}: {old.get(k)!r} -> {new[k]!r}' for k in sorted(diff))}"
          "); use another --workdir, or the same config to resume.")
    state = flax.serialization.from_state_dict(state, saved)
    state = jax.tree_util.tree_map(jnp.asarray, state)
  (workdir / "config.json").write_text(json.dumps(
      {"train_config": dataclasses.asdict(cfg), "model": model.to_dict(),
       "command": command}, indent=2))

  train_step = make_train_step(cfg)
  sample_z = sample_latents(jax.random.fold_in(jax.random.key(cfg.seed), 2**30),
                            64, model.latent_dim)
  start = int(state.step)
  meta_base = {"train_config": dataclasses.asdict(cfg), "command": command,
               "data": {"source": cfg.data, "split": cfg.split, "n": n}}

  def save_all(state, step, final=False):
    meta = {**meta_base, "step": step, "model": model.to_dict(),
            "saved_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "package_version": _version()}
    checkpoint.save(ckpt_path, jax.device_get(state), kind=TRAIN_KIND,
                    meta=_jsonable(meta))
    if step % cfg.snapshot_every == 0 or final:
      save_prior(workdir / "snapshots" / f"prior_{step:07d}.ckpt", state,
                 model, meta)
    if final:
      save_prior(workdir / "prior.ckpt", state, model, meta)

  bar = _progress(range(start, cfg.steps), disable=not progress,
                  initial=start, total=cfg.steps, desc="train-prior")
  log = open(workdir / "log.jsonl", "a")
  t0, metrics = time.time(), None
  for step in bar:
    real = jnp.asarray(fetch(batch_indices(cfg.seed, step, n, cfg.batch_size)))
    state, metrics = train_step(state, real, step_key(cfg.seed, step))
    done = step + 1
    if done % cfg.log_every == 0 or done == cfg.steps:
      m = {k: round(float(v), 4) for k, v in jax.device_get(metrics).items()}
      log.write(json.dumps({"step": done, "time": round(time.time() - t0, 2),
                            **m}) + "\n")
      log.flush()
      bar.set_postfix(d=m["d_loss"], g=m["g_loss"])
    if done % cfg.sample_every == 0 or done == cfg.steps:
      samples = Generator(model).apply(state.g_vars, sample_z)
      viz.save_grid(workdir / "samples" / f"step_{done:07d}.png", samples)
    if done % cfg.checkpoint_every == 0 or done == cfg.steps:
      save_all(state, done, final=done == cfg.steps)
  log.close()
  if start >= cfg.steps and not (workdir / "prior.ckpt").exists():
    save_all(state, start, final=True)
  return GANPrior(g_vars=state.g_vars, d_vars=state.d_vars, config=model,
                  meta_json=json.dumps(_jsonable(meta_base), sort_keys=True))


def _progress(it, **kw):
  from tqdm.auto import tqdm
  return tqdm(it, dynamic_ncols=True, **kw)


def _version():
  from blindinv_jax import __version__
  return __version__


def _jsonable(obj):
  return json.loads(json.dumps(obj, default=lambda o: (
      o.tolist() if hasattr(o, "tolist") else str(o))))
