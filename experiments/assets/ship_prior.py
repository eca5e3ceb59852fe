"""Copy a chosen training snapshot into the package as a shipped prior.

  python experiments/assets/ship_prior.py \\
      runs/prior_mnist_ema28/snapshots/prior_0008000.ckpt --as mnist-v3 \\
      --chosen-by "python experiments/assets/prior_quality.py ..."

Writes ``blindinv_jax/assets/<file of that name>`` (``SHIPPED`` in
:mod:`blindinv_jax.priors.io`; ``"mnist"`` is another name of ``"mnist-v1"``,
``ALIASES``) with the snapshot's G and D and its
metadata (the ``blindinv train-prior`` command, config and step), plus
``snapshot``, ``chosen_by`` and ``shipped_as``, so that
``load_prior(name).meta`` says where the file came from.
"""
import argparse
import pathlib

from blindinv_jax.priors import dcgan, io, load_prior


def main(argv=None):
  ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  ap.add_argument("snapshot", help="a prior file from a train-prior workdir")
  ap.add_argument("--as", dest="name", required=True,
                  choices=sorted(io.SHIPPED), help="the shipped name")
  ap.add_argument("--chosen-by", required=True,
                  help="the command (and rule) that chose this snapshot")
  args = ap.parse_args(argv)
  prior = load_prior(args.snapshot)
  meta = {k: v for k, v in prior.meta.items() if k != "model"}
  if "blindinv train-prior" not in (meta.get("command") or ""):
    raise SystemExit(f"{args.snapshot} does not record the train-prior "
                     "command that made it; ship only snapshots of a run.")
  path = io.shipped_path(args.name)
  meta.update(snapshot=f"{args.snapshot} (step {meta.get('step')})",
              chosen_by=args.chosen_by,
              shipped_as=f"{args.name} ({path.relative_to(path.parents[2])})")
  dcgan.save_prior(path, prior, prior.config, meta)
  size = pathlib.Path(path).stat().st_size / 1e6
  print(f"wrote {path} ({size:.1f} MB): load_prior({args.name!r})")


if __name__ == "__main__":
  main()
