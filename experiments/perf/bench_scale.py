"""Scaling benchmark: minibatch epochs for large N, and sharding over devices.

  python experiments/perf/bench_scale.py --out docs/bench_scale.json
  python experiments/perf/bench_scale.py --n 1000,10000 --devices 1,2,4 --inner-steps 2

1. Minibatch mode: N blurred MNIST digits (the 5,000 mnist5k digits repeated
   to N), shipped prior, conv surrogate, ``batch_size`` B, T1 = T2 =
   ``--inner-steps``. Each N runs in its own process: it compiles the epoch
   (timed separately), runs one epoch (one outer step) and reports its
   seconds, seconds per observation and the process's peak resident memory.
2. Sharding: ``--shard-n`` observations solved full-batch on 1, 2 and 4
   simulated CPU devices (``XLA_FLAGS=--xla_force_host_platform_device_count``):
   seconds per outer step and speed-up over 1 device. On one machine the
   simulated devices share the same cores, so this shows the overhead of
   sharding, not a speed-up; on a multi-GPU host the same code splits the
   work (docs/speed.md).

Writes the JSON and prints a markdown table.
"""
import argparse
import json
import os
import pathlib
import subprocess
import sys

MINIBATCH = r"""
import json, resource, sys, time
import jax, jax.numpy as jnp, numpy as np
from blindinv_jax import data, minibatch, operators as ops, runner, solver
from blindinv_jax.models.surrogates import make_surrogate
from blindinv_jax.priors import load_prior
n, b, inner = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
prior = load_prior("mnist")
x = np.concatenate([data.load_images("mnist5k", "train"),
                    data.load_images("mnist5k", "test")])
x = x[np.arange(n) % len(x)]
k = ops.gaussian_kernel(9, 2.0)
y = jnp.concatenate([ops.blur(jnp.asarray(x[i:i + 5000]), k, "zero")
                     for i in range(0, n, 5000)])
del x
cfg = solver.TUNED.replace(outer_steps=1, surrogate_steps=inner,
                           latent_steps=inner, batch_size=b, unroll=1)
module = make_surrogate("conv", 1)
state = solver.init_state(jax.random.key(0), y, prior, module, cfg, 1)
t0 = time.perf_counter()
compiled = runner.Compiled(minibatch.minibatch_outer_step,
                           settings=runner.Settings.of(cfg), surrogate=module,
                           config=cfg).lower(state, y, prior=prior).compile()
compile_s = time.perf_counter() - t0
t0 = time.perf_counter()
state, m = compiled(state, (y,), prior)
jax.block_until_ready(state.z)
epoch_s = time.perf_counter() - t0
print(json.dumps({"n": n, "batch_size": b, "inner_steps": inner,
                  "compile_s": round(compile_s, 2),
                  "epoch_s": round(epoch_s, 2),
                  "ms_per_observation": round(1000 * epoch_s / n, 3),
                  "peak_rss_mb": round(resource.getrusage(
                      resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
                  "finite": bool(m["finite"])}))
"""

SHARDED = r"""
import json, sys, time
import jax, jax.numpy as jnp, numpy as np
from blindinv_jax import data, minibatch, operators as ops, runner, solver
from blindinv_jax.models.surrogates import make_surrogate
from blindinv_jax.priors import load_prior
n, inner, steps = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
prior = load_prior("mnist")
y = ops.blur(jnp.asarray(data.load_images("mnist5k", "test", limit=n)),
             ops.gaussian_kernel(9, 2.0), "zero")
cfg = solver.TUNED.replace(outer_steps=steps + 1, surrogate_steps=inner,
                           latent_steps=inner, unroll=1)
d = len(jax.devices())
mesh = jax.make_mesh((d,), ("data",))
times = []
t = [time.perf_counter()]
def cb(step, m):
  t.append(time.perf_counter())
solver.solve(y, prior, surrogate="conv", config=cfg, mesh=mesh if d > 1 else None, callback=cb)
steps_s = np.diff(t)
print(json.dumps({"devices": d, "n": n, "inner_steps": inner,
                  "first_step_s": round(float(steps_s[0]), 2),
                  "step_s": round(float(np.median(steps_s[1:])), 3)}))
"""


def run(code, args, env=None):
  out = subprocess.run([sys.executable, "-c", code, *map(str, args)],
                       capture_output=True, text=True, env=env)
  if out.returncode:
    raise RuntimeError(out.stderr[-3000:])
  return json.loads(out.stdout.strip().splitlines()[-1])


def main(argv=None):
  ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  ap.add_argument("--n", default="1000,10000,100000")
  ap.add_argument("--batch-size", type=int, default=250)
  ap.add_argument("--inner-steps", type=int, default=1,
                  help="T1 = T2 (1 keeps an N=100,000 epoch to minutes)")
  ap.add_argument("--devices", default="1,2,4")
  ap.add_argument("--shard-n", type=int, default=64)
  ap.add_argument("--shard-steps", type=int, default=3)
  ap.add_argument("--out", default="docs/bench_scale.json")
  args = ap.parse_args(argv)
  import jax
  result = {"machine": f"{os.cpu_count()} CPU cores, "
                       f"{jax.default_backend()} backend",
            "minibatch": [], "sharding": []}
  for n in [int(v) for v in args.n.split(",") if v]:
    r = run(MINIBATCH, [n, args.batch_size, args.inner_steps])
    print(r, flush=True)
    result["minibatch"].append(r)
  for d in [int(v) for v in args.devices.split(",") if v]:
    env = dict(os.environ, JAX_PLATFORMS="cpu",
               XLA_FLAGS=f"--xla_force_host_platform_device_count={d}")
    r = run(SHARDED, [args.shard_n, args.inner_steps * 10, args.shard_steps],
            env)
    print(r, flush=True)
    result["sharding"].append(r)
  if result["sharding"]:
    base = result["sharding"][0]["step_s"]
    for r in result["sharding"]:
      r["speedup"] = round(base / r["step_s"], 2)
  out = pathlib.Path(args.out)
  out.parent.mkdir(parents=True, exist_ok=True)
  out.write_text(json.dumps(result, indent=1))
  lines = ["| N | batch | epoch (s) | ms / observation | compile (s) | "
           "peak RSS (MB) |", "|---|---|---|---|---|---|"]
  lines += [f"| {r['n']:,} | {r['batch_size']} | {r['epoch_s']} | "
            f"{r['ms_per_observation']} | {r['compile_s']} | "
            f"{r['peak_rss_mb']} |" for r in result["minibatch"]]
  lines += ["", "| devices | N | s / outer step | speed-up |",
            "|---|---|---|---|"]
  lines += [f"| {r['devices']} | {r['n']} | {r['step_s']} | {r['speedup']} |"
            for r in result["sharding"]]
  print("\n".join(lines))


if __name__ == "__main__":
  main()
