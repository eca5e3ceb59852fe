"""How much of a prior's representation error is the projection, not G's range?

  python experiments/assets/projection_restarts.py --prior mnist-v1 \\
      --prior mnist-v3 --split val --n 100 --restarts 1,4 \\
      --out docs/prior_quality/restarts_val.json

For each prior and each restart count R, projects the first ``--n`` digits
of the split onto G's range (``report.prior_report``: 1,000 Adam steps at
1e-2 on z, keeping the best of R initialisations per digit) and prints the
mean, median and minimum PSNR and the share of digits under 20 dB. One
restart is the representation-error protocol of ``prior_quality.py``; where
more restarts gain a lot, the one-restart error is the projection's local
minima rather than digits G cannot draw.
"""
import argparse
import json
import pathlib

import numpy as np

from blindinv_jax import data
from blindinv_jax.priors import load_prior
from blindinv_jax.report import prior_report


def main(argv=None):
  ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  ap.add_argument("--prior", action="append", required=True,
                  help="a prior name or path (repeatable)")
  ap.add_argument("--split", default="val", choices=("val", "test"))
  ap.add_argument("--n", type=int, default=100)
  ap.add_argument("--restarts", default="1,4",
                  help="comma-separated restart counts")
  ap.add_argument("--out", help="JSON file for the results")
  args = ap.parse_args(argv)
  res = {"split": args.split, "n": args.n,
         "project": "1000 Adam steps, lr 1e-2, best of R restarts", "rows": []}
  for name in args.prior:
    prior = load_prior(name)
    x = data.load_images("mnist5k", args.split, limit=args.n,
                         image_size=prior.image_shape[0])
    for r in (int(v) for v in args.restarts.split(",")):
      p = np.asarray(prior_report(prior, x, restarts=r)["psnr_per_image"])
      row = {"prior": name, "restarts": r, "mean": round(float(p.mean()), 2),
             "median": round(float(np.median(p)), 2),
             "min": round(float(p.min()), 2),
             "under_20db": round(float(np.mean(p < 20)), 3)}
      res["rows"].append(row)
      print(f"{name:12s} restarts {r}: mean {row['mean']:.2f} dB, median "
            f"{row['median']:.2f}, min {row['min']:.1f}, under 20 dB "
            f"{row['under_20db']:.0%}", flush=True)
      if args.out:
        pathlib.Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        pathlib.Path(args.out).write_text(json.dumps(res, indent=1))
  return res


if __name__ == "__main__":
  main()
