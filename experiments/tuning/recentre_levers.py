"""Re-centring a solve whose kernel landed off centre (an investigation on ``val``).

  python experiments/tuning/recentre_levers.py --task edges --n 16 \\
      --boundaries scene --seeds 0-7 --out runs/recentre_val
  # the demo's choice (blur, scene border, the fast schedule):
  python experiments/tuning/recentre_levers.py --task blur --n 16 \\
      --boundaries scene --seeds 0-3 --schedule fast --out runs/recentre_val

Without a frame, a kernel shifted by ``c`` pixels and digits shifted the
other way explain the interior of the observations equally well, and many
draws of the solve settle at such a pair (docs/notes/2026-12-04-unknown-
borders.md: edge maps land 1 px off in 5 draws of 8). A blur or an edge
filter is centred by convention, and the prior draws centred digits, so the
pair can be moved back: shift the recovered digits by ``-c`` (the effective
kernel's energy centroid, cubic spline), project them onto G's range and
solve again from those latents, a fresh surrogate, the same key: what
``SolverConfig.recentre`` does (:mod:`blindinv_jax.recentre`), unrolled
here so that both solves are recorded whatever the rule would keep.

The first ``--n`` mnist5k ``val`` digits (all ten classes), blurred by the
9x9 Gaussian of sigma 2 (``--task blur``, ``conv_scene``) or their Sobel
edge maps (``--task edges``, ``conv``), with each border of
``--boundaries``; the tuned schedule (``--schedule fast``: the demo's), the
shipped prior, one restart per seed. For each draw it records the first
solve and the second (PSNR, centroid, L1 fit, kernel error, seconds) and the PSNR of the shifted digits before
the second solve. Writes ``OUT/recentre_<task>_<shift>.json`` (rows reused
when re-run with the same arguments).
"""
from __future__ import annotations

import argparse
import pathlib
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np
from restart_selection import restart_rows

from blindinv_jax import (
  data,
  metrics,
  operators as ops,
  project,
  recentre,
  resume,
  solver,
)
from blindinv_jax.models.surrogates import make_surrogate


def kept_psnr(row) -> float:
  """The PSNR of the solve :func:`blindinv_jax.recentre.keep`'s rule keeps
  of a row's two: the best fit among the more centred."""
  two = (row["first"], row["second"])
  return two[recentre.pick_centred([r["off_centre"] for r in two],
                                   [r["fit"] for r in two],
                                   solver.CENTRE_TOLERANCE)]["psnr"]


def main(argv=None):
  ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  ap.add_argument("--task", choices=("blur", "edges"), default="edges")
  ap.add_argument("--n", type=int, default=16, help="val digits")
  ap.add_argument("--boundaries", default="scene")
  ap.add_argument("--surrogate", default=None,
                  help="family (default: conv_scene for blur, conv for edges)")
  ap.add_argument("--seeds", default="0-7", help="FIRST-LAST")
  ap.add_argument("--schedule", choices=("tuned", "fast"), default="tuned",
                  help="solver.TUNED, or solver.FAST (the demo's)")
  ap.add_argument("--second-lrs", default="",
                  help="comma-separated latent learning rates of extra second "
                  "solves from the same moved-back start (recorded as "
                  "second_lr<LR>; the schedule's own is always 'second')")
  ap.add_argument("--second-restarts", type=int, default=1,
                  help="R > 1: also a second solve of R restarts, every one "
                  "from the moved-back start with its own surrogate "
                  "(recentre_restarts=R; recorded as second_r<R>, each "
                  "restart and the one select='centred' keeps)")
  ap.add_argument("--out", required=True)
  args = ap.parse_args(argv)
  extra = [float(v) for v in args.second_lrs.split(",") if v]
  fam = args.surrogate or ("conv_scene" if args.task == "blur" else "conv")
  cfg = solver.TUNED if args.schedule == "tuned" else solver.FAST
  first, last = (int(v) for v in args.seeds.split("-"))
  out = pathlib.Path(args.out)
  cache = resume.ResultCache(
      out / f"recentre_{args.task}_subpixel"
      f"{'' if args.schedule == 'tuned' else '_fast'}.json",
      {"task": args.task, "n": args.n, "split": "val", "prior": "mnist",
       "config": {k: v for k, v in cfg.__dict__.items()
                  if k not in ("select", "recentre", "recentre_restarts")},
       "surrogate": fam, "shift": "subpixel",
       "project": project.WARM_START})
  from blindinv_jax.priors import load_prior
  prior = load_prior("mnist")
  module = make_surrogate(fam, 1)
  x = jnp.asarray(data.load_images("mnist5k", "val", limit=args.n))
  k = ops.gaussian_kernel(9, 2.0) if args.task == "blur" else \
      jnp.asarray(ops.SOBEL)
  for b in args.boundaries.split(","):
    y = ops.blur(x, k, boundary=b)
    for seed in range(first, last + 1):
      name = f"{b}/seed{seed}"
      rr = f"second_r{args.second_restarts}"
      if name not in cache.rows or any(
          f"second_lr{lr:g}" not in cache.rows[name] for lr in extra) or (
          args.second_restarts > 1 and rr not in cache.rows[name]):
        t0 = time.perf_counter()
        key = jax.random.key(seed)
        res = solver.solve(y, prior, surrogate=fam, config=cfg, key=key)
        one = restart_rows(res, y, x, prior, module, np.asarray(k))[0]
        xs = recentre.shift_sources(res.sources, one["centroid"])[:, 0]
        row = {**cache.rows.get(name, {}), "first": one,
               "shifted_psnr": float(jnp.mean(metrics.psnr(xs, x))),
               "first_seconds": round(time.perf_counter() - t0, 1)}
        z0 = recentre.start(res, prior, key)
        for lr in [None] + extra:
          if ("second" if lr is None else f"second_lr{lr:g}") in row:
            continue                    # the first solve is deterministic
          c2 = cfg if lr is None else cfg.replace(latent_lr=lr)
          t1 = time.perf_counter()
          res2 = solver.solve(y, prior, surrogate=fam, config=c2, key=key,
                              init_latents=z0)
          row["second" if lr is None else f"second_lr{lr:g}"] = dict(
              restart_rows(res2, y, x, prior, module, np.asarray(k))[0],
              seconds=round(time.perf_counter() - t1, 1))
        if args.second_restarts > 1 and rr not in row:
          c2 = recentre.second_config(cfg.replace(
              recentre_restarts=args.second_restarts, select="centred"))
          t1 = time.perf_counter()
          res2 = solver.solve(y, prior, surrogate=fam, config=c2, key=key,
                              init_latents=jnp.broadcast_to(   # projected once
                                  z0, (args.second_restarts,) + z0.shape))
          rows_r = restart_rows(res2, y, x, prior, module, np.asarray(k))
          row[rr] = {"restarts": rows_r, "kept": int(res2.best_restart),
                     "seconds": round(time.perf_counter() - t1, 1)}
        row.pop("seconds", None)        # older files: the whole row's time
        cache.rows[name] = row
        cache.save()
      r = cache.rows[name]
      a, s = r["first"], r["second"]
      print(f"{args.task} {name:14s} first {a['psnr']:.2f} dB "
            f"(centroid {a['centroid']}, fit {a['fit']:.5f}) -> shifted "
            f"{r['shifted_psnr']:.2f} -> second {s['psnr']:.2f} dB (centroid "
            f"{s['centroid']}, fit {s['fit']:.5f}) [first "
            f"{r['first_seconds']} s, second {s.get('seconds', '?')} s]",
            flush=True)
      if args.second_restarts > 1:
        for i, s2 in enumerate(r[rr]["restarts"]):
          print(f"{'':{len(args.task) + 15}s} second, restart {i} of "
                f"{args.second_restarts}: {s2['psnr']:.2f} dB (off centre "
                f"{s2['off_centre']}, fit {s2['fit']:.5f})"
                f"{'  <- kept' if i == r[rr]['kept'] else ''}", flush=True)
      for lr in extra:
        s2 = r[f"second_lr{lr:g}"]
        print(f"{'':{len(args.task) + 15}s} second at latent lr {lr:g}: "
              f"{s2['psnr']:.2f} dB (centroid {s2['centroid']}, fit "
              f"{s2['fit']:.5f})", flush=True)
    rows = [cache.rows[f"{b}/seed{s}"] for s in range(first, last + 1)]
    kept = [kept_psnr(r) for r in rows]
    d = np.array(kept) - [r["first"]["psnr"] for r in rows]
    print(f"{args.task} {b}: first {np.mean([r['first']['psnr'] for r in rows]):.2f}"
          f" -> second {np.mean([r['second']['psnr'] for r in rows]):.2f} -> "
          f"kept by the rule {np.mean(kept):.2f} dB (mean change "
          f"{d.mean():+.2f}, better in {int((d > 0).sum())} of {len(d)} draws)",
          flush=True)
    if args.second_restarts > 1:
      two = [dict(r, second=r[rr]["restarts"][r[rr]["kept"]]) for r in rows]
      print(f"{args.task} {b}, second solve of {args.second_restarts} "
            f"restarts: its kept one "
            f"{np.mean([r['second']['psnr'] for r in two]):.2f} -> kept by "
            f"the rule {np.mean([kept_psnr(r) for r in two]):.2f} dB",
            flush=True)
    for lr in extra:
      two = [dict(r, second=r[f"second_lr{lr:g}"]) for r in rows]
      print(f"{args.task} {b}, second at latent lr {lr:g}: second "
            f"{np.mean([r['second']['psnr'] for r in two]):.2f} -> kept "
            f"{np.mean([kept_psnr(r) for r in two]):.2f} dB", flush=True)
  return cache.rows


if __name__ == "__main__":
  try:
    main()
  except (ValueError, FileNotFoundError) as e:
    print(f"recentre_levers.py: error: {e}", file=sys.stderr)
    sys.exit(2)
