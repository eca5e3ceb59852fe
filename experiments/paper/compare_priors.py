"""Two reproduce runs of the same tasks with different priors, paired per image.

  python experiments/paper/compare_priors.py \\
      --base docs/results --new runs/paper_v3 --labels mnist-v1,mnist-v3 \\
      --out docs/results/v3/compare_priors.json

Each run is a folder of ``metrics.json`` files, either ``<run>/<task>/metrics.json``
(a ``reproduce.py --all`` workdir) or ``<run>/<task>.json`` (the copies in
``docs/results/``). For every task and method that both runs hold, prints the
mean PSNR of each, and the per-image difference new minus base (per source for
separation) as mean ± standard error and on how many images the new prior is
better, plus the digits read. Refuses runs whose observations differ (another
task, split or N), since then nothing is paired.
"""
import argparse
import json
import pathlib

import numpy as np

from blindinv_jax.experiment import paired_differences

TASKS = ("mnist_deblur", "mnist_edges", "mnist_sep1", "mnist_sep4")


def load_run(folder) -> dict:
  """``{task: metrics}`` of the tasks found in ``folder``."""
  folder = pathlib.Path(folder)
  out = {}
  for task in TASKS:
    for p in (folder / task / "metrics.json", folder / f"{task}.json"):
      if p.is_file():
        out[task] = json.loads(p.read_text())
        break
  if not out:
    raise SystemExit(f"{folder}: no metrics of {', '.join(TASKS)} (neither "
                     "<task>/metrics.json nor <task>.json).")
  return out


def same_observations(a: dict, b: dict) -> bool:
  """Whether two runs of one task scored the same images: same N and, for
  restoration, the same observation PSNR per image."""
  if a.get("n") != b.get("n"):
    return False
  oa, ob = a.get("observation", {}), b.get("observation", {})
  if "psnr_per_image" in oa and "psnr_per_image" in ob:
    return np.allclose(oa["psnr_per_image"], ob["psnr_per_image"], atol=1e-3)
  return True


def compare(base: dict, new: dict) -> list:
  """One row per (task, method) in both runs: means, paired new - base."""
  rows = []
  for task in TASKS:
    if task not in base or task not in new:
      continue
    if not same_observations(base[task], new[task]):
      raise SystemExit(f"{task}: the two runs scored different observations; "
                       "rerun with the same task, split and --n.")
    for m, eb in base[task]["methods"].items():
      en = new[task]["methods"].get(m, {})
      if "psnr_per_image" not in eb or "psnr_per_image" not in en:
        continue
      d = paired_differences({"new": en, "base": eb}, "new")["base"]
      rows.append({"task": task, "method": m,
                   "base": round(float(np.mean(eb["psnr_per_image"])), 2),
                   "new": round(float(np.mean(en["psnr_per_image"])), 2),
                   "new_minus_base": d["mean_db"],
                   "standard_error": d["standard_error_db"],
                   "new_better_on": d["better_on"], "images": d["images"],
                   "read_base": eb.get("accuracy"),
                   "read_new": en.get("accuracy")})
  return rows


def table(rows, labels) -> str:
  b, n = labels
  lines = [f"| task | method | {b} | {n} | {n} - {b}, paired | {n} better on "
           f"| read ({b} / {n}) |", "|---|---|---|---|---|---|---|"]
  pct = lambda v: "" if v is None else f"{v:.0%}"
  for r in rows:
    lines.append(
        f"| {r['task']} | {r['method']} | {r['base']:.2f} | {r['new']:.2f} | "
        f"{r['new_minus_base']:+.2f} ± {r['standard_error']:.2f} | "
        f"{r['new_better_on']} / {r['images']} | {pct(r['read_base'])} / "
        f"{pct(r['read_new'])} |")
  return "\n".join(lines)


def main(argv=None):
  ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  ap.add_argument("--base", required=True, help="the earlier run's folder")
  ap.add_argument("--new", required=True, help="the new prior's run folder")
  ap.add_argument("--labels", default="base,new",
                  help="two names for the table's columns")
  ap.add_argument("--out", help="JSON file for the rows")
  args = ap.parse_args(argv)
  labels = args.labels.split(",")
  if len(labels) != 2:
    ap.error("--labels takes two comma-separated names")
  rows = compare(load_run(args.base), load_run(args.new))
  if not rows:
    raise SystemExit("the two runs share no task and method with per-image "
                     "PSNRs.")
  print(table(rows, labels))
  if args.out:
    pathlib.Path(args.out).write_text(json.dumps(
        {"base": args.base, "new": args.new, "labels": labels, "rows": rows},
        indent=1))
  return rows


if __name__ == "__main__":
  main()
