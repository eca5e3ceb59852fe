"""The ``blindinv`` command line.

  blindinv train-prior --config CONFIG --workdir DIR [--steps N] [--seed S]
  blindinv solve --observations FILE --prior mnist|PATH --sources S --out DIR
                 [--resume] [--checkpoint-every K]
  blindinv demo [--out DIR] [--n N] [--task blur|sobel]

Errors a user can act on are printed as one message, without a traceback,
with exit status 2. A solve stopped by a non-finite loss exits with 1.
"""
from __future__ import annotations

import argparse
import pathlib
import shlex
import sys

from blindinv_jax.utils import prepare_out


def load_train_config(spec: str):
  """A train config from a preset name or a Python file with get_config()."""
  from blindinv_jax.models.dcgan import PRESETS
  from blindinv_jax.models.vae import PRESETS as VAE_PRESETS
  from blindinv_jax.options import load_config_file
  from blindinv_jax.training import TrainConfig
  if spec in PRESETS:
    data = {"mnist28": "mnist5k", "celeba64": "tfds:celeb_a",
            "tiny": "mnist5k"}[spec]
    return TrainConfig(model=spec, data=data)
  if spec in VAE_PRESETS:                    # Adam as usual for a VAE
    return TrainConfig(model=spec, data="mnist5k", lr=1e-3, b1=0.9)
  if not pathlib.Path(spec).is_file():
    raise FileNotFoundError(
        f"--config {spec!r} is neither a model preset "
        f"({sorted(PRESETS) + sorted(VAE_PRESETS)}) nor "
        "a config file (e.g. experiments/assets/prior_mnist.py).")
  return load_config_file(spec)


def _train_prior(args):
  from blindinv_jax import training
  cfg = load_train_config(args.config)
  overrides = {k: v for k, v in (("steps", args.steps), ("seed", args.seed),
                                 ("batch_size", args.batch_size),
                                 ("data_dir", args.data_dir),
                                 ("limit", args.limit)) if v is not None}
  cfg = cfg.replace(**overrides).validate()
  training.train_prior(cfg, args.workdir, command=args.command_line)
  print(f"prior written to {pathlib.Path(args.workdir) / 'prior.ckpt'}")


def load_observations(path):
  """Observations from a .npy file or a .npz file (key 'y', 'observations'
  or its only array)."""
  import numpy as np
  path = pathlib.Path(path)
  if not path.is_file():
    raise FileNotFoundError(f"--observations: no file at {str(path)!r}.")
  if path.suffix not in (".npy", ".npz"):
    raise ValueError(f"--observations: {path} is not a .npy or .npz file; "
                     "save the array with numpy.save or numpy.savez.")
  try:
    data = np.load(path, allow_pickle=False)
  except Exception as e:
    raise ValueError(f"--observations: {path} is not a readable {path.suffix}"
                     f" file of numbers ({type(e).__name__}); save the array "
                     "with numpy.save or numpy.savez.") from e
  if isinstance(data, np.ndarray):
    return data
  keys = list(data.keys())
  for k in ("y", "observations"):
    if k in keys:
      return data[k]
  if len(keys) == 1:
    return data[keys[0]]
  raise ValueError(f"--observations: {path} holds arrays {keys}; name the "
                   "observations 'y' or 'observations'.")


def _solve(args):
  import json

  import jax
  import numpy as np
  from flax import serialization

  from blindinv_jax import solver, viz
  from blindinv_jax.models.surrogates import (
    LinearConvSurrogate,
    effective_kernel,
  )
  from blindinv_jax.options import solver_config
  from blindinv_jax.priors import resolve
  from blindinv_jax.validation import check_prior, validate_observations
  y = load_observations(args.observations)
  prior = resolve(args.prior)
  cfg = solver_config(args)
  y = validate_observations(y, prior, args.sources)
  check_prior(prior, cfg.alpha)              # before the progress bar
  ckpt_dir = pathlib.Path(args.out) / "checkpoint"
  if args.resume:
    if not (ckpt_dir / "solve_state.ckpt").is_file():
      raise FileNotFoundError(
          f"--resume: no solve checkpoint at {str(ckpt_dir)!r}; run without "
          "--resume to start this solve.")
    out = pathlib.Path(args.out)
  else:
    out = prepare_out(args.out, args.overwrite)
    if ckpt_dir.exists():                       # --overwrite: start afresh
      import shutil
      shutil.rmtree(ckpt_dir)
  from blindinv_jax.utils import progress_callback
  callback, close = progress_callback(cfg.outer_steps)
  res = solver.solve(y, prior, num_sources=args.sources,
                     surrogate=args.surrogate, config=cfg,
                     key=jax.random.key(args.seed), callback=callback,
                     checkpoint_dir=ckpt_dir,
                     checkpoint_every=args.checkpoint_every)
  close()
  np.save(out / "sources.npy", np.asarray(res.sources))
  np.save(out / "reconstruction.npy", np.asarray(res.reconstruction))
  (out / "surrogate_params.msgpack").write_bytes(
      serialization.msgpack_serialize(serialization.to_state_dict(
          jax.device_get(res.surrogate_params))))
  if isinstance(res.surrogate, LinearConvSurrogate):
    np.save(out / "effective_kernel.npy",
            np.asarray(effective_kernel(res.surrogate_params)))
  hist = {k: np.asarray(v).tolist() for k, v in res.history.items()}
  (out / "history.json").write_text(json.dumps({
      "config": cfg.__dict__, "surrogate": args.surrogate,
      "num_sources": args.sources, "prior": args.prior, "seed": args.seed,
      "best_restart": int(res.best_restart), "message": res.message,
      "history": hist}, indent=1))
  k = min(len(y), 12)
  rows = [y[:k], np.asarray(res.reconstruction[:k])]
  labels = ["observed", "estimated\ncorruption"]
  for i in range(args.sources):
    rows.append(np.asarray(res.sources[:k, i]))
    labels.append("recovered" + (f"\nsource {i + 1}" if args.sources > 1
                                  else ""))
  rows = [r if r.shape[-1] in (1, 3) else r[..., :1] for r in rows]
  viz.save_rows(out / "figure.png", rows, labels)
  print(f"wrote {', '.join(sorted(p.name for p in out.iterdir()))} to {out}")
  if res.message:
    print(f"blindinv solve: {res.message}", file=sys.stderr)
    return 1


def _demo(args):
  from blindinv_jax import demo
  demo.run(out=args.out, n=args.n, task=args.task,
           outer_steps=args.outer_steps, prior_name=args.prior,
           seed=args.seed, overwrite=args.overwrite)


def build_parser() -> argparse.ArgumentParser:
  from blindinv_jax.options import add_solver_args
  p = argparse.ArgumentParser(prog="blindinv", description=__doc__.split(
      "\n")[0])
  sub = p.add_subparsers(dest="command", required=True)

  t = sub.add_parser("train-prior", help="train a DCGAN or VAE prior "
                     "(resumable)")
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

  s = sub.add_parser("solve", help="blindly recover sources and a surrogate "
                     "of F from observations (Algorithm 1)")
  s.add_argument("--observations", required=True,
                 help=".npy file, or .npz file with the array under key 'y' "
                 "or 'observations' (or as its only array): [N, H, W, C_obs] "
                 "on the scale of the prior's images ([-1, 1])")
  s.add_argument("--prior", default="mnist", help="'mnist' (shipped), a prior "
                 ".ckpt file or train-prior workdir, or 'module.path:factory' "
                 "(a function returning a prior; docs/priors.md)")
  s.add_argument("--sources", type=int, default=1, help="sources S per "
                 "observation")
  s.add_argument("--surrogate", default="conv", choices=("conv", "mixing"),
                 help="the learned F_hat: 'conv' (blur, edge maps) or "
                 "'mixing' (per-pixel network, for separation)")
  add_solver_args(s)
  s.add_argument("--seed", type=int, default=0)
  s.add_argument("--out", required=True, help="output folder")
  s.add_argument("--overwrite", action="store_true",
                 help="start afresh in an existing output folder")
  s.add_argument("--resume", action="store_true",
                 help="continue the solve checkpointed in --out (same "
                 "observations, prior and settings; --outer-steps may grow)")
  s.add_argument("--checkpoint-every", type=int, default=10,
                 help="outer steps between checkpoints (default 10)")
  s.set_defaults(func=_solve)

  d = sub.add_parser("demo", help="blind deblurring of held-out mnist5k "
                     "digits with the shipped prior (figures + metrics)")
  d.add_argument("--out", default="demo_out", help="output folder")
  d.add_argument("--prior", default="mnist", help="'mnist', a prior file or "
                 "workdir, or 'module.path:factory'")
  d.add_argument("--n", type=int, default=16, help="held-out digits")
  d.add_argument("--task", default="blur", choices=("blur", "sobel"),
                 help="9x9 Gaussian blur (sigma 2) or Sobel edge map")
  d.add_argument("--outer-steps", type=int,
                 help="override the fast schedule's outer steps")
  d.add_argument("--seed", type=int, default=0)
  d.add_argument("--overwrite", action="store_true",
                 help="write into an existing output folder")
  d.set_defaults(func=_demo)
  return p


def main(argv=None) -> int:
  argv = sys.argv[1:] if argv is None else list(argv)
  args = build_parser().parse_args(argv)
  args.command_line = "blindinv " + " ".join(shlex.quote(a) for a in argv)
  try:
    rc = args.func(args)
  except (ValueError, FileNotFoundError, ImportError) as e:
    print(f"blindinv {args.command}: error: {e}", file=sys.stderr)
    return 2
  except KeyboardInterrupt:
    hint = {"solve": "run the same command with --resume to continue from "
            "the last checkpoint", "train-prior": "run the same command "
            "again to resume"}.get(args.command, "")
    print("interrupted" + (f"; {hint}" if hint else ""), file=sys.stderr)
    return 130
  return rc or 0


if __name__ == "__main__":
  sys.exit(main())
