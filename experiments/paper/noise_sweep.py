"""The four MNIST tasks with noise: Y = F(X) + n, n ~ N(0, sigma^2).

  python experiments/paper/noise_sweep.py --workdir runs/noise \\
      --sigmas 0,0.02,0.05,0.1 --out docs/results
  # a quicker look: fewer observations, some tasks
  python experiments/paper/noise_sweep.py --workdir runs/noise_quick --n 16 \\
      --tasks mnist_deblur,mnist_sep4 --out runs/noise_quick

For each task and sigma the task's config (``experiments/paper/configs``)
runs with ``task.noise_sigma = sigma`` (``operators.add_noise``, sigma on the
images' [-1, 1] scale) and its methods: blind, PGD + known F, PGD, Wiener on
the restorations; blind, naive, ICA and PGD + known F on the separations.
Wiener's balance is tuned per sigma on ``--val-n`` observations of the
``val`` split (best mean PSNR over a grid from 1e-8 to 1), then reported on
test. Runs resume (``run_experiment`` keeps each method's result).

Writes ``OUT/noise.json``, ``OUT/noise_<task>.png`` (PSNR against sigma, one
line per method) and prints the markdown table.
"""
import argparse
import dataclasses
import pathlib

import jax.numpy as jnp
import numpy as np

from blindinv_jax import baselines, experiment as E, metrics, resume
from blindinv_jax.options import load_experiment
from blindinv_jax.priors import resolve

CONFIGS = pathlib.Path(__file__).parent / "configs"
TASKS = ("mnist_deblur", "mnist_edges", "mnist_sep1", "mnist_sep4")
BALANCES = tuple(10.0 ** e for e in range(-8, 1))


def tune_wiener(cfg, prior, n: int) -> dict:
  """The balance with the best mean PSNR on n val observations."""
  val = cfg.replace(data=dataclasses.replace(cfg.data, split="val", n=n,
                                             offset=0))
  x, y, _, info = E.simulate(val, prior.image_shape)
  scores = {}
  for b in BALANCES:
    est = baselines.wiener_deconvolution(y, info["kernel"], b,
                                         background=cfg.background,
                                         boundary=info["boundary"])
    scores[b] = float(jnp.mean(metrics.psnr(jnp.clip(est, -1, 1), x[:, 0])))
  best = max(scores, key=scores.get)
  return {"balance": best, "val_psnr": scores}


def task_config(name, sigma, args, prior):
  cfg = load_experiment(CONFIGS / f"{name}.py")
  cfg = cfg.replace(task=dataclasses.replace(cfg.task, noise_sigma=sigma),
                    name=f"{name}_sigma{sigma:g}")
  if args.n:
    cfg = cfg.replace(data=dataclasses.replace(cfg.data, n=args.n))
  if args.prior:
    cfg = cfg.replace(prior=args.prior)
  tuned = None
  if "wiener" in cfg.methods:
    tuned = tune_wiener(cfg, prior, args.val_n)
    cfg = cfg.replace(wiener_balance=tuned["balance"])
  return cfg, tuned


def plot(path, task: str, rows: dict):
  import matplotlib
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt
  fig, ax = plt.subplots(figsize=(5, 3.4))
  sigmas = sorted(rows, key=float)
  methods = {m for s in sigmas for m in rows[s]}
  for m in sorted(methods):
    pts = [(float(s), rows[s][m][0]) for s in sigmas if m in rows[s]]
    ax.plot(*zip(*pts), "o-", label=E.LABELS.get(m, m))
  ax.set_xlabel("noise sigma ([-1, 1] scale)")
  ax.set_ylabel("PSNR (dB)")
  ax.set_title(task)
  ax.grid(alpha=0.3)
  ax.legend(fontsize=7)
  fig.tight_layout()
  fig.savefig(path, dpi=120)
  plt.close(fig)


def identity(args) -> dict:
  """What the rows depend on (``OUT/noise.json`` is reused only by a run of
  the same): the observations per task and the prior (None: the configs'),
  and the val observations that tune Wiener. ``--tasks`` and ``--sigmas``
  choose the rows; ``--workdir`` is where the methods' results are kept."""
  return {"n": args.n, "prior": args.prior, "val_n": args.val_n}


def main(argv=None):
  ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  ap.add_argument("--workdir", required=True)
  ap.add_argument("--sigmas", default="0,0.02,0.05,0.1")
  ap.add_argument("--tasks", default=",".join(TASKS))
  ap.add_argument("--n", type=int, help="override the observations per task")
  ap.add_argument("--val-n", type=int, default=50,
                  help="val observations that tune Wiener's balance")
  ap.add_argument("--prior", help="override the prior")
  ap.add_argument("--out", default="docs/results")
  args = ap.parse_args(argv)
  out = pathlib.Path(args.out)
  out.mkdir(parents=True, exist_ok=True)
  try:
    cache = resume.ResultCache(out / "noise.json", identity(args))
  except resume.RunMismatch as e:
    raise SystemExit(str(e)) from None
  results = cache.rows
  sigmas = [float(s) for s in args.sigmas.split(",")]
  for task in args.tasks.split(","):
    prior = resolve(args.prior or load_experiment(
        CONFIGS / f"{task}.py").prior)
    rows = results.setdefault(task, {})
    for sigma in sigmas:
      cfg, tuned = task_config(task, sigma, args, prior)
      res = E.run_experiment(cfg, pathlib.Path(args.workdir) / cfg.name,
                             prior=prior)
      rows[f"{sigma:g}"] = {m: r["psnr"] for m, r in res["methods"].items()
                            if "psnr" in r}
      if tuned:
        rows[f"{sigma:g}"]["wiener_balance"] = tuned["balance"]
      cache.save()
    plot(out / f"noise_{task.removeprefix('mnist_')}.png", task,
         {s: {m: v for m, v in r.items() if m != "wiener_balance"}
          for s, r in rows.items()})
  print("| task | sigma | " + " | ".join(E.LABELS[m] for m in E.METHODS) +
        " |\n|---|---|" + "---|" * len(E.METHODS))
  for task, rows in results.items():
    for s, r in sorted(rows.items(), key=lambda kv: float(kv[0])):
      cells = [f"{r[m][0]:.2f}" if m in r else "" for m in E.METHODS]
      print(f"| {task} | {s} | " + " | ".join(cells) + " |")
  return results


if __name__ == "__main__":
  np.set_printoptions(precision=3)
  main()
