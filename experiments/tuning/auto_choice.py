"""Does ``surrogate="auto"`` pick the right family, and ``num_sources="auto"``
the right S? Measured on the MNIST tasks.

  # the family, on each task (the config's schedule, 16 observations):
  python experiments/tuning/auto_choice.py --split val --out runs/auto_val
  python experiments/tuning/auto_choice.py --split test --out docs/results/auto
  # each observation holding out its own pixels, with the mask family:
  python experiments/tuning/auto_choice.py --split test --n 16 \
      --heldout entries --out runs/auto_entries_test
  # the border families beside conv and conv_scene, on each border:
  python experiments/tuning/auto_choice.py --split val --n 16 \
      --tasks mnist_deblur,mnist_deblur_zero,mnist_deblur_reflect,\
mnist_deblur_circular --families conv,conv_scene,conv_reflect,conv_circular \
      --out runs/auto_borders_val
  # S, on mixtures of S = 1, 2, 3 digits (4 mixtures each), 3 draws each:
  python experiments/tuning/auto_choice.py --split test --sources \\
      --out docs/results/auto

For each task the observations are simulated as in
``experiments/paper/reproduce.py`` (its config, first ``--n`` digits of the
split), and :func:`blindinv_jax.auto.choose` screens every candidate on 10%
held-out pixels of each observation, exactly as ``solve(surrogate="auto")``
does before its full solve. The full solve with the chosen family is the same solve as naming it
by hand (same key), so where the right family is chosen the PSNR is the
hand-named run's, bit for bit. Writes ``OUT/auto_choice.json`` (done rows
are reused) and prints markdown tables.
"""
import argparse
import dataclasses
import pathlib
import time

import jax

from blindinv_jax import auto, experiment as E, resume
from blindinv_jax.options import load_experiment
from blindinv_jax.priors import resolve

CONFIGS = pathlib.Path(__file__).parent.parent / "paper" / "configs"
#: task -> (config, the right family, task fields changed). Deblurring and
#: edge maps simulate the scene continuing past the frame (the configs'
#: default); the zero-padded deblurring is the library's older simulation,
#: whose grey frame the plain ``conv`` draws.
TASKS = {"mnist_deblur": ("mnist_deblur", "conv_scene", {}),
         "mnist_deblur_zero": ("mnist_deblur", "conv", {"boundary": "zero"}),
         "mnist_edges": ("mnist_edges", "conv", {}),
         "mnist_sep1": ("mnist_sep1", "mixing", {}),
         "mnist_sep4": ("mnist_sep4", "mixing", {}),
         "mnist_inpaint": ("mnist_inpaint", "mask", {}),
         "mnist_deblur_reflect": ("mnist_deblur", "conv_reflect",
                                  {"boundary": "reflect"}),
         "mnist_deblur_circular": ("mnist_deblur", "conv_circular",
                                   {"boundary": "circular"}),
         "mnist_edges_reflect": ("mnist_edges", "conv_reflect",
                                 {"boundary": "reflect"}),
         "mnist_edges_circular": ("mnist_edges", "conv_circular",
                                  {"boundary": "circular"})}
#: Screened only when ``--tasks`` names them (with ``--families`` naming the
#: border families): the observations mirrored or wrapped past the frame.
BORDER_TASKS = ("mnist_deblur_reflect", "mnist_deblur_circular",
                "mnist_edges_reflect", "mnist_edges_circular")


def simulate(cfg, prior):
  _, y, _, _ = E.simulate(cfg, prior.image_shape)
  return y


def family_rows(args, prior, res):
  out = res.setdefault("family", {})
  for name, (config, right, task) in TASKS.items():
    wanted = (name in args.tasks if args.tasks else
              name not in BORDER_TASKS)
    if name in out or not wanted:
      continue
    cfg = load_experiment(CONFIGS / f"{config}.py")
    cfg = cfg.replace(data=dataclasses.replace(cfg.data, n=args.n,
                                               split=args.split),
                      task=dataclasses.replace(cfg.task, **task))
    y = simulate(cfg, prior)
    t0 = time.perf_counter()
    stamps = []                       # each candidate's screening seconds
    c = auto.choose(y, prior, num_sources=cfg.task.num_sources,
                    config=cfg.solver, key=jax.random.key(cfg.seed),
                    families=families(args), heldout=args.heldout,
                    on_candidate=lambda row, st=stamps: st.append(
                        (row[0], time.perf_counter())))
    starts = [t0] + [t for _, t in stamps[:-1]]
    out[name] = {"right": right, "chosen": c.family, **c.to_dict(),
                 "seconds": round(time.perf_counter() - t0, 1),
                 "candidate_seconds": {f: round(t - t1, 1) for (f, t), t1
                                       in zip(stamps, starts)}}
    print(f"{name}: chose {c.family} (right: {right})\n{c.table()}",
          flush=True)
    yield


def families(args):
  """The screened families: ``--families``, else ``surrogate="auto"``'s
  (``mask`` among them: screened with held-out entries, else dueling the
  winner on held-out entries)."""
  if args.families:
    return tuple(args.families)
  return auto.families_for("auto")


def source_rows(args, prior, res):
  out = res.setdefault("sources", {})
  base = load_experiment(CONFIGS / "mnist_sep4.py")
  for s in (1, 2, 3):
    for draw in range(args.draws):
      label = f"S={s} draw={draw}"
      if label in out:
        continue
      cfg = base.replace(
          data=dataclasses.replace(base.data, n=args.n, split=args.split,
                                   offset=draw * args.n * 3),
          task=dataclasses.replace(base.task, num_sources=s,
                                   mixing_seed=draw))
      y = simulate(cfg, prior)
      t0 = time.perf_counter()
      c = auto.choose(y, prior, num_sources="auto", families=("mixing",),
                      config=cfg.solver, key=jax.random.key(draw))
      out[label] = {"true": s, "chosen": c.num_sources, **c.to_dict(),
                    "seconds": round(time.perf_counter() - t0, 1)}
      print(f"{label}: chose S={c.num_sources}\n{c.table()}", flush=True)
      yield


def tables(res) -> str:
  lines = []
  if res.get("family"):
    names = list(dict.fromkeys(c[0] for r in res["family"].values()
                               for c in r["candidates"]))
    lines += ["| task | right family | chosen | held-out L1: " +
              " | ".join(names) + " | duels (gain, paired t) | "
              "screening s |", "|---" * (5 + len(names)) + "|"]
    for name, r in res["family"].items():
      held = {c[0]: c[2] for c in r["candidates"]}
      duels = "; ".join(auto.SurrogateChoice.from_dict(r).duel_lines(
          short=True))
      lines.append(f"| {name} | {r['right']} | {r['chosen']} | " + " | ".join(
          f"{held.get(f, float('nan')):.5f}" for f in names) +
          f" | {duels} | {r['seconds']} |")
  if res.get("sources"):
    lines += ["", "| true S | draw | chosen S | held-out L1 at S = 1, 2, 3, 4 "
              "|", "|---|---|---|---|"]
    for label, r in res["sources"].items():
      held = ", ".join(f"{c[2]:.5f}" for c in r["candidates"])
      lines.append(f"| {r['true']} | {label.split('=')[-1]} | {r['chosen']} "
                   f"| {held} |")
    for s in (1, 2, 3):
      rows = [r for r in res["sources"].values() if r["true"] == s]
      if rows:
        right = sum(r["chosen"] == s for r in rows)
        lines.append(f"\nS = {s}: right in {right} of {len(rows)} draws")
  return "\n".join(lines)


def identity(args) -> dict:
  """What the rows depend on (``OUT/auto_choice.json`` is reused only by a
  run of the same): the split, observations per task and prior. ``--sources``
  and ``--draws`` choose which rows are computed, not what they hold."""
  return {"split": args.split, "n": args.n, "prior": args.prior,
          **({} if args.heldout == "pixels" else {"heldout": args.heldout}),
          **({"families": args.families} if args.families else {})}


def main(argv=None):
  ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  ap.add_argument("--split", default="val", choices=("val", "test"))
  ap.add_argument("--n", type=int, default=16, help="observations per task")
  ap.add_argument("--prior", default="mnist")
  ap.add_argument("--sources", action="store_true",
                  help="estimate S on mixtures of 1, 2 and 3 digits instead")
  ap.add_argument("--draws", type=int, default=3,
                  help="draws (digits and mixing matrix) per S")
  ap.add_argument("--tasks", type=lambda v: v.split(","), default=None,
                  help="comma-separated tasks to screen (default: all but "
                  "the mirrored and wrapped borders; all: "
                  f"{', '.join(TASKS)})")
  ap.add_argument("--families", type=lambda v: v.split(","), default=None,
                  help="comma-separated families to screen, simplest first "
                  "(default: surrogate='auto''s, mask included)")
  ap.add_argument("--heldout", default="pixels", choices=auto.HELDOUT,
                  help="the same held-out pixels of every observation (the "
                  "default rule; mask then duels the winner on held-out "
                  "entries), or each observation's own ('entries')")
  ap.add_argument("--out", required=True)
  args = ap.parse_args(argv)
  out = pathlib.Path(args.out)
  out.mkdir(parents=True, exist_ok=True)
  try:
    cache = resume.ResultCache(
        out / "auto_choice.json", identity(args),
        legacy=lambda rows: rows.pop("setting", None))
  except resume.RunMismatch as e:
    raise SystemExit(str(e)) from None
  res = cache.rows
  prior = resolve(args.prior)
  rows = source_rows if args.sources else family_rows
  for _ in rows(args, prior, res):
    cache.save()
  print(tables(res))
  return res


if __name__ == "__main__":
  main()
