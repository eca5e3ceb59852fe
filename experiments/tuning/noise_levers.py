"""Does the blind solver fit the noise, and which lever stops it? (val split)

  python experiments/tuning/noise_levers.py --workdir runs/noise_levers \\
      [--task mnist_deblur] [--sigma 0.05] [--n 16] [--out docs/results]

Runs the blind solver of one task's config on ``--n`` noisy ``val``
observations (sigma on the [-1, 1] scale) with the config's schedule and with
one lever changed at a time: fewer outer steps (an early stop), a larger
perceptual weight alpha, the squared-error data loss (alone and with a
latent learning rate decayed 10x), a 4x smaller surrogate learning rate.
For each it reports the PSNR of the recovered sources, the kernel error of
the learned surrogate (where the task has a kernel), and the final mean
absolute data error per pixel against the noise floor
``sigma * sqrt(2 / pi)`` (the mean absolute value of the noise; a fit below
it reproduces part of the noise).
Writes ``noise_levers.json`` and prints the table.
"""
import argparse
import dataclasses
import json
import pathlib

import numpy as np

from blindinv_jax import experiment as E
from blindinv_jax.options import load_experiment

CONFIGS = pathlib.Path(__file__).resolve().parent.parent / "paper" / "configs"


def levers(solver_cfg) -> dict:
  """name -> SolverConfig: the schedule and one change each."""
  t = solver_cfg.outer_steps
  return {"config's schedule": solver_cfg,
          f"early stop (T = {t // 2})": solver_cfg.replace(outer_steps=t // 2),
          "alpha x10": solver_cfg.replace(alpha=10 * solver_cfg.alpha),
          "L2 data loss": solver_cfg.replace(loss="l2"),
          "surrogate lr / 4": solver_cfg.replace(
              surrogate_lr=solver_cfg.surrogate_lr / 4),
          "L2, latent lr decayed 10x": solver_cfg.replace(
              loss="l2", latent_lr_end=solver_cfg.latent_lr / 10)}


def final_data_error(workdir: pathlib.Path) -> float:
  """The solve's last mean absolute data error per pixel (L1 through the
  learned surrogate), from its checkpoint's history."""
  from blindinv_jax import checkpoint
  from blindinv_jax.solver import CHECKPOINT_NAME, SOLVE_KIND
  tree, _ = checkpoint.load(workdir / "checkpoints" / "blind" /
                            CHECKPOINT_NAME, kind=SOLVE_KIND)
  return float(np.min(tree["history"]["latent_loss"][-1]))


def main(argv=None):
  ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  ap.add_argument("--workdir", required=True)
  ap.add_argument("--task", default="mnist_deblur")
  ap.add_argument("--sigma", type=float, default=0.05)
  ap.add_argument("--n", type=int, default=16)
  ap.add_argument("--out", default="docs/results")
  args = ap.parse_args(argv)
  base = load_experiment(CONFIGS / f"{args.task}.py")
  base = base.replace(
      task=dataclasses.replace(base.task, noise_sigma=args.sigma),
      data=dataclasses.replace(base.data, split="val", n=args.n),
      methods=("blind",))
  floor = args.sigma * np.sqrt(2 / np.pi)
  rows = []
  for i, (name, scfg) in enumerate(levers(base.solver).items()):
    cfg = base.replace(solver=scfg, name=f"{args.task}_s{args.sigma:g}_{i}")
    wd = pathlib.Path(args.workdir) / cfg.name
    res = E.run_experiment(cfg, wd)
    m = res["methods"]["blind"]
    row = {"lever": name, "psnr": m["psnr"], "seconds": m["seconds"]}
    if "kernel_error" in m:
      row["kernel_error"] = m["kernel_error"]
    if scfg.loss == "l1":
      row["final_l1"] = final_data_error(wd)
    rows.append(row)
    print(row, flush=True)
  result = {"task": args.task, "sigma": args.sigma, "n": args.n,
            "split": "val", "noise_floor_l1": floor, "rows": rows}
  out = pathlib.Path(args.out)
  out.mkdir(parents=True, exist_ok=True)
  (out / "noise_levers.json").write_text(json.dumps(result, indent=1))
  print(f"| lever | PSNR (dB) | final data L1 (noise floor {floor:.4f}) "
        "| kernel error |\n|---|---|---|---|")
  for r in rows:
    l1 = f"{r['final_l1']:.4f}" if "final_l1" in r else "(L2 loss)"
    ke = r.get("kernel_error", {}).get("error")
    ke = "" if ke is None else f"{ke:.2f}"
    print(f"| {r['lever']} | {r['psnr'][0]:.2f} ± {r['psnr'][1]:.2f} | {l1} "
          f"| {ke} |")


if __name__ == "__main__":
  main()
