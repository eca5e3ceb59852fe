"""One resume mechanism: a run's identity, and atomic save/load against it.

A run (a blind solve, a prior's training, an experiment's method) writes its
state with :func:`save`, together with its *identity*: a JSON dict of what
its result depends on (inputs as :func:`fingerprint` hashes, settings as
values). :func:`load` gives the state back only to a run with the same
identity, and otherwise raises :class:`RunMismatch` naming what differs.
Files are :mod:`blindinv_jax.checkpoint` files: checksummed, versioned and
written atomically.

An experiment script that accumulates rows of results in a JSON file keeps
them in a :class:`ResultCache`: the same identity check, on a JSON file that
stays readable (the rows where they always were, the identity under the one
reserved key ``"identity"``), saved atomically after each row.
"""
from __future__ import annotations

import hashlib
import json
import os
import pathlib
import tempfile
from typing import Any, Callable, Dict, Iterable, Optional, Tuple

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


def _field_changes(a: dict, b: dict, prefix: str = "") -> list:
  """``"field: old -> new"`` for each differing field of two dicts; fields
  of nested dicts as ``"outer.inner: old -> new"``."""
  out = []
  for f in sorted(set(a) | set(b)):
    x, y = a.get(f), b.get(f)
    if x == y:
      continue
    if isinstance(x, dict) and isinstance(y, dict):
      out += _field_changes(x, y, f"{prefix}{f}.")
    else:
      out.append(f"{prefix}{f}: {x!r} -> {y!r}")
  return out


def differences(old: dict, new: dict, ignore: Iterable[str] = (),
                labels: Optional[Dict[str, str]] = None,
                values: bool = False) -> list:
  """Human-readable differences of two identities: one entry per differing
  key (``labels[key]`` or the key); a dict value lists its differing fields
  as ``"label (field: old -> new, ...)"`` (a nested dict's fields as
  ``outer.inner``). ``values``: other values too, as
  ``"label: old -> new"``."""
  labels = labels or {}
  out = []
  for k in sorted(set(old) | set(new)):
    if k in ignore or old.get(k) == new.get(k):
      continue
    label = labels.get(k, k)
    a, b = old.get(k), new.get(k)
    if isinstance(a, dict) and isinstance(b, dict):
      label += " (" + ", ".join(_field_changes(a, b)) + ")"
    elif values:
      label += f": {a!r} -> {b!r}"
    out.append(label)
  return out


def save(path, tree, *, kind: str, identity: dict, meta: Optional[dict] = None):
  """Atomically writes ``tree`` (a pytree of arrays) with its identity."""
  return checkpoint.save(path, tree, kind=kind,
                         meta={**(meta or {}), "identity": identity})


def load(path, *, kind: str, identity: dict, ignore: Iterable[str] = (),
         labels: Optional[Dict[str, str]] = None,
         message: Optional[Callable[[str], str]] = None,
         legacy: Optional[Callable[[dict], dict]] = None,
         values: bool = False) -> Tuple[dict, dict]:
  """``(state_dict, meta)`` of the run saved at ``path``, if its identity
  matches ``identity`` (keys in ``ignore`` excepted); else
  :class:`RunMismatch` with ``message(differences)`` (the differences joined
  by commas; ``values``: as :func:`differences`). ``legacy(meta)`` gives the
  identity of a file written before identities were recorded. Missing or
  corrupt files raise as :func:`checkpoint.load`."""
  tree, meta = checkpoint.load(path, kind=kind)
  saved = meta.get("identity")
  if saved is None:
    saved = legacy(meta) if legacy is not None else {}
  diff = differences(saved, identity, ignore, labels, values)
  if diff:
    text = ", ".join(diff)
    raise RunMismatch(message(text) if message else
                      f"{path} was saved by a different run ({text}).")
  return tree, meta


# ------------------------------------------------------- JSON results caches

#: The key under which a :class:`ResultCache` file keeps its identity.
IDENTITY_KEY = "identity"


def jsonable(identity: dict) -> dict:
  """``identity`` as it reads back from JSON (tuples as lists, other
  objects as their ``str``), so a saved identity compares equal to a fresh
  one."""
  return json.loads(json.dumps(identity, default=str))


def write_json(path, obj: Any, indent: int = 1) -> pathlib.Path:
  """Atomically writes ``obj`` as JSON to ``path``: a temporary file in the
  same folder, then ``os.replace``, so a killed run leaves the old file or
  the new one, never part of one."""
  path = pathlib.Path(path)
  path.parent.mkdir(parents=True, exist_ok=True)
  fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.",
                             suffix=".tmp")
  try:
    with os.fdopen(fd, "w") as f:
      json.dump(obj, f, indent=indent)
      f.flush()
      os.fsync(f.fileno())
    os.replace(tmp, path)
  except BaseException:
    try:
      os.unlink(tmp)
    except FileNotFoundError:
      pass
    raise
  return path


class ResultCache:
  """An experiment's JSON file of result rows, kept for one identity.

  ``ResultCache(path, identity)`` reads ``path`` if it exists. Its
  :attr:`rows` (the file less its identity: the done rows, which the script
  reads and adds to) are given back only to a run of the same ``identity``
  (a JSON dict of what the rows depend on: the arguments that change
  results, not output paths or display options); a file of another identity
  raises :class:`RunMismatch` naming each differing field with its saved and
  its new value. :meth:`save` writes the rows and the identity (under
  :data:`IDENTITY_KEY`, first) atomically; call it after each row.

  ignore: identity keys this run's rows do not depend on (e.g. a setting of
  a section the run does not touch): they may differ, and the saved value
  is kept. labels: readable names of identity keys. elsewhere: where the
  refusal sends other arguments' results (``"another --out"``); message:
  ``message(differences) -> str``, the refusal's whole text instead.

  A file written before identities were recorded has none: ``legacy(rows)``
  gives what it can tell of it (e.g. from an older ``"setting"`` key, which
  it may pop from ``rows``; those keys are checked, the others cannot be),
  or None when it cannot tell. Such
  a file is adopted as this run's, with a printed note (``note``), so the
  commands that wrote it re-run in place; the next :meth:`save` records this
  run's identity in it.
  """

  def __init__(self, path, identity: dict, *, ignore: Iterable[str] = (),
               labels: Optional[Dict[str, str]] = None,
               legacy: Optional[Callable[[dict], Optional[dict]]] = None,
               elsewhere: str = "another --out",
               note: Callable[[str], Any] = print,
               message: Optional[Callable[[str], str]] = None):
    self.path = pathlib.Path(path)
    identity = jsonable(identity)
    ignore = set(ignore)
    self.rows: dict = {}
    self.adopted = False           # a file without an identity was adopted
    if not self.path.exists():
      self.identity = identity
      return
    try:
      rows = json.loads(self.path.read_text())
    except json.JSONDecodeError as e:
      raise ValueError(f"{self.path} is not a JSON file of results ({e}); "
                       f"move it away or give {elsewhere}.") from None
    if not isinstance(rows, dict):
      raise ValueError(f"{self.path} holds {type(rows).__name__}, not a JSON "
                       f"object of results; move it away or give "
                       f"{elsewhere}.")
    saved = rows.pop(IDENTITY_KEY, None)
    known = set(identity)
    if saved is None:
      saved = legacy(rows) if legacy is not None else None
      saved = jsonable(saved) if saved else {}
      known = set(saved)              # what an old file recorded
      self.adopted = True
    diff = differences(saved, identity, ignore | (set(identity) - known),
                       labels, values=True)
    if diff:
      detail = f"{'; '.join(diff)} (saved -> this run)"
      raise RunMismatch(message(detail) if message else
          f"{self.path} holds the results of another run: {detail}. Re-run "
          f"with its arguments to reuse and add to its rows, or give "
          f"{elsewhere} for these.")
    if self.adopted:
      checked = [k for k in identity if k in known and k not in ignore]
      note(f"{self.path} was written before results recorded their identity"
           + (f"; its {', '.join(checked)} match this run's"
              if checked else "") + ": its rows are adopted as this run's "
           f"({', '.join(f'{k}={v!r}' for k, v in identity.items())}). If "
           f"they came from other arguments, give {elsewhere}.")
    self.identity = {**identity,
                     **{k: saved[k] for k in ignore if k in saved}}
    self.rows = rows

  def save(self) -> pathlib.Path:
    """Atomically writes the identity and the rows to :attr:`path`."""
    if IDENTITY_KEY in self.rows:
      raise ValueError(f"{IDENTITY_KEY!r} is the cache's reserved key; a "
                       "row cannot use it.")
    return write_json(self.path, {IDENTITY_KEY: self.identity, **self.rows})
