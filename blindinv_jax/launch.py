"""``blindinv solve`` on several processes, and ``blindinv launch``.

* :func:`add_args` / :func:`start`: the ``jax.distributed`` settings of a
  command (``--coordinator``, ``--num-processes``, ``--process-id``, or
  ``--cluster`` to read them from SLURM / Open MPI / Cloud TPU, or the
  environment a launcher set), and the global mesh they give;
* :func:`own_rows`, :func:`check_resume`, :func:`is_main`,
  :func:`barrier`: what the command does differently on many processes
  (each reads its own rows, checkpoints its own part; process 0 writes
  the outputs);
* :func:`launch`: starts P local processes of one command, forwards their
  output with a ``[p<i>]`` prefix, and stops them all when one fails.

docs/distributed.md has the commands for one machine, SLURM and TPU pods.
"""
from __future__ import annotations

import os
import pathlib
import signal
import socket
import subprocess
import sys
import threading
import time
from typing import List, Optional

from blindinv_jax import distributed

#: Seconds the other processes get to stop after SIGTERM before SIGKILL.
STOP_GRACE_S = 10


def add_args(p) -> None:
  """The ``jax.distributed`` flags of a command."""
  g = p.add_argument_group("several processes (docs/distributed.md)")
  g.add_argument("--coordinator", metavar="HOST:PORT", help="address of "
                 "process 0's coordination service (every process passes "
                 "the same)")
  g.add_argument("--num-processes", type=int, metavar="P",
                 help="processes in the solve")
  g.add_argument("--process-id", type=int, metavar="I",
                 help="this process's index, 0..P-1")
  g.add_argument("--cluster", action="store_true", help="read the three "
                 "settings from the cluster (SLURM, Open MPI, Cloud TPU) as "
                 "jax.distributed.initialize() does")


def start(args):
  """Joins the processes the flags (or a launcher's environment) name:
  the global mesh (:func:`blindinv_jax.distributed.global_mesh`), or
  ``None`` for a solve on one process. Runs before any JAX computation."""
  given = {k: getattr(args, k) for k in ("coordinator", "num_processes",
                                          "process_id")
           if getattr(args, k, None) is not None}
  settings = {**distributed.process_env(),
              **{{"coordinator": "coordinator_address"}.get(k, k): v
                 for k, v in given.items()}}
  if not settings and not getattr(args, "cluster", False):
    return None
  flags = {"coordinator_address": "--coordinator",
           "num_processes": "--num-processes", "process_id": "--process-id"}
  missing = [f for k, f in flags.items() if k not in settings]
  if settings and missing:
    raise ValueError("several processes need --coordinator, --num-processes "
                     "and --process-id together (or --cluster); missing "
                     f"{', '.join(missing)}.")
  last = settings.get("num_processes", 1) - 1
  if settings and not 0 <= settings["process_id"] <= last:
    raise ValueError(f"--process-id must be in 0..{last}, got "
                     f"{settings['process_id']}.")
  distributed.initialize(**settings)
  import jax
  return distributed.global_mesh() if jax.process_count() > 1 else None


def is_main() -> bool:
  """Whether this is process 0 (the one that prints and writes outputs)."""
  import jax
  return jax.process_index() == 0


def barrier(name: str) -> None:
  """Waits until every process reaches the barrier ``name``."""
  from jax.experimental import multihost_utils
  multihost_utils.sync_global_devices(name)


def own_rows(array, mesh):
  """This process's rows of the observations ``[N, ...]`` (read from a
  memory-mapped ``.npy`` only where they lie)."""
  import numpy as np
  return np.asarray(array[distributed.process_rows(len(array), mesh)])


def check_resume(folder, mesh) -> None:
  """``--resume``: refuses a checkpoint folder of another number of
  processes, or one that holds no checkpoint of this process's part."""
  folder = pathlib.Path(folder)
  if mesh is None:
    distributed.check_processes(folder, 1)
  part = folder if mesh is None else distributed.process_folder(folder)
  if not (part / "solve_state.ckpt").is_file():
    raise FileNotFoundError(
        f"--resume: no solve checkpoint at {str(folder)!r}; run without "
        "--resume to start this solve.")


# ---------------------------------------------------------------- launcher

def add_parser(sub) -> None:
  """``blindinv launch``'s subcommand."""
  import argparse
  m = sub.add_parser("launch", help="run 'solve' as several local processes "
                     "of one solve (docs/distributed.md)", description="e.g. "
                     "blindinv launch --local-processes 2 --cpu-devices 2 -- "
                     "solve --observations y.npy --out out")
  m.add_argument("--local-processes", type=int, required=True, metavar="P",
                 help="processes of the one solve to start on this machine")
  m.add_argument("--cpu-devices", type=int, metavar="D", help="on the CPU, "
                 "with D simulated devices per process")
  m.add_argument("--port", type=int, help="the coordinator's port (default: "
                 "a free one)")
  m.add_argument("command", nargs=argparse.REMAINDER,
                 help="-- solve --observations ... --out ...")
  m.set_defaults(func=lambda a: launch(
      a.command, a.local_processes, cpu_devices=a.cpu_devices, port=a.port))


def free_port() -> int:
  """A TCP port free on this machine now."""
  with socket.socket() as s:
    s.bind(("localhost", 0))
    return s.getsockname()[1]


def _forward(proc, prefix: str) -> None:
  for line in iter(proc.stdout.readline, ""):
    sys.stdout.write(f"{prefix}{line}")
    sys.stdout.flush()


def _stop(procs) -> None:
  for p in procs:
    if p.poll() is None:
      p.send_signal(signal.SIGTERM)
  end = time.time() + STOP_GRACE_S
  for p in procs:
    try:
      p.wait(max(0.1, end - time.time()))
    except subprocess.TimeoutExpired:
      p.kill()
      p.wait()


def launch(command: List[str], processes: int, *,
           cpu_devices: Optional[int] = None, port: Optional[int] = None,
           python: str = sys.executable) -> int:
  """Runs ``blindinv <command>`` as ``processes`` local processes of one
  solve (process i of P, the coordinator on ``localhost:port``), each
  line of their output prefixed ``[p<i>]``. ``cpu_devices``: run on the
  CPU with that many simulated devices per process. Returns 0 when every
  process succeeds; else, as soon as one fails, stops the others and
  returns its exit status."""
  command = command[1:] if command[:1] == ["--"] else list(command)
  if processes < 1:
    raise ValueError(f"--local-processes must be >= 1, got {processes}.")
  if not command:
    raise ValueError("launch needs a command after '--', e.g. blindinv "
                     "launch --local-processes 2 -- solve --observations "
                     "y.npy --out out")
  if command[0] not in ("solve",):
    raise ValueError(f"launch runs 'solve' on several processes; got "
                     f"{command[0]!r}.")
  port = port or free_port()
  procs, threads = [], []
  for i in range(processes):
    env = {**os.environ, "BLINDINV_COORDINATOR": f"localhost:{port}",
           "BLINDINV_NUM_PROCESSES": str(processes),
           "BLINDINV_PROCESS_ID": str(i), "PYTHONUNBUFFERED": "1"}
    if cpu_devices:
      env["JAX_PLATFORMS"] = "cpu"
      env["XLA_FLAGS"] = (env.get("XLA_FLAGS", "") + " --xla_force_host_"
                          f"platform_device_count={cpu_devices}").strip()
    p = subprocess.Popen([python, "-m", "blindinv_jax.cli", *command],
                         env=env, stdout=subprocess.PIPE,
                         stderr=subprocess.STDOUT, text=True, bufsize=1)
    procs.append(p)
    t = threading.Thread(target=_forward, args=(p, f"[p{i}] "), daemon=True)
    t.start()
    threads.append(t)
  try:
    while True:
      codes = [p.poll() for p in procs]
      bad = [(i, c) for i, c in enumerate(codes) if c not in (None, 0)]
      if bad:
        i, code = bad[0]
        _stop(procs)
        for t in threads:
          t.join(1)
        hint = ("fix the error above and run the command again" if code == 2
                else "run the same command with --resume to continue from "
                "the last checkpoint")
        print(f"blindinv launch: process {i} exited with status {code}; "
              f"stopped the others; {hint}.", file=sys.stderr)
        return code if code > 0 else 1
      if all(c == 0 for c in codes):
        for t in threads:
          t.join(1)
        return 0
      time.sleep(0.2)
  except KeyboardInterrupt:
    _stop(procs)
    raise
