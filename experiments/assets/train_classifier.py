"""Trains the digit classifier the experiments use to read recovered digits.

  python experiments/assets/train_classifier.py --out blindinv_jax/assets/digit_classifier.ckpt

A small Flax CNN (blindinv_jax/classifier.py) on the 4,500 mnist5k train
digits, 15 epochs of Adam 1e-3 with +-2 pixel translations; reports accuracy
on the 500 held-out test digits (the file records it with the command).
"""
import argparse
import shlex
import sys
import time

from blindinv_jax import classifier, data


def main(argv=None):
  ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  ap.add_argument("--out", default="blindinv_jax/assets/digit_classifier.ckpt")
  ap.add_argument("--epochs", type=int, default=15)
  ap.add_argument("--seed", type=int, default=0)
  args = ap.parse_args(argv)
  cfg = classifier.ClassifierConfig(epochs=args.epochs, seed=args.seed)
  x, y = data.load_images("mnist5k", "train"), data.mnist5k_labels("train")
  xt, yt = data.load_images("mnist5k", "test"), data.mnist5k_labels("test")
  t0 = time.perf_counter()
  params = classifier.train(x, y, cfg)
  acc = classifier.accuracy(params, xt, yt)
  train_acc = classifier.accuracy(params, x, y)
  print(f"train accuracy {train_acc:.4f}, test accuracy {acc:.4f} "
        f"({time.perf_counter() - t0:.0f} s)")
  command = "python experiments/assets/train_classifier.py " + " ".join(
      shlex.quote(a) for a in (sys.argv[1:] if argv is None else argv))
  classifier.save(args.out, params, {
      "config": cfg.__dict__, "test_accuracy": acc,
      "train_accuracy": train_acc, "command": command,
      "data": "mnist5k train (4,500); test = mnist5k test (500)"})
  print(f"wrote {args.out}")


if __name__ == "__main__":
  main()
