"""Seconds per outer step of one blind solve on 1 or 2 local processes.

  python experiments/perf/distributed_scaling.py --n 200,2000 \
      --out docs/results/distributed/scaling.json

Each row runs ``--steps`` outer steps of the solve (linear conv surrogate,
the shipped MNIST prior, ``--inner`` surrogate and latent steps per outer
step, minibatch mode with ``--batch`` observations per batch) on N blurred
mnist5k training digits, with the layout named: ``1x1`` (one process, one
device), ``1x2`` (one process, two devices), ``2x1`` (two processes of one
CPU device each, over gloo). The first outer step (compilation) is left
out of the mean. On a machine with two cores this shows what the
processes cost, not a speed-up: every layout shares the same two cores.
"""
from __future__ import annotations

import argparse
import json
import os
import pathlib
import platform
import subprocess
import sys
import time

LAYOUTS = {"1x1": (1, 1), "1x2": (1, 2), "2x1": (2, 1)}


def worker(a) -> None:
  from blindinv_jax import distributed
  if a.processes > 1:
    distributed.initialize(f"localhost:{a.port}", a.processes, a.process_id)
  import jax
  import numpy as np

  from blindinv_jax import priors, solver
  from blindinv_jax.config import TUNED
  y = np.load(a.observations, mmap_mode="r")
  mesh = distributed.global_mesh() if jax.device_count() > 1 else None
  if mesh is not None and a.processes > 1:
    y = y[distributed.process_rows(len(y), mesh)]
  y = np.asarray(y)
  cfg = TUNED.replace(outer_steps=a.steps, surrogate_steps=a.inner,
                      latent_steps=a.inner, batch_size=a.batch)
  stamps = [time.perf_counter()]
  solver.solve(y, priors.load_prior("mnist"), surrogate="conv", config=cfg,
               mesh=mesh, callback=lambda t, m: stamps.append(
                   time.perf_counter()))
  if jax.process_index() == 0:
    d = np.diff(stamps)
    print("RESULT " + json.dumps({"first_s": float(d[0]),
                                  "step_s": float(np.mean(d[1:])),
                                  "devices": jax.device_count()}),
          flush=True)


def run_layout(layout: str, observations, a) -> dict:
  from blindinv_jax.launch import free_port
  processes, devices = LAYOUTS[layout]
  port = free_port()
  env = {**os.environ, "JAX_PLATFORMS": "cpu",
         "XLA_FLAGS": f"--xla_force_host_platform_device_count={devices}"}
  cmd = lambda i: [sys.executable, __file__, "--worker", "--observations",
                   str(observations), "--processes", str(processes),
                   "--process-id", str(i), "--port", str(port), "--steps",
                   str(a.steps), "--inner", str(a.inner), "--batch",
                   str(a.batch)]
  t0 = time.time()
  procs = [subprocess.Popen(cmd(i), env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
           for i in range(processes)]
  outs = [p.communicate()[0] for p in procs]
  for i, (p, o) in enumerate(zip(procs, outs)):
    if p.returncode:
      raise RuntimeError(f"{layout}, process {i} exited with status "
                         f"{p.returncode}:\n{o[-3000:]}")
  line = [l for l in outs[0].splitlines() if l.startswith("RESULT ")][0]
  return {"layout": layout, "processes": processes,
          "devices_per_process": devices, **json.loads(line[7:]),
          "wall_s": time.time() - t0}


def main(argv=None):
  ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  ap.add_argument("--n", default="200,2000")
  ap.add_argument("--layouts", default="1x1,1x2,2x1")
  ap.add_argument("--steps", type=int, default=3)
  ap.add_argument("--inner", type=int, default=5)
  ap.add_argument("--batch", type=int, default=100)
  ap.add_argument("--out", default="runs/distributed_scaling.json")
  ap.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
  ap.add_argument("--observations", help=argparse.SUPPRESS)
  ap.add_argument("--processes", type=int, default=1, help=argparse.SUPPRESS)
  ap.add_argument("--process-id", type=int, default=0, help=argparse.SUPPRESS)
  ap.add_argument("--port", type=int, default=0, help=argparse.SUPPRESS)
  a = ap.parse_args(argv)
  if a.worker:
    return worker(a)
  import numpy as np

  from blindinv_jax import data, operators as ops
  out = pathlib.Path(a.out)
  out.parent.mkdir(parents=True, exist_ok=True)
  rows = []
  for n in map(int, a.n.split(",")):
    x = data.load_images("mnist5k", "train")[:n]
    y = np.asarray(ops.blur(x, ops.gaussian_kernel(9, 2.0)))
    path = out.parent / f".scaling_y_{n}.npy"
    np.save(path, y)
    for layout in a.layouts.split(","):
      r = {"n": n, **run_layout(layout, path, a)}
      rows.append(r)
      print(json.dumps(r), flush=True)
    path.unlink()
  cpu = subprocess.run(["lscpu"], capture_output=True, text=True).stdout
  model = next((l.split(":", 1)[1].strip() for l in cpu.splitlines()
                if l.startswith("Model name")), platform.processor())
  out.write_text(json.dumps({
      "machine": f"{model}, {os.cpu_count()} cores", "steps": a.steps,
      "inner": a.inner, "batch": a.batch, "rows": rows}, indent=1))


if __name__ == "__main__":
  main()
