"""A PyTorch reference implementation of Algorithm 1, for benchmarking.

Written the way a competent PyTorch user would: eager mode, ``nn.Module``s
with the same architectures as the Flax models (DCGAN generator and
discriminator, the linear-conv and mixing surrogates), ``torch.optim.Adam``
with the same settings, the same loss (L1 data term plus
``alpha * sum log(1 - D(G(z)))`` as ``-softplus(logit)``), the clip of z after
every latent step, and the same T/T1/T2 schedule. It loads the SAME weights
as a JAX prior (:func:`load_prior_into_torch` converts the Flax variables:
HWIO -> OIHW, the transposed convolutions' kernels flipped, NHWC flatten
order kept), so both sides compute the same function.

Needs the torch extra: ``pip install -e ".[torch]"`` (a CPU build).

  python experiments/perf/torch_reference.py --n 8 --outer-steps 2   # smoke run
"""
from __future__ import annotations

import argparse
import time

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

# ------------------------------------------------------------------ models

def _same_pad(n: int, k: int, s: int):
  out = -(-n // s)
  total = max((out - 1) * s + k - n, 0)
  return total // 2, total - total // 2


class SameConv(nn.Module):
  """``nn.Conv2d`` with TensorFlow/Flax "SAME" padding (NCHW)."""

  def __init__(self, cin, cout, k, stride=1, bias=True):
    super().__init__()
    self.conv = nn.Conv2d(cin, cout, k, stride, padding=0, bias=bias)
    self.k, self.s = k, stride

  def forward(self, x):
    ph = _same_pad(x.shape[2], self.k, self.s)
    pw = _same_pad(x.shape[3], self.k, self.s)
    if ph[0] == ph[1] and pw[0] == pw[1]:
      self.conv.padding = (ph[0], pw[0])
      return self.conv(x)
    self.conv.padding = (0, 0)
    return self.conv(F.pad(x, (pw[0], pw[1], ph[0], ph[1])))


class SameConvTranspose(nn.Module):
  """Flax ``ConvTranspose(padding="SAME")`` as ``nn.ConvTranspose2d``
  (output ``s * n``)."""

  def __init__(self, cin, cout, k, stride, bias=True):
    super().__init__()
    pad_len = k + stride - 2
    pad_a = k - 1 if stride > k - 1 else -(-pad_len // 2)
    self.conv = nn.ConvTranspose2d(cin, cout, k, stride, padding=k - 1 - pad_a,
                                   bias=bias)
    self.s = stride

  def forward(self, x):
    h, w = x.shape[2] * self.s, x.shape[3] * self.s
    return self.conv(x)[:, :, :h, :w]


class Generator(nn.Module):
  def __init__(self, cfg):
    super().__init__()
    self.cfg = cfg
    h, w, f = cfg.g_base
    self.dense = nn.Linear(cfg.latent_dim, h * w * f, bias=False)
    self.bns = nn.ModuleList([nn.BatchNorm2d(f)])
    self.convs = nn.ModuleList()
    cin = f
    for i, (feat, k, s) in enumerate(cfg.g_stages, start=1):
      last = i == len(cfg.g_stages)
      self.convs.append(SameConv(cin, feat, k, 1, bias=last) if s == 1 else
                        SameConvTranspose(cin, feat, k, s, bias=last))
      if not last:
        self.bns.append(nn.BatchNorm2d(feat))
      cin = feat

  def forward(self, z):                              # [B, L] -> [B, C, H, W]
    h, w, f = self.cfg.g_base
    x = self.dense(z).view(-1, h, w, f).permute(0, 3, 1, 2)
    x = F.relu(self.bns[0](x))
    for i, conv in enumerate(self.convs, start=1):
      x = conv(x)
      x = torch.tanh(x) if i == len(self.convs) else F.relu(self.bns[i](x))
    return x


class Discriminator(nn.Module):
  def __init__(self, cfg):
    super().__init__()
    self.cfg = cfg
    self.convs, self.bns = nn.ModuleList(), nn.ModuleList()
    cin, (h, w, _) = cfg.image_shape[2], cfg.image_shape
    for i, (feat, k, s) in enumerate(cfg.d_stages):
      self.convs.append(SameConv(cin, feat, k, s, bias=i == 0))
      if i > 0:
        self.bns.append(nn.BatchNorm2d(feat))
      cin, h, w = feat, -(-h // s), -(-w // s)
    dims = [cin * h * w, *cfg.d_dense]
    self.dense = nn.ModuleList([nn.Linear(a, b) for a, b in
                                zip(dims[:-1], dims[1:])])
    self.out = nn.Linear(dims[-1], 1)

  def forward(self, x):                              # [B, C, H, W] -> [B]
    for i, conv in enumerate(self.convs):
      x = conv(x)
      if i > 0:
        x = self.bns[i - 1](x)
      x = F.leaky_relu(x, self.cfg.leak)
    x = x.permute(0, 2, 3, 1).reshape(x.shape[0], -1)   # Flax's NHWC order
    for d in self.dense:
      x = F.leaky_relu(d(x), self.cfg.leak)
    return self.out(x)[:, 0]


class LinearConvSurrogate(nn.Module):
  def __init__(self, cin, cout, features=16, k=5):
    super().__init__()
    self.conv1 = SameConv(cin, features, k)
    self.conv2 = SameConv(features, cout, k)

  def forward(self, x):
    return self.conv2(self.conv1(x))


class MixingSurrogate(nn.Module):
  def __init__(self, cin, cout, features=16):
    super().__init__()
    self.dense1 = nn.Linear(cin, features)
    self.dense2 = nn.Linear(features, cout)

  def forward(self, x):                              # per pixel, NCHW
    x = x.permute(0, 2, 3, 1)
    return self.dense2(F.relu(self.dense1(x))).permute(0, 3, 1, 2)


# ------------------------------------------------------- weight conversion

def _t(a):
  return torch.from_numpy(np.array(a, dtype=np.float32))


def _conv_w(k):                        # HWIO -> OIHW
  return _t(np.transpose(np.asarray(k), (3, 2, 0, 1)))


def _convt_w(k):                       # Flax ConvTranspose HWIO -> torch IOHW
  return _t(np.transpose(np.asarray(k)[::-1, ::-1], (2, 3, 0, 1)))


def _bn(bn, params, stats):
  bn.weight.data = _t(params["scale"])
  bn.bias.data = _t(params["bias"])
  bn.running_mean.data = _t(stats["mean"])
  bn.running_var.data = _t(stats["var"])
  bn.eps = 1e-5                                    # Flax's default


def load_prior_into_torch(prior):
  """``(G, D)`` torch modules (eval mode, frozen) with a GANPrior's weights."""
  cfg = prior.config
  g, d = Generator(cfg), Discriminator(cfg)
  gp, gs = prior.g_vars["params"], prior.g_vars["batch_stats"]
  g.dense.weight.data = _t(np.asarray(gp["dense"]["kernel"]).T)
  _bn(g.bns[0], gp["bn0"], gs["bn0"])
  for i, (conv, (_, _, s)) in enumerate(zip(g.convs, cfg.g_stages), start=1):
    p = gp[f"conv{i}"]
    conv.conv.weight.data = (_conv_w if s == 1 else _convt_w)(p["kernel"])
    if "bias" in p:
      conv.conv.bias.data = _t(p["bias"])
    if i < len(cfg.g_stages):
      _bn(g.bns[i], gp[f"bn{i}"], gs[f"bn{i}"])
  dp, ds = prior.d_vars["params"], prior.d_vars["batch_stats"]
  for i, conv in enumerate(d.convs):
    p = dp[f"Conv_{i}"]
    conv.conv.weight.data = _conv_w(p["kernel"])
    if "bias" in p:
      conv.conv.bias.data = _t(p["bias"])
    if i > 0:
      _bn(d.bns[i - 1], dp[f"BatchNorm_{i - 1}"], ds[f"BatchNorm_{i - 1}"])
  for j, dense in enumerate(d.dense):
    dense.weight.data = _t(np.asarray(dp[f"Dense_{j}"]["kernel"]).T)
    dense.bias.data = _t(dp[f"Dense_{j}"]["bias"])
  last = dp[f"Dense_{len(d.dense)}"]
  d.out.weight.data = _t(np.asarray(last["kernel"]).T)
  d.out.bias.data = _t(last["bias"])
  for m in (g, d):
    m.eval()
    for q in m.parameters():
      q.requires_grad_(False)
  return g, d


def load_surrogate_into_torch(kind, params, cin, cout):
  """A torch surrogate with the given Flax surrogate parameters."""
  p = params["params"]
  if kind == "conv":
    s = LinearConvSurrogate(cin, cout)
    for name in ("conv1", "conv2"):
      getattr(s, name).conv.weight.data = _conv_w(p[name]["kernel"])
      getattr(s, name).conv.bias.data = _t(p[name]["bias"])
  else:
    s = MixingSurrogate(cin, cout)
    for name in ("dense1", "dense2"):
      getattr(s, name).weight.data = _t(np.asarray(p[name]["kernel"]).T)
      getattr(s, name).bias.data = _t(p[name]["bias"])
  return s


# ------------------------------------------------------------- Algorithm 1

class AtPrecision(nn.Module):
  """A frozen network run at ``precision`` (the JAX solver's
  ``SolverConfig.precision``): ``"bfloat16"`` under ``torch.autocast``
  (its backward follows the same casts), ``"float32"`` or
  ``"tensorfloat32"`` in float32 (TF32 is a global CUDA switch, see
  :func:`set_float32_mode`). Outputs are float32."""

  def __init__(self, net, precision):
    super().__init__()
    self.net, self.precision = net, precision

  def forward(self, x):
    if self.precision != "bfloat16":
      return self.net(x)
    with torch.autocast(x.device.type, dtype=torch.bfloat16):
      return self.net(x).float()


def set_float32_mode(precision):
  """TF32 on or off for CUDA matrix products and cuDNN convolutions (on
  for ``"tensorfloat32"``; exact float32 otherwise). No effect on CPU."""
  tf32 = precision == "tensorfloat32"
  torch.backends.cuda.matmul.allow_tf32 = tf32
  torch.backends.cudnn.allow_tf32 = tf32


def generate(g, z):
  """z [N, S, L] -> sources stacked as the surrogate's input [N, S*C, H, W]."""
  n, s, l = z.shape
  x = g(z.reshape(n * s, l))                        # [N*S, C, H, W]
  return x.reshape(n, s * x.shape[1], x.shape[2], x.shape[3])


def surrogate_phase(surrogate, opt, x, y, steps):
  for _ in range(steps):
    opt.zero_grad(set_to_none=True)
    loss = (surrogate(x) - y).abs().sum()
    loss.backward()
    opt.step()
  with torch.no_grad():
    return float((surrogate(x) - y).abs().sum())


def latent_loss(g, d, surrogate, z, y, alpha):
  n, s, l = z.shape
  x = g(z.reshape(n * s, l))
  y_est = surrogate(x.reshape(n, -1, x.shape[2], x.shape[3]))
  dl = (y_est - y).abs().sum()
  per = (-F.softplus(d(x))).sum() if alpha > 0 else torch.zeros(
      (), device=z.device)
  return dl + alpha * per, dl


def latent_phase(g, d, surrogate, z, opt, y, steps, alpha, clip):
  for q in surrogate.parameters():
    q.requires_grad_(False)
  for _ in range(steps):
    opt.zero_grad(set_to_none=True)
    loss, _ = latent_loss(g, d, surrogate, z, y, alpha)
    loss.backward()
    opt.step()
    with torch.no_grad():
      z.clamp_(-clip, clip)
  for q in surrogate.parameters():
    q.requires_grad_(True)
  with torch.no_grad():
    return float(latent_loss(g, d, surrogate, z, y, alpha)[1])


def outer_step(g, d, surrogate, s_opt, z, z_opt, y, cfg):
  """One outer step: T1 surrogate steps with G(z*) computed once, then T2
  projected latent steps."""
  with torch.no_grad():
    x = generate(g, z)
  s_loss = surrogate_phase(surrogate, s_opt, x, y, cfg.surrogate_steps)
  dl = latent_phase(g, d, surrogate, z, z_opt, y, cfg.latent_steps,
                    cfg.alpha, cfg.clip)
  return s_loss, dl


def make_problem(prior, y_nhwc, cfg, z0: np.ndarray, surrogate_params,
                 kind="conv", device="cpu", precision="float32"):
  """Torch tensors and optimisers for a solve that starts where the JAX one
  does (same z0 ``[N, S, L]`` and surrogate initialisation), on ``device``,
  with G and D at ``precision`` (:class:`AtPrecision`)."""
  g, d = load_prior_into_torch(prior)
  g, d = AtPrecision(g, precision).to(device), AtPrecision(d, precision).to(
      device)
  y = _t(np.transpose(np.asarray(y_nhwc), (0, 3, 1, 2))).to(device)
  cin = z0.shape[1] * prior.image_shape[2]
  surrogate = load_surrogate_into_torch(kind, surrogate_params, cin,
                                        y.shape[1]).to(device)
  z = _t(z0).to(device).requires_grad_(True)
  s_opt = torch.optim.Adam(surrogate.parameters(), lr=cfg.surrogate_lr)
  z_opt = torch.optim.Adam([z], lr=cfg.latent_lr)
  return g, d, surrogate, s_opt, z, z_opt, y


def main(argv=None):
  import jax

  from blindinv_jax import data, operators as ops, solver
  from blindinv_jax.models.surrogates import make_surrogate
  from blindinv_jax.priors import load_prior
  ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  ap.add_argument("--n", type=int, default=8)
  ap.add_argument("--outer-steps", type=int, default=2)
  ap.add_argument("--threads", type=int, default=None)
  args = ap.parse_args(argv)
  if args.threads:
    torch.set_num_threads(args.threads)
  prior = load_prior("mnist")
  x = data.load_images("mnist5k", "test", limit=args.n)
  y = np.asarray(ops.blur(x, ops.gaussian_kernel(9, 2.0), "zero"))
  cfg = solver.PAPER.replace(outer_steps=args.outer_steps)
  module = make_surrogate("conv", 1)
  st = solver.init_state(jax.random.key(0), y, prior, module, cfg, 1)
  params0 = jax.tree_util.tree_map(lambda a: np.asarray(a[0]),
                                   st.surrogate_params)
  g, d, sur, s_opt, z, z_opt, yt = make_problem(prior, y, cfg,
                                                np.asarray(st.z[0]), params0)
  for t in range(cfg.outer_steps):
    t0 = time.perf_counter()
    s_loss, dl = outer_step(g, d, sur, s_opt, z, z_opt, yt, cfg)
    print(f"step {t + 1}: surrogate {s_loss / yt.numel():.4f}, latent "
          f"{dl / yt.numel():.4f} ({time.perf_counter() - t0:.2f} s)")


if __name__ == "__main__":
  main()
