"""Command-line options shared by ``blindinv`` and the experiment scripts.

The solver's schedule options are defined once here (:func:`add_solver_args`
and :func:`solver_config`) and used by ``blindinv solve``,
``experiments/paper/reproduce.py`` and the scripts that reopen its runs.
"""
from __future__ import annotations

import argparse
import dataclasses
import importlib.util
import pathlib

from blindinv_jax.config import PAPER, TUNED, SolverConfig

#: option -> (SolverConfig field, type, help)
SOLVER_OPTIONS = {
    "--outer-steps": ("outer_steps", int, "T (tuned 60, paper 100)"),
    "--surrogate-steps": ("surrogate_steps", int, "T1 (default 50)"),
    "--latent-steps": ("latent_steps", int, "T2 (default 50)"),
    "--surrogate-lr": ("surrogate_lr", float, "lambda_1 (default 4e-3)"),
    "--latent-lr": ("latent_lr", float, "lambda_2 (tuned 1e-2, paper 3e-4)"),
    "--alpha": ("alpha", float, "perceptual loss weight (default 1e-4; 0 "
                "for a prior without a discriminator, e.g. a VAE)"),
    "--restarts": ("restarts", int, "R restarts (default 1)"),
    "--precision": ("precision", str, "arithmetic of the prior's networks: "
                    "float32, tensorfloat32 or bfloat16 (default: the "
                    "backend's; docs/speed.md#precision)"),
}


def add_solver_args(ap: argparse.ArgumentParser, tuned_help: str = (
    "config.TUNED (T=60, latent lr 1e-2)")) -> None:
  """``--schedule tuned|paper`` and one option per :data:`SOLVER_OPTIONS`."""
  ap.add_argument("--schedule", choices=("tuned", "paper"), default="tuned",
                  help=f"{tuned_help} or the paper's (T=100, latent lr "
                  "3e-4); the options below override either")
  for flag, (_, typ, text) in SOLVER_OPTIONS.items():
    ap.add_argument(flag, type=typ, help=text)


def solver_overrides(args) -> dict:
  """The SolverConfig fields set on the command line."""
  return {field: getattr(args, field) for field, _, _ in
          SOLVER_OPTIONS.values() if getattr(args, field, None) is not None}


def solver_config(args, tuned: SolverConfig = TUNED) -> SolverConfig:
  """``--schedule``'s config (``tuned`` for "tuned") with the overrides."""
  base = PAPER if args.schedule == "paper" else tuned
  return base.replace(**solver_overrides(args)).validate()


def add_experiment_args(ap: argparse.ArgumentParser) -> None:
  """The solver options and the experiment overrides of
  :func:`apply_experiment_args` (shared by the scripts that reopen a run,
  which must name it with the same overrides)."""
  add_solver_args(ap, tuned_help="the config's tuned schedule")
  ap.add_argument("--n", type=int, help="override the number of observations")
  ap.add_argument("--split", help="override the data split: 'val' (the tail "
                  "of mnist5k train) to tune without touching test")
  ap.add_argument("--methods", help="comma-separated subset of the methods")
  ap.add_argument("--prior", help="override the prior (name or path)")
  ap.add_argument("--data-dir", help="tfds data dir (CelebA configs)")
  ap.add_argument("--noise-sigma", type=float, help="Gaussian noise added to "
                  "the simulated observations, std on the [-1, 1] scale "
                  "(operators.add_noise)")
  ap.add_argument("--surrogate", choices=("auto", "conv", "mixing", "conv_mlp"),
                  help="override the config's surrogate family")
  ap.add_argument("--wiener-balance", type=float,
                  help="override the Wiener baseline's balance")
  ap.add_argument("--refine-restarts", type=int,
                  help="fresh latent starts per observation of the "
                  "blind_refine and pgd_known_refine methods (default 4)")


def apply_experiment_args(cfg, args):
  """An ExperimentConfig with :func:`add_experiment_args`' overrides; a run
  on the paper's schedule is named ``<name>_paper``."""
  s_over = solver_overrides(args)
  if args.schedule == "paper" or s_over:
    cfg = cfg.replace(solver=solver_config(args, tuned=cfg.solver))
  d_over = {k: v for k, v in (("n", args.n), ("data_dir", args.data_dir),
                              ("split", args.split)) if v is not None}
  if d_over:
    cfg = cfg.replace(data=dataclasses.replace(cfg.data, **d_over))
  if args.prior:
    cfg = cfg.replace(prior=args.prior)
  if args.methods:
    cfg = cfg.replace(methods=tuple(args.methods.split(",")))
  if getattr(args, "noise_sigma", None) is not None:
    cfg = cfg.replace(task=dataclasses.replace(cfg.task,
                                               noise_sigma=args.noise_sigma))
  if getattr(args, "surrogate", None) is not None:
    cfg = cfg.replace(surrogate=args.surrogate)
  if getattr(args, "wiener_balance", None) is not None:
    cfg = cfg.replace(wiener_balance=args.wiener_balance)
  if getattr(args, "refine_restarts", None) is not None:
    cfg = cfg.replace(refine_restarts=args.refine_restarts)
  if args.schedule == "paper":
    cfg = cfg.replace(name=cfg.name + "_paper")
  return cfg


def load_config_file(path, what: str = "--config"):
  """``get_config()`` of a Python config file."""
  path = pathlib.Path(path)
  if not path.is_file():
    raise FileNotFoundError(f"{what}: no file at {str(path)!r}.")
  spec = importlib.util.spec_from_file_location(f"_cfg_{path.stem}", path)
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  if not hasattr(module, "get_config"):
    raise ValueError(f"Config file {path} has no get_config() function.")
  return module.get_config()
