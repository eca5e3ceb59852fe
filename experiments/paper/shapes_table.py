"""The table of observations of another shape (docs/results.md), from the
workdirs of ``reproduce.py``'s super-resolution and inpainting runs.

  python experiments/paper/shapes_table.py --runs runs \
      --out docs/results/shapes

Reads ``<runs>/<name>/metrics.json`` for each run of :data:`RUNS` that
exists, prints the markdown table (blind, PGD with the true F, the classical
baseline, the paired differences, the learned mask's IoU) and copies each
run's metrics, figure and mask figure to ``--out/<name>.*``.
"""
from __future__ import annotations

import argparse
import json
import pathlib
import shutil

#: (workdir name, task as the table names it, the config's overrides).
RUNS = (
    ("mnist_sr2", "super-resolution x2", ""),
    ("mnist_sr2_noisy", "super-resolution x2, noise 0.02",
     "--config.task.noise_sigma=0.02"),
    ("mnist_sr4", "super-resolution x4", "--config.task.factor=4"),
    ("mnist_sr4_noisy", "super-resolution x4, noise 0.02",
     "--config.task.factor=4 --config.task.noise_sigma=0.02"),
    ("mnist_inpaint", "inpainting, 40% of pixels lost", ""),
    ("mnist_inpaint_scratches", "inpainting, 3 scratches",
     "--config.task.mask_kind=scratches"),
)
CLASSICAL = {"bicubic": "bicubic", "biharmonic": "biharmonic (known mask)"}


def _cell(m: dict, key: str) -> str:
  e = m["methods"].get(key)
  if not e or "psnr" not in e:
    return ""
  return f"{e['psnr'][0]:.2f} ± {e['psnr'][1]:.2f}"


def _paired(m: dict, key: str) -> str:
  d = m.get("blind_minus", {}).get(key)
  return ("" if d is None else
          f"{d['mean_db']:+.2f} ± {d['standard_error_db']:.2f}")


def main(argv=None):
  ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  ap.add_argument("--runs", default="runs")
  ap.add_argument("--out", default="docs/results/shapes")
  a = ap.parse_args(argv)
  out = pathlib.Path(a.out)
  out.mkdir(parents=True, exist_ok=True)
  rows = ["| task | surrogate | blind | PGD + known F | classical | blind - "
          "known F, paired | blind - classical, paired | mask IoU |",
          "|---|---|---|---|---|---|---|---|"]
  for name, task, _ in RUNS:
    run = pathlib.Path(a.runs) / name
    if not (run / "metrics.json").exists():
      continue
    m = json.loads((run / "metrics.json").read_text())
    cfg = json.loads((run / "config.json").read_text())["config"]
    classical = next((k for k in CLASSICAL if k in m["methods"]), None)
    iou = m["methods"]["blind"].get("mask_iou")
    fam = cfg.get("surrogate", "")
    if fam == "auto" and cfg["task"]["kind"] == "downsample":
      fam = "auto: downsample (by the shape)"
    rows.append(
        f"| {task} | `{fam}` | "
        f"{_cell(m, 'blind')} | {_cell(m, 'pgd_known')} | "
        f"{CLASSICAL.get(classical, '')} {_cell(m, classical)} | "
        f"{_paired(m, 'pgd_known')} | {_paired(m, classical)} | "
        f"{'' if iou is None else f'{iou:.3f}'} |")
    for f, suffix in (("metrics.json", ".json"), ("figure.png", ".png"),
                      ("mask.png", "_mask.png")):
      if (run / f).exists():
        shutil.copy(run / f, out / f"{name}{suffix}")
  print("\n".join(rows))


if __name__ == "__main__":
  main()
