"""The table of border conventions: how the blind solve does on observations
made with each way the scene continues past the frame (issue 29).

Runs (the first 50 mnist5k test digits, the tuned schedule, seed 0), one
workdir per border, surrogate and selection under ``--runs``. One restart
(the configs' schedule before they kept four restarts by the kernel's
centring)::

  R=experiments/paper/reproduce.py; C=experiments/paper/configs
  ONE="--config.solver.restarts=1 --config.solver.select=fit"
  for t in deblur edges; do
    python $R --config=$C/mnist_$t.py --workdir=runs/scene/$t $ONE \
        --config.surrogate=conv_scene
    python $R --config=$C/mnist_$t.py --workdir=runs/scene/${t}_conv $ONE \
        --config.surrogate=conv --config.methods=blind
  done
  for b in reflect circular; do     # each task with its config's surrogate
    python $R --config=$C/mnist_deblur.py --workdir=runs/$b/deblur $ONE \
        --config.task.boundary=$b --config.methods=blind
    python $R --config=$C/mnist_edges.py --workdir=runs/$b/edges_conv $ONE \
        --config.task.boundary=$b --config.methods=blind
  done

Four restarts, the best fit among the most centred kernels kept
(``select="centred"``: the deblurring config of commit 14f430a, before it
re-centred)::

  B="--config.methods=blind"
  python $R --config=$C/mnist_deblur.py --workdir=runs/centred/deblur $B
  python $R --config=$C/mnist_deblur.py --workdir=runs/centred/deblur_zero $B \
      --config.task.boundary=zero --config.surrogate=conv
  for b in reflect circular; do
    python $R --config=$C/mnist_deblur.py --workdir=runs/centred/deblur_$b $B \
        --config.task.boundary=$b
  done
  python $R --config=$C/mnist_edges.py --workdir=runs/centred/edges $B \
      # the edge-map config as it was before recentre (commit ba3d216)
  for b in reflect circular; do     # the surrogate that draws that border
    python $R --config=$C/mnist_deblur.py --workdir=runs/own/deblur_$b $B \
        --config.task.boundary=$b --config.surrogate=conv_$b
  done

Edge maps, one restart solved again from its recoveries moved back to the
centre (``recentre=0``: the edge-map config as it is)::

  for b in zero scene reflect circular; do
    python $R --config=$C/mnist_edges.py --workdir=runs/recentre/edges_$b $B \
        --config.task.boundary=$b
  done

Deblurring, the same on the reflect and circular borders (``conv_scene``)::

  for b in reflect circular; do
    python $R --config=$C/mnist_deblur.py --workdir=runs/recentre/deblur_$b $B \
        --config.task.boundary=$b --config.solver.restarts=1 \
        --config.solver.select=fit --config.solver.recentre=0
  done

Deblurring, one restart re-centred with four restarts of the second solve
(``recentre_restarts=4``: the deblurring config as it is)::

  python $R --config=$C/mnist_deblur.py --workdir=runs/recentre4/deblur_zero \
      $B --config.task.boundary=zero --config.surrogate=conv
  for b in scene reflect circular; do
    python $R --config=$C/mnist_deblur.py --workdir=runs/recentre4/deblur_$b \
        $B --config.task.boundary=$b
  done

Then the table (rows whose runs are absent keep the values ``--out``
holds)::

  python experiments/paper/borders.py --runs runs \
      --zero docs/results/boundary --out docs/results/boundary/borders.json

The zero-padded rows (the library's earlier simulation, before the
default became the scene) come from
``--zero``'s ``mnist_deblur.json`` / ``mnist_edges.json`` (the results
table's runs). Prints, per task, the blind PSNR for each border and
surrogate, and the paired difference per digit against the zero-padded
blind run (mean ± standard error); writes ``--out``.
"""
from __future__ import annotations

import argparse
import json
import pathlib
import sys

import numpy as np

#: task -> (config, the surrogate its config names)
TASKS = {"deblur": ("mnist_deblur", "conv_scene"),
         "edges": ("mnist_edges", "conv")}


def rows(config_surrogate: str):
  """(border, surrogate, selection) triples: zero-padded with conv (the
  results table), the scene with both conv families, reflect and circular
  with the config's, one restart each (``"fit"``); then the runs with four
  restarts and ``select="centred"`` (``"centred4"``), the last two with
  the surrogate that draws that border (``conv_reflect``,
  ``conv_circular``); then one restart solved again from its recoveries
  moved back to the centre (``"recentred"``, ``recentre=0``): edge maps
  (``conv``, the edge-map config as it is) on every border, deblurring on
  the reflect and circular ones; deblurring re-centred with four restarts
  of the second solve (``"recentred4"``, ``recentre_restarts=4``: the
  deblurring config as it is) on every border."""
  one = [("zero", "conv"), ("scene", "conv"), ("scene", "conv_scene"),
         ("reflect", config_surrogate), ("circular", config_surrogate)]
  four = [("zero", "conv")] + [(b, config_surrogate) for b in
                               ("scene", "reflect", "circular")] + [
                                   ("reflect", "conv_reflect"),
                                   ("circular", "conv_circular")]
  again = ([(b, "conv", "recentred") for b in ("zero", "scene", "reflect",
                                              "circular")]
           if config_surrogate == "conv" else
           [(b, config_surrogate, "recentred") for b in ("reflect",
                                                         "circular")])
  if config_surrogate != "conv":
    again += [("zero", "conv", "recentred4")] + [
        (b, config_surrogate, "recentred4")
        for b in ("scene", "reflect", "circular")]
  return ([(b, s, "fit") for b, s in one] +
          [(b, s, "centred4") for b, s in four] + again)


def workdir(border: str, task: str, surrogate: str,
            selection: str = "fit") -> str:
  """``runs``-relative workdir: ``scene/deblur`` (conv_scene) or
  ``scene/deblur_conv`` (conv), one restart; ``centred/deblur`` (the
  scene) or ``centred/deblur_<border>``, four restarts; ``own/deblur_
  <border>`` with the border's own surrogate (``conv_<border>``);
  ``recentre/<task>_<border>``: one restart, re-centred;
  ``recentre4/<task>_<border>``: the same with four second restarts."""
  if selection == "recentred4":
    return f"recentre4/{task}_{border}"
  if selection == "recentred":
    return f"recentre/{task}_{border}"
  if selection == "centred4" and surrogate in ("conv_reflect", "conv_circular"):
    return f"own/{task}_{border}"
  if selection == "centred4":
    return f"centred/{task}" + ("" if border == "scene" else f"_{border}")
  return f"{border}/{task}" + ("_conv" if surrogate == "conv" else "")


def blind_of(metrics_path: pathlib.Path) -> dict:
  m = json.loads(metrics_path.read_text())
  b = m["methods"]["blind"]
  return {"psnr": b["psnr"], "per_image": np.asarray(b["psnr_per_image"]),
          "kernel_error": (b.get("kernel_error") or {}).get("error"),
          "observation": m["observation"]["psnr"]}


def main(argv=None):
  ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  ap.add_argument("--runs", default="runs", help="the workdirs' parent")
  ap.add_argument("--zero", default="docs/results/boundary",
                  help="folder of the zero-padded runs' mnist_*.json")
  ap.add_argument("--out", default=None, help="JSON of the table: rows "
                  "whose runs are not under --runs keep what it holds")
  args = ap.parse_args(argv)
  runs, table = pathlib.Path(args.runs), {}
  if args.out and pathlib.Path(args.out).is_file():
    table = json.loads(pathlib.Path(args.out).read_text())
  print("| task | observations' border | surrogate | restarts | observation "
        "| blind (dB) | kernel error | blind minus zero-padded run, paired |")
  print("|---|---|---|---|---|---|---|---|")
  for t, (name, config_surrogate) in TASKS.items():
    base = blind_of(pathlib.Path(args.zero) / f"{name}.json")
    for border, sur, sel in rows(config_surrogate):
      path = (pathlib.Path(args.zero) / f"{name}.json"
              if border == "zero" and sel == "fit"
              else runs / workdir(border, t, sur, sel) / "metrics.json")
      how = {"fit": "1", "centred4": "4, `select=\"centred\"`",
             "recentred": "1, then re-centred (`recentre=0`)",
             "recentred4": "1, then re-centred with 4 restarts "
                           "(`recentre_restarts=4`)"}[sel]
      name_row = f"{t}/{border}/{sur}" + ("" if sel == "fit" else f"/{sel}")
      if path.is_file():
        r = blind_of(path)
        d = r["per_image"] - base["per_image"]
        table[name_row] = {
            "psnr": r["psnr"], "observation": r["observation"],
            "kernel_error": r["kernel_error"],
            "minus_zero": [float(d.mean()),
                           float(d.std(ddof=1) / np.sqrt(len(d)))]}
      elif name_row not in table:
        print(f"| {t} | {border} | `{sur}` | {how} | not run ({path}) "
              "| | | |")
        continue
      r, saved = table[name_row], "" if path.is_file() else " (saved)"
      ke = "" if r["kernel_error"] is None else f"{r['kernel_error']:.3f}"
      print(f"| {t} | {border} | `{sur}` | {how} | {r['observation'][0]:.2f} | "
            f"{r['psnr'][0]:.2f} ± {r['psnr'][1]:.2f} | {ke} | "
            f"{r['minus_zero'][0]:+.2f} ± {r['minus_zero'][1]:.2f}{saved} |")
  if args.out:
    pathlib.Path(args.out).write_text(json.dumps(table, indent=1))
  return table


if __name__ == "__main__":
  try:
    main()
  except (FileNotFoundError, KeyError) as e:
    print(f"borders.py: error: {e}", file=sys.stderr)
    sys.exit(2)
