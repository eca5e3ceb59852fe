"""Training a DCGAN prior: non-saturating GAN loss, Adam (2e-4, beta1 0.5),
one jitted step, resumable runs.

:func:`train_prior` writes sample grids, snapshots and checkpoints to a
workdir and resumes exactly where it stopped (:mod:`blindinv_jax.resume`).
Same seed, same weights.
"""
from __future__ import annotations

import dataclasses
import functools
import json
import pathlib
import time
from typing import Any, Callable, Optional

import flax
import jax
import jax.numpy as jnp
import numpy as np
import optax

from blindinv_jax import backend, resume
from blindinv_jax.models.dcgan import (
  DCGANConfig,
  Discriminator,
  Generator,
  get_preset,
  init_variables_fn,
  sample_latents,
)
from blindinv_jax.priors.dcgan import TRAIN_KIND, GANPrior, jsonable, save_prior
from blindinv_jax.validation import check_positive_int


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


def _adam(lr: float, b1: float, b2: float):
  return optax.adam(lr, b1=b1, b2=b2)


@functools.partial(backend.jit_init, static_argnums=0)
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
  """The PRNG key of training step ``step``."""
  return jax.random.fold_in(jax.random.key(seed), step)


def train_identity(cfg: TrainConfig) -> dict:
  """What a training checkpoint must match to be resumed: the config, except
  ``steps`` (a larger ``steps`` extends a finished run)."""
  return {"config": {k: v for k, v in dataclasses.asdict(cfg).items()
                     if k != "steps"}}


def _resume(path, state: TrainState, cfg: TrainConfig, workdir) -> TrainState:
  saved, _ = resume.load(
      path, kind=TRAIN_KIND, identity=train_identity(cfg),
      legacy=lambda meta: {"config": {
          k: v for k, v in meta.get("train_config", {}).items()
          if k != "steps"}},
      message=lambda d: (f"{workdir} holds a run with a different {d}; use "
                         "another --workdir, or the same config to resume."))
  state = flax.serialization.from_state_dict(state, saved)
  return jax.tree_util.tree_map(jnp.asarray, state)


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
  from blindinv_jax import __version__, data as data_lib, viz
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
    state = _resume(ckpt_path, state, cfg, workdir)
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
            "package_version": __version__}
    resume.save(ckpt_path, jax.device_get(state), kind=TRAIN_KIND,
                identity=train_identity(cfg), meta=jsonable(meta))
    if step % cfg.snapshot_every == 0 or final:
      save_prior(workdir / "snapshots" / f"prior_{step:07d}.ckpt", state,
                 model, meta)
    if final:
      save_prior(workdir / "prior.ckpt", state, model, meta)

  from tqdm.auto import tqdm
  bar = tqdm(range(start, cfg.steps), disable=not progress, initial=start,
             total=cfg.steps, desc="train-prior", dynamic_ncols=True)
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
                  meta_json=json.dumps(jsonable(meta_base), sort_keys=True))
