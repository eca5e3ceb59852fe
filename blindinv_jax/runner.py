"""One runner for every iterative method, in the spirit of jaxopt's loop.

A method supplies a pure step (from :mod:`blindinv_jax.algorithm` and its
siblings)::

    step(state, *args, prior, unroll, **static) -> (state, metrics)

where ``metrics`` is a dict of arrays, optionally with a boolean
``"finite"`` when the step guards itself (Algorithm 1's
:func:`~blindinv_jax.algorithm.guard_step`). :func:`run` writes the rest once:

* one jitted chunk per call (:func:`run_chunk`), compiled once per method
  and static arguments, with the backend's settings applied here and nowhere
  else: the XLA options (:func:`blindinv_jax.backend.jit_step`), the inner
  loops' unroll and the arithmetic of the prior's G and D
  (:class:`Settings`, from ``SolverConfig.unroll`` / ``precision``);
* a NaN stop: a step whose metrics or new state hold a NaN or Inf is not
  taken (the chunk keeps the old state) and the run stops there, warns and
  says why in :attr:`Run.message`;
* the callback after every chunk, with the chunk's host metrics;
* checkpoints every ``Checkpoint.every`` chunks and at the end, written
  atomically with the run's identity (:mod:`blindinv_jax.resume`), and a
  bit-identical resume from them.

``solve``, ``auto``'s screening solves, ``baselines.pgd``, ``refine``,
``project`` and the population experiment all run through it.
"""
from __future__ import annotations

import dataclasses
import functools
import pathlib
import warnings
from typing import Any, Callable, Dict, List, NamedTuple, Optional, Tuple

import flax
import jax
import jax.numpy as jnp
import numpy as np

from blindinv_jax import backend, checkpoint as ckpt_file, distributed, resume


@dataclasses.dataclass(frozen=True)
class Settings:
  """How a method's step is lowered (a static jit argument).

  unroll: ``SolverConfig.unroll``'s values (``None``: the backend's
  default); precision: the arithmetic of the prior's G and D
  (``SolverConfig.precision``).
  """
  unroll: Any = None
  precision: Optional[str] = None

  @classmethod
  def of(cls, config) -> "Settings":
    """The settings a ``SolverConfig`` asks for."""
    return cls(unroll=config.unroll, precision=config.precision)


def all_finite(tree) -> jax.Array:
  """True when every leaf of ``tree`` is free of NaN and Inf."""
  leaves = [jnp.all(jnp.isfinite(v)) for v in jax.tree_util.tree_leaves(tree)
            if jnp.issubdtype(jnp.result_type(v), jnp.inexact)]
  return jnp.all(jnp.stack(leaves)) if leaves else jnp.asarray(True)


def _chunk(state, args, prior, *, step: Callable, settings: Settings,
           static: Tuple[Tuple[str, Any], ...]):
  """One step of ``step`` with the backend's settings applied; a step that
  does not guard itself is guarded here (not taken if not finite)."""
  prior = backend.prior_at_precision(prior, settings.precision)
  unroll = backend.resolve_unroll(settings.unroll)
  new, metrics = step(state, *args, prior=prior, unroll=unroll,
                      **dict(static))
  if "finite" not in metrics:
    finite = all_finite((metrics, new))
    new = jax.tree_util.tree_map(lambda a, b: jnp.where(finite, a, b), new,
                                 state)
    metrics = {**metrics, "finite": finite}
  return new, metrics


#: :func:`_chunk`, jitted once for every method (compiled once per step
#: function, static arguments and input shapes); the state is donated.
run_chunk = backend.jit_step(_chunk,
                             static_argnames=("step", "settings", "static"),
                             donate_argnames=("state",))


class Compiled:
  """One chunk of ``step`` exactly as :func:`run` runs it (the jitted
  :data:`run_chunk`, the state donated), as a function
  ``f(state, *args, prior) -> (state, metrics)``; ``f.lower(state, *args,
  prior)`` lowers it (to compile, count flops or read its memory). E.g. to
  time the solver's outer step::

    f = Compiled(algorithm.outer_step, settings=Settings.of(cfg),
                 surrogate=module, config=cfg)
    state, metrics = f(state, y, prior=prior)
  """

  def __init__(self, step: Callable, *, settings: Settings = Settings(),
               **static):
    self.step, self.settings = step, settings
    self.static = tuple(sorted(static.items()))

  def __call__(self, state, *args, prior):
    return run_chunk(state, args, prior, step=self.step,
                     settings=self.settings, static=self.static)

  def lower(self, state, *args, prior):
    """The lowered chunk; its compiled form takes ``(state, args, prior)``."""
    return run_chunk.lower(state, args, prior, step=self.step,
                           settings=self.settings, static=self.static)


@functools.lru_cache(maxsize=None)
def jitted(fn: Callable, static_argnames: Tuple[str, ...] = ()) -> Callable:
  """``jax.jit(fn, static_argnames=...)``, one object per function, so every
  caller of a one-off function (an initialiser, a final estimate) shares
  its compiled programs."""
  return jax.jit(fn, static_argnames=static_argnames)


@dataclasses.dataclass(frozen=True)
class Checkpoint:
  """Where and how a run checkpoints (:mod:`blindinv_jax.resume`).

  path: the checkpoint file; kind: its kind (checked on load); identity:
  what the run's result depends on (a JSON dict; a saved run with another
  identity is refused, naming what differs); every: chunks between saves
  (and one at the end); labels: readable names of identity keys; message:
  ``message(differences) -> str``, the refusal's text; ignore: identity
  keys that may differ.
  """
  path: pathlib.Path
  kind: str
  identity: Dict[str, Any]
  every: int = 10
  labels: Optional[Dict[str, str]] = None
  message: Optional[Callable[[str], str]] = None
  ignore: Tuple[str, ...] = ("package_version",)
  agree: Optional[Callable[[List[int]], Optional[int]]] = None

  @property
  def previous(self) -> pathlib.Path:
    """Where a run that spans processes keeps its file before the latest."""
    return pathlib.Path(str(self.path) + ".prev")


class Run(NamedTuple):
  """What :func:`run` returns: the final ``state``, the host ``history``
  (one metrics dict per chunk done, ``"finite"`` removed), ``steps`` done in
  all (resumed ones included) and ``message`` (empty, or why it stopped
  early)."""
  state: Any
  history: List[dict]
  steps: int
  message: str


def _host_tree(state):
  """``state`` on the host, PRNG keys as their raw key data (of an array
  that spans processes, the block this process holds)."""
  def leaf(a):
    if jnp.issubdtype(jnp.result_type(a), jax.dtypes.prng_key):
      a = jax.random.key_data(a)
    return (distributed.local_block(a) if isinstance(a, jax.Array)
            else np.asarray(a))
  return jax.tree_util.tree_map(leaf, state)


def _stack(history: List[dict]) -> dict:
  """Per-chunk host metrics -> ``{name: [steps, ...]}`` (``{}`` if none)."""
  return ({k: np.stack([h[k] for h in history]) for k in history[0]}
          if history else {})


def save(ckpt: Checkpoint, state, history: List[dict], steps: int) -> None:
  """Atomically writes ``state`` and the stacked ``history`` after ``steps``
  chunks."""
  tree = {"state": flax.serialization.to_state_dict(_host_tree(state)),
          "history": _stack(history)}
  if ckpt.agree is not None and pathlib.Path(ckpt.path).exists():
    ckpt.path.replace(ckpt.previous)
  resume.save(ckpt.path, tree, kind=ckpt.kind, identity=ckpt.identity,
              meta={"step": int(steps)})


def _saved_step(path: pathlib.Path) -> Optional[int]:
  try:
    return int(ckpt_file.read_header(path)["meta"].get("step", 0))
  except (FileNotFoundError, ckpt_file.CheckpointError):
    return None


def resume_path(ckpt: Checkpoint) -> Optional[pathlib.Path]:
  """The file a run resumes from: the latest, or for a run that spans
  processes the one at the step they agree on (``None``: start afresh)."""
  if ckpt.agree is None:
    return ckpt.path if pathlib.Path(ckpt.path).exists() else None
  files = {s: p for p in (ckpt.previous, ckpt.path)
           if (s := _saved_step(p)) is not None}
  step = ckpt.agree(sorted(files))
  return None if step is None else files[step]


def load(ckpt: Checkpoint, template, ignore: Optional[Tuple[str, ...]] = None,
         path=None) -> Tuple[Any, List[dict], int]:
  """``(state, history, steps)`` from ``ckpt`` (or its file ``path``) if
  its identity matches (``template``: a state of the same structure, e.g.
  the initial one)."""
  tree, meta = resume.load(
      ckpt.path if path is None else path, kind=ckpt.kind, identity=ckpt.identity,
      ignore=ckpt.ignore if ignore is None else ignore, labels=ckpt.labels,
      message=ckpt.message)
  restored = flax.serialization.from_state_dict(_host_tree(template),
                                                tree["state"])

  def back(t, a):
    if jnp.issubdtype(jnp.result_type(t), jax.dtypes.prng_key):
      return jax.random.wrap_key_data(jnp.asarray(a),
                                      impl=jax.random.key_impl(t))
    return jnp.asarray(a)
  state = jax.tree_util.tree_map(back, template, restored)
  steps = int(meta.get("step", 0))
  hist = tree.get("history") or {}
  history = [{k: np.asarray(hist[k][t]) for k in hist} for t in range(steps)]
  return state, history, steps


def nonfinite_message(unit: str, step: int, steps: int, metrics: dict) -> str:
  """Why a run stopped at ``step`` (1-based) of ``steps``: which metrics
  became NaN or Inf (or the state)."""
  bad = [k.replace("_", " ") for k, v in metrics.items()
         if not np.all(np.isfinite(v))] or ["the state"]
  return (f"stopped at {unit} {step} of {steps}: {' and '.join(bad)} became "
          f"NaN or Inf; returning the state after {unit} {step - 1}. Lower "
          "the learning rates or check the observations' scale.")


def run(step: Callable, state, *args, prior, steps: int,
        settings: Settings = Settings(), static: Optional[dict] = None,
        callback: Optional[Callable[[int, dict], None]] = None,
        checkpoint: Optional[Checkpoint] = None,
        prepare: Optional[Callable] = None, unit: str = "step",
        stacklevel: int = 3) -> Run:
  """Runs ``steps`` calls of ``step`` from ``state`` (or from the
  checkpoint, where one exists).

  Args:
    step: the method's pure step, ``step(state, *args, prior, unroll,
      **static) -> (state, metrics)``; a static jit argument (a module-level
      function compiles once).
    state: the initial state (a pytree; also the template a checkpoint is
      read into).
    *args: the step's array arguments (observations, parameters...).
    prior: the prior (a jit argument); its G and D run at
      ``settings.precision``.
    steps: chunks to run in all (a resumed run runs the rest).
    settings: :class:`Settings` (unroll, precision).
    static: the step's static keyword arguments (hashable: a config, a
      surrogate module, a forward function).
    callback: ``callback(done, metrics)`` after every chunk, with host
      metrics.
    checkpoint: a :class:`Checkpoint`, or None.
    prepare: ``prepare(state, args) -> (state, args)`` before the first
      chunk (e.g. sharding over a mesh).
    unit: what a chunk is called in the NaN-stop message.
    stacklevel: of the NaN-stop warning (3: the caller of the method that
      called :func:`run`).
  """
  static_items = tuple(sorted((static or {}).items()))
  history, done = [], 0
  start = None if checkpoint is None else resume_path(checkpoint)
  if start is not None:
    state, history, done = load(checkpoint, state, path=start)
  if prepare is not None:
    state, args = prepare(state, args)
  message = ""
  for t in range(done, steps):
    state, metrics = run_chunk(state, args, prior, step=step,
                               settings=settings, static=static_items)
    metrics = distributed.to_host(metrics)
    if not metrics.pop("finite"):
      message = nonfinite_message(unit, t + 1, steps, metrics)
      warnings.warn(message, RuntimeWarning, stacklevel=stacklevel)
      break
    history.append(metrics)
    done = t + 1
    if callback is not None:
      callback(done, metrics)
    if checkpoint is not None and (done % checkpoint.every == 0 or
                                   done == steps):
      save(checkpoint, state, history, done)
  return Run(state=state, history=history, steps=done, message=message)
