"""Which GAN-training tricks help on small data? Measured on a val split.

  python experiments/tuning/train_tricks.py --data mnist5k --limit 4000 \\
      --steps 3000 --batch-size 64 --val-n 100 --out runs/tricks_mnist
  python experiments/tuning/train_tricks.py --data folder:/tmp/faces \\
      --steps 2000 --batch-size 32 --out runs/tricks_faces

Trains the family DCGAN for the data (``--model``, default: picked from the
data's shape) once per variant, all with the same seed and an EMA of G kept
beside the raw weights (EMA does not change the raw trajectory, so each
run measures its trick with and without EMA):

* ``base``: plain non-saturating GAN (the shipped prior's recipe);
* ``diffaug``: DiffAugment (translation, cutout) on real and fake before D;
* ``diffaug_r1``: DiffAugment and the R1 penalty (gamma ``--r1``).

Every ``--every`` steps each snapshot (raw and EMA) is scored by its
representation error on the ``val`` split (projection PSNR,
``report.prior_report``, 1,000 steps). For mnist5k, ``--limit 4000`` keeps
the val digits (the last 500 train digits) out of training. Writes
``OUT/tricks.json`` and prints the table (best snapshot per variant).
"""
import argparse
import pathlib
import time

import numpy as np

from blindinv_jax import data, report, resume, training
from blindinv_jax.priors import load_prior
from blindinv_jax.report import prior_report

VARIANTS = {"base": {}, "diffaug": {"diffaug": "translation,cutout"},
            "diffaug_r1": {"diffaug": "translation,cutout", "r1_gamma": None}}


def identity(args) -> dict:
  """What the rows depend on (``OUT/tricks.json`` is reused only by a run of
  the same): the data, model and training options, and the val digits that
  score. Not ``--steps`` (a longer run extends the same trajectory, as
  training resumes), ``--every`` (which snapshots are scored) nor
  ``--variants`` (which rows)."""
  return {k: getattr(args, k) for k in ("data", "model", "limit",
                                        "batch_size", "ema", "r1", "val_n")}


def legacy_identity(rows) -> dict:
  """The identity of a ``tricks.json`` written before identities were
  recorded: its ``"setting"`` (every argument but ``--out``)."""
  setting = rows.pop("setting", None) or {}
  return {k: setting[k] for k in ("data", "model", "limit", "batch_size",
                                  "ema", "r1", "val_n") if k in setting}


def main(argv=None):
  ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  ap.add_argument("--data", required=True)
  ap.add_argument("--model", default="auto")
  ap.add_argument("--limit", type=int)
  ap.add_argument("--steps", type=int, default=2000)
  ap.add_argument("--batch-size", type=int, default=32)
  ap.add_argument("--every", type=int, default=500)
  ap.add_argument("--ema", type=float, default=0.999)
  ap.add_argument("--r1", type=float, default=1.0)
  ap.add_argument("--val-n", type=int, default=100)
  ap.add_argument("--variants", default=",".join(VARIANTS))
  ap.add_argument("--out", required=True)
  args = ap.parse_args(argv)
  out = pathlib.Path(args.out)
  out.mkdir(parents=True, exist_ok=True)
  try:
    cache = resume.ResultCache(out / "tricks.json", identity(args),
                               legacy=legacy_identity)
  except resume.RunMismatch as e:
    raise SystemExit(str(e)) from None
  results = cache.rows
  for name in args.variants.split(","):
    opts = {k: (args.r1 if v is None else v) for k, v in VARIANTS[name].items()}
    cfg = training.TrainConfig(
        model=args.model, data=args.data, limit=args.limit, steps=args.steps,
        batch_size=args.batch_size, ema_decay=args.ema,
        sample_every=args.every, checkpoint_every=args.every,
        snapshot_every=args.every, **opts)
    workdir = out / name
    t0 = time.time()
    training.train_prior(cfg, workdir, progress=False)
    entry = results.setdefault(name, {"options": opts, "val_psnr": {}})
    entry["train_seconds"] = entry.get("train_seconds") or round(
        time.time() - t0, 1)
    prior = load_prior(workdir)
    x = data.load_images(args.data, "val", image_size=prior.image_shape[:2],
                         limit=args.val_n)

    def scored(label, psnr, new, name=name):
      if not new:
        return
      kind, step = label.split("_")
      print(f"{name:11s} {kind} step {int(step):5d}: val PSNR "
            f"{psnr[0]:.2f} ± {psnr[1]:.2f} dB", flush=True)
      cache.save()
    report.score_snapshots(
        workdir, lambda prior, x=x: [
            round(v, 3) for v in prior_report(prior, np.asarray(x))["psnr"]],
        kinds=("raw", "ema"), scores=entry["val_psnr"], on_score=scored,
        select=lambda step: step % args.every == 0 and step <= args.steps)
  print("| variant | raw G, best step | raw PSNR | EMA G, best step | EMA PSNR "
        "| train s |\n|---|---|---|---|---|---|")
  for name in args.variants.split(","):
    v = results[name]["val_psnr"]
    best = {}
    for k in ("raw", "ema"):
      label = report.best_snapshot(v, kinds=(k,), key=lambda p: p[0])
      best[k] = (int(label.split("_")[1]), v[label])
    print(f"| {name} | {best['raw'][0]} | {best['raw'][1][0]:.2f} ± "
          f"{best['raw'][1][1]:.2f} | {best['ema'][0]} | {best['ema'][1][0]:.2f}"
          f" ± {best['ema'][1][1]:.2f} | {results[name]['train_seconds']} |")
  return results


if __name__ == "__main__":
  main()
