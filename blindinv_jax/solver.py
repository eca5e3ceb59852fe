"""``solve``: runs Algorithm 1 on a user's observations.

:func:`solve` validates the inputs, chooses the surrogate family and S when
they are ``"auto"`` (:mod:`blindinv_jax.auto`), builds the initial state
(:func:`blindinv_jax.algorithm.init_state`), runs ``T`` outer steps through
:mod:`blindinv_jax.runner` (:func:`blindinv_jax.algorithm.outer_step`, or
:func:`blindinv_jax.minibatch.minibatch_outer_step` in minibatch mode), with
its callback, NaN stop, checkpoint and resume, and returns the best
restart. The algorithm itself is :mod:`blindinv_jax.algorithm`; its
configuration :mod:`blindinv_jax.config`.
"""
from __future__ import annotations

import dataclasses
import pathlib
import warnings
from typing import Any, Callable, NamedTuple, Optional, Union

import flax
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from blindinv_jax import (
  algorithm,
  auto,
  distributed,
  extension,
  minibatch,
  recentre,
  resume,
  runner,
)
from blindinv_jax.algorithm import SolverState
from blindinv_jax.config import (  # noqa: F401
  FAST,
  PAPER,
  TUNED,
  SolverConfig,
  as_identity,
  for_prior,
)
from blindinv_jax.models.surrogates import (
  centred_eligible,
  centres_kernel,
  check_kernel_size,
  check_select,
  kernel_off_centre,
  make_surrogate,
)
from blindinv_jax.parallel import local_view, shard
from blindinv_jax.validation import (
  check_positive_int,
  check_restart_starts,
  check_surrogate,
  grid_factor,
  shape_family,
  validate_init_latents,
  validate_observations,
  warn_if_out_of_range,
)

#: The initial state and the best restart's estimates, jitted
#: (:func:`blindinv_jax.algorithm.init_state`,
#: :func:`blindinv_jax.algorithm.final_estimates`).
init_state = runner.jitted(algorithm.init_state,
                           ("surrogate", "config", "num_sources"))
finalize = runner.jitted(algorithm.final_estimates, ("surrogate",))

#: ``select="centred"``: the restarts whose effective kernel sits within
#: this many pixels of the most centred one's distance from the centre are
#: eligible; the best data fit among them is kept.
CENTRE_TOLERANCE = 0.1

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
  surrogate or S (None when both were named); deviations: with
  ``config.extension``, the range extension's ``d [N, S, h, w, f]``
  (:mod:`blindinv_jax.extension`; the latents are then the z part only),
  else None; recentred: with ``config.recentre``, when a second solve ran,
  each solve's kernel distance from the centre and fit, and which was kept
  (:func:`blindinv_jax.recentre.keep`), else None.
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
  deviations: Any = None
  recentred: Any = flax.struct.field(pytree_node=False, default=None)

  def blind_signal(self, y, prior=None, steps: int = 500) -> dict:
    """Is the recovery likely better than the observations ``y [N, H, W,
    C_obs]``? The learned process's fit against the identity's (y projected
    onto the prior's range in ``steps`` steps; needs ``prior``):
    :func:`blindinv_jax.verdict.solve_signal`'s ``fit_db``,
    ``identity_db``, ``gain_db``, ``warn`` and ``message``. After a solve
    with a range extension the signal reads its range part, ``G(z)`` and
    ``F_hat(G(z))``: the deviations fit the observations' noise too, which
    the rule's thresholds were not set for."""
    from blindinv_jax.verdict import solve_signal
    return solve_signal(y, *extension.range_part(self, prior), prior, steps)


def solve_identity(y, prior, module, config: SolverConfig, num_sources: int,
                   key, init_latents=None) -> dict:
  """What a solve's checkpoint must match to be resumed (JSON)."""
  from blindinv_jax import __version__
  cfg = as_identity(config)
  if config.latent_lr_end is None:      # else the decay depends on T
    cfg.pop("outer_steps")              # a resumed run may run longer
  for f in ("grad_pieces", "precision"):  # absent from older files
    if cfg[f] is None:
      cfg.pop(f)
  cfg.pop("select")                     # picks among the saved restarts
  cfg.pop("recentre", None)             # a second solve, checkpointed apart
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


def checkpoint(checkpoint_dir, identity: dict,
               every: int = 10) -> runner.Checkpoint:
  """Where a solve's state is checkpointed: ``checkpoint_dir/
  solve_state.ckpt``, refused to a solve of another identity."""
  path = pathlib.Path(checkpoint_dir) / CHECKPOINT_NAME
  return runner.Checkpoint(
      path, kind=SOLVE_KIND, identity=identity, every=every, labels=_LABELS,
      message=lambda d: (
          f"{path} is a checkpoint of a different solve: its {d} differ from "
          "this one's. Resume with the same inputs, or write to a new output "
          "folder."))


def _prepare(y, prior, num_sources, surrogate, config, key, init_latents,
             kernel_size=None):
  """Validated inputs: ``(config, y [host], module, key, init_latents)``."""
  config = for_prior(config.validate(), prior)
  y = validate_observations(y, prior, num_sources, config.alpha,
                            smaller_grids=True)
  module = make_surrogate(surrogate, y.shape[-1], kernel_size,
                          factor=grid_factor(y.shape, prior.image_shape) or 1)
  check_surrogate(module, prior, num_sources, y.shape[1:])
  check_select(config.select, module)
  key = jax.random.key(0) if key is None else key
  if init_latents is not None:
    init_latents = validate_init_latents(init_latents, y.shape[0],
                                         num_sources, prior.latent_dim,
                                         config.restarts)
  return config, y, module, key, init_latents


def _result(state, history, y, prior, module, config, message=""):
  history = {k: jnp.asarray(v) for k, v in
             _stack_history(history, config.restarts).items()}
  eligible = None
  if config.select == "centred":
    eligible = centred_eligible(jax.vmap(kernel_off_centre)(
        state.surrogate_params), CENTRE_TOLERANCE)
  x, z, params, y_hat, best = distributed.gathered(
      finalize(state, y, prior, module, eligible))
  z, deviations = extension.split_latents(z, prior)
  return SolveResult(sources=x, latents=z, surrogate_params=params,
                     reconstruction=y_hat, history=history, best_restart=best,
                     state=state, surrogate=module, message=message,
                     deviations=deviations)


def solve(y, prior, *, num_sources: Union[int, str] = 1,
          surrogate: Union[str, nn.Module] = "auto",
          config: SolverConfig = TUNED,
          key: Optional[jax.Array] = None,
          callback: Optional[Callable[[int, dict], None]] = None,
          checkpoint_dir=None, checkpoint_every: int = 10,
          mesh=None, init_latents=None,
          on_candidate: Optional[Callable] = None,
          on_choice: Optional[Callable] = None,
          kernel_size: Optional[int] = None) -> SolveResult:
  """Blindly recovers sources and a surrogate of F from observations.

  Args:
    y: observations ``[N, H, W, C_obs]`` in the range of ``F(sources)``.
    prior: the prior of the sources (e.g. ``priors.load_prior("mnist")``).
    num_sources: S, sources per observation, or ``"auto"``: chosen among 1
      to 4 by held-out pixels (:mod:`blindinv_jax.auto`).
    surrogate: ``"auto"`` (chosen from the data by held-out pixels, see
      :mod:`blindinv_jax.auto`), ``"conv"`` (linear 2-layer conv, zero
      padding), ``"conv_scene"`` (the same on sources continued past the
      frame, no biases), ``"mixing"`` (per-pixel MLP), ``"conv_mlp"`` (conv, ReLU, per-pixel
      Dense) or a Flax module mapping ``[B, H, W, S*C]`` to ``[B, H, W,
      C_obs]``.
    config: :class:`SolverConfig` (default :data:`TUNED`; :data:`PAPER`).
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
      must be a multiple of the axis size. A mesh over the devices of
      several processes (:func:`blindinv_jax.distributed.global_mesh`,
      after :func:`blindinv_jax.distributed.initialize`): every process
      calls ``solve`` with its own block of rows as ``y`` (the same number
      on each, :func:`blindinv_jax.distributed.process_rows`), checkpoints
      its part under ``checkpoint_dir/p<i>of<P>``, and gets the whole
      result.
    init_latents: ``[N, S, L]`` latents restart 0 starts from instead of
      random ones (a warm start, e.g. :func:`blindinv_jax.project.project`
      of another method's estimates); other restarts stay random; or
      ``[R, N, S, L]``, one per restart (named families, no mesh). None:
      random, except for one source on a grid smaller than the prior's
      (super-resolution), where restart 0 starts from the projection of
      the bicubic-upsampled observations
      (:func:`blindinv_jax.project.upsampled_latents`; from random
      latents the blind solve lost 15 dB there, docs/results.md).
    on_candidate, on_choice: with ``"auto"``, called as
      ``on_candidate(row)`` after each screening solve
      (:func:`blindinv_jax.auto.choose`) and ``on_choice(choice)`` once the
      choice is made, before the full solve (e.g. to print progress).
    kernel_size: K, the largest kernel (K x K) the conv families (``"conv"``,
      ``"conv_scene"``, ``"conv_mlp"``, and those ``"auto"`` screens) can represent
      (:func:`blindinv_jax.models.surrogates.make_surrogate`); ``None``: 9
      (two 5x5 convolutions). A blur wider than that needs it (the paper's
      CelebA blur is 20x20).

  Returns:
    A :class:`SolveResult` (with ``choice`` when something was ``"auto"``:
    the screening solves run first, on held-out pixels, then this solve with
    the winner, exactly as if it had been named). If a loss or the state
    becomes NaN/Inf, the solve stops there, keeps the last finite state,
    warns, and says so in ``result.message``; it never returns NaN silently.
  """
  choice = None
  check_positive_int("checkpoint_every", checkpoint_every)
  check_kernel_size(surrogate, kernel_size)
  config = for_prior(config, prior)     # alpha's default, once for all
  extension.check(prior, config.validate().extension,
                  config.extension_depth)
  recentre.check(config, mesh)
  check_restart_starts(init_latents, mesh is not None or _is_auto(surrogate)
                       or _is_auto(num_sources))
  procs = _processes(y, mesh, checkpoint_dir, init_latents)
  if procs is None and checkpoint_dir is not None:
    distributed.check_processes(checkpoint_dir, 1)
  if procs is not None:
    checkpoint_dir, init_latents = procs.checkpoint_dir, procs.init_latents
  if _is_auto(surrogate):                 # a shape only one family makes
    surrogate = shape_family(y, prior) or surrogate
  if (init_latents is None and num_sources == 1 and
      shape_family(y, prior) == "downsample" and
      np.shape(y)[-1] == prior.image_shape[-1]):
    init_latents = _warm_start(y, prior, key, procs)
  if _is_auto(surrogate) or _is_auto(num_sources):
    head = (y, init_latents) if procs is None else procs.screen
    choice = _choose(*head[:1], prior, num_sources, surrogate, config, key,
                     checkpoint_dir, head[1], on_candidate, kernel_size)
    if on_choice is not None:
      on_choice(choice)
    surrogate, num_sources = choice.family, choice.num_sources
    if config.select == "centred" and not centres_kernel(
        make_surrogate(surrogate, 1)):
      warnings.warn(f"surrogate='auto' chose {surrogate!r}, which has no "
                    "linear kernel to centre: select='fit' instead.",
                    UserWarning, stacklevel=2)
      config = config.replace(select="fit")
  config, y_host, module, key, init_latents = _prepare(
      y, prior, num_sources, surrogate, config, key, init_latents,
      kernel_size)
  warn_if_out_of_range(y_host, prior=prior, num_sources=num_sources)
  plain = prior
  prior, init_latents = extension.extend_solve(prior, config, init_latents)
  n = y_host.shape[0] if procs is None else procs.n
  step = algorithm.outer_step
  if config.batch_size is not None and config.batch_size < n:
    step = minibatch.minibatch_outer_step
  if config.extension is not None and config.extension_from > 0:
    step = extension.GatedStep(step, config.extension_from)
  y = jnp.asarray(y_host) if procs is None else y_host
  state = init_state(key, y if procs is None else jnp.zeros((n, 0), y.dtype),
                     prior, module, config, num_sources, init_latents)
  ckpt = prepare = None
  if procs is not None:                 # this process's rows of the latents
    state = local_view(state, config, procs.rows)
  if checkpoint_dir is not None:
    ident = solve_identity(y_host, prior, module, config, num_sources, key,
                           init_latents)
    ckpt = checkpoint(checkpoint_dir, ident if procs is None else
                      {**ident, **procs.identity}, checkpoint_every)
    if procs is not None:
      ckpt = dataclasses.replace(ckpt, agree=distributed.common_step)
  if mesh is not None:
    y = shard(mesh, y, state, config, n)[0]
    prepare = lambda state, args: (shard(mesh, y_host, state, config, n)[1],
                                   args)
  out = runner.run(step, state, y, prior=prior, steps=config.outer_steps,
                   settings=runner.Settings.of(config),
                   static={"surrogate": module, "config": config},
                   callback=callback, checkpoint=ckpt, prepare=prepare,
                   unit="outer step")
  result = _result(out.state, out.history, y, prior, module, config,
                   out.message).replace(choice=choice)
  if out.message or not recentre.needed(result, config):
    return result
  second = solve(y_host, plain, num_sources=num_sources, surrogate=module,
                 config=recentre.second_config(config), key=key,
                 init_latents=recentre.start(result, plain, key,
                                             config.recentre_restarts),
                 callback=callback, kernel_size=kernel_size,
                 checkpoint_dir=None if checkpoint_dir is None else
                 pathlib.Path(checkpoint_dir) / "recentred")
  return recentre.keep(result, second.replace(choice=choice), y_host,
                       CENTRE_TOLERANCE)


class _Processes(NamedTuple):
  """A solve on a mesh that spans processes, as this process sees it."""
  n: int                      # N, all processes' observations
  rows: slice                 # this process's rows of them
  checkpoint_dir: Any         # checkpoint_dir/p<i>of<P>, or None
  init_latents: Any           # all N rows (gathered), or None
  screen: tuple               # (y, init_latents) of the first SCREEN_N rows
  identity: dict              # what a checkpoint adds to the identity


def _processes(y, mesh, checkpoint_dir, init_latents) -> Optional[_Processes]:
  """``None`` on one process; else the solve's global view, after checking
  that every process brings as many observations and that a checkpoint
  folder holds no other number of processes' parts."""
  view = distributed.global_view(y, mesh)
  if view is None:
    return None
  n, rows = view
  if init_latents is not None:
    init_latents = np.concatenate(list(distributed.all_values(init_latents)))
  if checkpoint_dir is not None:
    checkpoint_dir = distributed.process_folder(checkpoint_dir)
  head = distributed.first_rows(y, auto.SCREEN_N)
  screen = (head, None if init_latents is None else
            init_latents[:len(head)])
  return _Processes(n=n, rows=rows, checkpoint_dir=checkpoint_dir,
                    init_latents=init_latents, screen=screen,
                    identity=distributed.process_identity(n))


def _warm_start(y, prior, key, procs):
  """A smaller grid's start: restart 0 from the projection of the upsampled
  observations (:func:`blindinv_jax.project.upsampled_latents`), gathered
  to all N rows on a mesh that spans processes."""
  from blindinv_jax.project import upsampled_latents
  validate_observations(y, prior, 1, smaller_grids=True)
  z = upsampled_latents(prior, y, jax.random.fold_in(
      jax.random.key(0) if key is None else key, 7))
  return z if procs is None else np.concatenate(
      list(distributed.all_values(z)))


def _is_auto(v) -> bool:
  return isinstance(v, str) and v == "auto"


def _choose(y, prior, num_sources, surrogate, config, key, checkpoint_dir,
            init_latents, on_candidate=None, kernel_size=None):
  """The :class:`blindinv_jax.auto.SurrogateChoice` for an "auto" solve."""
  config = config.validate()
  y = validate_observations(y, prior, 1 if _is_auto(num_sources) else
                            num_sources, config.alpha, smaller_grids=True)
  if init_latents is not None and not _is_auto(num_sources):
    validate_init_latents(init_latents, y.shape[0], num_sources,
                          prior.latent_dim)
  if not (_is_auto(surrogate) or isinstance(surrogate, nn.Module)):
    make_surrogate(surrogate, y.shape[-1])      # an unknown name: refused
  extra = {} if kernel_size is None else {"kernel_size": kernel_size}
  return auto.choose_once(checkpoint_dir, y=y, prior=prior,
                          num_sources=num_sources,
                          families=auto.families_for(surrogate),
                          config=config, key=key, on_candidate=on_candidate,
                          **extra)


def load_result(checkpoint_dir, y, prior, *, num_sources: int = 1,
                surrogate: Union[str, nn.Module] = "conv",
                config: SolverConfig = TUNED,
                key: Optional[jax.Array] = None,
                kernel_size: Optional[int] = None) -> SolveResult:
  """The :class:`SolveResult` of a solve checkpointed in ``checkpoint_dir``,
  without running any step.

  The arguments are those the solve was run with; the checkpoint must match
  them (as for resuming), except where it started from (``init_latents``),
  which a finished solve no longer needs.
  """
  config, y_host, module, key, _ = _prepare(y, prior, num_sources, surrogate,
                                            config, key, None, kernel_size)
  ckpt = pathlib.Path(checkpoint_dir) / CHECKPOINT_NAME
  if not ckpt.is_file():
    raise FileNotFoundError(f"no solve checkpoint at {str(ckpt)!r}.")
  y = jnp.asarray(y_host)
  template = init_state(key, y, prior, module, config, num_sources)
  identity = solve_identity(y_host, prior, module, config, num_sources, key)
  state, history, _ = runner.load(checkpoint(checkpoint_dir, identity),
                                  template,
                                  ignore=("package_version", "init_latents"))
  done = int(state.step)
  message = ("" if done >= config.outer_steps else
             f"the checkpoint holds {done} of {config.outer_steps} outer steps")
  return _result(state, history, y, prior, module, config, message)
