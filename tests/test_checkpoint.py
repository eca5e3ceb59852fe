import json
import struct

import numpy as np
import pytest

from blindinv_jax import checkpoint


def _tree():
  return {"a": np.arange(6, dtype=np.float32).reshape(2, 3),
          "b": {"c": np.ones(4, np.int32)}}


def test_roundtrip_and_atomic_write(tmp_path):
  path = checkpoint.save(tmp_path / "x.ckpt", _tree(), kind="k",
                         meta={"step": 3})
  state, meta = checkpoint.load(path, kind="k")
  np.testing.assert_array_equal(state["a"], _tree()["a"])
  np.testing.assert_array_equal(state["b"]["c"], _tree()["b"]["c"])
  assert meta == {"step": 3}
  assert [p.name for p in tmp_path.iterdir()] == ["x.ckpt"]  # no temp left


def test_refuses_missing_truncated_corrupt_foreign_and_newer(tmp_path):
  path = checkpoint.save(tmp_path / "x.ckpt", _tree(), kind="k")
  raw = path.read_bytes()
  with pytest.raises(FileNotFoundError, match="No checkpoint"):
    checkpoint.load(tmp_path / "missing.ckpt", kind="k")
  with pytest.raises(checkpoint.CheckpointError, match="not a 'other'"):
    checkpoint.load(path, kind="other")

  cases = {
      "truncated": raw[:-10],
      "corrupt": raw[:-3] + bytes([raw[-3] ^ 0xFF]) + raw[-2:],
      "foreign": b"PK\x03\x04" + raw[4:],
      "tiny": raw[:10],
  }
  hlen = struct.unpack("<I", raw[8:12])[0]
  header = json.loads(raw[12:12 + hlen])
  header["format_version"] = checkpoint.FORMAT_VERSION + 1
  new = json.dumps(header).encode()
  cases["newer"] = raw[:8] + struct.pack("<I", len(new)) + new + raw[12 + hlen:]
  expect = {"truncated": "truncated", "corrupt": "checksum",
            "foreign": "not a blindinv-jax checkpoint", "tiny": "truncated",
            "newer": "upgrade blindinv-jax"}
  for name, blob in cases.items():
    bad = tmp_path / f"{name}.ckpt"
    bad.write_bytes(blob)
    with pytest.raises(checkpoint.CheckpointError, match=expect[name]):
      checkpoint.load(bad, kind="k")
