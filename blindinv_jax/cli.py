"""The ``blindinv`` command line.

  blindinv train-prior --config CONFIG --workdir DIR [--steps N] [--seed S]
  blindinv solve --observations FILE --prior mnist|PATH|module:factory
                 --sources S --out DIR [--truth FILE] [--resume]
  blindinv prior-report --prior P --data SOURCE [--split test] [--n N]
                        [--observations FILE]
  blindinv demo [--out DIR] [--n N] [--task blur|sobel]
  blindinv launch --local-processes P [--cpu-devices D] -- solve ...

Errors a user can act on are printed as one message, without a traceback,
with exit status 2. A solve stopped by a non-finite loss exits with 1.
"""
from __future__ import annotations

import argparse
import pathlib
import shlex
import sys
import warnings

from blindinv_jax.utils import prepare_out


def load_train_config(spec: str):
  """A train config from a preset name or a Python file with get_config()."""
  from blindinv_jax.models.dcgan import PRESETS
  from blindinv_jax.models.vae import PRESETS as VAE_PRESETS
  from blindinv_jax.options import load_config
  from blindinv_jax.training import TrainConfig
  if spec in PRESETS:
    return TrainConfig(model=spec, data={"celeba64": "tfds:celeb_a"}.get(
        spec, "mnist5k"))
  if spec in VAE_PRESETS:                    # Adam as usual for a VAE
    return TrainConfig(model=spec, data="mnist5k", lr=1e-3, b1=0.9)
  if not pathlib.Path(spec).is_file():
    raise FileNotFoundError(
        f"--config {spec!r} is neither a model preset "
        f"({sorted(PRESETS) + sorted(VAE_PRESETS)}) nor "
        "a config file (e.g. experiments/assets/prior_mnist.py).")
  return load_config(spec)


def _train_prior(args):
  from blindinv_jax import training
  if args.config:
    cfg = load_train_config(args.config)
  elif args.data:
    vae = (args.model or "").startswith("vae")
    cfg = training.TrainConfig(model=args.model or "auto", data=args.data,
                               **(dict(lr=1e-3, b1=0.9) if vae else {}))
  else:
    raise ValueError("train-prior needs the data: --data SOURCE (mnist5k, "
                     "folder:PATH or tfds:NAME), or a --config file.")
  overrides = {k: v for k, v in (
      ("data", args.data), ("model", args.model), ("split", args.split),
      ("steps", args.steps), ("seed", args.seed),
      ("batch_size", args.batch_size), ("data_dir", args.data_dir),
      ("limit", args.limit), ("ema_decay", args.ema),
      ("diffaug", args.diffaug), ("r1_gamma", args.r1), ("r2_gamma", args.r2),
      ("gan_loss", args.gan_loss)) if v is not None}
  cfg = cfg.replace(**overrides).validate()
  training.train_prior(cfg, args.workdir, command=args.command_line)
  print(f"prior written to {pathlib.Path(args.workdir) / 'prior.ckpt'}")


def load_observations(path, mesh=None):
  """Observations from a .npy file or a .npz file (key 'y', 'observations'
  or its only array); with a mesh over several processes, this process's
  rows (of a memory-mapped .npy)."""
  from blindinv_jax.launch import own_rows
  from blindinv_jax.report import load_array
  y = load_array(path, "--observations", mmap=mesh is not None)
  return y if mesh is None else own_rows(y, mesh)


def _solve(args):
  from blindinv_jax import launch
  mesh = launch.start(args)                   # before any JAX computation
  main = mesh is None or launch.is_main()
  import jax
  import numpy as np

  from blindinv_jax import solver, validation as V
  from blindinv_jax.config import resolve_alpha
  from blindinv_jax.models.surrogates import check_kernel_size
  from blindinv_jax.options import solver_config
  from blindinv_jax.priors import resolve
  from blindinv_jax.report import load_array
  prior = resolve(args.prior)
  cfg, alpha_note = resolve_alpha(solver_config(args), prior)
  if alpha_note:
    print(f"note: {alpha_note}", file=sys.stderr)
  if args.refine < 0 or (args.refine and (mesh is not None or
                                          cfg.extension)):
    raise ValueError(f"--refine must be 0 (off) or a number of latent "
                     f"starts per observation (on one process, without "
                     f"--extension), got {args.refine}.")
  check_kernel_size(args.surrogate, args.kernel_size)
  auto_s = args.sources == "auto"
  # Every problem of both inputs in one message, before any work.
  y = V.convert_input(load_observations(args.observations, mesh),
                      args.layout, args.range)
  problems = V.observation_problems(y, prior.image_shape,
                                    fixes=V.CLI_FIXES, smaller_grids=True)
  truth = None
  if args.truth is not None:
    truth = V.convert_input(load_array(args.truth, "--truth"), args.layout,
                            args.range)
    flat = (truth.reshape((-1,) + truth.shape[2:]) if truth.ndim == 5
            else truth)
    problems += V.observation_problems(
        flat, prior.image_shape, "the --truth sources", fixes=V.CLI_FIXES)
  V.refuse(problems)
  y = V.validate_observations(y, prior, 1 if auto_s else args.sources,
                              cfg.alpha, smaller_grids=True)
  ckpt_dir = pathlib.Path(args.out) / "checkpoint"
  out = pathlib.Path(args.out)
  if args.resume:
    launch.check_resume(ckpt_dir, mesh)
  elif main:
    out = prepare_out(args.out, args.overwrite)
    if ckpt_dir.exists():                       # --overwrite: start afresh
      import shutil
      shutil.rmtree(ckpt_dir)
  if mesh is not None:
    launch.barrier("prepare_out")
  notes = [] if args.range else V.range_notes(y, fixes=V.CLI_FIXES)
  if truth is not None and not args.range:
    notes += V.range_notes(truth, fixes=V.CLI_FIXES, what="the --truth sources")
  if not auto_s:
    notes += V.channel_notes(y, prior, args.sources)
  for note in notes if main else ():
    print(f"warning: {note}", file=sys.stderr)  # before any work
  if (args.surrogate == "auto" or auto_s) and main:
    _announce_choice(y, args)
  from blindinv_jax.utils import progress_callback
  bar = {}

  def callback(step, metrics):                # the bar starts after "auto"
    if not main:
      return
    if not bar:
      bar["update"], bar["close"] = progress_callback(cfg.outer_steps)
    bar["update"](step, metrics)
  with warnings.catch_warnings():            # the notes above, said once
    warnings.simplefilter("ignore", UserWarning)
    res = solver.solve(y, prior, num_sources=args.sources,
                       surrogate=args.surrogate, config=cfg,
                       key=jax.random.key(args.seed), callback=callback,
                       checkpoint_dir=ckpt_dir,
                       checkpoint_every=args.checkpoint_every,
                       on_candidate=_print_candidate if main else None,
                       on_choice=_print_choice if main else None,
                       kernel_size=args.kernel_size, mesh=mesh)
  if bar:
    bar["close"]()
  choice = res.choice
  if choice is not None:
    args.surrogate, args.sources = choice.family, choice.num_sources
  refined = None
  if args.refine and not res.message:
    from blindinv_jax.refine import picked_summary, refine_solve
    from blindinv_jax.utils import count_callback
    callback, close = count_callback(cfg.outer_steps,
                                     f"refine ({args.refine} starts)")
    res, picked = refine_solve(res, y, prior, restarts=args.refine,
                               config=cfg,
                               key=jax.random.fold_in(
                                   jax.random.key(args.seed), 1),
                               callback=callback)
    close()
    refined = {"restarts": args.refine, "picked": np.asarray(picked).tolist(),
               "summary": picked_summary(picked)}
    print(f"refine: {refined['summary']}")
  if not main:                                # process 0 writes them
    return 1 if res.message else 0
  if mesh is not None:                        # all rows, for the outputs
    y = V.convert_input(load_observations(args.observations), args.layout,
                        args.range)
  from blindinv_jax.report import write_solve_outputs
  from blindinv_jax.verdict import image_like
  if image_like(y.shape, res.sources.shape):      # the signal projects y
    print("the blind signal: projecting the observations onto the prior...")
  summary = write_solve_outputs(out, res, y, truth, {
      "config": cfg.__dict__, "surrogate": args.surrogate,
      "kernel_size": args.kernel_size,
      "num_sources": args.sources, "prior": args.prior, "seed": args.seed,
      "best_restart": int(res.best_restart), "message": res.message,
      "choice": None if choice is None else choice.to_dict(),
      "refine": refined}, prior)
  from blindinv_jax.report import print_solve_summary
  print_solve_summary(summary, out, args.prior, prior)
  if res.message:
    print(f"blindinv solve: {res.message}", file=sys.stderr)
    return 1


def _announce_choice(y, args):
  """Says what "auto" is about to screen."""
  from blindinv_jax import auto
  families = auto.families_for(args.surrogate)
  sources = ("1-4" if args.sources == "auto" else args.sources)
  print(f"choosing the surrogate: a short solve per candidate "
        f"({', '.join(families)}; "
        f"S = {sources}) on {auto.FRACTION:.0%} held-out pixels of the first "
        f"{min(len(y), auto.SCREEN_N)} observations", file=sys.stderr)


def _print_choice(choice):
  for line in choice.duel_lines():
    print(f"  {line}", file=sys.stderr)
  print(f"chose surrogate={choice.family!r}, S={choice.num_sources}",
        file=sys.stderr)


def _print_candidate(row):
  print(f"  {row[0]:10s} S={row[1]}: held-out L1 {row[2]:.5f} "
        f"(fit {row[3]:.5f})", file=sys.stderr, flush=True)


def _sources_arg(text: str):
  """--sources: a positive int or 'auto'."""
  if text == "auto":
    return text
  try:
    return int(text)
  except ValueError:
    raise argparse.ArgumentTypeError(
        f"--sources takes a number or 'auto', not {text!r}") from None


def _prior_report(args):
  import numpy as np

  from blindinv_jax import data as data_lib
  from blindinv_jax.options import extended_prior
  from blindinv_jax.priors import resolve
  from blindinv_jax.report import prior_report
  from blindinv_jax.validation import check_positive_int
  prior = resolve(args.prior)
  check_positive_int("--n", args.n)
  x = data_lib.load_images(args.data, args.split, data_dir=args.data_dir,
                           image_size=prior.image_shape[:2], limit=args.n)
  if x.shape[-1] != prior.image_shape[-1]:
    raise ValueError(f"--data {args.data!r} has {x.shape[-1]} channel(s), the "
                     f"prior draws {prior.image_shape[-1]}.")
  out = prepare_out(args.out, args.overwrite)
  if args.snapshots:
    from blindinv_jax.report import rank_snapshots
    return rank_snapshots(args.prior, np.asarray(x), out, steps=args.steps,
                          split=args.split)
  print(f"{len(x)} images of {args.data} ({args.split}), "
        f"{x.shape[1]}x{x.shape[2]}x{x.shape[3]}; projecting onto the prior "
        f"({args.steps} steps)...", flush=True)
  y = None
  if args.observations:
    from blindinv_jax import validation as V
    y = V.convert_input(load_observations(args.observations), args.layout,
                        args.range)
    bad = V.observation_problems(y, prior.image_shape, fixes=V.CLI_FIXES)
    if not bad and y.shape[-1] != prior.image_shape[-1]:
      bad = [f"--observations have {y.shape[-1]} channel(s), the prior draws "
             f"{prior.image_shape[-1]}: not images of its kind, so no verdict "
             "before a solve (the solve gives its own)."]
    V.refuse(bad)
  rep = prior_report(prior, np.asarray(x), steps=args.steps, out=out, progress=True,
                     observations=y, extended=extended_prior(args, prior))
  print(f"representation error: PSNR {rep['psnr'][0]:.2f} ± {rep['psnr'][1]:.2f}"
        f" dB (median {rep['psnr_median']:.2f}, worst {rep['psnr_min']:.2f}), "
        f"SSIM {rep['ssim'][0]:.3f}")
  if "extended" in rep:
    e = rep["extended"]
    print(f"with the range extension ({e['extension']}): PSNR "
          f"{e['psnr'][0]:.2f} ± {e['psnr'][1]:.2f} dB, SSIM {e['ssim'][0]:.3f}")
  print(rep["verdict"] if y is None else rep["observations"]["message"])
  print(f"wrote samples.png, worst.png, report.json to {out}")


def _demo(args):
  from blindinv_jax import demo
  demo.run(out=args.out, n=args.n, task=args.task, boundary=args.boundary,
           outer_steps=args.outer_steps, prior_name=args.prior,
           seed=args.seed, overwrite=args.overwrite)


V_RANGES = ("-1,1", "0,1", "0,255")     # validation.RANGES' keys


def add_input_args(p, arrays: str = "--observations and --truth") -> None:
  """--layout and --range: how solve and prior-report read ``arrays``."""
  p.add_argument("--layout", choices=("nhwc", "nchw"), default="nhwc",
                 help=f"axis order of {arrays}: nhwc "
                 "(default, [N, H, W, C]) or nchw (PyTorch's [N, C, H, W])")
  p.add_argument("--range", choices=V_RANGES, default=None, metavar="LO,HI",
                 help=f"value scale of {arrays}, rescaled "
                 "to the prior's [-1, 1]: '0,1', '0,255' or '-1,1' (default: "
                 "taken as [-1, 1], with a warning when the values look like "
                 "0..1 or 0..255 images)")


def build_parser() -> argparse.ArgumentParser:
  from blindinv_jax.options import add_extension_args, add_solver_args
  p = argparse.ArgumentParser(prog="blindinv", description=__doc__.split(
      "\n")[0].replace("``", ""))
  sub = p.add_subparsers(dest="command", required=True)

  t = sub.add_parser("train-prior", help="train a DCGAN or VAE prior "
                     "(resumable)")
  t.add_argument("--data", help="training images: mnist5k, folder:PATH "
                 "(PNG/JPEG; PATH/train/ if it exists) or tfds:NAME")
  t.add_argument("--model", help="preset: dcgan{28,32,64}_{gray,rgb}, "
                 "mnist28, celeba64, vae28, ... (default: the dcgan preset "
                 "that fits the data's image shape)")
  t.add_argument("--split", help="data split (default train)")
  t.add_argument("--config", help="config file with get_config() (or a "
                 "preset name); the flags above and below override it")
  t.add_argument("--workdir", required=True,
                 help="output folder; an existing run there is resumed")
  t.add_argument("--steps", type=int, help="override the number of steps")
  t.add_argument("--seed", type=int, help="override the seed")
  t.add_argument("--batch-size", type=int, help="override the batch size")
  t.add_argument("--limit", type=int, help="use the first N training images")
  t.add_argument("--data-dir", help="tfds data dir (for tfds: sources)")
  t.add_argument("--ema", type=float, help="keep an EMA of G with this decay "
                 "(e.g. 0.999); the prior is then the EMA generator")
  t.add_argument("--diffaug", help="DiffAugment policy for few images, e.g. "
                 "translation,cutout")
  t.add_argument("--r1", type=float, help="R1 penalty weight gamma on D")
  t.add_argument("--r2", type=float, help="R2 penalty weight (generated images)")
  t.add_argument("--gan-loss", choices=("ns", "rpgan"), help="non-saturating "
                 "(default) or R3GAN's relativistic pairing loss")
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
  s.add_argument("--sources", type=_sources_arg, default=1, help="sources S "
                 "per observation, or 'auto' (chosen among 1-4 on held-out "
                 "pixels)")
  s.add_argument("--surrogate", default="auto", choices=(
      "auto", "conv", "conv_scene", "mixing", "conv_mlp", "conv_reflect",
      "conv_circular", "mask", "conv_mask", "downsample"), help="the learned F_hat: 'auto' (default: "
      "the family that best predicts held-out pixels, docs/design.md; "
      "'downsample' for a smaller grid), 'conv' (blur, edge maps, with the "
      "frame of zero padding), 'conv_scene' (the same where the scene "
      "continues past the frame; 'conv_reflect', 'conv_circular': mirrored "
      "or wrapped), 'mixing' (per-pixel network, for "
      "separation), 'conv_mlp' (a filter, then a non-linearity), 'mask' "
      "(lost pixels; 'conv_mask': a filter, then a mask) or 'downsample' (a "
      "filter, then a smaller grid: super-resolution)")
  s.add_argument("--kernel-size", type=int, metavar="K", help="the widest "
                 "blur or filter (K x K) the conv surrogates (also those "
                 "'auto' screens) can learn; default 9 (two 5x5 convolutions"
                 "), e.g. 20 for the paper's CelebA blur")
  add_solver_args(s)
  s.add_argument("--refine", type=int, default=0, metavar="R",
                 help="after the solve, R fresh latent starts per observation "
                 "through the learned surrogate, keeping whichever fits each "
                 "observation best (0: off; 4 is what docs/results.md "
                 "measures; costs about R times the latent steps)")
  s.add_argument("--seed", type=int, default=0)
  s.add_argument("--out", required=True, help="output folder")
  s.add_argument("--overwrite", action="store_true",
                 help="start afresh in an existing output folder")
  s.add_argument("--resume", action="store_true",
                 help="continue the solve checkpointed in --out (same "
                 "observations, prior and settings; --outer-steps may grow)")
  s.add_argument("--truth", help=".npy/.npz of the true sources ([N, S, H, W, "
                 "C], or [N, H, W, C] for one source): score the recovery "
                 "(read with the same --layout and --range)")
  add_input_args(s)
  s.add_argument("--checkpoint-every", type=int, default=10,
                 help="outer steps between checkpoints (default 10)")
  from blindinv_jax import launch
  launch.add_args(s)
  s.set_defaults(func=_solve)
  launch.add_parser(sub)

  r = sub.add_parser("prior-report", help="can a prior draw images like "
                     "yours? sample grid and representation error")
  r.add_argument("--prior", default="mnist", help="'mnist', a prior file or "
                 "workdir, or 'module.path:factory'")
  r.add_argument("--data", required=True, help="held-out images: mnist5k, "
                 "folder:PATH or tfds:NAME (resized to the prior's size)")
  r.add_argument("--split", default="test", help="the split (default test)")
  r.add_argument("--data-dir", help="tfds data dir (for tfds: sources)")
  r.add_argument("--n", type=int, default=100, help="images used (100)")
  r.add_argument("--steps", type=int, default=1000,
                 help="projection steps (1000; fewer underestimate)")
  r.add_argument("--observations", help="the .npy/.npz observations of a "
                 "blind solve: can this prior be expected to beat them? "
                 "(read with --layout and --range as blindinv solve reads "
                 "them)")
  add_input_args(r, "--observations")
  add_extension_args(r)
  r.add_argument("--snapshots", action="store_true", help="--prior is a "
                 "train-prior workdir: score each snapshot, name the best "
                 "(choose on --split val, never on test)")
  r.add_argument("--out", default="prior_report", help="output folder")
  r.add_argument("--overwrite", action="store_true",
                 help="write into an existing output folder")
  r.set_defaults(func=_prior_report)

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
  d.add_argument("--boundary", default="scene", choices=("scene", "zero",
                 "reflect", "circular"), help="how the digits continue past "
                 "the frame: scene (a camera's), zero (a grey frame), ...")
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
