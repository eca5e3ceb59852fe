"""The quality cost of ``SolverConfig.precision`` on the four MNIST tasks.

  python experiments/perf/precision_tasks.py --workdir runs/precision \\
      [--n 16] [--precisions float32,bfloat16] [--out docs/bench]

Runs the blind solver of each task's config (``experiments/paper/configs``:
deblurring, edge maps, one and four mixtures) on the same ``--n`` test
observations with the same key at each precision, and reports PSNR (and
the digit classifier's accuracy) per precision, the difference to float32
per observation (paired), and the wall seconds of each solve. The seconds
are those of a whole solve run one after the other, not a benchmark: the
interleaved speed comparison is ``bench.py --precision``. Runs resume.
Writes ``precision_tasks.json`` and ``precision_tasks.md``.
"""
import argparse
import dataclasses
import json
import pathlib
import sys

import numpy as np

from blindinv_jax import experiment as E
from blindinv_jax.options import load_experiment

sys.path.insert(0, str(pathlib.Path(__file__).parent))
from timing import machine_info, machine_line  # noqa: E402

CONFIGS = pathlib.Path(__file__).resolve().parent.parent / "paper" / "configs"
TASKS = ("mnist_deblur", "mnist_edges", "mnist_sep1", "mnist_sep4")


def task_config(task: str, prec: str, n: int):
  cfg = load_experiment(CONFIGS / f"{task}.py")
  return cfg.replace(
      solver=cfg.solver.replace(precision=prec), methods=("blind",),
      data=dataclasses.replace(cfg.data, n=n), name=f"{task}_{prec}")


def main(argv=None):
  ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  ap.add_argument("--workdir", required=True)
  ap.add_argument("--n", type=int, default=16)
  ap.add_argument("--tasks", default=",".join(TASKS))
  ap.add_argument("--precisions", default="float32,bfloat16")
  ap.add_argument("--out", default="docs/bench")
  args = ap.parse_args(argv)
  precs = args.precisions.split(",")
  machine = machine_info()
  rows = []
  for task in args.tasks.split(","):
    psnr = {}
    for prec in precs:
      cfg = task_config(task, prec, args.n)
      wd = pathlib.Path(args.workdir) / cfg.name
      res = E.run_experiment(cfg, wd)
      m = res["methods"]["blind"]
      psnr[prec] = np.asarray(m["psnr_per_image"], np.float64).ravel()
      row = {"task": task, "precision": prec, "n": args.n,
             "psnr": m["psnr"], "seconds": m["seconds"],
             "accuracy": m.get("accuracy")}
      if prec != precs[0]:
        d = psnr[prec] - psnr[precs[0]]
        row["psnr_minus_first"] = [float(d.mean()), float(d.std())]
      rows.append(row)
      print(row, flush=True)
  out = pathlib.Path(args.out)
  out.mkdir(parents=True, exist_ok=True)
  (out / "precision_tasks.json").write_text(json.dumps(
      {"machine": machine, "rows": rows}, indent=1))
  lines = [f"Machine: {machine_line(machine)}. Blind solver, the tasks' "
           f"tuned schedules, {args.n} test observations, key 0.", "",
           f"| task | precision | PSNR (dB) | vs {precs[0]} (paired, dB) | "
           "digits read | solve (s) |", "|---|---|---|---|---|---|"]
  for r in rows:
    diff = r.get("psnr_minus_first")
    acc = r["accuracy"]
    lines.append(
        f"| {r['task']} | {r['precision']} | {r['psnr'][0]:.2f} ± "
        f"{r['psnr'][1]:.2f} | " + (f"{diff[0]:+.2f} ± {diff[1]:.2f}" if diff
                                   else "") +
        f" | {'' if acc is None else f'{100 * acc:.0f}%'} | {r['seconds']} |")
  (out / "precision_tasks.md").write_text("\n".join(lines) + "\n")
  print("\n".join(lines))


if __name__ == "__main__":
  main()
