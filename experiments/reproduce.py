"""Reproduces the paper's figures: one experiment config, or all MNIST ones.

  python experiments/reproduce.py --config experiments/configs/mnist_deblur.py \
      --workdir runs/mnist_deblur
  python experiments/reproduce.py --all --workdir runs/paper [--schedule paper]

Each run writes to its workdir: figure.png (laid out like the paper's),
metrics.json (mean and std of PSNR/SSIM per method over the test images, the
blind surrogate's kernel error), config.json and methods/*.npz (each method's
recovered sources; a killed run resumes with the methods it had not done).
``--all`` runs the four MNIST configs into WORKDIR/<name>/ and writes
WORKDIR/results.md, the table for the README.
"""
import argparse
import importlib.util
import pathlib
import sys

from blindinv_jax import experiment as E
from blindinv_jax import solver

CONFIGS = pathlib.Path(__file__).parent / "configs"
MNIST = ("mnist_deblur", "mnist_edges", "mnist_sep1", "mnist_sep4")


def load_config(path) -> E.ExperimentConfig:
  path = pathlib.Path(path)
  if not path.is_file():
    raise FileNotFoundError(f"--config: no file at {str(path)!r}; the "
                            f"configs are in {CONFIGS}.")
  spec = importlib.util.spec_from_file_location(f"_exp_{path.stem}", path)
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module.get_config()


def apply_overrides(cfg: E.ExperimentConfig, args) -> E.ExperimentConfig:
  if args.schedule == "paper":
    cfg = cfg.replace(solver=solver.PAPER)
  s_over = {k: v for k, v in (("outer_steps", args.outer_steps),
                              ("restarts", args.restarts),
                              ("latent_lr", args.latent_lr),
                              ("alpha", args.alpha))
            if v is not None}
  if s_over:
    cfg = cfg.replace(solver=cfg.solver.replace(**s_over))
  d_over = {k: v for k, v in (("n", args.n), ("data_dir", args.data_dir),
                              ("split", args.split)) if v is not None}
  if d_over:
    import dataclasses
    cfg = cfg.replace(data=dataclasses.replace(cfg.data, **d_over))
  if args.prior:
    cfg = cfg.replace(prior=args.prior)
  if args.methods:
    cfg = cfg.replace(methods=tuple(args.methods.split(",")))
  if args.schedule == "paper" or s_over:
    cfg = cfg.replace(name=cfg.name + ("_paper" if args.schedule == "paper"
                                       else ""))
  return cfg


def results_table(all_results) -> str:
  """Markdown: one row per task and method."""
  lines = ["| task | method | PSNR (dB) | SSIM | kernel error | digits read "
           "| seconds |", "|---|---|---|---|---|---|---|"]
  for r in all_results:
    acc = r.get("classifier_accuracy", {})
    pct = lambda a: "" if a is None else f"{100 * a:.0f}%"
    if "clean" in acc:
      lines.append(f"| {r['title']} | clean digits | | | | "
                   f"{pct(acc['clean'])} | |")
    if "observation" in r:
      o = r["observation"]
      lines.append(f"| {r['title']} | observation | {o['psnr'][0]:.2f} ± "
                   f"{o['psnr'][1]:.2f} | {o['ssim'][0]:.3f} ± "
                   f"{o['ssim'][1]:.3f} | | | |")
    for m, e in r["methods"].items():
      if "not_applicable" in e:
        lines.append(f"| {r['title']} | {E.LABELS[m]} | n/a | n/a | | | |")
        continue
      ke = e.get("kernel_error")
      ke = "" if ke is None else f"{ke['error']:.3f}"
      lines.append(
          f"| {r['title']} | {E.LABELS[m]} | {e['psnr'][0]:.2f} ± "
          f"{e['psnr'][1]:.2f} | {e['ssim'][0]:.3f} ± {e['ssim'][1]:.3f} | "
          f"{ke} | {pct(e.get('accuracy'))} | {e['seconds']:.0f} |")
  return "\n".join(lines) + "\n"


def print_paired(res):
  """Each blind variant's per-image PSNR lead over each other method."""
  for ref in E.BLIND:
    for m, d in res.get(f"{ref}_minus", {}).items():
      print(f"[{res['name']}] {ref} - {m}, paired per image: "
            f"{d['mean_db']:+.2f} ± {d['standard_error_db']} dB; {ref} "
            f"better on {d['better_on']} of {d['images']}")


def add_override_args(ap: argparse.ArgumentParser) -> None:
  """The options :func:`apply_overrides` reads (shared with the scripts that
  reopen a run, which must name it with the same overrides)."""
  ap.add_argument("--schedule", choices=("tuned", "paper"), default="tuned",
                  help="the config's tuned schedule or the paper's")
  ap.add_argument("--n", type=int, help="override the number of observations")
  ap.add_argument("--outer-steps", type=int, help="override T")
  ap.add_argument("--restarts", type=int, help="override the restarts")
  ap.add_argument("--latent-lr", type=float, help="override the latent lr")
  ap.add_argument("--alpha", type=float,
                  help="override the perceptual loss weight")
  ap.add_argument("--split", help="override the data split: 'val' (the tail "
                  "of mnist5k train) to tune without touching test")
  ap.add_argument("--methods", help="comma-separated subset of the methods")
  ap.add_argument("--prior", help="override the prior (name or path)")
  ap.add_argument("--data-dir", help="tfds data dir (CelebA configs)")


def main(argv=None):
  ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  ap.add_argument("--config", help="an experiment config file")
  ap.add_argument("--all", action="store_true", help="all MNIST configs")
  ap.add_argument("--workdir", required=True)
  add_override_args(ap)
  args = ap.parse_args(argv)
  if bool(args.config) == bool(args.all):
    ap.error("give exactly one of --config and --all")
  workdir = pathlib.Path(args.workdir)
  if args.all:
    out = []
    for name in MNIST:
      cfg = apply_overrides(load_config(CONFIGS / f"{name}.py"), args)
      out.append(E.run_experiment(cfg, workdir / cfg.name))
    table = results_table(out)
    (workdir / "results.md").write_text(table)
    print(table)
    for res in out:
      print_paired(res)
    return out
  cfg = apply_overrides(load_config(args.config), args)
  res = E.run_experiment(cfg, workdir)
  print(results_table([res]))
  print_paired(res)
  print(f"wrote {workdir}/figure.png, metrics.json")
  return res


if __name__ == "__main__":
  try:
    main()
  except (ValueError, FileNotFoundError) as e:
    print(f"reproduce.py: error: {e}", file=sys.stderr)
    sys.exit(2)
