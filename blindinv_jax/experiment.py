"""The paper's experiments: simulate, solve blindly, run the baselines, score.

``run_experiment(config, workdir)`` is the importable logic behind
``experiments/paper/reproduce.py`` (one config per figure under
``experiments/paper/configs/``). Data flows one way: data -> operators
(simulate ``y``) -> the methods of :mod:`blindinv_jax.methods` (the blind
solver and the baselines) -> metrics / figure. Each method's result is saved
under ``workdir/methods/`` as soon as it is done (:mod:`blindinv_jax.resume`),
so a killed run resumes with the methods it has not finished (the blind solve
also checkpoints its own state).
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import pathlib
import time
from typing import Optional, Tuple

import jax
import jax.numpy as jnp
import numpy as np

from blindinv_jax import (
  checkpoint,
  data as data_lib,
  methods as methods_lib,
  metrics,
  operators as ops,
  resume,
)
from blindinv_jax.config import SolverConfig
from blindinv_jax.tasks import (
  TaskSpec,
  check_task,
  forward_model,
  later_defaults,
)
from blindinv_jax.validation import check_positive_int

METHODS = tuple(methods_lib.REGISTRY)
LABELS = {m.name: m.label for m in methods_lib.REGISTRY.values()}
#: The blind solver's variants: each is compared, paired, with every other
#: method (``metrics.json``: ``blind_minus``, ``blind_ica_minus``).
BLIND = ("blind", "blind_ica")
#: Methods whose paired differences against the others are reported.
PAIRED = BLIND + ("blind_refine",)
METHOD_KIND = "experiment_method"


@dataclasses.dataclass(frozen=True)
class DataSpec:
  """Where the clean signals come from: N*S images of ``source``/``split``."""
  source: str = "mnist5k"
  split: str = "test"
  n: int = 50                       # observations
  offset: int = 0                   # first image used
  image_size: Optional[int] = None  # None: the prior's
  data_dir: Optional[str] = None    # tfds data dir


@dataclasses.dataclass(frozen=True)
class ExperimentConfig:
  """One experiment (one panel of a paper figure)."""
  name: str
  title: str
  data: DataSpec = DataSpec()
  task: TaskSpec = TaskSpec()
  prior: str = "mnist"
  surrogate: str = "conv"
  solver: SolverConfig = SolverConfig()
  methods: Tuple[str, ...] = ("blind", "pgd", "pgd_known", "wiener")
  wiener_balance: float = 1e-3
  lasso_lam: float = 1e-2           # the Lasso baseline's weight
  background: float = -1.0          # the images' background value
  seed: int = 0
  show: int = 8                     # observations in the figure (at most 4
                                    # for separation: a cell holds S sources)
  classify: bool = False            # read digits with the shipped classifier
  refine_restarts: int = 4          # fresh latent starts per observation of
                                    # the *_refine methods (refine.py)

  def replace(self, **kw) -> "ExperimentConfig":
    return dataclasses.replace(self, **kw)

  def to_dict(self) -> dict:
    return dataclasses.asdict(self)

  def validate(self) -> "ExperimentConfig":
    bad = [m for m in self.methods if m not in METHODS]
    if bad:
      raise ValueError(f"unknown method(s) {bad}; choose from {METHODS}.")
    check_task(self.task)
    check_positive_int("data.n", self.data.n)
    check_positive_int("refine_restarts", self.refine_restarts)
    if "wiener" in self.methods and self.task.kind not in ("blur", "edges"):
      raise ValueError(f"Wiener deconvolution applies to blur/edges, not "
                       f"{self.task.kind}.")
    if "blind_ica" in self.methods and self.task.kind != "mix":
      raise ValueError("blind_ica (the blind solver started from ICA's "
                       "sources) applies to mix tasks only.")
    self.solver.validate()
    return self


# ------------------------------------------------------------- simulation

def simulate(config: ExperimentConfig, image_shape):
  """``(x [N, S, H, W, C], y, forward, info)``: y as the task makes it
  (:mod:`blindinv_jax.tasks`), ``[N, H, W, C_obs]`` for the paper's."""
  d, t = config.data, config.task
  h, w, _ = image_shape
  size = d.image_size or (h, w)
  src = data_lib.open_images(d.source, d.split, data_dir=d.data_dir,
                             image_size=size)
  need = d.n * t.num_sources
  if d.offset + need > len(src):
    raise ValueError(f"{config.name}: needs {need} images from offset "
                     f"{d.offset} but {d.source}/{d.split} has {len(src)}.")
  x = jnp.asarray(src[np.arange(d.offset, d.offset + need)])
  x = x.reshape((d.n, t.num_sources) + x.shape[1:])
  forward, info = forward_model(t, x.shape[2:])
  y = forward(x)
  y = ops.add_noise(jax.random.key(config.seed + 1), y, t.noise_sigma)
  return x, y, forward, info


# --------------------------------------------------------------- scoring

def _key(config: ExperimentConfig) -> dict:
  """What the methods' results depend on: the config as a JSON dict,
  scoring-only fields excluded (a method's identity, :func:`run_method`)."""
  d = config.to_dict()
  # What is scored and shown, and which other methods run, change no
  # method's result.
  for f in ("classify", "methods", "show"):
    d.pop(f)
  # Only the *_refine methods use it (their identity adds it: run_method).
  d.pop("refine_restarts")
  if d["lasso_lam"] == 1e-2:               # added later: counts when set
    d.pop("lasso_lam")
  # Solver options added later count only when set, so results saved
  # before they existed stay valid.
  for f in ("batch_size", "grad_pieces", "precision", "recentre"):
    if d["solver"].get(f) is None:
      d["solver"].pop(f, None)
  if d["solver"].get("recentre_restarts") == 1:
    d["solver"].pop("recentre_restarts")
  # noise_sigma was called noise_std: the same identity for the same noise.
  d["task"]["noise_std"] = d["task"].pop("noise_sigma")
  if d["task"].get("boundary") == "zero":   # as every earlier run: as before
    d["task"].pop("boundary")
  d["task"] = later_defaults(d["task"])
  return resume.jsonable(d)


def _hash(key: dict) -> str:
  """The 16-character hash of a :func:`_key` (``metrics.json``'s
  ``config_key``; how method results were identified before their identity
  was the readable dict)."""
  return hashlib.sha256(json.dumps(key, sort_keys=True,
                                   default=str).encode()).hexdigest()[:16]


def digit_labels(config: ExperimentConfig):
  """True labels ``[N, S]`` of the simulated sources (mnist5k only)."""
  d, t = config.data, config.task
  if d.source != "mnist5k":
    return None
  labels = data_lib.mnist5k_labels(d.split)
  return labels[d.offset:d.offset + d.n * t.num_sources].reshape(
      d.n, t.num_sources)


def classify_all(config, x, estimates) -> dict:
  """Accuracy of the shipped digit classifier on the clean sources and on
  each method's (matched) recoveries."""
  from blindinv_jax import classifier
  labels = digit_labels(config)
  if labels is None or tuple(x.shape[-3:]) != (28, 28, 1):
    return {"skipped": "the classifier reads 28x28 mnist5k digits"}
  params, meta = classifier.load()
  out = {"clean": classifier.accuracy(params, x, labels),
         "classifier_test_accuracy": meta.get("test_accuracy")}
  for m, est in estimates.items():
    if not m.startswith("_"):
      out[m] = classifier.accuracy(params, est, labels)
  return out


# ----------------------------------------------------------------- running

def _load_method(path, identity: dict):
  """``(tree, meta)`` of the method result saved at ``path`` if it is of
  ``identity``, else :class:`resume.RunMismatch` naming the fields that
  differ. A result saved before identities were readable has its config as
  :func:`_hash`; it is compared by that hash."""
  saved = checkpoint.read_header(path).get("meta", {}).get("identity", {})
  if isinstance(saved.get("config"), str):
    identity = {**identity, "config": _hash(identity["config"])}
  return resume.load(path, kind=METHOD_KIND, identity=identity, values=True,
                     message=lambda d: f"a result of another config: {d}")


def run_method(problem: methods_lib.Problem, method: str, key: dict):
  """``(sources or None, extras, seconds)`` of one method: loaded from
  ``workdir/methods/<method>.ckpt`` if a run of the same config (``key``,
  :func:`_key`) saved it there, else computed and saved. A saved result of
  another config is recomputed (said, naming the fields that differ, when
  ``problem.progress``)."""
  path = problem.workdir / "methods" / f"{method}.ckpt"
  identity = {"config": key}
  if method.endswith("_refine"):
    identity["refine_restarts"] = problem.config.refine_restarts
  if path.exists():
    try:
      tree, meta = _load_method(path, identity)
      extras = {**meta["extras"], **{k: np.asarray(v) for k, v in
                                     tree["arrays"].items()}}
      est = np.asarray(tree["sources"]) if meta["applicable"] else None
      return est, extras, float(meta["seconds"])
    except resume.RunMismatch as e:         # another config: recompute
      if problem.progress:
        print(f"[{problem.config.name}] {LABELS[method]}: {path} holds {e}; "
              "recomputing.", flush=True)
  if problem.progress:
    print(f"[{problem.config.name}] {LABELS[method]}...", flush=True)
  t0 = time.perf_counter()
  est, extras = methods_lib.REGISTRY[method].run(problem)
  seconds = time.perf_counter() - t0
  arrays = {k: v for k, v in extras.items() if isinstance(v, np.ndarray)}
  plain = {k: v for k, v in extras.items() if not isinstance(v, np.ndarray)}
  resume.save(path, {"sources": est if est is not None else np.zeros(0),
                     "arrays": arrays}, kind=METHOD_KIND, identity=identity,
              meta={"applicable": est is not None, "extras": plain,
                    "seconds": seconds})
  return est, extras, seconds


def run_experiment(config: ExperimentConfig, workdir, *,
                   progress: bool = True, prior=None) -> dict:
  """Runs every method of ``config``; writes ``metrics.json``,
  ``figure.png``, ``config.json`` and ``methods/*.ckpt`` to ``workdir``.

  Returns the metrics dict. Methods already saved in ``workdir`` by a run of
  the same config are loaded instead of recomputed.
  """
  from blindinv_jax.priors import resolve
  config = config.validate()
  workdir = pathlib.Path(workdir)
  (workdir / "methods").mkdir(parents=True, exist_ok=True)
  key = _key(config)
  (workdir / "config.json").write_text(json.dumps(
      {"config": config.to_dict(), "key": _hash(key)}, indent=1, default=str))
  prior = resolve(config.prior) if prior is None else prior
  x, y, forward, info = simulate(config, prior.image_shape)
  separation = config.task.kind == "mix"
  results = {"name": config.name, "title": config.title, "n": config.data.n,
             "config_key": _hash(key), "methods": {}}
  if not separation and y.shape[1:3] == x.shape[2:4]:   # image-like
    y_view = jnp.clip(y, -1, 1)
    obs = metrics.score(y_view[:, None] if y.shape[-1] == x.shape[-1] else
                y_view[:, None, ..., :x.shape[-1]], x, False)
    results["observation"] = {k: v for k, v in obs.items() if k != "matched"}
  estimates = {}
  problem = methods_lib.Problem(config, prior, x, y, forward, info, workdir,
                                progress)
  for method in config.methods:
    est, extras, seconds = run_method(problem, method, key)
    entry = {"seconds": round(seconds, 1)}
    if est is None:
      entry["not_applicable"] = extras.get("why", "not applicable")
    else:
      sc = metrics.score(est, x, separation)
      estimates[method] = sc.pop("matched")
      entry.update(sc)
    for k in ("kernel_error", "mask_iou", "message", "refine", "recentred"):
      if k in extras:
        entry[k] = extras[k]
    if "learned_mask" in extras:
      np.save(workdir / "learned_mask.npy", extras["learned_mask"])
      from blindinv_jax import viz
      viz.save_kernels(workdir / "mask.png", [info["mask"],
                                              extras["learned_mask"]],
                       ["true mask", "learned gain"], title="1: seen, 0: "
                       f"lost; IoU of the lost pixels {extras['mask_iou']:.3f}")
    if "reconstruction" in extras:
      estimates["_reconstruction"] = extras["reconstruction"]
    if "effective_kernel" in extras:
      np.save(workdir / "effective_kernel.npy", extras["effective_kernel"])
    results["methods"][method] = entry
  if config.classify:
    acc = classify_all(config, x, estimates)
    results["classifier_accuracy"] = acc
    for m, a in acc.items():
      if m in results["methods"]:
        results["methods"][m]["accuracy"] = a
  for ref in PAIRED:
    if ref in results["methods"]:
      results[f"{ref}_minus"] = paired_differences(results["methods"], ref)
  (workdir / "metrics.json").write_text(json.dumps(results, indent=1))
  make_figure(config, x, y, estimates, results, workdir / "figure.png")
  return results


def surrogate_fit(config: ExperimentConfig, workdir, method: str = "blind",
                  prior=None) -> dict:
  """Does the learned surrogate prefer the recovered sources to the truth?

  Reloads ``method``'s finished solve from ``workdir/checkpoints/<method>``
  (written by :func:`run_experiment`) and, per observation, measures the L1
  data loss ``sum |S(x) - y|`` through the learned surrogate S of: the
  recovered sources, the true sources, and the true sources projected onto
  the prior (the closest the GAN can draw them;
  :func:`blindinv_jax.project.project`), each
  truth in its best order of sources. If the truth's loss is higher than the
  recovered sources', the solver has found a self-consistent wrong answer:
  more steps, or restarts judged by the loss, cannot fix it. Also the
  recovered sources' loss through the true F.

  Returns ``{"loss": {name: [N]}, "truth_preferred": fraction of
  observations where the projected truth's loss is lower}``.
  """
  import itertools

  from blindinv_jax import solver
  from blindinv_jax.algorithm import stack_sources
  from blindinv_jax.priors import resolve
  from blindinv_jax.project import project
  if method not in BLIND:
    raise ValueError(f"surrogate_fit: method must be one of {BLIND}, got "
                     f"{method!r}.")
  config = config.validate()
  ckpt = pathlib.Path(workdir) / "checkpoints" / method / solver.CHECKPOINT_NAME
  if not ckpt.exists():
    raise FileNotFoundError(
        f"surrogate_fit: no finished {method} solve at {ckpt}; run "
        f"experiments/paper/reproduce.py with this config and workdir first.")
  prior = resolve(config.prior) if prior is None else prior
  x, y, forward, info = simulate(config, prior.image_shape)
  s = config.task.num_sources
  key = jax.random.key(config.seed)
  res = solver.load_result(ckpt.parent, y, prior, num_sources=s,
                           surrogate=config.surrogate, config=config.solver,
                           key=key)
  if res.message:
    raise ValueError(f"surrogate_fit: {ckpt}: {res.message}; finish the run "
                     "with experiments/paper/reproduce.py first.")
  l1 = lambda y_est: jnp.sum(jnp.abs(y_est - y), axis=(1, 2, 3))
  fit = jax.jit(lambda xs: l1(res.surrogate.apply(
      res.surrogate_params, stack_sources(xs))))

  def best_order(xs):
    return np.min([np.asarray(fit(xs[:, list(p)])) for p in
                   itertools.permutations(range(s))], axis=0)

  n = x.shape[0]
  xp, _, _ = project(prior, np.reshape(x, (n * s,) + x.shape[2:]), key=key)
  xp = np.reshape(np.asarray(xp), x.shape)
  loss = {"recovered": np.asarray(fit(res.sources)),
          "truth": best_order(np.asarray(x)),
          "truth_projected": best_order(xp),
          "recovered_through_true_F": np.asarray(l1(forward(res.sources)))}
  return {"method": method, "n": n,
          "loss": {k: v.round(2).tolist() for k, v in loss.items()},
          "mean_loss": {k: round(float(v.mean()), 2) for k, v in loss.items()},
          "truth_preferred": float(np.mean(loss["truth_projected"] <
                                           loss["recovered"]))}


def paired_differences(methods: dict, ref: str = "blind") -> dict:
  """Per-image PSNR of ``ref`` minus each other method, paired on the same
  images (per source for separation): mean, its standard error, and on how
  many images ``ref`` is better. Paired differences are what decide a close
  race; the per-method standard deviations overstate the uncertainty."""
  if "psnr_per_image" not in methods.get(ref, {}):
    return {}
  a = np.asarray(methods[ref]["psnr_per_image"], np.float64).ravel()
  out = {}
  for m, entry in methods.items():
    if m == ref or "psnr_per_image" not in entry:
      continue
    d = a - np.asarray(entry["psnr_per_image"], np.float64).ravel()
    out[m] = {"mean_db": round(float(d.mean()), 3),
              "standard_error_db": round(float(d.std(ddof=1) / np.sqrt(d.size)),
                                         3) if d.size > 1 else None,
              "better_on": int((d > 0).sum()), "images": int(d.size)}
  return out


# ------------------------------------------------------------------ figure

def make_figure(config, x, y, estimates, results, path):
  """Rows like the paper's figures (observations as columns)."""
  from blindinv_jax import viz
  k = min(config.show, x.shape[0])
  rows, labels = [], []
  clip = lambda a: np.clip(np.asarray(a), -1, 1)
  fmt = lambda m: (f"\n{results['methods'][m]['psnr'][0]:.1f} dB"
                   if "psnr" in results["methods"].get(m, {}) else "")
  if config.task.kind != "mix":
    if y.ndim == 4:                     # flat measurements are not drawn
      rows.append(clip(y[:k]))
      labels.append("Observed")
    if "_reconstruction" in estimates and y.ndim == 4:
      rows.append(clip(estimates["_reconstruction"][:k]))
      labels.append("Estimated\ncorruption")
    for m in ("pgd", "wiener", "bicubic", "biharmonic", "least_squares",
              "lasso", "blind", "blind_refine", "pgd_known",
              "pgd_known_refine"):
      if m in estimates:
        rows.append(clip(estimates[m][:k, 0]))
        labels.append(LABELS[m].replace(" (", "\n(") + fmt(m))
    rows.append(clip(x[:k, 0]))
    labels.append("Original")
  else:
    # One row per method; each cell holds one observation's sources (or
    # mixtures) side by side, as in the paper's Figure 2.
    k = min(k, 4)
    norm = lambda a: np.asarray(metrics.normalize_intensity(jnp.asarray(a)))
    side = lambda a: viz.side_by_side(np.moveaxis(np.asarray(a), -1, 1)
                                      [..., None])
    rows.append(side(norm(y[:k])))
    labels.append(f"Mixtures (1-{y.shape[-1]})" if y.shape[-1] > 1 else
                  "Mixture")
    if "_reconstruction" in estimates:
      rows.append(side(norm(estimates["_reconstruction"][:k])))
      labels.append("Estimated\nmixture" + ("s" if y.shape[-1] > 1 else ""))
    for m in ("blind", "blind_ica", "blind_refine", "naive", "ica",
              "pgd_known", "pgd_known_refine"):
      if m in estimates:
        rows.append(viz.side_by_side(np.clip(estimates[m][:k], -1, 1)))
        labels.append(LABELS[m].replace(" (", "\n(") + fmt(m))
    rows.append(viz.side_by_side(norm(x[:k])))
    labels.append(f"Ground truth\n(sources 1-{x.shape[1]})")
  viz.save_rows(path, rows, labels, title=config.title)
