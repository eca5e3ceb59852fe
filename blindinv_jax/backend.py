"""Every backend-specific knob of the solver, the projection and the baselines.

Algorithm 1 (:mod:`blindinv_jax.algorithm`) is written once, for any device;
how it is lowered and compiled is decided here, behind a few named functions:

* :data:`STEP_COMPILER_OPTIONS` and :func:`jit_step`: the XLA options of the
  hot jitted steps; :data:`INIT_COMPILER_OPTIONS` those of one-off
  initialisers.
* :func:`default_unroll` / :func:`resolve_unroll`: how the inner
  ``fori_loop``\\ s are unrolled (``SolverConfig.unroll``).
* :func:`default_grad_pieces` / :func:`piecewise_grad`: the latent gradient of
  the N observations computed in independent pieces
  (``SolverConfig.grad_pieces``).
* :func:`map_restarts`: ``vmap`` over restarts, unbatched for one restart.
* :func:`prior_at_precision`: G and D in the arithmetic of
  ``SolverConfig.precision`` (:mod:`blindinv_jax.precision`).
* :func:`default_projection_calls`: how :func:`blindinv_jax.project.project`
  splits its steps into jitted calls.

The measurements behind each default: ``docs/design.md#defaults-and-why``.
"""
from __future__ import annotations

import os
from functools import partial
from typing import Callable, List, Optional, Tuple, Union

import jax
import jax.numpy as jnp

from blindinv_jax import precision as precision_lib

Unroll = Union[None, int, str]

#: XLA options of the solver's and baselines' jitted steps: on CPU, YNNPACK
#: runs matrix products only and the convolutions take XLA:CPU's own path. A
#: DebugOptions field that other backends ignore.
STEP_COMPILER_OPTIONS = {
    "xla_cpu_experimental_ynn_fusion_type": "LIBRARY_FUSION_TYPE_INDIVIDUAL_DOT"}

#: XLA options of functions that run once (network initialisers): backend
#: optimisations only slow their compile.
INIT_COMPILER_OPTIONS = {"xla_backend_optimization_level": 0}


def jit_step(fn: Callable, **jit_kwargs) -> Callable:
  """``jax.jit(fn, **jit_kwargs)`` with :data:`STEP_COMPILER_OPTIONS`."""
  return jax.jit(fn, compiler_options=STEP_COMPILER_OPTIONS, **jit_kwargs)


def jit_init(fn: Callable, **jit_kwargs) -> Callable:
  """``jax.jit(fn, **jit_kwargs)`` with :data:`INIT_COMPILER_OPTIONS`."""
  return jax.jit(fn, compiler_options=INIT_COMPILER_OPTIONS, **jit_kwargs)


def usable_cores() -> int:
  """CPU cores this process may run on (its affinity mask where the OS has
  one, else all cores)."""
  try:
    return max(1, len(os.sched_getaffinity(0)))
  except AttributeError:                        # not Linux
    return max(1, os.cpu_count() or 1)


# ------------------------------------------------------------------ unroll

def default_unroll() -> Union[int, str]:
  """The inner-loop lowering on the default backend: a plain ``fori_loop``
  (``1``). ``"full"`` unrolls the loops completely (long compiles, faster
  long runs at large N on CPU)."""
  return 1


def resolve_unroll(unroll: Unroll) -> Union[int, bool]:
  """``SolverConfig.unroll`` -> the ``unroll`` argument of ``fori_loop``:
  ``None`` -> :func:`default_unroll`, ``"full"`` -> ``True``, k -> k."""
  u = default_unroll() if unroll is None else unroll
  return True if u == "full" else int(u)


# ---------------------------------------------------------- gradient pieces

def default_grad_pieces() -> int:
  """Pieces of the latent gradient: one per usable core on CPU (XLA runs
  independent pieces side by side; one small convolution uses several
  cores poorly), 1 elsewhere."""
  return usable_cores() if jax.default_backend() == "cpu" else 1


def piece_bounds(n: int, pieces: Optional[int]) -> List[Tuple[int, int]]:
  """Static ``(start, stop)`` of near-equal pieces of ``range(n)``
  (``None``: :func:`default_grad_pieces`)."""
  k = max(1, min(n, default_grad_pieces() if pieces is None else pieces))
  edges = [round(i * n / k) for i in range(k + 1)]
  return list(zip(edges[:-1], edges[1:]))


def piecewise_grad(loss_fn: Callable, z: jax.Array, y: jax.Array,
                   weights: Optional[jax.Array],
                   pieces: Optional[int]) -> jax.Array:
  """``grad(loss_fn)(z, y, weights)`` w.r.t. z ``[N, ...]``, in pieces of N.

  Exact when each observation's loss depends on its own row of z, y and
  weights only (true of Algorithm 1's latent loss).
  """
  gs = []
  for a, b in piece_bounds(z.shape[0], pieces):
    w = None if weights is None else weights[a:b]
    gs.append(jax.grad(partial(loss_fn, y=y[a:b], weights=w))(z[a:b]))
  return gs[0] if len(gs) == 1 else jnp.concatenate(gs)


# --------------------------------------------------------------- precision

def prior_at_precision(prior, precision: Optional[str]):
  """``prior`` with its generator and discriminator at ``precision``
  (``None``: ``prior`` itself); see
  :func:`blindinv_jax.precision.lower_prior`."""
  return precision_lib.lower_prior(prior, precision)


# ---------------------------------------------------------------- restarts

def map_restarts(fn: Callable, *args):
  """``jax.vmap(fn)(*args)`` over the leading restart axis; with a single
  restart ``fn`` runs unbatched (a vmapped surrogate has batched weights,
  which XLA:CPU convolves ~20% slower)."""
  if jax.tree_util.tree_leaves(args)[0].shape[0] == 1:
    out = fn(*jax.tree_util.tree_map(lambda a: a[0], args))
    return jax.tree_util.tree_map(lambda a: a[None], out)
  return jax.vmap(fn)(*args)


# -------------------------------------------------------------- projection

def default_projection_calls(steps: int) -> Tuple[int, Unroll]:
  """``(steps_per_call, unroll)`` of :func:`blindinv_jax.project.project`:
  on CPU a host loop over jitted calls of 10 fully unrolled steps (faster
  per step, no host sync between calls); elsewhere one ``fori_loop``."""
  if jax.default_backend() == "cpu":
    return min(10, steps), "full"
  return steps, 1
