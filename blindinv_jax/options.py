"""Command-line options and experiment configs.

* The solver's options of ``blindinv solve``: one flag per
  :class:`blindinv_jax.config.SolverConfig` field, built from the dataclass
  (:func:`add_solver_args`, :func:`solver_config`).
* Experiment configs in the Flax examples' convention: each experiment is a
  Python file whose ``get_config(arg=None)`` returns an
  ``ml_collections.ConfigDict`` nested as ``data / task / solver`` plus the
  top-level fields of :class:`blindinv_jax.experiment.ExperimentConfig`
  (:func:`experiment_config` builds one with every field). Scripts parse
  ``--config=FILE[:ARG]`` with dotted overrides
  (``--config.solver.latent_lr=3e-2 --config.data.split=val``) through
  :func:`parse_flags`, and :func:`to_experiment` converts the ConfigDict to
  the typed, validated ``ExperimentConfig`` (its ``solver`` section to a
  ``SolverConfig``) in one place.
"""
from __future__ import annotations

import argparse
import dataclasses
import pathlib
import re
import sys
import typing
from typing import Callable, Optional, Sequence, Tuple

from blindinv_jax.config import PAPER, TUNED, SolverConfig

# ---------------------------------------------------------------- the CLI


def _field_docs() -> dict:
  """SolverConfig's attribute descriptions, from its docstring."""
  doc = SolverConfig.__doc__.split("Attributes:", 1)[1]
  out, name = {}, None
  for line in doc.splitlines():
    m = re.match(r"\s{4}(\w+): (.*)", line)
    if m:
      name, text = m.group(1), m.group(2)
      out[name] = text
    elif name and line.strip():
      out[name] += " " + line.strip()
  return {k: re.sub(r"``|:\w+:`[~.]?([^`]*)`", r"\1", v) for k, v in
          out.items()}


def _unroll(text: str):
  """``--unroll``: ``full`` or a positive int."""
  return text if text == "full" else int(text)


def _flag_type(field: dataclasses.Field):
  if field.name == "unroll":
    return _unroll
  hint = typing.get_type_hints(SolverConfig)[field.name]
  args = [a for a in typing.get_args(hint) if a is not type(None)]
  return args[0] if args else hint


def solver_flags() -> dict:
  """``--flag -> (SolverConfig field, type, help)`` for every field."""
  docs = _field_docs()
  return {"--" + f.name.replace("_", "-"): (
      f.name, _flag_type(f),
      f"{docs.get(f.name, f.name)} (tuned: {getattr(TUNED, f.name)!r}, "
      f"paper: {getattr(PAPER, f.name)!r})")
          for f in dataclasses.fields(SolverConfig)}


def add_solver_args(ap: argparse.ArgumentParser, tuned_help: str = (
    "config.TUNED (T=60, latent lr 1e-2)")) -> None:
  """``--schedule tuned|paper`` and one option per SolverConfig field."""
  ap.add_argument("--schedule", choices=("tuned", "paper"), default="tuned",
                  help=f"{tuned_help} or the paper's (T=100, latent lr "
                  "3e-4); the options below override either")
  group = ap.add_argument_group("solver (SolverConfig fields)")
  for flag, (_, typ, text) in solver_flags().items():
    group.add_argument(flag, type=typ, help=text.replace("%", "%%"))


def add_extension_args(ap: argparse.ArgumentParser) -> None:
  """The ``--extension*`` options of a projection (SolverConfig's range
  extension, less ``extension_from``, which counts a solve's steps)."""
  group = ap.add_argument_group("range extension (SolverConfig fields)")
  for flag, (name, typ, text) in solver_flags().items():
    if name.startswith("extension") and name != "extension_from":
      group.add_argument(flag, type=typ, help=text.replace("%", "%%"))


def extended_prior(args, prior):
  """``prior`` with the range extension the command line names
  (:func:`blindinv_jax.extension.extend`), or None without ``--extension``."""
  from blindinv_jax import extension
  over = {k: v for k, v in solver_overrides(args).items()
          if k.startswith("extension")}
  if over.get("extension") is None:
    return None
  return extension.extend(prior, TUNED.replace(**over).validate())


def solver_overrides(args) -> dict:
  """The SolverConfig fields set on the command line."""
  return {field: getattr(args, field) for field, _, _ in
          solver_flags().values() if getattr(args, field, None) is not None}


def solver_config(args, tuned: SolverConfig = TUNED) -> SolverConfig:
  """``--schedule``'s config (``tuned`` for "tuned") with the overrides."""
  base = PAPER if args.schedule == "paper" else tuned
  return base.replace(**solver_overrides(args)).validate()


# ----------------------------------------------------- experiment configs

def _section(obj, optional_types: dict):
  """A ConfigDict of a dataclass's fields; ``None`` values become typed
  placeholders (so ``--config.a.b=...`` can set them)."""
  import ml_collections
  from ml_collections import config_dict
  out = ml_collections.ConfigDict()
  for f in dataclasses.fields(obj):
    v = getattr(obj, f.name)
    if dataclasses.is_dataclass(v):
      v = _section(v, optional_types)
    elif isinstance(v, tuple):
      v = ",".join(v)
    elif v is None:
      v = config_dict.placeholder(optional_types.get(f.name, str))
    setattr(out, f.name, v)
  return out


#: The types of the fields whose default is None (placeholders).
_OPTIONAL_TYPES = {"latent_lr_end": float, "batch_size": int, "unroll": str,
                   "grad_pieces": int, "precision": str, "image_size": int,
                   "data_dir": str, "extension": str,
                   "extension_depth": int, "recentre": float}


def experiment_config(name: str, title: str, *,
                      solver: SolverConfig = TUNED,
                      schedule: Optional[str] = None):
  """An experiment's ``ConfigDict`` with every field of ``ExperimentConfig``
  at its default, ``solver`` as its ``solver`` section.

  ``schedule``: the config file's argument (``--config=FILE:paper``):
  ``"paper"`` replaces the solver by the paper's schedule
  (:data:`blindinv_jax.config.PAPER`) and names the run ``<name>_paper``.
  """
  from blindinv_jax import experiment as E
  if schedule not in (None, "", "tuned", "paper"):
    raise ValueError(f"{name}: the config's argument is a schedule, 'tuned' "
                     f"or 'paper' (--config=FILE:paper), got {schedule!r}.")
  paper = schedule == "paper"
  base = E.ExperimentConfig(name=name + ("_paper" if paper else ""),
                            title=title)
  return _section(base.replace(solver=PAPER if paper else solver),
                  _OPTIONAL_TYPES)


def to_solver_config(section) -> SolverConfig:
  """A ``solver`` section (a ConfigDict or dict) as a validated
  ``SolverConfig``: the one place where a config's solver becomes one."""
  d = dict(section.to_dict() if hasattr(section, "to_dict") else section)
  names = {f.name for f in dataclasses.fields(SolverConfig)}
  bad = sorted(set(d) - names)
  if bad:
    raise ValueError(f"solver: unknown field(s) {bad}; SolverConfig has "
                     f"{sorted(names)}.")
  if isinstance(d.get("unroll"), str) and d["unroll"] != "full":
    try:
      d["unroll"] = int(d["unroll"])
    except ValueError:
      raise ValueError(f"solver.unroll must be 'full' or a positive int, "
                       f"got {d['unroll']!r}.") from None
  return SolverConfig(**d).validate()


def to_experiment(cd):
  """A ConfigDict of :func:`experiment_config`'s shape as a validated
  :class:`blindinv_jax.experiment.ExperimentConfig`."""
  from blindinv_jax import experiment as E
  d = cd.to_dict() if hasattr(cd, "to_dict") else dict(cd)
  sections = {"data": E.DataSpec, "task": E.TaskSpec}
  kw = {}
  for k, v in d.items():
    if k in sections:
      names = {f.name for f in dataclasses.fields(sections[k])}
      bad = sorted(set(v) - names)
      if bad:
        raise ValueError(f"{k}: unknown field(s) {bad}; it has "
                         f"{sorted(names)}.")
      kw[k] = sections[k](**v)
    elif k == "solver":
      kw[k] = to_solver_config(v)
    elif k == "methods":
      kw[k] = tuple(m for m in (v.split(",") if isinstance(v, str) else v)
                    if m)
    else:
      kw[k] = v
  names = {f.name for f in dataclasses.fields(E.ExperimentConfig)}
  bad = sorted(set(kw) - names)
  if bad:
    raise ValueError(f"unknown experiment field(s) {bad}; an experiment has "
                     f"{sorted(names)}.")
  return E.ExperimentConfig(**kw).validate()


def _config_module(path: pathlib.Path):
  import importlib.util
  spec = importlib.util.spec_from_file_location(f"_cfg_{path.stem}", path)
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  if not hasattr(module, "get_config"):
    raise ValueError(f"Config file {path} has no get_config() function.")
  return module


def load_config(spec, what: str = "--config"):
  """``get_config(arg)`` of a config file ``"PATH[:ARG]"``, as the
  ``ConfigDict`` it returns (no overrides)."""
  text = str(spec)
  path, _, arg = text.partition(":") if not pathlib.Path(text).is_file() \
      else (text, "", "")
  path = pathlib.Path(path)
  if not path.is_file():
    raise FileNotFoundError(f"{what}: no file at {str(path)!r}.")
  module = _config_module(path)
  return module.get_config(arg) if arg else module.get_config()


def load_experiment(spec, what: str = "--config"):
  """The validated ``ExperimentConfig`` of a config file ``"PATH[:ARG]"``."""
  return to_experiment(load_config(spec, what))


def parse_flags(argv: Optional[Sequence[str]], description: str,
                define: Optional[Callable] = None, *,
                config_required: bool = True):
  """Parses a script's command line: ``--config=FILE[:ARG]`` with dotted
  overrides (``ml_collections.config_flags``) and the script's own flags,
  which ``define(flag_values)`` declares (``absl.flags.DEFINE_*(...,
  flag_values=flag_values)``).

  Returns ``(ExperimentConfig or None, flag values)``. ``--help`` prints
  the flags and exits; a bad flag or override exits with status 2 and one
  line naming it.
  """
  from absl import flags
  from ml_collections import config_flags
  argv = list(sys.argv if argv is None else ["prog", *argv])
  prog = pathlib.Path(sys.argv[0]).name
  fv = flags.FlagValues()
  config_flags.DEFINE_config_file(
      "config", None, "an experiment config file, FILE or FILE:ARG (ARG "
      "'paper': the paper's schedule); override any field with "
      "--config.SECTION.FIELD=VALUE, e.g. --config.solver.latent_lr=3e-2 "
      "--config.data.split=val --config.data.n=16", flag_values=fv,
      sys_argv=argv)
  if define is not None:
    define(fv)
  if any(a in ("-h", "--help", "-help") for a in argv[1:]):
    print(f"usage: {prog} --config=FILE[:ARG] [--config.FIELD=VALUE ...] "
          f"[flags]\n\n{description}\nflags:")
    for name in sorted(fv):
      flag = fv[name]
      if name in ("flagfile", "undefok") or name != flag.name:
        continue
      default = "" if flag.default is None else f" (default: {flag.default})"
      print(f"  --{name}: {flag.help}{default}")
    sys.exit(0)
  spec = [a.split("=", 1)[1] for a in argv[1:] if a.startswith("--config=")]
  if spec:
    path = spec[-1].split(":")[0] if not pathlib.Path(spec[-1]).is_file() \
        else spec[-1]
    if not pathlib.Path(path).is_file():
      print(f"{prog}: error: --config: no file at {path!r}.", file=sys.stderr)
      sys.exit(2)
  try:
    rest = fv(argv)
  except AttributeError as e:             # an override of no field
    field = str(e).strip("'\"")
    bad = [a.split("=")[0] for a in argv if a.startswith("--config.") and
           a.split("=")[0].split(".")[-1] == field] or [field]
    print(f"{prog}: error: {bad[0]}: the config has no such field; its "
          f"fields: {', '.join(_field_paths(load_config(spec[-1])))}.",
          file=sys.stderr)
    sys.exit(2)
  except (flags.Error, KeyError, TypeError, ValueError) as e:
    print(f"{prog}: error: {e}", file=sys.stderr)
    sys.exit(2)
  if len(rest) > 1:
    print(f"{prog}: error: unexpected argument(s) {rest[1:]}",
          file=sys.stderr)
    sys.exit(2)
  if fv.config is None:
    if config_required:
      print(f"{prog}: error: give --config=FILE[:ARG] (see --help)",
            file=sys.stderr)
      sys.exit(2)
    return None, fv
  return to_experiment(fv.config), fv


def _field_paths(cd, prefix: str = "") -> Tuple[str, ...]:
  out = []
  for k in sorted(cd.keys()):
    v = cd[k]
    if hasattr(v, "keys"):
      out += _field_paths(v, f"{prefix}{k}.")
    else:
      out.append(prefix + k)
  return tuple(out)
