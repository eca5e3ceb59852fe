"""``solve``: runs Algorithm 1 on a user's observations.

:func:`solve` validates the inputs, builds the initial state, runs ``T``
outer steps (one jitted program each: :data:`outer_step`, or
:data:`minibatch_outer_step` in minibatch mode), calls the callback, stops
on a non-finite loss, checkpoints and resumes (:mod:`blindinv_jax.resume`),
and returns the best restart. The algorithm itself is
:mod:`blindinv_jax.algorithm`; its configuration :mod:`blindinv_jax.config`.

The names this module has always offered (``SolverConfig``, ``PAPER``,
``TUNED``, ``FAST``, ``SolverState``, ``init_state``, ``outer_step``, the
phases and losses, ``shard``, the input checks) are re-exported from their
new homes, so ``from blindinv_jax.solver import ...`` keeps working.
"""
from __future__ import annotations

import dataclasses
import pathlib
import warnings
from typing import Any, Callable, Optional, Union

import flax
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from blindinv_jax import algorithm, backend, minibatch, resume
from blindinv_jax.algorithm import (  # noqa: F401  (re-exported)
  SolverState,
  data_loss,
  latent_optimizer,
  latent_phase,
  perceptual_loss,
  project_latents,
  select_best,
  stack_sources,
  surrogate_optimizer,
  surrogate_phase,
)
from blindinv_jax.backend import (  # noqa: F401  (re-exported)
  STEP_COMPILER_OPTIONS,
  default_grad_pieces,
  default_unroll,
  map_restarts,
)
from blindinv_jax.config import FAST, PAPER, TUNED, SolverConfig  # noqa: F401
from blindinv_jax.minibatch import minibatch_plan  # noqa: F401
from blindinv_jax.models.surrogates import make_surrogate
from blindinv_jax.parallel import shard
from blindinv_jax.validation import (  # noqa: F401  (re-exported)
  check_positive_int,
  check_prior,
  check_surrogate,
  validate_init_latents,
  validate_observations,
  warn_if_out_of_range,
)

#: One outer step of Algorithm 1 for all restarts, jitted
#: (:func:`blindinv_jax.algorithm.outer_step`).
outer_step = backend.jit_step(algorithm.outer_step,
                              static_argnames=("surrogate", "config"),
                              donate_argnames=("state",))
#: One epoch over minibatches, jitted
#: (:func:`blindinv_jax.minibatch.minibatch_outer_step`).
minibatch_outer_step = backend.jit_step(
    minibatch.minibatch_outer_step, static_argnames=("surrogate", "config"),
    donate_argnames=("state",))
#: The initial state, jitted (:func:`blindinv_jax.algorithm.init_state`).
init_state = jax.jit(algorithm.init_state,
                     static_argnames=("surrogate", "config", "num_sources"))
#: The best restart's estimates, jitted
#: (:func:`blindinv_jax.algorithm.final_estimates`).
finalize = jax.jit(algorithm.final_estimates, static_argnames=("surrogate",))

#: The per-restart losses an outer step reports and the history keeps.
LOSS_KEYS = ("surrogate_loss", "latent_loss", "perceptual")
SOLVE_KIND = "solver_state"
CHECKPOINT_NAME = "solve_state.ckpt"
_LABELS = {"observations": "observations", "prior": "prior",
           "key": "PRNG key (seed)", "num_sources": "number of sources",
           "surrogate": "surrogate", "config": "solver config",
           "init_latents": "initial latents (init_latents)"}


class SolveResult(flax.struct.PyTreeNode):
  """What :func:`solve` returns (the best restart).

  sources: ``[N, S, H, W, C]``; latents: ``[N, S, latent_dim]``;
  surrogate_params: the surrogate's variables; reconstruction:
  ``F_hat(G(z*))`` ``[N, H, W, C_obs]``; history: per outer step (and
  restart, ``[T, R]``) ``surrogate_loss`` and ``latent_loss`` (mean absolute
  data error per observation pixel at the end of each phase) and
  ``perceptual`` (mean ``log(1 - D(G(z)))`` per source); best_restart: index
  of the kept restart; state: the final :class:`SolverState` (all restarts);
  message: empty, or why the solve stopped early (a non-finite loss);
  choice: the :class:`blindinv_jax.auto.SurrogateChoice` of an ``"auto"``
  surrogate or S (None when both were named).
  """
  sources: jax.Array
  latents: jax.Array
  surrogate_params: Any
  reconstruction: jax.Array
  history: Any
  best_restart: jax.Array
  state: SolverState
  surrogate: nn.Module = flax.struct.field(pytree_node=False)
  message: str = flax.struct.field(pytree_node=False, default="")
  choice: Any = flax.struct.field(pytree_node=False, default=None)


def solve_identity(y, prior, module, config: SolverConfig, num_sources: int,
                   key, init_latents=None) -> dict:
  """What a solve's checkpoint must match to be resumed (JSON)."""
  from blindinv_jax import __version__
  cfg = dataclasses.asdict(config)
  if config.latent_lr_end is None:      # else the decay depends on T
    cfg.pop("outer_steps")              # a resumed run may run longer
  for f in ("grad_pieces", "precision"):  # absent from older files
    if cfg[f] is None:
      cfg.pop(f)
  ident = {"config": cfg, "num_sources": num_sources,
           "surrogate": repr(module),
           "key": resume.fingerprint(jax.random.key_data(key)),
           "observations": resume.fingerprint(y),
           "prior": resume.fingerprint(*jax.tree_util.tree_leaves(prior)),
           "package_version": __version__}
  if init_latents is not None:          # absent in older files: random init
    ident["init_latents"] = resume.fingerprint(init_latents)
  return ident


def _stack_history(history, restarts: int) -> dict:
  """Per-step host metrics -> ``{loss: [T, R]}`` (``[0, R]`` when empty)."""
  return {k: np.stack([h[k] for h in history]) if history else
          np.zeros((0, restarts), np.float32) for k in LOSS_KEYS}


def save_state(path, state: SolverState, history, identity: dict):
  """Atomically writes a solve's state and loss history."""
  tree = {"state": jax.device_get(state.replace(
      key=jax.random.key_data(state.key))),
          "history": _stack_history(history, state.z.shape[0])}
  resume.save(path, tree, kind=SOLVE_KIND, identity=identity,
              meta={"step": int(state.step)})


def load_state(path, template: SolverState, identity: dict,
               ignore=("package_version",)):
  """``(state, history)`` from a solve checkpoint matching ``identity``
  (``template``: a state of the same structure, e.g. from ``init_state``)."""
  tree, meta = resume.load(
      path, kind=SOLVE_KIND, identity=identity, ignore=ignore, labels=_LABELS,
      message=lambda d: (
          f"{path} is a checkpoint of a different solve: its {d} differ from "
          "this one's. Resume with the same inputs, or write to a new output "
          "folder."))
  raw_key = jax.random.key_data(template.key)
  state = flax.serialization.from_state_dict(template.replace(key=raw_key),
                                             tree["state"])
  state = jax.tree_util.tree_map(jnp.asarray, state)
  state = state.replace(key=jax.random.wrap_key_data(
      state.key, impl=jax.random.key_impl(template.key)))
  hist = tree["history"]
  history = [{k: np.asarray(hist[k][t]) for k in hist}
             for t in range(int(meta.get("step", 0)))]
  return state, history


def _prepare(y, prior, num_sources, surrogate, config, key, init_latents):
  """Validated inputs: ``(config, y [host], module, key, init_latents)``."""
  config = config.validate()
  y = validate_observations(y, prior, num_sources, config.alpha)
  module = make_surrogate(surrogate, y.shape[-1])
  check_surrogate(module, prior, num_sources, y.shape[-1])
  key = jax.random.key(0) if key is None else key
  if init_latents is not None:
    init_latents = validate_init_latents(init_latents, y.shape[0],
                                         num_sources, prior.latent_dim)
  return config, y, module, key, init_latents


def _result(state, history, y, prior, module, config, message=""):
  history = {k: jnp.asarray(v) for k, v in
             _stack_history(history, config.restarts).items()}
  x, z, params, y_hat, best = finalize(state, y, prior, module)
  return SolveResult(sources=x, latents=z, surrogate_params=params,
                     reconstruction=y_hat, history=history, best_restart=best,
                     state=state, surrogate=module, message=message)


def solve(y, prior, *, num_sources: Union[int, str] = 1,
          surrogate: Union[str, nn.Module] = "auto",
          config: SolverConfig = TUNED,
          key: Optional[jax.Array] = None,
          callback: Optional[Callable[[int, dict], None]] = None,
          checkpoint_dir=None, checkpoint_every: int = 10,
          mesh=None, init_latents=None) -> SolveResult:
  """Blindly recovers sources and a surrogate of F from observations.

  Args:
    y: observations ``[N, H, W, C_obs]`` in the range of ``F(sources)``.
    prior: the prior of the sources (e.g. ``priors.load_prior("mnist")``).
    num_sources: S, sources per observation, or ``"auto"``: chosen among 1
      to 4 by held-out pixels (:mod:`blindinv_jax.auto`).
    surrogate: ``"auto"`` (chosen from the data by held-out pixels, see
      :mod:`blindinv_jax.auto`), ``"conv"`` (linear 2-layer conv),
      ``"mixing"`` (per-pixel MLP), ``"conv_mlp"`` (conv, ReLU, per-pixel
      Dense) or a Flax module mapping ``[B, H, W, S*C]`` to ``[B, H, W,
      C_obs]``.
    config: :class:`SolverConfig` (default :data:`TUNED`; :data:`PAPER` is the
      paper's schedule).
    key: PRNG key (default ``key(0)``). Same key, same result.
    callback: called as ``callback(step, metrics)`` after every outer step
      with host numpy metrics ``[R]``.
    checkpoint_dir: if given, the full solver state (and the loss history) is
      saved atomically to ``checkpoint_dir/solve_state.ckpt`` every
      ``checkpoint_every`` outer steps and at the end, and a solve started
      where such a checkpoint exists resumes from it, ending bit for bit where
      an uninterrupted solve would. A checkpoint of a different solve (other
      observations, prior, key, sources, surrogate or config; only
      ``outer_steps`` may grow) is refused.
    checkpoint_every: outer steps between checkpoints.
    mesh: a ``jax.sharding.Mesh`` with a ``"data"`` axis: observations and
      latents are sharded over it (:func:`blindinv_jax.parallel.shard`). N
      must be a multiple of the axis size.
    init_latents: ``[N, S, L]`` latents restart 0 starts from instead of
      random ones (a warm start, e.g. :func:`blindinv_jax.project.project`
      of another method's estimates); other restarts stay random.

  Returns:
    A :class:`SolveResult` (with ``choice`` when something was ``"auto"``:
    the screening solves run first, on held-out pixels, then this solve with
    the winner, exactly as if it had been named). If a loss or the state
    becomes NaN/Inf, the solve stops there, keeps the last finite state,
    warns, and says so in ``result.message``; it never returns NaN silently.
  """
  choice = None
  check_positive_int("checkpoint_every", checkpoint_every)
  if _is_auto(surrogate) or _is_auto(num_sources):
    choice = _choose(y, prior, num_sources, surrogate, config, key,
                     checkpoint_dir, init_latents)
    surrogate, num_sources = choice.family, choice.num_sources
  config, y_host, module, key, init_latents = _prepare(
      y, prior, num_sources, surrogate, config, key, init_latents)
  warn_if_out_of_range(y_host, prior=prior, num_sources=num_sources)
  step_fn = outer_step
  if config.batch_size is not None and config.batch_size < y_host.shape[0]:
    step_fn = minibatch_outer_step
  y = jnp.asarray(y_host)
  state = init_state(key, y, prior, module, config, num_sources, init_latents)
  history, ckpt = [], None
  if checkpoint_dir is not None:
    ckpt = pathlib.Path(checkpoint_dir) / CHECKPOINT_NAME
    identity = solve_identity(y_host, prior, module, config, num_sources, key,
                              init_latents)
    if ckpt.exists():
      state, history = load_state(ckpt, state, identity)
  if mesh is not None:
    y, state = shard(mesh, y, state, config)
  message = ""
  for t in range(int(state.step), config.outer_steps):
    state, metrics = step_fn(state, y, prior, module, config)
    metrics = jax.device_get(metrics)
    if not metrics.pop("finite"):
      bad = [k.replace("_", " ") for k in LOSS_KEYS
             if not np.all(np.isfinite(metrics[k]))] or ["the state"]
      message = (f"stopped at outer step {t + 1} of {config.outer_steps}: "
                 f"{' and '.join(bad)} became NaN or Inf; returning the "
                 f"state after step {t}. Lower the learning rates or check "
                 "the observations' scale.")
      warnings.warn(message, RuntimeWarning, stacklevel=2)
      break
    history.append(metrics)
    if callback is not None:
      callback(t + 1, metrics)
    if ckpt is not None and ((t + 1) % checkpoint_every == 0 or
                             t + 1 == config.outer_steps):
      save_state(ckpt, state, history, identity)
  return _result(state, history, y, prior, module, config,
                 message).replace(choice=choice)


def _is_auto(v) -> bool:
  return isinstance(v, str) and v == "auto"


def _choose(y, prior, num_sources, surrogate, config, key, checkpoint_dir,
            init_latents):
  """The :class:`blindinv_jax.auto.SurrogateChoice` for an "auto" solve."""
  from blindinv_jax import auto
  config = config.validate()
  y = validate_observations(y, prior, 1 if _is_auto(num_sources) else
                            num_sources, config.alpha)
  if init_latents is not None and not _is_auto(num_sources):
    validate_init_latents(init_latents, y.shape[0], num_sources,
                          prior.latent_dim)
  if not (_is_auto(surrogate) or isinstance(surrogate, nn.Module)):
    make_surrogate(surrogate, y.shape[-1])      # an unknown name: refused
  return auto.choose_once(checkpoint_dir, y=y, prior=prior,
                          num_sources=num_sources,
                          families=auto.families_for(surrogate),
                          config=config, key=key)


def load_result(checkpoint_dir, y, prior, *, num_sources: int = 1,
                surrogate: Union[str, nn.Module] = "conv",
                config: SolverConfig = TUNED,
                key: Optional[jax.Array] = None) -> SolveResult:
  """The :class:`SolveResult` of a solve checkpointed in ``checkpoint_dir``,
  without running any step.

  The arguments are those the solve was run with; the checkpoint must match
  them (as for resuming), except where it started from (``init_latents``),
  which a finished solve no longer needs.
  """
  config, y_host, module, key, _ = _prepare(y, prior, num_sources, surrogate,
                                            config, key, None)
  ckpt = pathlib.Path(checkpoint_dir) / CHECKPOINT_NAME
  if not ckpt.is_file():
    raise FileNotFoundError(f"no solve checkpoint at {str(ckpt)!r}.")
  y = jnp.asarray(y_host)
  template = init_state(key, y, prior, module, config, num_sources)
  identity = solve_identity(y_host, prior, module, config, num_sources, key)
  state, history = load_state(ckpt, template, identity,
                              ignore=("package_version", "init_latents"))
  done = int(state.step)
  message = ("" if done >= config.outer_steps else
             f"the checkpoint holds {done} of {config.outer_steps} outer steps")
  return _result(state, history, y, prior, module, config, message)
