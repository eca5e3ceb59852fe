"""How good is an MNIST prior? Choose its snapshot on ``val``, report on ``test``.

  # 1. score a training run's snapshots on val and pick the best one:
  python experiments/assets/prior_quality.py --workdir runs/prior_mnist \\
      --every 1000 --val-n 100 --out docs/prior_quality
  # 2. report priors on the test digits (names or paths), side by side:
  python experiments/assets/prior_quality.py --prior mnist-v1 --prior mnist \\
      --out docs/prior_quality

Four measures, on the embedded mnist5k digits:

* representation error: PSNR of ``project(prior, x)`` (1,000 Adam steps at
  1e-2 on z, one restart, z projected by the prior's P), on ``--val-n`` val
  digits to choose and on all 500 test digits to report (``--restarts R``
  keeps the best of R initialisations per digit instead: how much of the
  error is the projection's local minima rather than G's range);
* confident samples: the share of 512 samples that an independent MLP
  classifier reads with probability >= 0.9 (the same share of real held-out
  digits is printed beside it);
* Frechet distance between the 512 samples and the held-out digits in the
  MLP's 256-d penultimate features, beside the distance between 512 real
  train digits and the same held-out digits;
* class balance: the share of each digit among the samples' argmax labels.

The MLP (784-512-256-10, ReLU, 30 epochs of Adam 1e-3, seed 0) is trained
here on the first 4,000 train digits (the shipped prior's training digits),
not the shipped digit CNN, so that no prior is graded by a network tuned
beside it. A snapshot is chosen by its val representation error, among
those whose samples meet ``--min-confident`` and ``--max-fd-ratio`` on val
(both off by default).

Writes ``OUT/prior_quality.json`` (reused when re-run: done rows are
skipped), ``OUT/samples_<label>.png`` (8x8 grids) and, for a workdir,
``OUT/val_curve.png``.
"""
import argparse
import pathlib
import time

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax

from blindinv_jax import data, metrics, report, resume, viz
from blindinv_jax.priors import load_prior
from blindinv_jax.report import prior_report

N_SAMPLES = 512
CONFIDENT = 0.9
TRAIN_LIMIT = 4000


class MLP(nn.Module):
  """Digits [B, 28, 28, 1] -> (logits [B, 10], features [B, 256])."""

  @nn.compact
  def __call__(self, x):
    h = nn.relu(nn.Dense(512)(x.reshape(x.shape[0], -1)))
    f = nn.relu(nn.Dense(256)(h))
    return nn.Dense(10)(f), f


def train_mlp(x, labels, epochs: int = 30, batch: int = 128, seed: int = 0):
  """Adam 1e-3 on x [n, 28, 28, 1], labels [n]; returns the params."""
  key = jax.random.key(seed)
  params = MLP().init(key, x[:1])
  tx = optax.adam(1e-3)
  opt = tx.init(params)

  @jax.jit
  def step(params, opt, xb, yb):
    def loss(p):
      return optax.softmax_cross_entropy_with_integer_labels(
          MLP().apply(p, xb)[0], yb).mean()
    g = jax.grad(loss)(params)
    upd, opt = tx.update(g, opt, params)
    return optax.apply_updates(params, upd), opt

  n = len(x)
  for e in range(epochs):
    perm = np.asarray(jax.random.permutation(jax.random.fold_in(key, e), n))
    for i in range(n // batch):
      idx = perm[i * batch:(i + 1) * batch]
      params, opt = step(params, opt, x[idx], labels[idx])
  return params


class Judge:
  """The MLP and the real-digit references it is compared with."""

  def __init__(self):
    t0 = time.perf_counter()
    x = data.load_images("mnist5k", "train", limit=TRAIN_LIMIT)
    y = data.mnist5k_labels("train")[:TRAIN_LIMIT]
    self.params = train_mlp(x, y)
    self.apply = jax.jit(lambda p, x: MLP().apply(p, x))
    self.train_feats = self.features(x[:N_SAMPLES])[1]
    self.held_out = {}
    for split in ("val", "test"):
      xs = data.load_images("mnist5k", split)
      logits, feats = self.features(xs)
      prob = jax.nn.softmax(logits)
      self.held_out[split] = {
          "x": xs, "feats": feats,
          "accuracy": float(np.mean(np.argmax(logits, -1) ==
                                    data.mnist5k_labels(split))),
          "confident": float(np.mean(prob.max(-1) >= CONFIDENT)),
          "fd_train": metrics.frechet_distance(self.train_feats, feats)}
    print(f"MLP judge trained ({time.perf_counter() - t0:.0f} s): test "
          f"accuracy {self.held_out['test']['accuracy']:.3f}; real test "
          f"digits read with p >= {CONFIDENT}: "
          f"{self.held_out['test']['confident']:.1%}; FD(train, test) "
          f"{self.held_out['test']['fd_train']:.2f}", flush=True)

  def features(self, x):
    logits, feats = self.apply(self.params, jnp.asarray(x))
    return np.asarray(logits), np.asarray(feats)

  def reference(self, split: str) -> dict:
    h = self.held_out[split]
    return {k: h[k] for k in ("accuracy", "confident", "fd_train")}

  def score_samples(self, samples, split: str) -> dict:
    logits, feats = self.features(samples)
    prob = np.asarray(jax.nn.softmax(logits))
    counts = np.bincount(prob.argmax(-1), minlength=10) / len(prob)
    fd = metrics.frechet_distance(feats, self.held_out[split]["feats"])
    return {"confident": float(np.mean(prob.max(-1) >= CONFIDENT)),
            "fd": fd, "fd_ratio": fd / self.held_out[split]["fd_train"],
            "class_share": counts.round(4).tolist(),
            "class_min": float(counts.min()), "class_max": float(counts.max())}


def evaluate(prior, judge: Judge, split: str, n=None, restarts: int = 1) -> dict:
  """Every measure of ``prior`` on the ``split`` digits (the first n), the
  representation error with ``restarts`` initialisations per digit."""
  x = judge.held_out[split]["x"][:n]
  t0 = time.perf_counter()
  rep = prior_report(prior, x, restarts=restarts)
  samples = prior.generate(prior.sample_latents(jax.random.key(0), N_SAMPLES))
  out = {"psnr": rep["psnr"], "ssim": rep["ssim"], "n": rep["n"],
         **judge.score_samples(np.asarray(samples), split),
         "seconds": round(time.perf_counter() - t0, 1)}
  return out


def choose(val: dict, min_confident: float = 0.0,
           max_fd_ratio: float = float("inf")) -> str:
  """The label of the val row with the best representation PSNR among those
  whose samples are read confidently at least ``min_confident`` of the time
  and lie within ``max_fd_ratio`` x real's Frechet distance."""
  try:
    return report.best_snapshot(val, eligible=lambda r: (
        r["confident"] >= min_confident and r["fd_ratio"] <= max_fd_ratio))
  except ValueError:
    raise SystemExit(f"no scored snapshot has samples read with p >= 0.9 at "
                     f"least {min_confident:.1%} of the time and FD at most "
                     f"{max_fd_ratio}x real; lower --min-confident or raise "
                     "--max-fd-ratio.") from None


def line(label, r) -> str:
  return (f"{label:28s} PSNR {r['psnr'][0]:.2f} ± {r['psnr'][1]:.2f} dB | "
          f"confident {r['confident']:.1%} | FD {r['fd']:.2f} "
          f"(x{r['fd_ratio']:.2f} real) | classes "
          f"{r['class_min']:.1%}-{r['class_max']:.1%}")


def plot_curve(path, val: dict, n: int):
  import matplotlib
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt
  fig, ax = plt.subplots(figsize=(5, 3.2))
  for kind in ("ema", "raw"):
    pts = sorted((int(k.split("_")[1]), v["psnr"][0]) for k, v in val.items()
                 if k.startswith(kind))
    if pts:
      ax.plot(*zip(*pts), "o-", label=f"{kind} G")
  ax.set_xlabel("training steps")
  ax.set_ylabel("projection PSNR (dB)")
  ax.set_title(f"Representation error, {n} val digits")
  ax.grid(alpha=0.3)
  ax.legend()
  fig.tight_layout()
  fig.savefig(path, dpi=120)
  plt.close(fig)


def identity(args) -> dict:
  """What the rows depend on (``OUT/prior_quality.json`` is reused only by
  a run of the same; also written as its ``"protocol"``): the projection
  (``--restarts``), the val digits that choose (``--val-n``) and the
  judge's settings."""
  project = (f"1000 Adam steps, lr 1e-2, {args.restarts} restart"
             f"{'s' if args.restarts > 1 else ''}")
  return {"samples": N_SAMPLES, "confident_p": CONFIDENT,
          "mlp_train_digits": TRAIN_LIMIT, "val_n": args.val_n,
          "project": project}


def main(argv=None):
  ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  ap.add_argument("--workdir", help="train-prior workdir: score its snapshots "
                  "on val and report the best one on test")
  ap.add_argument("--prior", action="append", default=[],
                  help="a prior name or path to report on test (repeatable)")
  ap.add_argument("--every", type=int, default=1000,
                  help="score snapshots whose step is a multiple of this")
  ap.add_argument("--only", help="comma-separated snapshot steps to score "
                  "(instead of every --every)")
  ap.add_argument("--kinds", default="ema,raw",
                  help="which snapshots of an EMA run: ema, raw or both")
  ap.add_argument("--val-n", type=int, default=200, help="val digits used "
                  "for the representation error when choosing")
  ap.add_argument("--choose-only", action="store_true", help="score the "
                  "workdir's snapshots on val, but do not report on test yet "
                  "(e.g. while the run is still training)")
  ap.add_argument("--restarts", type=int, default=1, help="initialisations "
                  "per digit in the projection (the protocol is 1; more "
                  "separates G's range from the projection's local minima)")
  ap.add_argument("--min-confident", type=float, default=0.0, help="choose "
                  "only among snapshots whose samples are read with p >= 0.9 "
                  "at least this often on val (a share, e.g. 0.791)")
  ap.add_argument("--max-fd-ratio", type=float, default=float("inf"),
                  help="choose only among snapshots whose Frechet distance "
                  "to the val digits is at most this multiple of real's")
  ap.add_argument("--out", default="docs/prior_quality")
  args = ap.parse_args(argv)
  if not (args.workdir or args.prior):
    ap.error("give --workdir (choose on val) and/or --prior (report on test)")
  out = pathlib.Path(args.out)
  out.mkdir(parents=True, exist_ok=True)
  try:
    # val_n counts only where this run scores val rows (--workdir).
    cache = resume.ResultCache(
        out / "prior_quality.json", identity(args),
        ignore=() if args.workdir else ("val_n",),
        legacy=lambda rows: rows.get("protocol"))
  except resume.RunMismatch as e:
    raise SystemExit(str(e)) from None
  res = cache.rows
  save = cache.save
  judge = Judge()
  res["reference"] = {s: judge.reference(s) for s in ("val", "test")}
  res["protocol"] = dict(cache.identity)
  targets = [(p, p) for p in args.prior]
  if args.workdir:
    wd = pathlib.Path(args.workdir)
    val = res.setdefault("val", {}).setdefault(wd.name, {})
    only = {int(v) for v in args.only.split(",")} if args.only else None

    def scored(label, row, new):
      if new:
        save()
      print("val  " + line(f"{wd.name} {label}", row), flush=True)
    try:
      report.score_snapshots(
          wd, lambda prior: evaluate(prior, judge, "val", args.val_n,
                                     args.restarts),
          kinds=args.kinds.split(","), scores=val, on_score=scored,
          select=lambda step: step in only if only
          else step % args.every == 0)
    except FileNotFoundError as e:
      raise SystemExit(str(e)) from None
    best = choose(val, args.min_confident, args.max_fd_ratio)
    chosen = report.snapshot_path(wd, best)
    res.setdefault("chosen", {})[wd.name] = str(chosen)
    print(f"chosen on val: {best} -> {chosen}")
    plot_curve(out / "val_curve.png", val, args.val_n)
    if not args.choose_only:
      targets.append((f"{wd.name}:{best}", str(chosen)))
  for label, name in targets:
    prior = load_prior(name)
    test = res.setdefault("test", {})
    if label not in test:
      test[label] = evaluate(prior, judge, "test", restarts=args.restarts)
      save()
    print("test " + line(label, test[label]), flush=True)
    viz.save_grid(out / f"samples_{pathlib.Path(label).stem.replace(':', '_')}"
                  ".png", prior.generate(prior.sample_latents(
                      jax.random.key(0), 64)), ncols=8, scale=3)
  ref = res["reference"]["test"]
  print(f"real digits: test accuracy {ref['accuracy']:.1%}, confident "
        f"{ref['confident']:.1%}, FD(train, test) {ref['fd_train']:.2f}")
  save()
  return res


if __name__ == "__main__":
  main()
