"""The ``blindinv`` command line.

  blindinv train-prior --config CONFIG --workdir DIR [--steps N] [--seed S]
  blindinv demo [--out DIR]

Errors a user can act on are printed as one message, without a traceback,
with exit status 2.
"""
from __future__ import annotations

import argparse
import importlib.util
import pathlib
import shlex
import sys


def load_train_config(spec: str):
  """A train config from a preset name or a Python file with get_config()."""
  from blindinv_jax.models.dcgan import PRESETS
  from blindinv_jax.prior import TrainConfig
  if spec in PRESETS:
    data = {"mnist28": "mnist5k", "celeba64": "tfds:celeb_a",
            "tiny": "mnist5k"}[spec]
    return TrainConfig(model=spec, data=data)
  path = pathlib.Path(spec)
  if not path.is_file():
    raise FileNotFoundError(
        f"--config {spec!r} is neither a model preset ({sorted(PRESETS)}) nor "
        "a config file (e.g. experiments/configs/prior_mnist.py).")
  mod_spec = importlib.util.spec_from_file_location(f"_cfg_{path.stem}", path)
  module = importlib.util.module_from_spec(mod_spec)
  mod_spec.loader.exec_module(module)
  if not hasattr(module, "get_config"):
    raise ValueError(f"Config file {spec} has no get_config() function.")
  return module.get_config()


def _train_prior(args):
  from blindinv_jax import prior
  cfg = load_train_config(args.config)
  overrides = {k: v for k, v in (("steps", args.steps), ("seed", args.seed),
                                 ("batch_size", args.batch_size),
                                 ("data_dir", args.data_dir),
                                 ("limit", args.limit)) if v is not None}
  cfg = cfg.replace(**overrides).validate()
  prior.train_prior(cfg, args.workdir, command=args.command_line)
  print(f"prior written to {pathlib.Path(args.workdir) / 'prior.ckpt'}")


def _demo(args):
  from blindinv_jax import demo
  demo.run(out=args.out, n=args.n, steps=args.steps, prior_name=args.prior,
           overwrite=args.overwrite)


def build_parser() -> argparse.ArgumentParser:
  p = argparse.ArgumentParser(prog="blindinv", description=__doc__.split(
      "\n")[0])
  sub = p.add_subparsers(dest="command", required=True)

  t = sub.add_parser("train-prior", help="train a DCGAN prior (resumable)")
  t.add_argument("--config", required=True,
                 help="config file with get_config(), or a preset name")
  t.add_argument("--workdir", required=True,
                 help="output folder; an existing run there is resumed")
  t.add_argument("--steps", type=int, help="override the number of steps")
  t.add_argument("--seed", type=int, help="override the seed")
  t.add_argument("--batch-size", type=int, help="override the batch size")
  t.add_argument("--limit", type=int, help="use the first N training images")
  t.add_argument("--data-dir", help="tfds data dir (for tfds: sources)")
  t.set_defaults(func=_train_prior)

  d = sub.add_parser("demo", help="sample the shipped prior and project "
                     "held-out digits onto it (figure + metrics)")
  d.add_argument("--out", default="demo_out", help="output folder")
  d.add_argument("--prior", default="mnist", help="prior name or path")
  d.add_argument("--n", type=int, default=50, help="held-out digits")
  d.add_argument("--steps", type=int, default=1000, help="projection steps")
  d.add_argument("--overwrite", action="store_true",
                 help="write into an existing output folder")
  d.set_defaults(func=_demo)
  return p


def main(argv=None) -> int:
  argv = sys.argv[1:] if argv is None else list(argv)
  args = build_parser().parse_args(argv)
  args.command_line = "blindinv " + " ".join(shlex.quote(a) for a in argv)
  try:
    args.func(args)
  except (ValueError, FileNotFoundError, ImportError) as e:
    print(f"blindinv {args.command}: error: {e}", file=sys.stderr)
    return 2
  except KeyboardInterrupt:
    print("interrupted; run the same command again to resume",
          file=sys.stderr)
    return 130
  return 0


if __name__ == "__main__":
  sys.exit(main())
