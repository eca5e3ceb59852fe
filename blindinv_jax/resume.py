"""One resume mechanism: a run's identity, and atomic save/load against it.

A run (a blind solve, a prior's training, an experiment's method) writes its
state with :func:`save`, together with its *identity*: a JSON dict of what
its result depends on (inputs as :func:`fingerprint` hashes, settings as
values). :func:`load` gives the state back only to a run with the same
identity, and otherwise raises :class:`RunMismatch` naming what differs.
Files are :mod:`blindinv_jax.checkpoint` files: checksummed, versioned and
written atomically.
"""
from __future__ import annotations

import hashlib
from typing import Callable, Dict, Iterable, Optional, Tuple

import numpy as np

from blindinv_jax import checkpoint


class RunMismatch(ValueError):
  """A saved run exists but has a different identity from this one."""


def fingerprint(*arrays) -> str:
  """SHA-256 of arrays' shapes, dtypes and bytes (hex)."""
  h = hashlib.sha256()
  for a in arrays:
    a = np.ascontiguousarray(np.asarray(a))
    h.update(str((a.shape, a.dtype.str)).encode())
    h.update(a.tobytes())
  return h.hexdigest()


def differences(old: dict, new: dict, ignore: Iterable[str] = (),
                labels: Optional[Dict[str, str]] = None) -> list:
  """Human-readable differences of two identities: one entry per differing
  key (``labels[key]`` or the key); a dict value lists its differing fields
  as ``"label (field: old -> new, ...)"``."""
  labels = labels or {}
  out = []
  for k in sorted(set(old) | set(new)):
    if k in ignore or old.get(k) == new.get(k):
      continue
    label = labels.get(k, k)
    a, b = old.get(k), new.get(k)
    if isinstance(a, dict) and isinstance(b, dict):
      fields = sorted(f for f in set(a) | set(b) if a.get(f) != b.get(f))
      label += " (" + ", ".join(f"{f}: {a.get(f)!r} -> {b.get(f)!r}"
                                for f in fields) + ")"
    out.append(label)
  return out


def save(path, tree, *, kind: str, identity: dict, meta: Optional[dict] = None):
  """Atomically writes ``tree`` (a pytree of arrays) with its identity."""
  return checkpoint.save(path, tree, kind=kind,
                         meta={**(meta or {}), "identity": identity})


def load(path, *, kind: str, identity: dict, ignore: Iterable[str] = (),
         labels: Optional[Dict[str, str]] = None,
         message: Optional[Callable[[str], str]] = None,
         legacy: Optional[Callable[[dict], dict]] = None) -> Tuple[dict, dict]:
  """``(state_dict, meta)`` of the run saved at ``path``, if its identity
  matches ``identity`` (keys in ``ignore`` excepted); else
  :class:`RunMismatch` with ``message(differences)`` (the differences joined
  by commas). ``legacy(meta)`` gives the identity of a file written before
  identities were recorded. Missing or corrupt files raise as
  :func:`checkpoint.load`."""
  tree, meta = checkpoint.load(path, kind=kind)
  saved = meta.get("identity")
  if saved is None:
    saved = legacy(meta) if legacy is not None else {}
  diff = differences(saved, identity, ignore, labels)
  if diff:
    text = ", ".join(diff)
    raise RunMismatch(message(text) if message else
                      f"{path} was saved by a different run ({text}).")
  return tree, meta
