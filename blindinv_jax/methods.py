"""The methods the paper's experiments compare, as a registry.

Each method is a function ``run(problem) -> (sources [N, S, H, W, C] or
None, extras)`` registered under a name with :func:`register`; ``None``
means "not applicable" (``extras["why"]`` says why). ``problem`` is a
:class:`Problem`: the experiment config, the prior, the simulated clean
sources, observations and forward model, and where to checkpoint.
"""
from __future__ import annotations

import dataclasses
import functools
import pathlib
from typing import Any, Callable, Dict, NamedTuple, Optional

import jax
import jax.numpy as jnp
import numpy as np

from blindinv_jax import baselines, metrics, solver


class Problem(NamedTuple):
  """What every method sees: ``x [N, S, H, W, C]`` (for scoring only, never
  given to a blind method), ``y [N, H, W, C_obs]``, the true ``forward`` and
  its ``info`` (kernel or mixing matrix), for the known-F baselines."""
  config: Any                      # experiment.ExperimentConfig
  prior: Any
  x: Any
  y: Any
  forward: Callable
  info: dict
  workdir: pathlib.Path
  progress: bool = False


@dataclasses.dataclass(frozen=True)
class Method:
  name: str
  label: str
  run: Callable[[Problem], tuple]


REGISTRY: Dict[str, Method] = {}

#: How ``blind_ica`` maps ICA's sources to latents
#: (:func:`blindinv_jax.project.project`).
ICA_PROJECT = {"steps": 500, "lr": 3e-2, "restarts": 4}


def register(name: str, label: str):
  """Decorator: adds ``run`` to :data:`REGISTRY` as method ``name``."""
  def wrap(run):
    REGISTRY[name] = Method(name, label, run)
    return run
  return wrap


def _key(p: Problem):
  return jax.random.key(p.config.seed)


def _not_ica(p: Problem) -> dict:
  return {"why": f"ICA needs at least as many mixtures "
          f"({p.config.task.num_mixtures}) as sources "
          f"({p.config.task.num_sources})"}


def ica_latents(prior, sources, key) -> jax.Array:
  """Latents ``[N, S, L]`` whose images are closest (L1) to ICA's sources
  ``[N, S, H, W, C]``: :func:`blindinv_jax.project.project` with
  :data:`ICA_PROJECT`, the best of its restarts per source."""
  from blindinv_jax.project import project
  n, s = sources.shape[:2]
  _, z, _ = project(prior, np.reshape(sources, (n * s,) + sources.shape[2:]),
                    key=key, **ICA_PROJECT)
  return jnp.reshape(z, (n, s, -1))


def initial_latents(method: str, config, prior, y) -> Optional[jax.Array]:
  """Where a blind variant starts: ``None`` (random latents) for ``blind``;
  for ``blind_ica`` FastICA's sources of ``y`` as latents, or ``None`` when
  ICA does not apply."""
  if method != "blind_ica":
    return None
  xi = baselines.ica(y, config.task.num_sources, seed=config.seed)
  return None if xi is None else ica_latents(prior, xi,
                                             jax.random.key(config.seed))


def _solve(method: str, p: Problem, init=None):
  """Algorithm 1 from ``init`` (None: random latents), checkpointed under
  ``workdir/checkpoints/<method>`` (a finished solve is read back)."""
  c = p.config
  cb, close = None, (lambda: None)
  if p.progress:
    from blindinv_jax.utils import progress_callback
    cb, close = progress_callback(c.solver.outer_steps, desc=method)
  res = solver.solve(p.y, p.prior, num_sources=c.task.num_sources,
                     surrogate=c.surrogate, config=c.solver, key=_key(p),
                     callback=cb, checkpoint_dir=p.workdir / "checkpoints" /
                     method, init_latents=init)
  close()
  return res


def _solve_extras(res, p: Problem, reconstruction: bool) -> dict:
  extras = {}
  if reconstruction:
    extras["reconstruction"] = np.asarray(res.reconstruction)
  from blindinv_jax.models.surrogates import (
    LinearConvSurrogate,
    effective_kernel,
  )
  if isinstance(res.surrogate, LinearConvSurrogate) and "kernel" in p.info:
    k_est = np.asarray(effective_kernel(res.surrogate_params))[:, :, 0, 0]
    extras["effective_kernel"] = k_est
    extras["kernel_error"] = metrics.kernel_error(k_est,
                                                  np.asarray(p.info["kernel"]))
  params = res.surrogate_params.get("params", res.surrogate_params)
  if "gain" in params and "mask" in p.info:         # a mask family
    gain = np.asarray(params["gain"])[:, :, 0]
    varies = np.std(np.asarray(p.x)[:, 0, :, :, 0], axis=0) > 0
    extras["learned_mask"] = gain
    extras["mask_iou"] = metrics.mask_iou(gain, p.info["mask"], varies)
  if res.message:
    extras["message"] = res.message
  if getattr(res, "recentred", None):             # SolverConfig.recentre
    extras["recentred"] = res.recentred
  return extras


def _blind(method: str, p: Problem):
  init = initial_latents(method, p.config, p.prior, p.y)
  if method == "blind_ica" and init is None:
    return None, _not_ica(p)
  res = _solve(method, p, init)
  return np.asarray(res.sources), _solve_extras(res, p, method == "blind")


def _refine_progress(p: Problem, desc: str):
  if not p.progress:
    return None, (lambda: None)
  from blindinv_jax.utils import count_callback
  return count_callback(p.config.solver.outer_steps, desc)


@register("blind", "Recovered (blind)")
def blind(p: Problem):
  """Algorithm 1 from random latents."""
  return _blind("blind", p)


@register("blind_ica", "Recovered (blind, ICA init)")
def blind_ica(p: Problem):
  """Algorithm 1 with restart 0 started from ICA's sources (mix tasks)."""
  return _blind("blind_ica", p)


@register("blind_refine", "Recovered (blind + latent restarts)")
def blind_refine(p: Problem):
  """Algorithm 1 from random latents (``blind``'s solve, read back from its
  checkpoint if it ran), then ``refine_restarts`` fresh latent starts per
  observation through its surrogate (:func:`blindinv_jax.refine.
  refine_solve`)."""
  from blindinv_jax.refine import picked_summary, refine_solve
  res = _solve("blind", p)
  cb, close = _refine_progress(p, "refine")
  res, picked = refine_solve(res, p.y, p.prior,
                             restarts=p.config.refine_restarts,
                             config=p.config.solver,
                             key=jax.random.fold_in(_key(p), 1), callback=cb)
  close()
  extras = _solve_extras(res, p, False)
  extras["refine"] = picked_summary(picked)
  return np.asarray(res.sources), extras


@register("pgd", "PGD")
def pgd(p: Problem):
  """PGD on the latents with no measurement model."""
  if (p.config.task.num_sources != 1 or np.ndim(p.y) != 4 or
      tuple(p.y.shape[1:]) != tuple(p.x.shape[2:])):
    return None, {"why": "PGD without F needs one source and observations "
                  "on the sources' grid with their channels"}
  return np.asarray(baselines.pgd(p.y, p.prior, config=p.config.solver,
                                  key=_key(p))[0]), {}


@register("pgd_known", "PGD + known F")
def pgd_known(p: Problem):
  """PGD through the true forward model (the upper bound)."""
  return np.asarray(baselines.pgd(
      p.y, p.prior, p.forward, num_sources=p.config.task.num_sources,
      config=p.config.solver, key=_key(p))[0]), {}


@register("pgd_known_refine", "PGD + known F + latent restarts")
def pgd_known_refine(p: Problem):
  """``pgd_known``, then ``refine_restarts`` fresh latent starts per
  observation through the true forward model: the upper bound for
  ``blind_refine``."""
  from blindinv_jax.latent import ParamForward
  from blindinv_jax.refine import picked_summary, refine_latents
  _, z, _ = baselines.pgd(p.y, p.prior, p.forward,
                          num_sources=p.config.task.num_sources,
                          config=p.config.solver, key=_key(p))
  cb, close = _refine_progress(p, "refine")
  z, picked, _ = refine_latents(p.y, p.prior, ParamForward(known=p.forward), None,
                                z, restarts=p.config.refine_restarts,
                                config=p.config.solver,
                                key=jax.random.fold_in(_key(p), 1),
                                callback=cb)
  close()
  return np.asarray(p.prior.generate(z)), {"refine": picked_summary(picked)}


@register("wiener", "Wiener (known F)")
def wiener(p: Problem):
  """Wiener deconvolution with the true kernel."""
  x_hat = baselines.wiener_deconvolution(
      p.y, p.info["kernel"], p.config.wiener_balance,
      background=p.config.background,
      boundary=p.info.get("boundary", "zero"))
  return np.asarray(x_hat)[:, None], {}


@register("naive", "Naive additive")
def naive(p: Problem):
  """Separation as a plain sum of the sources."""
  return np.asarray(baselines.naive_additive(
      p.y, p.prior, p.config.task.num_sources, config=p.config.solver,
      key=_key(p))[0]), {}


@register("ica", "ICA")
def ica(p: Problem):
  """FastICA over pixels (needs K >= S mixtures)."""
  out = baselines.ica(p.y, p.config.task.num_sources, seed=p.config.seed)
  return (None, _not_ica(p)) if out is None else (out, {})


def only_for(kind: str, what: str):
  """A method that applies to ``kind`` tasks only: on any other it returns
  "not applicable", saying so."""
  def wrap(run):
    @functools.wraps(run)
    def method(p: Problem):
      if p.config.task.kind != kind:
        return None, {"why": f"{what} applies to {kind} tasks"}
      return run(p)
    return method
  return wrap


@register("bicubic", "Bicubic upsampling")
@only_for("downsample", "bicubic upsampling")
def bicubic(p: Problem):
  """Super-resolution's classical baseline (knows the factor)."""
  return np.asarray(baselines.bicubic_upsample(
      p.y, p.info["factor"]))[:, None], {}


@register("biharmonic", "Biharmonic inpainting (known mask)")
@only_for("mask", "biharmonic inpainting")
def biharmonic(p: Problem):
  """Inpainting's classical baseline with the true mask (scikit-image)."""
  return baselines.inpaint_biharmonic(p.y, p.info["mask"])[:, None], {}


@register("lasso", "Lasso (known A)")
@only_for("measure", "the Lasso")
def lasso(p: Problem):
  """Compressed sensing with the true matrix and a sparsity prior
  (``config.lasso_lam``)."""
  return np.asarray(baselines.lasso_measurements(
      p.y, p.info["matrix"], p.x.shape[2:], lam=p.config.lasso_lam)
  )[:, None], {}


@register("least_squares", "Least squares (known A)")
@only_for("measure", "least squares")
def least_squares(p: Problem):
  """Compressed sensing with the true matrix: the minimum-norm images."""
  return np.asarray(baselines.least_squares_measurements(
      p.y, p.info["matrix"], p.x.shape[2:]))[:, None], {}
