import dataclasses

import jax.numpy as jnp
import numpy as np
import pytest

from blindinv_jax import classifier, data, experiment as E, operators as ops


@pytest.fixture(scope="module")
def shipped():
  return classifier.load()


def test_shipped_classifier_reads_held_out_digits(shipped):
  params, meta = shipped
  x = data.load_images("mnist5k", "test", limit=200)
  acc = classifier.accuracy(params, x, data.mnist5k_labels("test")[:200])
  assert acc >= 0.95
  assert meta["test_accuracy"] >= 0.95 and "train_classifier.py" in meta[
      "command"]
  # Leading axes are kept: [N, S, 28, 28, 1] -> [N, S].
  assert classifier.predict(params, x[:6].reshape(3, 2, 28, 28, 1)).shape == (
      3, 2)


def test_classify_all_scores_methods_against_the_true_labels(shipped):
  cfg = E.ExperimentConfig(name="t", title="t", classify=True,
                           data=E.DataSpec(n=20, offset=7))
  x = jnp.asarray(data.load_images("mnist5k", "test"))[7:27, None]
  labels = E.digit_labels(cfg)
  np.testing.assert_array_equal(labels[:, 0],
                                data.mnist5k_labels("test")[7:27])
  mush = ops.blur(x[:, 0], ops.gaussian_kernel(15, 6.0))[:, None]
  acc = E.classify_all(cfg, x, {"same": x, "mush": mush,
                                "_reconstruction": x})
  assert acc["clean"] == acc["same"] >= 0.9
  assert acc["mush"] < acc["clean"]
  assert "_reconstruction" not in acc
  sep = cfg.replace(task=E.TaskSpec(kind="mix", num_sources=3), data=
                    dataclasses.replace(cfg.data, n=4, offset=0))
  assert E.digit_labels(sep).shape == (4, 3)
  assert "skipped" in E.classify_all(cfg, x[:, :, :8, :8], {})


def test_missing_classifier_file(tmp_path):
  with pytest.raises(FileNotFoundError, match="train_classifier.py"):
    classifier.load(tmp_path / "none.ckpt")
