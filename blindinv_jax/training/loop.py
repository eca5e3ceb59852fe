"""The training loop every prior family shares: data, batches, resume,
checkpoints, snapshots, sample grids, logs.

:func:`train_prior` picks the family from ``TrainConfig.model`` (a DCGAN
preset of :mod:`blindinv_jax.models.dcgan` or a VAE preset of
:mod:`blindinv_jax.models.vae`) and runs its jitted step. The families
register themselves (:func:`register_family`, called by
:mod:`blindinv_jax.training.gan` and :mod:`blindinv_jax.training.vae` when
``blindinv_jax.training`` imports them); this module imports none of them.
"""
from __future__ import annotations

import dataclasses
import json
import pathlib
import time
from typing import Any, Callable, Dict, Mapping, NamedTuple, Optional, Tuple

import flax
import jax
import jax.numpy as jnp
import numpy as np

from blindinv_jax import resume
from blindinv_jax.priors.io import jsonable
from blindinv_jax.validation import check_positive_int

#: ``TrainConfig.gan_loss``: non-saturating, relativistic pairing.
GAN_LOSSES = ("ns", "rpgan")


@dataclasses.dataclass(frozen=True)
class TrainConfig:
  """How to train a prior (``blindinv train-prior --config ...``).

  ``model``: a DCGAN preset (``mnist28``, ``celeba64``, ``tiny``, the
  family ``dcgan{28,32,64}_{gray,rgb}``), a VAE preset (``vae28``,
  ``vae_tiny``), or ``"auto"``: the family preset that fits the data's image
  shape (:func:`blindinv_jax.models.dcgan.preset_for_shape`). ``lr``,
  ``b1``, ``b2``: Adam's.

  GAN options: ``gan_loss`` is ``"ns"`` (the non-saturating loss, DCGAN's)
  or ``"rpgan"`` (the relativistic pairing loss of R3GAN, Huang et al.
  2024: D scores each real image against a generated one);
  ``r1_gamma`` / ``r2_gamma`` weigh the zero-centred gradient penalties
  ``gamma/2 * |grad_x D(x)|^2`` on real (R1) and generated (R2) images;
  ``ema_decay`` keeps an EMA generator; ``diffaug`` is a DiffAugment policy.
  """
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
  ema_decay: Optional[float] = None
  diffaug: str = ""
  r1_gamma: float = 0.0
  r2_gamma: float = 0.0
  gan_loss: str = "ns"

  def replace(self, **kw) -> "TrainConfig":
    return dataclasses.replace(self, **kw)

  def validate(self):
    if self.model != "auto":
      family_of(self.model)
    for f in ("batch_size", "steps", "sample_every", "checkpoint_every",
              "snapshot_every", "log_every"):
      check_positive_int(f"TrainConfig.{f}", getattr(self, f))
    if not self.lr > 0:
      raise ValueError(f"TrainConfig.lr must be positive, got {self.lr!r}.")
    if self.ema_decay is not None and not 0 < self.ema_decay < 1:
      raise ValueError(f"TrainConfig.ema_decay must be in (0, 1) or None, got "
                       f"{self.ema_decay!r}.")
    for f in ("r1_gamma", "r2_gamma"):
      if not getattr(self, f) >= 0:
        raise ValueError(f"TrainConfig.{f} must be >= 0, got "
                         f"{getattr(self, f)!r}.")
    if self.gan_loss not in GAN_LOSSES:
      raise ValueError(f"TrainConfig.gan_loss must be one of {GAN_LOSSES}, "
                       f"got {self.gan_loss!r}.")
    from blindinv_jax.training.augment import check_policy
    check_policy(self.diffaug)
    return self


class Family(NamedTuple):
  """What the loop needs of a prior family."""
  model: Any                                   # its architecture config
  train_kind: str                              # checkpoint kind
  init_state: Callable                         # cfg -> state
  make_step: Callable                          # cfg -> step(state, x, key)
  generate: Callable                           # (state, z) -> images
  sample_latents: Callable                     # (key, n) -> z
  save_prior: Callable                         # (path, state, meta)
  make_prior: Callable                         # (state, meta_json) -> prior
  postfix: tuple                       # (label, metric) pairs on the bar


#: Family name -> (presets, make): ``presets`` maps a model preset's name to
#: its architecture, ``make(architecture)`` gives the :class:`Family`. Filled
#: by the family modules (:mod:`blindinv_jax.training.gan`,
#: :mod:`blindinv_jax.training.vae`) through :func:`register_family`.
FAMILIES: Dict[str, Tuple[Mapping[str, Any], Callable[[Any], Family]]] = {}


def register_family(name: str, presets: Mapping[str, Any],
                    make: Callable[[Any], Family]) -> None:
  """Makes :func:`train_prior` train the model presets in ``presets`` (name
  -> architecture; the mapping is read at each look-up, so presets added to
  it later count) with ``make(architecture) -> Family``. A preset name
  belongs to one family: a name another family holds raises."""
  for other, (held, _) in FAMILIES.items():
    clash = sorted(set(map(str.lower, presets)) & set(held))
    if other != name and clash:
      raise ValueError(f"training family {name!r}: the model presets "
                       f"{clash} already belong to family {other!r}.")
  FAMILIES[name] = (presets, make)


def family_of(model_name: str) -> Family:
  """The training family of a model preset (the registered family whose
  presets hold ``model_name``)."""
  for presets, make in FAMILIES.values():
    if model_name.lower() in presets:
      return make(presets[model_name.lower()])
  known = sorted(n for presets, _ in FAMILIES.values() for n in presets)
  raise ValueError(f"Unknown model preset {model_name!r}; choose one of "
                   f"{known} (training families: "
                   f"{', '.join(sorted(FAMILIES))}).")


def resolve_model(cfg: TrainConfig) -> TrainConfig:
  """``cfg`` with ``model="auto"`` replaced by the family preset that fits
  the data's image shape (its native size, 1 or 3 channels)."""
  if cfg.model != "auto":
    return cfg
  from blindinv_jax import data as data_lib
  from blindinv_jax.models.dcgan import preset_for_shape
  try:
    source = data_lib.open_images(cfg.data, cfg.split, data_dir=cfg.data_dir)
  except ValueError as e:
    raise ValueError(f"{e} (or name the model with --model).") from e
  return cfg.replace(model=preset_for_shape(*source.image_shape).name)


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


#: Options added later: they count in a run's identity only when set, so
#: runs saved before they existed still resume.
_LATER = {"ema_decay": None, "diffaug": "", "r1_gamma": 0.0,
          "r2_gamma": 0.0, "gan_loss": "ns"}


def train_identity(cfg: TrainConfig) -> dict:
  """What a training checkpoint must match to be resumed: the config, except
  ``steps`` (a larger ``steps`` extends a finished run)."""
  return {"config": {k: v for k, v in dataclasses.asdict(cfg).items()
                     if k != "steps" and not (k in _LATER and v == _LATER[k])}}


def _resume(path, state, cfg: TrainConfig, kind: str, workdir):
  saved, _ = resume.load(
      path, kind=kind, identity=train_identity(cfg),
      legacy=lambda meta: {"config": {
          k: v for k, v in meta.get("train_config", {}).items()
          if k != "steps"}},
      message=lambda d: (f"{workdir} holds a run with a different {d}; use "
                         "another --workdir, or the same config to resume."))
  # Fields that are unset (None) in this run may be absent from older files.
  unset = {k: None for k, v in flax.serialization.to_state_dict(state).items()
           if v is None}
  state = flax.serialization.from_state_dict(state, {**unset, **saved})
  return jax.tree_util.tree_map(jnp.asarray, state)


class Progress:
  """Training progress on ``stream`` (default ``sys.stderr``): a tqdm bar on
  a terminal; on anything else (a log file, a pipe) one plain line per
  tenth of the run with the last logged losses, so a log is not flooded
  with the bar's redraws. Off when ``enabled`` is False."""

  def __init__(self, start: int, total: int, *, enabled: bool = True,
               stream=None, desc: str = "train-prior"):
    import sys
    self.stream = sys.stderr if stream is None else stream
    self.total, self.desc, self.enabled = total, desc, enabled
    tty = enabled and getattr(self.stream, "isatty", lambda: False)()
    self.bar = None
    if tty:
      from tqdm.auto import tqdm
      self.bar = tqdm(total=total, initial=start, desc=desc, file=self.stream,
                      dynamic_ncols=True)
    self.every = max(1, -(-(total - start) // 10))
    self.next, self.postfix, self.t0 = start + self.every, {}, time.time()

  def update(self, done: int, postfix: Optional[dict] = None) -> None:
    """Step ``done`` (1-based) is finished; ``postfix``: new losses."""
    self.postfix = postfix or self.postfix
    if self.bar is not None:
      self.bar.update(done - self.bar.n)
      if postfix:
        self.bar.set_postfix(postfix)
    elif self.enabled and (done >= self.next or done == self.total):
      self.next = done + self.every
      losses = "".join(f", {k} {v}" for k, v in self.postfix.items())
      print(f"{self.desc}: step {done}/{self.total} "
            f"({100 * done / self.total:.0f}%), "
            f"{time.time() - self.t0:.0f} s{losses}", file=self.stream,
            flush=True)

  def close(self) -> None:
    if self.bar is not None:
      self.bar.close()


def train_prior(cfg: TrainConfig, workdir, *, progress: bool = True,
                command: Optional[str] = None, stream=None):
  """Trains (or resumes) a prior in ``workdir``; returns it.

  Writes ``workdir/config.json``, ``checkpoint.ckpt`` (latest, with optimiser
  state) every ``checkpoint_every`` steps, ``snapshots/prior_<step>.ckpt``
  every ``snapshot_every`` steps, ``samples/step_<step>.png`` every
  ``sample_every`` steps, ``log.jsonl``, and ``prior.ckpt`` at the end.
  Re-running with the same config resumes from ``checkpoint.ckpt``; a larger
  ``steps`` extends a finished run. Progress goes to ``stream`` (default
  stderr) as a bar on a terminal, as a line per tenth of the run elsewhere
  (:class:`Progress`).
  """
  from blindinv_jax import __version__, data as data_lib, viz
  say = print if progress else (lambda *a, **k: None)
  cfg = resolve_model(cfg.validate())
  fam = family_of(cfg.model)
  model = fam.model
  workdir = pathlib.Path(workdir)
  workdir.mkdir(parents=True, exist_ok=True)
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
  h, w, c = model.image_shape
  sample = in_memory if in_memory is not None else fetch(np.arange(min(n, 256)))
  say(f"data {cfg.data} ({cfg.split}): {n} images, {h}x{w}, {c} channel(s), "
      f"values in [{float(sample.min()):.2f}, {float(sample.max()):.2f}]; "
      f"model {cfg.model}", flush=True)

  state = fam.init_state(cfg)
  ckpt_path = workdir / "checkpoint.ckpt"
  if ckpt_path.exists():
    state = _resume(ckpt_path, state, cfg, fam.train_kind, workdir)
  (workdir / "config.json").write_text(json.dumps(
      {"train_config": dataclasses.asdict(cfg), "model": model.to_dict(),
       "command": command}, indent=2))

  say("compiling the training step...", end=" ", flush=True)
  t_compile = time.perf_counter()
  first = jnp.asarray(fetch(batch_indices(cfg.seed, 0, n, cfg.batch_size)))
  train_step = fam.make_step(cfg).lower(state, first,
                                        step_key(cfg.seed, 0)).compile()
  say(f"{time.perf_counter() - t_compile:.1f} s", flush=True)
  sample_z = fam.sample_latents(
      jax.random.fold_in(jax.random.key(cfg.seed), 2**30), 64)
  start = int(state.step)
  meta_base = {"train_config": dataclasses.asdict(cfg), "command": command,
               "data": {"source": cfg.data, "split": cfg.split, "n": n}}

  def save_all(state, step, final=False):
    meta = {**meta_base, "step": step, "model": model.to_dict(),
            "saved_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "package_version": __version__}
    resume.save(ckpt_path, jax.device_get(state), kind=fam.train_kind,
                identity=train_identity(cfg), meta=jsonable(meta))
    if step % cfg.snapshot_every == 0 or final:
      fam.save_prior(workdir / "snapshots" / f"prior_{step:07d}.ckpt", state,
                     meta)
    if final:
      fam.save_prior(workdir / "prior.ckpt", state, meta)

  bar = Progress(start, cfg.steps, enabled=progress, stream=stream)
  log = open(workdir / "log.jsonl", "a")
  t0 = time.time()
  for step in range(start, cfg.steps):
    real = jnp.asarray(fetch(batch_indices(cfg.seed, step, n, cfg.batch_size)))
    state, metrics = train_step(state, real, step_key(cfg.seed, step))
    done = step + 1
    if done % cfg.log_every == 0 or done == cfg.steps:
      m = {k: round(float(v), 4) for k, v in jax.device_get(metrics).items()}
      log.write(json.dumps({"step": done, "time": round(time.time() - t0, 2),
                            **m}) + "\n")
      log.flush()
      bar.update(done, {label: m[k] for label, k in fam.postfix})
    else:
      bar.update(done)
    if done % cfg.sample_every == 0 or done == cfg.steps:
      viz.save_grid(workdir / "samples" / f"step_{done:07d}.png",
                    fam.generate(state, sample_z))
    if done % cfg.checkpoint_every == 0 or done == cfg.steps:
      save_all(state, done, final=done == cfg.steps)
  log.close()
  bar.close()
  if start >= cfg.steps and not (workdir / "prior.ckpt").exists():
    save_all(state, start, final=True)
  return fam.make_prior(state, json.dumps(jsonable(meta_base), sort_keys=True))
