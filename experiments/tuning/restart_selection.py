"""Which restart to keep once no frame pins the kernel (an investigation on ``val``).

  python experiments/tuning/restart_selection.py --task blur --n 16 \\
      --boundaries scene,reflect,circular --restarts 4 --seeds 0-7 \\
      --out runs/restart_val

The first ``--n`` mnist5k ``val`` digits (all ten classes), blurred by the
9x9 Gaussian of sigma 2 (``--task blur``, surrogate ``conv_scene``) or their
Sobel edge maps (``--task edges``, surrogate ``conv``), with each border
convention (``--boundaries``), are solved blindly with the tuned schedule,
the shipped prior and one restart per seed (``--seeds``: separate solves,
the same draws as restarts but unbatched, which XLA:CPU runs faster than a
vmapped surrogate); the seeds are then taken in groups of ``--restarts``
as the restarts of one solve. For every draw it records what a blind user can see (the L1 data fit, the effective kernel's
energy centroid and spread, its sum) and what only the truth tells (PSNR of
the recovered digits, :func:`blindinv_jax.metrics.kernel_error`), then
prints what each selection rule would have kept:

* ``fit``: the lowest L1 data loss (the paper's, today's);
* ``centred``: the effective kernel whose energy centroid is nearest the
  centre;
* ``oracle``: the best PSNR (not blind: the ceiling of any rule).

Writes ``OUT/restarts_<task>.json`` (rows reused when re-run with the same
arguments).
"""
from __future__ import annotations

import argparse
import pathlib
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np

from blindinv_jax import data, metrics, operators as ops, resume, solver
from blindinv_jax.algorithm import stack_sources
from blindinv_jax.models.surrogates import (
  effective_kernel,
  kernel_centroid,
  make_surrogate,
)
from blindinv_jax.priors import load_prior


def restart_rows(res, y, x, prior, module, k_true) -> list:
  """One dict per restart of ``res.state``: fit, centroid, PSNR, kernel error."""
  st = res.state
  rows = []
  for r in range(st.z.shape[0]):
    params = jax.tree_util.tree_map(lambda a, r=r: a[r], st.surrogate_params)
    xr = prior.generate(st.z[r])                          # [N, S, H, W, C]
    y_hat = module.apply(params, stack_sources(xr))
    k = np.asarray(effective_kernel(params))[:, :, 0, 0]
    cen = np.asarray(kernel_centroid(params))
    rows.append({
        "fit": float(jnp.mean(jnp.abs(y_hat - y))),
        "centroid": [round(float(v), 3) for v in cen],
        "off_centre": round(float(np.hypot(*cen)), 3),
        "kernel_sum": round(float(k.sum()), 4),
        "psnr": float(jnp.mean(metrics.psnr(xr[:, 0], x))),
        "kernel_error": metrics.kernel_error(k, k_true)["error"]})
  return rows


RULES = {"fit": lambda rs: min(range(len(rs)), key=lambda i: rs[i]["fit"]),
         "centred": lambda rs: min(range(len(rs)),
                                   key=lambda i: rs[i]["off_centre"]),
         "oracle": lambda rs: max(range(len(rs)), key=lambda i: rs[i]["psnr"])}


def main(argv=None):
  ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  ap.add_argument("--task", choices=("blur", "edges"), default="blur")
  ap.add_argument("--n", type=int, default=16, help="val digits")
  ap.add_argument("--boundaries", default="scene,reflect,circular")
  ap.add_argument("--surrogate", default=None,
                  help="family (default: conv_scene for blur, conv for edges)")
  ap.add_argument("--restarts", type=int, default=4,
                  help="seeds per group (the restarts a rule chooses among)")
  ap.add_argument("--seeds", default="0-7", help="FIRST-LAST")
  ap.add_argument("--out", required=True)
  args = ap.parse_args(argv)
  fam = args.surrogate or ("conv_scene" if args.task == "blur" else "conv")
  cfg = solver.TUNED
  first, last = (int(v) for v in args.seeds.split("-"))
  out = pathlib.Path(args.out)
  cache = resume.ResultCache(
      out / f"restarts_{args.task}.json",
      {"task": args.task, "n": args.n, "split": "val", "prior": "mnist",
       "config": {k: v for k, v in cfg.__dict__.items() if k != "select"},
       "surrogate": fam})
  prior = load_prior("mnist")
  module = make_surrogate(fam, 1)
  x = jnp.asarray(data.load_images("mnist5k", "val", limit=args.n))
  k = ops.gaussian_kernel(9, 2.0) if args.task == "blur" else \
      jnp.asarray(ops.SOBEL)
  for b in args.boundaries.split(","):
    y = ops.blur(x, k, boundary=b)
    for seed in range(first, last + 1):
      name = f"{b}/seed{seed}"
      if name not in cache.rows:
        t0 = time.perf_counter()
        res = solver.solve(y, prior, surrogate=fam, config=cfg,
                           key=jax.random.key(seed))
        cache.rows[name] = {**restart_rows(
            res, y, x, prior, module, np.asarray(k))[0],
            "seconds": round(time.perf_counter() - t0, 1)}
        cache.save()
      r = cache.rows[name]
      print(f"{args.task} {name:16s} {r['psnr']:.2f} dB, fit {r['fit']:.5f}, "
            f"centroid {r['centroid']}, kernel error {r['kernel_error']:.3f} "
            f"({r['seconds']} s)", flush=True)
    seeds = list(range(first, last + 1))
    for g in range(0, len(seeds) - args.restarts + 1, args.restarts):
      rs = [cache.rows[f"{b}/seed{s}"] for s in seeds[g:g + args.restarts]]
      picks = {rule: rs[f(rs)]["psnr"] for rule, f in RULES.items()}
      print(f"{args.task} {b} seeds {seeds[g]}-{seeds[g] + args.restarts - 1}"
            " keeps: " + ", ".join(f"{k} {v:.2f}" for k, v in picks.items()),
            flush=True)
  return cache.rows


if __name__ == "__main__":
  try:
    main()
  except (ValueError, FileNotFoundError) as e:
    print(f"restart_selection.py: error: {e}", file=sys.stderr)
    sys.exit(2)
