"""``blindinv demo``: the main job on the embedded default data.

Samples the prior and projects held-out mnist5k test digits onto the range of
its generator (PGD on the latents). The PSNR of those projections is the
prior's representation error: it bounds what any GAN-prior recovery can reach.
Writes ``samples.png``, ``projection.png`` and ``metrics.json``.
"""
from __future__ import annotations

import json
import time

import jax
import numpy as np


def evaluate_projection(prior, x, steps: int = 1000, lr: float = 1e-2,
                        restarts: int = 1, seed: int = 0) -> dict:
  """Projects x [N, H, W, C] and measures PSNR of the projections (dB)."""
  from blindinv_jax import metrics
  from blindinv_jax.prior import project
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


def run(out="demo_out", n: int = 50, steps: int = 1000,
        prior_name: str = "mnist", overwrite: bool = False) -> dict:
  """Runs the demo and returns its metrics."""
  from blindinv_jax import data, viz
  from blindinv_jax.prior import load_prior
  from blindinv_jax.utils import prepare_out
  if not isinstance(n, int) or not 1 <= n <= 500:
    raise ValueError(f"--n must be between 1 and 500 (the mnist5k test split),"
                     f" got {n!r}.")
  out = prepare_out(out, overwrite)
  prior = load_prior(prior_name)
  h, w, c = prior.image_shape
  print(f"prior {prior_name!r}: {prior.config.name}, {h}x{w}x{c}, latent "
        f"{prior.latent_dim}, trained {prior.meta.get('step')} steps")
  samples = prior.generate(prior.sample_latents(jax.random.key(0), 64))
  viz.save_grid(out / "samples.png", samples, ncols=8, scale=3)

  x = data.load_images("mnist5k", "test", limit=n, image_size=(h, w))
  print(f"projecting {n} held-out digits ({steps} Adam steps each)...")
  res = evaluate_projection(prior, x, steps=steps)
  k = min(n, 16)
  viz.save_rows(out / "projection.png", [x[:k], res["x_hat"][:k]],
                ["held-out", "projected\nG(z*)"],
                title=f"Projection onto the prior: PSNR "
                f"{res['psnr_mean']:.2f} ± {res['psnr_std']:.2f} dB (n={n})")
  result = {k: v for k, v in res.items() if k != "x_hat"}
  result["prior"] = prior_name
  result["prior_step"] = prior.meta.get("step")
  (out / "metrics.json").write_text(json.dumps(result, indent=2))
  print(f"representation PSNR {res['psnr_mean']:.2f} ± {res['psnr_std']:.2f} "
        f"dB over {n} held-out digits ({res['seconds']:.1f} s)")
  print(f"wrote {out / 'samples.png'}, {out / 'projection.png'}, "
        f"{out / 'metrics.json'}")
  return result
