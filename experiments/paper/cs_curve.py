"""Blind compressed sensing against N: recovery from K Gaussian measurements
of each image with the matrix unknown, as the number of observations grows.

  python experiments/paper/cs_curve.py --ns 100,200,500,1000,2000 --k 200 \
      --out runs/cs_curve

The ground truth is the shipped prior's own samples (G(z) for random z),
labelled as such: the 500 held-out test digits are too few for the top of the
curve, and on the prior's samples the prior is not what limits the recovery.
For each N the ``dense`` surrogate (a learned ``A [784, K]``) runs in
minibatch mode (``--batch`` observations per batch) on the first N images,
checkpointed under ``out/blind_<N>`` (a killed run resumes); PSNR is measured
on the first ``--eval`` images, which every N contains. Beside it, on those
images: PGD with the true A (CSGM, the target), least squares and the Lasso
with the true A. Rows are kept in ``out/cs_curve.json`` as they finish.
"""
from __future__ import annotations

import argparse
import pathlib
import time

import jax
import numpy as np

from blindinv_jax import (
  baselines,
  metrics,
  operators as ops,
  priors,
  resume,
  solver,
)
from blindinv_jax.config import TUNED


def main(argv=None):
  ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  ap.add_argument("--ns", default="100,200,500,1000,2000")
  ap.add_argument("--k", type=int, default=200)
  ap.add_argument("--eval", type=int, default=50)
  ap.add_argument("--batch", type=int, default=100)
  ap.add_argument("--outer-steps", type=int, default=TUNED.outer_steps)
  ap.add_argument("--seed", type=int, default=0)
  ap.add_argument("--out", default="runs/cs_curve")
  a = ap.parse_args(argv)
  out = pathlib.Path(a.out)
  ns = sorted(map(int, a.ns.split(",")))
  prior = priors.load_prior("mnist")
  x = np.asarray(prior.generate(prior.sample_latents(
      jax.random.key(11), ns[-1])))
  m = int(np.prod(x.shape[1:]))
  mat = ops.gaussian_matrix(jax.random.key(a.seed), m, a.k)
  y = np.asarray(ops.measure(x, mat))
  ev = slice(0, a.eval)
  cfg = TUNED.replace(outer_steps=a.outer_steps)
  cache = resume.ResultCache(out / "cs_curve.json", identity={
      "k": a.k, "eval": a.eval, "batch": a.batch, "seed": a.seed,
      "outer_steps": a.outer_steps, "truth": "mnist prior samples, key 11"})
  score = lambda xh: np.asarray(metrics.psnr(np.asarray(xh), x[ev]))

  def row(name, fn):
    if name not in cache.rows:
      t0 = time.time()
      p = score(fn())
      cache.rows[name] = {"psnr": float(p.mean()), "psnr_sd": float(p.std()),
                          "seconds": time.time() - t0}
      cache.save()
    print(name, cache.rows[name], flush=True)

  fwd = lambda s: ops.measure(s[:, 0], mat)
  row("pgd_known", lambda: baselines.pgd(y[ev], prior, fwd, config=cfg)[0]
      [:, 0])
  row("least_squares", lambda: baselines.least_squares_measurements(
      y[ev], mat, x.shape[1:]))
  row("lasso", lambda: baselines.lasso_measurements(y[ev], mat, x.shape[1:]))
  def blind(n):
    return solver.solve(y[:n], prior, surrogate="dense",
                        config=cfg.replace(batch_size=min(a.batch, n)),
                        checkpoint_dir=out / f"blind_{n}").sources[ev, 0]
  for n in ns:
    row(f"blind_{n}", lambda n=n: blind(n))


if __name__ == "__main__":
  main()
