"""A small Flax CNN that reads digits: does a recovery show the right digit?

Trained on the mnist5k train split by ``experiments/assets/train_classifier.py``
(the weights ship as ``assets/digit_classifier.ckpt``); the experiments
report its accuracy on every method's recovered digits next to its accuracy
on the clean test digits.
"""
from __future__ import annotations

import dataclasses
import pathlib
from functools import partial

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax

from blindinv_jax import checkpoint
from blindinv_jax.validation import check_positive_int

KIND = "digit_classifier"
SHIPPED = pathlib.Path(__file__).parent / "assets" / "digit_classifier.ckpt"


class DigitCNN(nn.Module):
  """28x28x1 in [-1, 1] -> 10 logits. Conv 32, Conv 64 (stride 2 each),
  Dense 128, dropout, Dense 10."""

  @nn.compact
  def __call__(self, x, train: bool = False):
    x = nn.relu(nn.Conv(32, (3, 3), strides=2)(x))
    x = nn.relu(nn.Conv(64, (3, 3), strides=2)(x))
    x = x.reshape(x.shape[0], -1)
    x = nn.relu(nn.Dense(128)(x))
    x = nn.Dropout(0.3, deterministic=not train)(x)
    return nn.Dense(10)(x)


@dataclasses.dataclass(frozen=True)
class ClassifierConfig:
  epochs: int = 15
  batch_size: int = 64
  lr: float = 1e-3
  seed: int = 0
  shift: int = 2          # random translation augmentation, pixels


def _augment(key, x, shift):
  if shift == 0:
    return x
  d = jax.random.randint(key, (2,), -shift, shift + 1)
  padded = jnp.pad(x, ((0, 0), (shift, shift), (shift, shift), (0, 0)),
                   constant_values=-1.0)
  return jax.lax.dynamic_slice(padded, (0, shift + d[0], shift + d[1], 0),
                               x.shape)


@partial(jax.jit, static_argnames=("cfg",))
def _train_step(params, opt, x, labels, key, cfg):
  tx = optax.adam(cfg.lr)
  ka, kd = jax.random.split(key)
  x = _augment(ka, x, cfg.shift)

  def loss_fn(p):
    logits = DigitCNN().apply(p, x, train=True, rngs={"dropout": kd})
    return optax.softmax_cross_entropy_with_integer_labels(logits,
                                                           labels).mean()
  loss, g = jax.value_and_grad(loss_fn)(params)
  upd, opt = tx.update(g, opt, params)
  return optax.apply_updates(params, upd), opt, loss


def train(x, labels, cfg: ClassifierConfig = ClassifierConfig(),
          progress: bool = True):
  """Trains on x ``[n, 28, 28, 1]``, labels ``[n]``; returns params."""
  check_positive_int("epochs", cfg.epochs)
  key = jax.random.key(cfg.seed)
  params = DigitCNN().init(jax.random.fold_in(key, 0), jnp.zeros((1, 28, 28,
                                                                  1)))
  opt = optax.adam(cfg.lr).init(params)
  n = x.shape[0]
  steps = n // cfg.batch_size
  for epoch in range(cfg.epochs):
    perm = np.asarray(jax.random.permutation(jax.random.fold_in(key, 1 +
                                                                epoch), n))
    losses = []
    for i in range(steps):
      idx = perm[i * cfg.batch_size:(i + 1) * cfg.batch_size]
      params, opt, loss = _train_step(
          params, opt, x[idx], labels[idx],
          jax.random.fold_in(key, 10_000 + epoch * steps + i), cfg)
      losses.append(loss)
    if progress:
      print(f"epoch {epoch + 1}/{cfg.epochs}: loss "
            f"{float(jnp.mean(jnp.stack(losses))):.4f}", flush=True)
  return params


@jax.jit
def predict_logits(params, x):
  """Logits ``[..., 10]`` of digits x ``[..., 28, 28, 1]``."""
  lead = x.shape[:-3]
  out = DigitCNN().apply(params, x.reshape((-1,) + x.shape[-3:]))
  return out.reshape(lead + (10,))


def predict(params, x) -> np.ndarray:
  """Predicted labels ``[...]`` (int)."""
  return np.asarray(jnp.argmax(predict_logits(params, jnp.asarray(x)), -1))


def accuracy(params, x, labels) -> float:
  return float(np.mean(predict(params, x) == np.asarray(labels)))


def save(path, params, meta: dict):
  return checkpoint.save(path, jax.device_get(params), kind=KIND, meta=meta)


def load(path=None):
  """The shipped classifier (or one at ``path``): ``(params, meta)``."""
  from flax import serialization
  path = SHIPPED if path is None else pathlib.Path(path)
  if not path.is_file():
    raise FileNotFoundError(
        f"No digit classifier at {str(path)!r}; train one with "
        "`python experiments/assets/train_classifier.py`.")
  state, meta = checkpoint.load(path, kind=KIND)
  template = jax.eval_shape(lambda: DigitCNN().init(
      jax.random.key(0), jnp.zeros((1, 28, 28, 1))))
  params = serialization.from_state_dict(
      jax.tree_util.tree_map(lambda s: np.zeros(s.shape, s.dtype), template),
      state)
  return jax.tree_util.tree_map(jnp.asarray, params), meta
