"""Sharding a solve over a device mesh (GSPMD), on one process or many.

Observations ``y [N, ...]`` and the per-observation latents ``z [R, N, S,
L]`` (with their per-latent Adam moments) are split along the mesh's
``"data"`` axis; the surrogate, its optimiser state and everything else are
replicated, and XLA reduces the surrogate's gradient across devices.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp

from blindinv_jax import distributed, minibatch
from blindinv_jax.algorithm import SolverState
from blindinv_jax.config import SolverConfig


def auto_mesh(mesh):
  """``mesh`` with ``AxisType.Auto`` axes (the solver relies on sharding
  propagation; ``jax.make_mesh`` makes explicit axes by default)."""
  from jax.sharding import AxisType, Mesh
  if "data" not in mesh.axis_names:
    raise ValueError(f"mesh needs an axis named 'data' to shard the "
                     f"observations over; it has {mesh.axis_names}.")
  return Mesh(mesh.devices, mesh.axis_names,
              axis_types=(AxisType.Auto,) * len(mesh.axis_names))


def local_latents(z, opt, config: SolverConfig, rows: slice):
  """``(z, opt)`` as one process holds them: the latents ``[R, N, S, L]``
  and their per-latent Adam moments cut to its ``rows``, shared leaves
  (step counts) whole."""
  mask = minibatch.latent_leaves(config, opt)
  return z[:, rows], jax.tree_util.tree_map(
      lambda is_z, a: a[:, rows] if is_z else a, mask, opt)


def local_view(state: SolverState, config: SolverConfig, rows: slice):
  """The state as one process holds it (:func:`local_latents`),
  everything else whole."""
  z, opt = local_latents(state.z, state.latent_opt, config, rows)
  return state.replace(z=z, latent_opt=opt)


def _placers(mesh, n: int):
  """``(by_obs, whole)``: a leaf ``[R, n_p, ...]`` (this process's rows of
  the latents) as the global ``[R, N, ...]`` sharded along ``"data"``, and
  any other leaf replicated."""
  from jax.sharding import NamedSharding, PartitionSpec as P
  rep = NamedSharding(mesh, P())

  def whole(a):
    if jnp.issubdtype(a.dtype, jax.dtypes.prng_key):
      return jax.random.wrap_key_data(whole(jax.random.key_data(a)),
                                      impl=jax.random.key_impl(a))
    if jax.process_count() == 1:
      return jax.device_put(a, rep)
    return distributed.replicated(a, mesh)
  return (lambda a: distributed.global_rows(a, mesh, n, axis=1)), whole


def _check_split(mesh, n: int):
  mesh = auto_mesh(mesh)
  size = mesh.shape["data"]
  if n % size:
    raise ValueError(f"N = {n} observations do not split evenly over "
                     f"the mesh's {size} 'data' devices; use a multiple of "
                     f"{size}.")
  return mesh


def _shard(mesh, y, z, opt, config: SolverConfig, n: int):
  """``(y, z, opt, whole)``: y and the latents along ``"data"``, and the
  function that replicates any other leaf."""
  mesh = _check_split(mesh, n)
  by_obs, whole = _placers(mesh, n)
  mask = minibatch.latent_leaves(config, opt)
  return (distributed.global_rows(y, mesh, n), by_obs(z),
          jax.tree_util.tree_map(lambda is_z, a: by_obs(a) if is_z
                                 else whole(a), mask, opt), whole)


def shard_latents(mesh, y, z, opt, config: SolverConfig,
                  n: int | None = None):
  """:func:`shard` for a latent-only method (PGD): ``(y, z, opt)`` with y
  and the latents ``z [R, N, S, L]`` (and their Adam moments ``opt``)
  along ``"data"``."""
  return _shard(mesh, y, z, opt, config, y.shape[0] if n is None else n)[:3]


def shard(mesh, y, state: SolverState, config: SolverConfig,
          n: int | None = None):
  """Places y and the latents (with their Adam moments) along the mesh's
  ``"data"`` axis, everything else replicated: ``(y, state)``.

  On one process y ``[N, ...]`` and the state are whole. On a mesh that
  spans processes (:mod:`blindinv_jax.distributed`) they are this
  process's view: y its block of rows (:func:`blindinv_jax.distributed.
  process_rows`), the latents ``[R, n_p, S, L]`` the same rows, the rest
  whole; ``n`` is the global N. N must be a multiple of the ``"data"``
  axis size.
  """
  y, z, latent_opt, whole = _shard(mesh, y, state.z, state.latent_opt,
                                   config, y.shape[0] if n is None else n)
  return y, state.replace(
      z=z, latent_opt=latent_opt,
      surrogate_params=jax.tree_util.tree_map(whole, state.surrogate_params),
      surrogate_opt=jax.tree_util.tree_map(whole, state.surrogate_opt),
      step=whole(state.step), key=whole(state.key))
