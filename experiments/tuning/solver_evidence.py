"""Blind deblurring / edge-map inversion of held-out digits with the solver.

  python experiments/tuning/solver_evidence.py --task blur --n 50 --out runs/evidence_blur
  python experiments/tuning/solver_evidence.py --task sobel --n 50 --out runs/evidence_sobel

Simulates observations of the first N mnist5k test digits (9x9 Gaussian blur
of sigma 2, or the Sobel edge map), solves them blindly with the shipped prior
and the paper's schedule (override with --outer-steps, --latent-lr, ...), and
writes metrics.json (PSNR and SSIM of the observation and of the recovery
against the clean digits; normalised error and correlation of the surrogate's effective
kernel against the true one after the best shift and scale), history.json and
figure.png, and the recovered digits (recovered.npy).
"""
import argparse
import json
import pathlib
import time

import jax
import jax.numpy as jnp
import numpy as np

from blindinv_jax import solver, viz
from blindinv_jax.demo import blurred_digits, score_blind_kernel_solve
from blindinv_jax.priors import load_prior


def main(argv=None):
  ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  ap.add_argument("--task", choices=("blur", "sobel"), default="blur")
  ap.add_argument("--n", type=int, default=50)
  ap.add_argument("--outer-steps", type=int, default=100)
  ap.add_argument("--inner-steps", type=int, default=50, help="T1 = T2")
  ap.add_argument("--latent-lr", type=float, default=3e-4)
  ap.add_argument("--restarts", type=int, default=1)
  ap.add_argument("--seed", type=int, default=0)
  ap.add_argument("--out", required=True)
  args = ap.parse_args(argv)
  out = pathlib.Path(args.out)
  out.mkdir(parents=True, exist_ok=True)
  prior = load_prior("mnist")
  x, y, k_true = blurred_digits(args.task, "test", args.n)
  cfg = solver.SolverConfig(outer_steps=args.outer_steps,
                            surrogate_steps=args.inner_steps,
                            latent_steps=args.inner_steps,
                            latent_lr=args.latent_lr, restarts=args.restarts)
  t0 = time.perf_counter()
  log = []
  res = solver.solve(y, prior, num_sources=1, surrogate="conv", config=cfg,
                     key=jax.random.key(args.seed),
                     callback=lambda t, m: log.append(
                         (t, round(time.perf_counter() - t0, 1),
                          float(np.min(m["latent_loss"])))) or print(
                             f"step {t}: latent loss "
                             f"{float(np.min(m['latent_loss'])):.4f}",
                             flush=True))
  seconds = time.perf_counter() - t0
  scores, rec, k_est = score_blind_kernel_solve(x, y, res, k_true)
  result = {"task": args.task, "n": args.n, "config": cfg.__dict__,
            "seconds": round(seconds, 1), **scores, "log": log}
  (out / "metrics.json").write_text(json.dumps(result, indent=1))
  np.save(out / "effective_kernel.npy", k_est)
  np.save(out / "recovered.npy", np.asarray(rec))
  k = min(args.n, 12)
  viz.save_rows(out / "figure.png",
                [jnp.clip(y[:k], -1, 1), jnp.clip(res.reconstruction[:k], -1, 1),
                 rec[:k], x[:k]],
                ["observed", "estimated\ncorruption", "recovered", "original"],
                title=f"{args.task}: observation "
                f"{scores['psnr_observation'][0]:.2f} dB, recovered "
                f"{scores['psnr_recovered'][0]:.2f} dB, SSIM "
                f"{scores['ssim_observation'][0]:.3f} -> "
                f"{scores['ssim_recovered'][0]:.3f} (n={args.n})")
  print(json.dumps({k: v for k, v in result.items() if k != "log"}, indent=1))
  return result


if __name__ == "__main__":
  main()
