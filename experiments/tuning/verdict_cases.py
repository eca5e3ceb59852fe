"""Does the blind verdict (``blindinv_jax.verdict``) warn where the recovery
is worse than the observations, and only there?

  python experiments/tuning/verdict_cases.py --out runs/verdict \\
      --faces-prior runs/faces_case/faces_prior --faces runs/faces_case/faces

For each case: the observations, a blind solve as the experiment (or the
faces walk-through) runs it, and both signals, next to what the truth says:

* the four MNIST tasks (``experiments/paper/configs/mnist_{deblur,edges,
  sep1,sep4}.py``) on the first ``--n`` mnist5k ``val`` digits, the
  shipped prior, the ceiling from ``--n`` clean ``val`` digits;
* the faces case (``docs/own-data.md``): the 16 ``test`` faces of
  ``--faces`` through a 7x7 horizontal motion blur, noise sigma 0.03, the
  prior ``--faces-prior``, the ceiling from the 16 ``val`` faces.

Writes ``OUT/verdict_cases.json`` (rows reused when re-run) and prints one
line per case: the observations' and the recovery's PSNR against the truth,
and each signal with its warning.
"""
from __future__ import annotations

import argparse
import pathlib
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np

from blindinv_jax import (
  data,
  metrics,
  operators as ops,
  resume,
  solver,
  verdict,
)
from blindinv_jax.config import TUNED
from blindinv_jax.experiment import simulate
from blindinv_jax.options import load_experiment
from blindinv_jax.priors import load_prior, resolve
from blindinv_jax.project import project

CONFIGS = pathlib.Path(__file__).resolve().parents[1] / "paper" / "configs"
MNIST = ("mnist_deblur", "mnist_edges", "mnist_sep1", "mnist_sep4")


def case_row(prior, x, y, surrogate, config, x_clean, steps) -> dict:
  """The raw signals and the truth's scores for one case (the verdicts
  are computed from them when printed, so a change of threshold needs no
  new solve)."""
  t0 = time.perf_counter()
  res = solver.solve(y, prior, num_sources=x.shape[1], surrogate=surrogate,
                     config=config, key=jax.random.key(0))
  src = np.asarray(res.sources)
  row = {"fit_db": verdict.pooled_db(res.reconstruction, y)}
  if verdict.image_like(y.shape, src.shape):
    x_hat, _, _ = project(prior, x_clean, steps=steps, key=jax.random.key(0))
    row.update(
        projection_db=verdict.identity_fit_db(prior, y, steps),
        ceiling_db=verdict.pooled_db(x_hat, x_clean),
        corruption_db=verdict.pooled_db(res.reconstruction, src[:, 0]))
  matched = metrics.score(res.sources, x, x.shape[1] > 1)
  return {"observation_psnr": verdict.observation_psnr(y, x),
          "recovery_psnr": matched["psnr"], "signals": row,
          "family": res.choice.family if res.choice else surrogate,
          "seconds": round(time.perf_counter() - t0, 1)}


def verdicts(signals: dict):
  """(before, after) verdict dicts of a row's signals."""
  if "projection_db" not in signals:
    return None, verdict.after_solve(signals["fit_db"])
  return (verdict.before_solve(signals["projection_db"],
                               signals["ceiling_db"]),
          verdict.after_solve(signals["fit_db"], signals["projection_db"],
                              signals["corruption_db"]))


def mnist_case(name: str, n: int, steps: int):
  cfg = load_experiment(str(CONFIGS / f"{name}.py"))
  cfg = cfg.replace(data=cfg.data.__class__(**{**cfg.data.__dict__,
                                                "split": "val", "n": n}))
  prior = load_prior(cfg.prior)
  x, y, _, _ = simulate(cfg, prior.image_shape)
  clean = jnp.asarray(data.load_images("mnist5k", "val", limit=n))
  return prior, x, y, cfg.surrogate, cfg.solver, clean


def faces_case(prior_dir: str, folder: str):
  prior = resolve(prior_dir)
  size = prior.image_shape[:2]
  x = jnp.asarray(data.load_images(f"folder:{folder}", "test",
                                   image_size=size))
  k = np.zeros((7, 7), np.float32)
  k[3, :] = 1 / 7
  y = ops.add_noise(jax.random.key(1), ops.blur(x, k), 0.03)
  clean = jnp.asarray(data.load_images(f"folder:{folder}", "val",
                                       image_size=size))
  return prior, x[:, None], y, "auto", TUNED, clean


def main(argv=None):
  ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  ap.add_argument("--out", required=True)
  ap.add_argument("--n", type=int, default=16, help="val digits per task")
  ap.add_argument("--steps", type=int, default=1000,
                  help="projection steps (prior-report's default)")
  ap.add_argument("--cases", default=",".join(MNIST + ("faces",)))
  ap.add_argument("--faces-prior", default=None)
  ap.add_argument("--faces", default=None, help="the faces folder")
  args = ap.parse_args(argv)
  cache = resume.ResultCache(pathlib.Path(args.out) / "verdict_cases2.json",
                             {"n": args.n, "steps": args.steps,
                              "faces_prior": args.faces_prior})
  for case in args.cases.split(","):
    if case not in cache.rows:
      if case == "faces":
        if not (args.faces_prior and args.faces):
          raise ValueError("the faces case needs --faces-prior and --faces")
        setup = faces_case(args.faces_prior, args.faces)
      else:
        setup = mnist_case(case, args.n, args.steps)
      cache.rows[case] = case_row(*setup, args.steps)
      cache.save()
    r = cache.rows[case]
    obs = r["observation_psnr"]
    before, after = verdicts(r["signals"])
    print(f"{case:13s} observations {obs[0] if obs else float('nan'):.2f} dB,"
          f" recovery {r['recovery_psnr'][0]:.2f} dB ({r['family']}) | "
          f"before: {before['message'] if before else '-'} | after: "
          f"{after['message']}", flush=True)
  return cache.rows


if __name__ == "__main__":
  try:
    main()
  except (ValueError, FileNotFoundError) as e:
    print(f"verdict_cases.py: error: {e}", file=sys.stderr)
    sys.exit(2)
