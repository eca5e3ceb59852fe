"""Does the learned surrogate prefer the recovered sources to the true ones?

  python experiments/paper/surrogate_fit.py \\
      --config=experiments/paper/configs/mnist_sep4.py \\
      --workdir=runs/paper/mnist_sep4 [--method=blind_ica] \\
      [--config.data.split=val --config.data.n=16]

Run it on a workdir that ``reproduce.py`` has finished, with the same config
and overrides. Loads the finished blind solve (``solver.load_result``) and prints the mean L1 data
loss per observation through the learned surrogate of the recovered sources,
the true sources and the true sources projected onto the prior
(``experiment.surrogate_fit``), and how often the projected truth fits
better. Writes ``WORKDIR/surrogate_fit_<method>.json``.
"""
import json
import pathlib

from blindinv_jax import experiment as E
from blindinv_jax.options import parse_flags


def define(fv):
  from absl import flags
  flags.DEFINE_string("workdir", None, "the finished reproduce.py workdir",
                      flag_values=fv, required=True)
  flags.DEFINE_enum("method", "blind", E.BLIND, "which blind solve",
                    flag_values=fv)


def main(argv=None):
  cfg, args = parse_flags(argv, __doc__, define)
  out = E.surrogate_fit(cfg, args.workdir, args.method)
  path = pathlib.Path(args.workdir) / f"surrogate_fit_{args.method}.json"
  path.write_text(json.dumps(out, indent=1))
  for k, v in out["mean_loss"].items():
    print(f"mean L1 loss per observation, {k.replace('_', ' ')}: {v}")
  print(f"the projected truth fits better on {100 * out['truth_preferred']:.0f}%"
        f" of {out['n']} observations; wrote {path}")
  return out


if __name__ == "__main__":
  main()
