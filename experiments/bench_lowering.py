"""Times the solver's outer step under each inner-loop lowering.

  python experiments/bench_lowering.py --n 50 --inner 50 --unroll full,1,10

For each ``SolverConfig.unroll`` value: compile time of ``outer_step`` and the
median wall time of one outer step (T1 surrogate + T2 latent steps) on N
blurred held-out mnist5k digits with the shipped MNIST prior. The default
lowering (``solver.default_unroll()``) should be the fastest on the backend.
"""
import argparse
import json
import statistics
import time

import jax
import jax.numpy as jnp

from blindinv_jax import data, operators as ops, solver
from blindinv_jax.prior import load_prior


def main(argv=None):
  ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  ap.add_argument("--n", type=int, default=50)
  ap.add_argument("--inner", type=int, default=50, help="T1 = T2")
  ap.add_argument("--unroll", default="full,1")
  ap.add_argument("--repeats", type=int, default=3)
  ap.add_argument("--json", help="write results here")
  args = ap.parse_args(argv)
  prior = load_prior("mnist")
  x = jnp.asarray(data.load_images("mnist5k", "test", limit=args.n))
  y = ops.blur(x, ops.gaussian_kernel(9, 2.0))
  module = solver.make_surrogate("conv", 1)
  results = {"backend": jax.default_backend(), "devices": str(jax.devices()),
             "n": args.n, "inner": args.inner,
             "default_unroll": solver.default_unroll(), "runs": {}}
  for u in args.unroll.split(","):
    unroll = u if u == "full" else int(u)
    cfg = solver.SolverConfig(outer_steps=1, surrogate_steps=args.inner,
                              latent_steps=args.inner, unroll=unroll)
    state = solver.init_state(jax.random.key(0), y, prior, module, cfg, 1)
    t0 = time.perf_counter()
    step = solver.outer_step.lower(state, y, prior, module, cfg).compile()
    compile_s = time.perf_counter() - t0
    state, m = step(state, y, prior)                    # warm-up
    jax.block_until_ready(m)
    times = []
    for _ in range(args.repeats):
      t0 = time.perf_counter()
      state, m = step(state, y, prior)
      jax.block_until_ready(m)
      times.append(time.perf_counter() - t0)
    results["runs"][u] = {"compile_s": round(compile_s, 2),
                          "outer_step_s": round(statistics.median(times), 3)}
    print(f"unroll={u:>5}: compile {compile_s:6.1f} s, outer step "
          f"{statistics.median(times):6.2f} s (median of {args.repeats})",
          flush=True)
  if args.json:
    with open(args.json, "w") as f:
      json.dump(results, f, indent=2)
  return results


if __name__ == "__main__":
  main()
