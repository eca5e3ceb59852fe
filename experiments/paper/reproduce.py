"""Reproduces the paper's figures: one experiment config, or all MNIST ones.

  python experiments/paper/reproduce.py \
      --config experiments/paper/configs/mnist_deblur.py --workdir runs/mnist_deblur
  python experiments/paper/reproduce.py --all --workdir runs/paper [--schedule paper]

Each run writes to its workdir: figure.png (laid out like the paper's),
metrics.json (mean and std of PSNR/SSIM per method over the test images, the
blind surrogate's kernel error), config.json and methods/*.npz (each method's
recovered sources; a killed run resumes with the methods it had not done).
``--all`` runs the four MNIST configs into WORKDIR/<name>/ and writes
WORKDIR/results.md, the table of docs/results.md.
"""
import argparse
import pathlib
import sys

from blindinv_jax import experiment as E
from blindinv_jax.options import (
  add_experiment_args,
  apply_experiment_args,
  load_config_file,
)

CONFIGS = pathlib.Path(__file__).parent / "configs"
MNIST = ("mnist_deblur", "mnist_edges", "mnist_sep1", "mnist_sep4")


def load_config(path) -> E.ExperimentConfig:
  """The ExperimentConfig of a config file (``get_config()``)."""
  return load_config_file(path)


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
  for ref in E.PAIRED:
    for m, d in res.get(f"{ref}_minus", {}).items():
      print(f"[{res['name']}] {ref} - {m}, paired per image: "
            f"{d['mean_db']:+.2f} ± {d['standard_error_db']} dB; {ref} "
            f"better on {d['better_on']} of {d['images']}")


def main(argv=None):
  ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  ap.add_argument("--config", help="an experiment config file")
  ap.add_argument("--all", action="store_true", help="all MNIST configs")
  ap.add_argument("--workdir", required=True)
  add_experiment_args(ap)
  args = ap.parse_args(argv)
  if bool(args.config) == bool(args.all):
    ap.error("give exactly one of --config and --all")
  workdir = pathlib.Path(args.workdir)
  if args.all:
    out = []
    for name in MNIST:
      cfg = apply_experiment_args(load_config(CONFIGS / f"{name}.py"), args)
      out.append(E.run_experiment(cfg, workdir / cfg.name))
    table = results_table(out)
    (workdir / "results.md").write_text(table)
    print(table)
    for res in out:
      print_paired(res)
    return out
  cfg = apply_experiment_args(load_config(args.config), args)
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
