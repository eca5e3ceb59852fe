"""Quality of a prior (DCGAN or VAE): sample grid and representation error.

The representation error is the PSNR of ``project(prior, x)`` on held-out
mnist5k digits (1,000 Adam steps at 1e-2 on z, z projected by the prior's P:
clipped to [-1, 1] for the GANs, free for the VAE).

  # the curve over snapshots of a training run (the command behind docs/results.md):
  python experiments/assets/prior_quality.py --workdir runs/prior_mnist \
      --snapshots 1000,2000,3000,4000,6000,8000 --n 200 --out docs
  # one prior (the shipped one by default):
  python experiments/assets/prior_quality.py --prior mnist --n 200
  # the VAE's snapshots on val (it was not trained on val), then the pick on test:
  python experiments/assets/prior_quality.py --workdir runs/prior_vae \
      --prior runs/prior_vae --split val --n 200 --out runs/vae_quality_val
  python experiments/assets/prior_quality.py --prior runs/prior_vae/snapshots/prior_00NNNNN.ckpt \
      --n 200 --out runs/vae_quality_test

Writes ``<out>/prior_quality.json``, ``<out>/prior_curve.png`` and
``<out>/prior_samples.png`` (an 8x8 grid of ``--prior``, the shipped prior by
default). Results already in the JSON are reused, so the command can be re-run
as new snapshots appear.
"""
import argparse
import json
import pathlib
import sys

import jax
import numpy as np

from blindinv_jax import data, metrics, viz
from blindinv_jax.priors import load_prior
from blindinv_jax.project import project


def evaluate_projection(prior, x, steps: int = 1000, lr: float = 1e-2,
                        restarts: int = 1, seed: int = 0) -> dict:
  """Projects x [N, H, W, C] and measures PSNR of the projections (dB)."""
  import time
  t0 = time.perf_counter()
  x_hat, z, loss = project(prior, x, steps=steps, lr=lr, restarts=restarts,
                           key=jax.random.key(seed))
  x_hat = jax.block_until_ready(x_hat)
  seconds = time.perf_counter() - t0
  p = np.asarray(metrics.psnr(x_hat, x))
  return {"psnr_mean": float(p.mean()), "psnr_std": float(p.std()),
          "psnr_median": float(np.median(p)), "psnr_min": float(p.min()),
          "psnr_max": float(p.max()), "l1_mean": float(np.mean(loss)),
          "n": int(x.shape[0]), "steps": steps, "lr": lr,
          "restarts": restarts, "seconds": round(seconds, 2),
          "psnr": p.tolist(), "x_hat": np.asarray(x_hat)}


def main(argv=None):
  ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  ap.add_argument("--workdir", help="train-prior workdir (curve over snapshots)")
  ap.add_argument("--prior", default="mnist", help="prior name or path")
  ap.add_argument("--n", type=int, default=200, help="held-out digits")
  ap.add_argument("--split", default="test", choices=("test", "val"),
                  help="mnist5k split of the digits: 'val' to choose a "
                  "snapshot (for a prior not trained on it), 'test' to report")
  ap.add_argument("--offset", type=int, default=0,
                  help="first test digit used (e.g. --offset 400 --n 100 for "
                  "a validation subset disjoint from the first 200)")
  ap.add_argument("--steps", type=int, default=1000)
  ap.add_argument("--lr", type=float, default=1e-2)
  ap.add_argument("--restarts", type=int, default=1)
  ap.add_argument("--every", type=int, default=1000,
                  help="evaluate snapshots whose step is a multiple of this")
  ap.add_argument("--snapshots", help="comma-separated snapshot steps to "
                  "evaluate (instead of --every)")
  ap.add_argument("--out", default="docs")
  args = ap.parse_args(argv)
  out = pathlib.Path(args.out)
  out.mkdir(parents=True, exist_ok=True)
  res_path = out / "prior_quality.json"
  results = json.loads(res_path.read_text()) if res_path.exists() else {}
  setting = {"n": args.n, "offset": args.offset, "steps": args.steps,
             "lr": args.lr, "restarts": args.restarts, "split": args.split}
  if {"offset": 0, "split": "test", **results.get("setting", {})} != setting:
    results = {"setting": setting, "curve": {}}

  x = data.load_images("mnist5k", args.split, limit=args.offset + args.n)
  x = x[args.offset:]
  if args.workdir:
    snaps = sorted(pathlib.Path(args.workdir, "snapshots").glob("prior_*.ckpt"))
    targets = [(int(p.stem.split("_")[1]), p) for p in snaps]
    if args.snapshots:
      wanted = {int(v) for v in args.snapshots.split(",")}
      missing = wanted - {s for s, _ in targets}
      if missing:
        raise SystemExit(f"no snapshots for steps {sorted(missing)} in "
                         f"{args.workdir}/snapshots")
      targets = [(s, p) for s, p in targets if s in wanted]
    else:
      targets = [(s, p) for s, p in targets if s % args.every == 0]
  else:
    prior = load_prior(args.prior)
    targets = [(int(prior.meta.get("step", 0)), args.prior)]
  for step, path in targets:
    if str(step) in results["curve"]:
      continue
    prior = load_prior(str(path))
    r = evaluate_projection(prior, x, steps=args.steps, lr=args.lr,
                            restarts=args.restarts)
    r.pop("x_hat")
    results["curve"][str(step)] = r
    print(f"step {step:6d}: PSNR {r['psnr_mean']:.2f} ± {r['psnr_std']:.2f} dB"
          f" ({r['seconds']:.0f} s)", flush=True)
    res_path.write_text(json.dumps(results, indent=2))

  curve = sorted((int(s), r) for s, r in results["curve"].items())
  prior = load_prior(args.prior)
  viz.save_grid(out / "prior_samples.png", prior.generate(
      prior.sample_latents(jax.random.key(0), 64)), ncols=8, scale=3)
  if len(curve) > 1:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    steps = [s for s, _ in curve]
    mean = np.array([r["psnr_mean"] for _, r in curve])
    std = np.array([r["psnr_std"] for _, r in curve])
    fig, ax = plt.subplots(figsize=(5, 3.2))
    ax.plot(steps, mean, "o-", label="mean")
    ax.fill_between(steps, mean - std, mean + std, alpha=0.25, label="± std")
    ax.set_xlabel("training steps")
    ax.set_ylabel("projection PSNR (dB)")
    ax.set_title(f"Representation error, {len(x)} {args.split} digits")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(out / "prior_curve.png", dpi=120)
    plt.close(fig)
  for s, r in curve:
    print(f"{s:6d}  {r['psnr_mean']:.2f} ± {r['psnr_std']:.2f} dB")
  return results


if __name__ == "__main__":
  sys.exit(0 if main() else 1)
