"""Tunes the solver's schedule on the mnist5k validation split (never test).

  python experiments/tuning/tune_schedule.py --task blur --n 16 \
      --latent-lrs 3e-4,1e-3,3e-3,1e-2 --outer-steps 60 --out runs/tune_blur
  python experiments/tuning/tune_schedule.py --task blur --n 16 --outer-steps 30 \
      --latent-lrs 3e-3,1e-2:1e-3,3e-2:1e-3 --restarts 1 --out runs/tune_blur2

Simulates observations of the first N ``val`` digits (the tail of the train
split; see ``blindinv_jax.data``), solves them with each latent learning rate
(everything else as in ``--inner-steps``/``--restarts``), and records after
every outer step the recovered PSNR/SSIM and the seconds spent. Writes
``tune.json`` and ``tune.png`` (PSNR against outer step and against time:
the time to quality of each schedule).
"""
import argparse
import json
import pathlib
import time

import jax
import jax.numpy as jnp
import numpy as np

from blindinv_jax import algorithm, metrics, runner, solver
from blindinv_jax.demo import blurred_digits
from blindinv_jax.models.surrogates import make_surrogate
from blindinv_jax.priors import load_prior


def trace_solve(y, x, prior, cfg, key):
  """Runs the solver step by step; PSNR/SSIM of the best restart per step."""
  module = make_surrogate("conv", y.shape[-1])
  step = runner.Compiled(algorithm.outer_step,
                         settings=runner.Settings.of(cfg), surrogate=module,
                         config=cfg)
  t0 = time.perf_counter()
  state = solver.init_state(key, y, prior, module, cfg, 1)
  rows = []
  for t in range(cfg.outer_steps):
    state, m = step(state, y, prior=prior)
    src = solver.finalize(state, y, prior, module)[0][:, 0]
    p = float(jnp.mean(metrics.psnr(src, x)))
    seconds = time.perf_counter() - t0
    s = float(jnp.mean(metrics.ssim(src, x)))
    rows.append({"step": t + 1, "seconds": round(seconds, 2), "psnr": p,
                 "ssim": s,
                 "latent_loss": float(np.min(np.asarray(m["latent_loss"])))})
    print(f"  step {t + 1}: {p:.2f} dB, SSIM {s:.3f} ({seconds:.0f} s)",
          flush=True)
  return rows


def time_to_quality(rows, tol=0.5):
  """Seconds (and outer steps) until PSNR stays within tol dB of its end."""
  final = rows[-1]["psnr"]
  for i, r in enumerate(rows):
    if all(abs(q["psnr"] - final) <= tol for q in rows[i:]):
      return {"step": r["step"], "seconds": r["seconds"], "final": final}
  return None


def time_to_reach(rows, target):
  """Seconds (and outer steps) until PSNR first reaches ``target`` dB."""
  for r in rows:
    if r["psnr"] >= target:
      return {"step": r["step"], "seconds": r["seconds"], "target": target}
  return None


def main(argv=None):
  ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  ap.add_argument("--task", choices=("blur", "sobel"), default="blur")
  ap.add_argument("--n", type=int, default=16)
  ap.add_argument("--latent-lrs", default="3e-4,1e-3,3e-3,1e-2",
                  help="comma-separated; 'a:b' is a cosine decay from a to b")
  ap.add_argument("--outer-steps", type=int, default=60)
  ap.add_argument("--inner-steps", type=int, default=50, help="T1 = T2")
  ap.add_argument("--restarts", type=int, default=1)
  ap.add_argument("--unroll", default="1",
                  help="'full', an int, or 'auto' (the backend default)")
  ap.add_argument("--seed", type=int, default=0)
  ap.add_argument("--out", required=True)
  args = ap.parse_args(argv)
  out = pathlib.Path(args.out)
  out.mkdir(parents=True, exist_ok=True)
  prior = load_prior("mnist")
  x, y, k_true = blurred_digits(args.task, "val", args.n)
  unroll = None if args.unroll == "auto" else (
      "full" if args.unroll == "full" else int(args.unroll))
  results = {}
  for spec in args.latent_lrs.split(","):
    lr, _, end = spec.partition(":")
    cfg = solver.SolverConfig(outer_steps=args.outer_steps,
                              surrogate_steps=args.inner_steps,
                              latent_steps=args.inner_steps,
                              latent_lr=float(lr),
                              latent_lr_end=float(end) if end else None,
                              restarts=args.restarts, unroll=unroll)
    label = f"{float(lr):g}" + (f" -> {float(end):g} (cosine)" if end else "")
    print(f"latent lr {label}", flush=True)
    rows = trace_solve(y, x, prior, cfg, jax.random.key(args.seed))
    results[label] = {"rows": rows, "time_to_quality": time_to_quality(rows)}
  # How soon each schedule reaches the first one's final quality (the first
  # is the reference, e.g. the paper's 3e-4), within 0.5 dB.
  ref = next(iter(results.values()))["rows"][-1]["psnr"] - 0.5
  for r in results.values():
    r["time_to_first_schedule_final"] = time_to_reach(r["rows"], ref)
  summary = {"task": args.task, "split": "val", "n": args.n,
             "inner_steps": args.inner_steps, "restarts": args.restarts,
             "unroll": args.unroll, "results": results}
  (out / "tune.json").write_text(json.dumps(summary, indent=1))

  import matplotlib
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt
  fig, axes = plt.subplots(1, 2, figsize=(10, 3.8))
  for lr, r in results.items():
    steps = [q["step"] for q in r["rows"]]
    secs = [q["seconds"] for q in r["rows"]]
    p = [q["psnr"] for q in r["rows"]]
    axes[0].plot(steps, p, label=f"latent lr {lr}")
    axes[1].plot(secs, p, label=f"latent lr {lr}")
  axes[0].set_xlabel("outer step")
  axes[1].set_xlabel("seconds")
  for a in axes:
    a.set_ylabel("recovered PSNR (dB)")
    a.grid(alpha=0.3)
  axes[0].legend()
  fig.suptitle(f"{args.task}: {args.n} val digits, T1=T2={args.inner_steps}, "
               f"restarts {args.restarts}")
  fig.tight_layout()
  fig.savefig(out / "tune.png", dpi=110)
  for lr, r in results.items():
    print(f"lr {lr}: final {r['rows'][-1]['psnr']:.2f} dB, time to quality "
          f"{r['time_to_quality']}, to the first schedule's final - 0.5 dB "
          f"{r['time_to_first_schedule_final']}")


if __name__ == "__main__":
  main()
