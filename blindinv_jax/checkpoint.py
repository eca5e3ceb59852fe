"""Self-describing, checksummed checkpoint files.

Layout: ``MAGIC`` (8 bytes) | header length (4 bytes, little endian) | header
(JSON: format version, kind, SHA-256 and size of the payload, user metadata) |
payload (``flax.serialization`` msgpack of a pytree of arrays).

Writes are atomic (temporary file, then ``os.replace``), so a killed process
never leaves a half-written checkpoint under the final name. Reads refuse, with
a message that says what to do, a missing file, a file that is not a
checkpoint, a truncated or corrupted one, one of another kind and one written
by a newer format version.
"""
from __future__ import annotations

import hashlib
import json
import os
import pathlib
import struct
from typing import Any, Tuple

from flax import serialization

MAGIC = b"BLINDINV"
FORMAT_VERSION = 1


class CheckpointError(ValueError):
  """A checkpoint file exists but cannot be used."""


def save(path, tree: Any, *, kind: str, meta: dict | None = None) -> pathlib.Path:
  """Atomically writes ``tree`` (a pytree of arrays) and JSON ``meta``."""
  path = pathlib.Path(path)
  path.parent.mkdir(parents=True, exist_ok=True)
  payload = serialization.msgpack_serialize(serialization.to_state_dict(tree))
  header = json.dumps({
      "format_version": FORMAT_VERSION,
      "kind": kind,
      "payload_bytes": len(payload),
      "sha256": hashlib.sha256(payload).hexdigest(),
      "meta": meta or {},
  }, sort_keys=True).encode()
  tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
  with open(tmp, "wb") as f:
    f.write(MAGIC + struct.pack("<I", len(header)) + header + payload)
    f.flush()
    os.fsync(f.fileno())
  os.replace(tmp, path)
  return path


def read_header(path) -> dict:
  """The header of a checkpoint (no payload check)."""
  return _read(path, verify=False)[0]


def load(path, *, kind: str) -> Tuple[dict, dict]:
  """Reads and verifies a checkpoint: ``(state_dict, meta)``."""
  header, payload = _read(path, verify=True)
  if header.get("kind") != kind:
    raise CheckpointError(
        f"{path} is a {header.get('kind')!r} checkpoint, not a {kind!r} one.")
  return serialization.msgpack_restore(payload), header.get("meta", {})


def _read(path, verify: bool):
  path = pathlib.Path(path)
  if not path.is_file():
    raise FileNotFoundError(f"No checkpoint at {str(path)!r}.")
  with open(path, "rb") as f:
    data = f.read()
  if data[:len(MAGIC)] != MAGIC:
    raise CheckpointError(f"{path} is not a blindinv-jax checkpoint (bad "
                          "magic bytes).")
  try:
    (hlen,) = struct.unpack("<I", data[len(MAGIC):len(MAGIC) + 4])
    start = len(MAGIC) + 4
    header = json.loads(data[start:start + hlen])
  except Exception as e:
    raise CheckpointError(f"{path} is truncated or corrupted (unreadable "
                          f"header: {e}).") from e
  version = header.get("format_version")
  if not isinstance(version, int) or version > FORMAT_VERSION:
    raise CheckpointError(
        f"{path} has checkpoint format version {version}, newer than this "
        f"blindinv-jax reads ({FORMAT_VERSION}); upgrade blindinv-jax.")
  payload = data[start + hlen:]
  if len(payload) != header.get("payload_bytes"):
    raise CheckpointError(
        f"{path} is truncated or corrupted: payload has {len(payload)} bytes, "
        f"the header says {header.get('payload_bytes')}.")
  if verify and hashlib.sha256(payload).hexdigest() != header.get("sha256"):
    raise CheckpointError(f"{path} is corrupted: its SHA-256 checksum does "
                          "not match the header.")
  return header, payload
