"""Reproduces the paper's figures: one experiment config, or all MNIST ones.

  python experiments/paper/reproduce.py \
      --config=experiments/paper/configs/mnist_deblur.py --workdir=runs/mnist_deblur
  python experiments/paper/reproduce.py --all --workdir=runs/paper

A config is a file whose ``get_config()`` returns an ``ml_collections``
ConfigDict; ``--config=FILE:paper`` runs the paper's schedule, and any field
can be overridden on the command line, e.g. ``--config.data.split=val
--config.data.n=16 --config.solver.latent_lr=3e-2 --config.methods=blind,pgd``
(with ``--all``, the overrides apply to each of the four configs, and
``--schedule=paper`` picks the paper's schedule for all).

Each run writes to its workdir: figure.png (laid out like the paper's),
metrics.json (mean and std of PSNR/SSIM per method over the test images, the
blind surrogate's kernel error), config.json and methods/*.npz (each method's
recovered sources; a killed run resumes with the methods it had not done).
``--all`` runs the four MNIST configs into WORKDIR/<name>/ and writes
WORKDIR/results.md, the table of docs/results.md.
"""
import pathlib
import sys

from blindinv_jax import experiment as E
from blindinv_jax.options import load_experiment, parse_flags

CONFIGS = pathlib.Path(__file__).parent / "configs"
MNIST = ("mnist_deblur", "mnist_edges", "mnist_sep1", "mnist_sep4")


def load_config(path) -> E.ExperimentConfig:
  """The ExperimentConfig of a config file ``PATH[:ARG]``."""
  return load_experiment(path)


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


def define(fv):
  from absl import flags
  flags.DEFINE_string("workdir", None, "output folder", flag_values=fv,
                      required=True)
  flags.DEFINE_bool("all", False, "run the four MNIST configs into "
                    "WORKDIR/<name>/ and write WORKDIR/results.md",
                    flag_values=fv)
  flags.DEFINE_enum("schedule", "tuned", ("tuned", "paper"), "with --all: "
                    "the configs' tuned schedule or the paper's",
                    flag_values=fv)


def main(argv=None):
  argv = sys.argv[1:] if argv is None else list(argv)
  cfg, args = parse_flags(argv, __doc__, define, config_required=False)
  if (cfg is None) != bool(args.all):
    print("reproduce.py: error: give exactly one of --config=FILE and --all",
          file=sys.stderr)
    sys.exit(2)
  workdir = pathlib.Path(args.workdir)
  if args.all:
    arg = ":paper" if args.schedule == "paper" else ""
    out = []
    for name in MNIST:
      cfg, _ = parse_flags([f"--config={CONFIGS / name}.py{arg}", *argv],
                           __doc__, define)
      out.append(E.run_experiment(cfg, workdir / cfg.name))
    table = results_table(out)
    (workdir / "results.md").write_text(table)
    print(table)
    for res in out:
      print_paired(res)
    return out
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
