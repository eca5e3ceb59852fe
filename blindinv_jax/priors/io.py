"""Prior files: the registry of checkpoint kinds, the shipped priors' names,
and :func:`load_prior`.

Each prior family (:mod:`blindinv_jax.priors.dcgan`,
:mod:`blindinv_jax.priors.vae`) registers the checkpoint kinds it reads with
:func:`register_kind` when it is imported (``blindinv_jax.priors`` imports
them all); :func:`load_prior` reads a file's kind from its header and hands
its state and metadata to that family's ``restore``. The families share this
module's helpers (:func:`jsonable`, :func:`restore_like`), so none imports
another.

Shipped priors: ``"mnist-v1"``, ``"mnist-v2"``, ``"mnist-v3"`` (files in
``blindinv_jax/assets/``), and ``"mnist"``, another name of ``"mnist-v1"``
(:data:`ALIASES`).
"""
from __future__ import annotations

import json
import pathlib
from typing import Callable, Dict

import flax
import jax
import jax.numpy as jnp
import numpy as np

from blindinv_jax import checkpoint

#: Checkpoint kind -> ``restore(state, meta, path) -> prior``; filled by the
#: family modules through :func:`register_kind`.
KINDS: Dict[str, Callable] = {}
#: Shipped prior name -> its file in :data:`ASSETS`.
SHIPPED = {"mnist-v1": "mnist_prior_v1.ckpt",
           "mnist-v2": "mnist_prior_v2.ckpt",
           "mnist-v3": "mnist_prior_v3.ckpt"}
#: Another name -> the shipped name it stands for (the default ``"mnist"``).
ALIASES = {"mnist": "mnist-v1"}
ASSETS = pathlib.Path(__file__).resolve().parent.parent / "assets"


def register_kind(kind: str, restore: Callable) -> Callable:
  """Makes :func:`load_prior` read checkpoints of ``kind`` with
  ``restore(state, meta, path) -> prior`` (``state``: the file's tree of
  arrays, ``meta``: its metadata, with the architecture under ``"model"``).
  A kind belongs to one family: registering another function under a kind
  already taken raises. Returns ``restore``."""
  held = KINDS.get(kind)
  if held is not None and held is not restore:
    raise ValueError(f"checkpoint kind {kind!r} is already registered by "
                     f"{held.__module__}.{held.__qualname__}; give the new "
                     "family's files a kind of their own.")
  KINDS[kind] = restore
  return restore


def shipped_names() -> list:
  """Every name :func:`load_prior` takes for a shipped prior, sorted."""
  return sorted({**SHIPPED, **ALIASES})


def shipped_path(name: str) -> pathlib.Path:
  """The file of the shipped prior ``name`` (an alias resolved)."""
  return ASSETS / SHIPPED[ALIASES.get(name, name)]


def _resolve_path(name_or_path) -> pathlib.Path:
  names = shipped_names()
  if not isinstance(name_or_path, (str, pathlib.Path)):
    raise ValueError("load_prior takes a prior name "
                     f"({names}) or a path, got {name_or_path!r}.")
  if str(name_or_path) in names:
    path = shipped_path(str(name_or_path))
    if not path.is_file():
      raise FileNotFoundError(
          f"The shipped {name_or_path!r} prior is missing from the package "
          f"({path}); reinstall blindinv-jax or train one with "
          "`blindinv train-prior`.")
    return path
  path = pathlib.Path(name_or_path).expanduser()
  if path.is_dir():
    for cand in ("prior.ckpt", "checkpoint.ckpt"):
      if (path / cand).is_file():
        return path / cand
  if not path.exists():
    raise FileNotFoundError(
        f"No prior named or at {str(name_or_path)!r}. Use one of "
        f"{names}, a prior .ckpt file or a train-prior workdir.")
  return path


def load_prior(name_or_path):
  """Loads a shipped prior (``"mnist"``, ``"mnist-v1"``, ...) or a file.

  Accepts a prior file (``prior.ckpt``), a training checkpoint, or a training
  workdir (its latest checkpoint) of any registered kind (:data:`KINDS`: a
  DCGAN's :class:`blindinv_jax.priors.GANPrior`, a VAE's
  :class:`blindinv_jax.priors.VAEPrior`). The architecture comes from the
  file.
  """
  path = _resolve_path(name_or_path)
  kind = checkpoint.read_header(path).get("kind")
  if kind not in KINDS:
    raise checkpoint.CheckpointError(
        f"{path} is a {kind!r} checkpoint, not a GAN prior or another prior "
        f"that load_prior reads (known kinds: "
        f"{', '.join(map(repr, sorted(KINDS)))}).")
  state, meta = checkpoint.load(path, kind=kind)
  if "model" not in meta:
    raise checkpoint.CheckpointError(f"{path} does not record its model "
                                     "architecture ('model' metadata).")
  return KINDS[kind](state, meta, path)


def jsonable(obj):
  """``obj`` with arrays as lists and unknown objects as strings."""
  return json.loads(json.dumps(obj, default=lambda o: (
      o.tolist() if hasattr(o, "tolist") else str(o))))


def restore_like(ref, state, path, what):
  """``state`` as jax arrays, checked against the shapes of ``ref`` (the
  architecture's variables, e.g. from ``jax.eval_shape`` of its init); a
  mismatch names ``what`` and ``path``."""
  ref_shapes = jax.tree_util.tree_map(lambda a: tuple(a.shape),
                                      flax.core.unfreeze(ref))
  try:
    got = jax.tree_util.tree_map(lambda a: tuple(np.shape(a)), state)
  except Exception:  # pragma: no cover - defensive
    got = None
  if got != ref_shapes:
    raise checkpoint.CheckpointError(
        f"{path}: the {what} weights do not match the architecture recorded "
        "in the file (mismatched or corrupted checkpoint).")
  return jax.tree_util.tree_map(jnp.asarray, state)
