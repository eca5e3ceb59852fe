"""One solve across processes and hosts: JAX's multi-controller runtime.

Every process runs the same program (``blindinv solve`` or a script that
calls :func:`blindinv_jax.solver.solve`) after :func:`initialize`. A
*global* mesh (:func:`global_mesh`) has a ``"data"`` axis over the devices
of every process; process ``p`` holds only its own block of the N
observations (:func:`process_rows`) and of the latents, the surrogate is
replicated, and XLA reduces the surrogate's gradient across processes (over
NCCL on GPUs, the TPU interconnect, or gloo between CPU processes).

Helpers for arrays that span processes:

* :func:`global_rows`: a process's rows ``[n_p, ...]`` -> the global array
  ``[N, ...]`` sharded along ``"data"``
  (``jax.make_array_from_process_local_data``);
* :func:`local_block`: the part of a global array this process holds, as
  numpy (what a process checkpoints);
* :func:`to_host`: a pytree as numpy on every process (replicated leaves
  read locally, sharded ones gathered);
* :func:`all_values`: one small value from every process.
"""
from __future__ import annotations

import os
import pathlib
import re
from typing import Optional, Sequence

import jax
import numpy as np

#: Seconds without a heartbeat after which the coordination service declares
#: a process dead and stops the others (JAX's default is 100).
HEARTBEAT_S = 20


def initialize(coordinator_address: Optional[str] = None,
               num_processes: Optional[int] = None,
               process_id: Optional[int] = None, *,
               local_device_ids: Optional[Sequence[int]] = None,
               heartbeat_timeout_s: int = HEARTBEAT_S) -> None:
  """``jax.distributed.initialize`` with gloo collectives for CPU devices.

  All arguments ``None``: JAX reads them from the cluster's environment
  (SLURM, Open MPI, Cloud TPU). Must run before any JAX computation.
  """
  # XLA:CPU has no cross-process collectives without it; GPUs and TPUs
  # ignore the setting.
  jax.config.update("jax_cpu_collectives_implementation", "gloo")
  jax.distributed.initialize(coordinator_address=coordinator_address,
                             num_processes=num_processes,
                             process_id=process_id,
                             local_device_ids=local_device_ids,
                             heartbeat_timeout_seconds=heartbeat_timeout_s)


def global_mesh():
  """A mesh with one ``"data"`` axis over every process's devices (in
  process order: process 0 holds the first rows)."""
  from jax.sharding import Mesh
  return Mesh(np.array(jax.devices()), ("data",))


def spans_processes(mesh) -> bool:
  """Whether ``mesh`` has devices of another process than this one."""
  if mesh is None:
    return False
  me = jax.process_index()
  return any(d.process_index != me for d in np.ravel(mesh.devices))


def _data_sharding(mesh, ndim: int, axis: int = 0):
  from jax.sharding import NamedSharding, PartitionSpec as P
  spec = [None] * ndim
  spec[axis] = "data"
  return NamedSharding(mesh, P(*spec))


def process_rows(n: int, mesh) -> slice:
  """The rows of ``[N, ...]`` that this process's devices hold when it is
  split along ``mesh``'s ``"data"`` axis (a contiguous block)."""
  size = mesh.shape["data"]
  if n % size:
    raise ValueError(f"N = {n} observations do not split evenly over the "
                     f"mesh's {size} 'data' devices ({jax.process_count()} "
                     f"process(es)); use a multiple of {size}.")
  idx = _data_sharding(mesh, 1).addressable_devices_indices_map((n,))
  starts = sorted({s[0].start or 0 for s in idx.values()})
  stops = sorted({n if s[0].stop is None else s[0].stop for s in idx.values()})
  if any(b != a for a, b in zip(stops[:-1], starts[1:])):
    raise ValueError("this process's devices do not hold one contiguous "
                     "block of rows of the mesh's 'data' axis; build the "
                     "mesh from jax.devices() in order (global_mesh()).")
  return slice(starts[0], stops[-1])


def global_rows(local, mesh, n: int, axis: int = 0) -> jax.Array:
  """This process's block ``local`` (rows :func:`process_rows` of axis
  ``axis``) of a global array whose axis ``axis`` has ``n`` entries, as
  that global array, sharded along ``"data"`` on that axis."""
  local = np.asarray(local)
  shape = local.shape[:axis] + (n,) + local.shape[axis + 1:]
  return jax.make_array_from_process_local_data(
      _data_sharding(mesh, local.ndim, axis), local, shape)


def replicated(value, mesh) -> jax.Array:
  """``value`` (the same on every process) replicated over ``mesh``."""
  from jax.sharding import NamedSharding, PartitionSpec as P
  value = np.asarray(value)
  return jax.make_array_from_process_local_data(NamedSharding(mesh, P()),
                                                value, value.shape)


def local_block(a) -> np.ndarray:
  """The box of a (global) array that this process's devices hold, as
  numpy: the whole array when it is replicated or fully addressable."""
  if not isinstance(a, jax.Array) or a.is_fully_addressable:
    return np.asarray(jax.device_get(a))
  if a.is_fully_replicated:
    return np.asarray(a.addressable_data(0))
  shards = a.addressable_shards
  lo = [min(s.index[d].start or 0 for s in shards) for d in range(a.ndim)]
  hi = [max(a.shape[d] if s.index[d].stop is None else s.index[d].stop
            for s in shards) for d in range(a.ndim)]
  out = np.empty([h - l for l, h in zip(lo, hi)], a.dtype)
  for s in shards:
    box = tuple(slice((i.start or 0) - l, (a.shape[d] if i.stop is None
                                             else i.stop) - l)
                for d, (i, l) in enumerate(zip(s.index, lo)))
    out[box] = np.asarray(s.data)
  return out


def to_host(tree):
  """``tree``'s arrays as numpy on every process: fully addressable or
  replicated leaves read locally, leaves sharded across processes gathered
  (a collective: every process must call it)."""
  from jax.experimental import multihost_utils
  leaves = jax.tree_util.tree_leaves(tree)
  if all(getattr(a, "is_fully_addressable", True) for a in leaves):
    return jax.device_get(tree)               # one process: one transfer

  def leaf(a):
    if isinstance(a, jax.Array) and not (a.is_fully_addressable or
                                         a.is_fully_replicated):
      return np.asarray(multihost_utils.process_allgather(a, tiled=True))
    return local_block(a)
  return jax.tree_util.tree_map(leaf, tree)


def gathered(tree):
  """``tree`` as it is when every leaf is fully addressable (one process),
  else :func:`to_host` (every process gets the whole arrays)."""
  leaves = jax.tree_util.tree_leaves(tree)
  if all(getattr(a, "is_fully_addressable", True) for a in leaves):
    return tree
  return to_host(tree)


def all_values(value) -> np.ndarray:
  """``[P, ...]``: ``value`` (a small array, same shape everywhere) from
  every process, in process order (a collective)."""
  from jax.experimental import multihost_utils
  value = np.asarray(value)
  if jax.process_count() == 1:
    return value[None]
  return np.asarray(multihost_utils.process_allgather(value, tiled=False))


def first_rows(local, count: int) -> np.ndarray:
  """The first ``count`` rows of the global ``[N, ...]`` array whose
  process blocks (in process order) are ``local`` on each process, on
  every process (e.g. the observations ``surrogate="auto"`` screens)."""
  local = np.asarray(local)
  n = all_values(np.int64(local.shape[0]))
  head = np.zeros((count,) + local.shape[1:], local.dtype)
  k = min(count, local.shape[0])
  head[:k] = local[:k]
  heads = all_values(head)                    # [P, count, ...]
  rows = [heads[p, :min(count, int(n[p]))] for p in range(len(n))]
  return np.concatenate(rows)[:count]


def global_view(y, mesh):
  """``None`` unless ``mesh`` spans processes; else ``(N, rows)``: all
  processes' observations and this process's rows of them, after checking
  that every process brings as many (a collective)."""
  if not spans_processes(mesh):
    return None
  counts = all_values(np.int64(np.shape(y)[0]))
  if len(set(counts.tolist())) != 1:
    raise ValueError(f"every process must bring as many observations; they "
                     f"bring {counts.tolist()} (process order). Split the "
                     "N observations with distributed.process_rows.")
  n = int(counts.sum())
  rows = process_rows(n, mesh)
  if rows.stop - rows.start != counts[jax.process_index()]:
    raise ValueError(f"process {jax.process_index()} holds rows "
                     f"{rows.start}:{rows.stop} of the mesh's 'data' axis "
                     f"but brings {counts[jax.process_index()]} observations.")
  return n, rows


def check_processes(folder, processes: int) -> None:
  """Refuses a checkpoint folder that holds a solve checkpointed by another
  number of processes than ``processes`` (a solve resumes with the number
  it started with)."""
  folder = pathlib.Path(folder)
  counts = {int(m.group(1)) for f in (folder.glob("p*of*") if
                                      folder.is_dir() else [])
            if (m := re.fullmatch(r"p\d+of(\d+)", f.name))}
  if (folder / "solve_state.ckpt").exists():
    counts.add(1)
  others = sorted(counts - {processes})
  if others:
    was = "one process" if others[0] == 1 else f"{others[0]} processes"
    now = "one" if processes == 1 else str(processes)
    raise ValueError(f"{folder} holds a solve checkpointed by {was}; this "
                     f"solve runs on {now}. Resume it with {was} (the same "
                     "--local-processes / --num-processes), or start afresh "
                     "in a new output folder (or with --overwrite).")


def process_identity(n: int) -> dict:
  """What a run that spans processes adds to its checkpoint's identity:
  this process, the number of processes and all of them's N."""
  return {"process": jax.process_index(), "processes": jax.process_count(),
          "observations_total": n}


def process_folder(folder) -> pathlib.Path:
  """``folder/p<i>of<P>``: where process i of P keeps its part of a
  checkpoint (:func:`check_processes` first)."""
  check_processes(folder, jax.process_count())
  return pathlib.Path(folder) / f"p{jax.process_index()}of{jax.process_count()}"


def common_step(steps: Sequence[int]) -> Optional[int]:
  """The step every process resumes from, given this process's saved steps
  (its latest and previous checkpoint): the latest step that every process
  has (a collective). ``None`` when no process has a checkpoint."""
  mine = np.full(2, -1, np.int64)
  mine[:len(steps[-2:])] = list(steps[-2:])
  every = all_values(mine)
  have = [set(int(v) for v in row if v >= 0) for row in every]
  if not any(have):
    return None
  common = set.intersection(*have)
  if not common:
    raise ValueError(
        "the processes' checkpoints share no step (saved steps by process: "
        f"{[sorted(h) for h in have]}); start the solve afresh "
        "(--overwrite).")
  return max(common)


def process_env() -> dict:
  """The ``jax.distributed`` settings a launcher passed through the
  environment (``BLINDINV_COORDINATOR``, ``BLINDINV_NUM_PROCESSES``,
  ``BLINDINV_PROCESS_ID``), empty when none were."""
  keys = {"coordinator_address": "BLINDINV_COORDINATOR",
          "num_processes": "BLINDINV_NUM_PROCESSES",
          "process_id": "BLINDINV_PROCESS_ID"}
  out = {k: os.environ[v] for k, v in keys.items() if v in os.environ}
  for k in ("num_processes", "process_id"):
    if k in out:
      out[k] = int(out[k])
  return out
