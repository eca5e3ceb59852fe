"""Sharding a solve over a device mesh (GSPMD).

Observations ``y [N, ...]`` and the per-observation latents ``z [R, N, S,
L]`` (with their per-latent Adam moments) are split along the mesh's
``"data"`` axis; the surrogate, its optimiser state and everything else are
replicated, and XLA reduces the surrogate's gradient across devices.
"""
from __future__ import annotations

import jax

from blindinv_jax import minibatch
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


def shard(mesh, y: jax.Array, state: SolverState, config: SolverConfig):
  """Places y and the latents (with their Adam moments) along the mesh's
  ``"data"`` axis, everything else replicated: ``(y, state)``.

  N must be a multiple of the ``"data"`` axis size.
  """
  from jax.sharding import NamedSharding, PartitionSpec as P
  mesh = auto_mesh(mesh)
  size = mesh.shape["data"]
  if y.shape[0] % size:
    raise ValueError(f"N = {y.shape[0]} observations do not split evenly over "
                     f"the mesh's {size} 'data' devices; use a multiple of "
                     f"{size}.")
  rep = NamedSharding(mesh, P())
  by_obs = NamedSharding(mesh, P(None, "data"))         # [R, N, ...]
  mask = minibatch.latent_leaves(config, state.latent_opt)
  latent_opt = jax.tree_util.tree_map(
      lambda is_z, a: jax.device_put(a, by_obs if is_z else rep), mask,
      state.latent_opt)
  return jax.device_put(y, NamedSharding(mesh, P("data"))), state.replace(
      z=jax.device_put(state.z, by_obs), latent_opt=latent_opt,
      surrogate_params=jax.device_put(state.surrogate_params, rep),
      surrogate_opt=jax.device_put(state.surrogate_opt, rep),
      step=jax.device_put(state.step, rep),
      key=jax.device_put(state.key, rep))
