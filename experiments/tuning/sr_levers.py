"""Blind super-resolution levers on ``val``: each variant of the solve on the
same observations, PSNR against the clean digits and the paired difference
to the first variant.

  python experiments/tuning/sr_levers.py --factor 2 --n 16 \
      --variants plain,warm,bicubic --out runs/sr_levers

Variants: ``plain`` (random latents, the solve as ``reproduce.py`` runs
it), ``warm`` (restart 0 from the projection of the bicubic-upsampled
observations onto the prior, :func:`blindinv_jax.project.upsampled_latents`:
what ``solve`` now does on a smaller grid),
``pgd_known`` (PGD with the true forward model, the target),
``bicubic``; ``restarts=R`` / ``surrogate_lr=V`` / ``latent_lr=V`` /
``outer_steps=T`` append to a variant after a colon, e.g.
``warm:surrogate_lr=1e-3``; ``refine=R`` refines the solve's latents with R
fresh starts per observation through its surrogate
(:func:`blindinv_jax.refine.refine_solve`, the lowest fit kept).
"""
from __future__ import annotations

import argparse
import json
import pathlib
import time

import jax
import numpy as np

from blindinv_jax import baselines, data, metrics, priors, solver, tasks
from blindinv_jax.config import TUNED
from blindinv_jax.refine import refine_solve


def variant_config(spec: str):
  """``(name, config, refine restarts)`` of a variant spec."""
  name, *opts = spec.split(":")
  cfg, refine = TUNED, 0
  for o in opts:
    k, v = o.split("=")
    if k == "refine":
      refine = int(v)
      continue
    cfg = cfg.replace(**{k: type(getattr(TUNED, k) or 0.0)(float(v))
                         if k != "restarts" and k != "outer_steps"
                         else int(v)})
  return name, cfg, refine


def main(argv=None):
  ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  ap.add_argument("--factor", type=int, default=2)
  ap.add_argument("--noise", type=float, default=0.0)
  ap.add_argument("--n", type=int, default=16)
  ap.add_argument("--split", default="val")
  ap.add_argument("--variants", default="plain,warm")
  ap.add_argument("--out", default="runs/sr_levers")
  a = ap.parse_args(argv)
  out = pathlib.Path(a.out)
  out.mkdir(parents=True, exist_ok=True)
  x = data.load_images("mnist5k", a.split)[:a.n]
  task = tasks.TaskSpec(kind="downsample", kernel_size=7, sigma=1.0,
                        factor=a.factor, noise_sigma=a.noise)
  fwd, info = tasks.forward_model(task)
  y = fwd(x[:, None])
  if a.noise:
    y = y + a.noise * jax.random.normal(jax.random.key(1), y.shape)
  prior = priors.load_prior("mnist")
  rows, first = [], None
  for spec in a.variants.split(","):
    name, cfg, refine = variant_config(spec)
    t0 = time.time()
    if name == "bicubic":
      xh = np.asarray(baselines.bicubic_upsample(y, a.factor))
    elif name == "pgd_known":
      xh = np.asarray(baselines.pgd(y, prior, lambda s: fwd(s),
                                    config=cfg)[0][:, 0])
    else:
      # "plain" passes random latents explicitly: solve's own default on a
      # smaller grid is the warm start.
      init = (None if name == "warm" else prior.sample_latents(
          jax.random.fold_in(jax.random.key(0), 3), (len(y), 1)))
      res = solver.solve(y, prior, surrogate="downsample", config=cfg,
                         key=jax.random.key(0), init_latents=init)
      if refine:
        res, _ = refine_solve(res, y, prior, restarts=refine, config=cfg,
                              key=jax.random.key(1))
      xh = np.asarray(res.sources[:, 0])
    p = np.asarray(metrics.psnr(xh, x))
    first = p if first is None else first
    d = p - first
    rows.append({"variant": spec, "psnr": float(p.mean()),
                 "psnr_sd": float(p.std()), "paired": float(d.mean()),
                 "paired_se": float(d.std() / np.sqrt(len(d))),
                 "seconds": time.time() - t0})
    print(json.dumps(rows[-1]), flush=True)
  (out / f"sr{a.factor}_{a.split}.json").write_text(json.dumps(
      {"factor": a.factor, "noise": a.noise, "n": a.n, "split": a.split,
       "rows": rows}, indent=1))


if __name__ == "__main__":
  main()
