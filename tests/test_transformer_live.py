"""Transformers from live torch modules (skipped without torch; CI has none).

tests/test_transformer.py checks the same against fixtures made by torch.
"""

from __future__ import annotations

import numpy as np
import pytest

import itermap
from itermap.analysis import fir_length

torch = pytest.importorskip("torch")
nn = torch.nn


def _forward(model, X, mask=None, causal=False, batch_first=True):
    """torch's output for ``X`` (B, T, d), autograd on (its inference fast path runs GELU
    exactly even where the layer asks for the tanh approximation)."""
    Xb = X if batch_first else X.transpose(0, 1)
    Xb = Xb.clone().requires_grad_(True)
    if isinstance(model, nn.MultiheadAttention):
        Y = model(Xb, Xb, Xb, attn_mask=mask, need_weights=False, is_causal=causal)[0]
    elif isinstance(model, nn.TransformerEncoderLayer):
        Y = model(Xb, src_mask=mask, is_causal=causal)
    elif isinstance(model, nn.TransformerEncoder):
        Y = model(Xb, mask=mask, is_causal=causal)
    else:
        Y = Xb
        for sub in model:
            Y = sub(Y, src_mask=mask, is_causal=causal) if isinstance(
                sub, nn.TransformerEncoderLayer) else sub(Y, mask=mask, is_causal=causal)
    Y = Y.detach()
    return (Y if batch_first else Y.transpose(0, 1)).numpy()


def _modules(d, H, batch_first):
    act = {"relu": "relu", "gelu": "gelu", "tanh": nn.GELU(approximate="tanh")}
    out = {"attention": nn.MultiheadAttention(d, H, batch_first=batch_first)}
    for norm_first in (False, True):
        for name, a in act.items():
            out[f"layer_{'pre' if norm_first else 'post'}_{name}"] = nn.TransformerEncoderLayer(
                d, H, 2 * d, dropout=0.1, batch_first=batch_first, norm_first=norm_first,
                activation=a)
    out["encoder_norm"] = nn.TransformerEncoder(
        nn.TransformerEncoderLayer(d, H, 2 * d, batch_first=batch_first), 2,
        norm=nn.LayerNorm(d), enable_nested_tensor=False)
    out["sequential"] = nn.Sequential(
        nn.TransformerEncoderLayer(d, H, 2 * d, batch_first=batch_first),
        nn.TransformerEncoderLayer(d, H, 2 * d, batch_first=batch_first, norm_first=True))
    return out


@pytest.mark.parametrize("T", [1, 5, 64])
@pytest.mark.parametrize("batch_first", [True, False])
@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_every_module_kind_equals_torch(T, batch_first, dtype):
    torch.manual_seed(T)
    d, H = 8, 2
    tol = 1e-10 if dtype == "float64" else 1e-5
    for name, model in _modules(d, H, batch_first).items():
        model = model.to(getattr(torch, dtype)).eval()
        X = torch.randn(3, T, d, dtype=getattr(torch, dtype))
        for causal in (False, True):
            mask = (nn.Transformer.generate_square_subsequent_mask(T, dtype=X.dtype)
                    if causal else None)
            m = itermap.from_torch(model, seq_len=T, is_causal=causal)
            err = np.abs(m.forward(X.numpy())
                         - _forward(model, X, mask, causal, batch_first)).max()
            assert err < tol, (name, causal, err)
            assert m.settle_steps == fir_length(m)


def test_a_float_and_a_boolean_mask_equal_torchs():
    torch.manual_seed(0)
    T, d = 6, 8
    model = nn.TransformerEncoderLayer(d, 2, 16, batch_first=True).double().eval()
    X = torch.randn(2, T, d, dtype=torch.float64)
    bool_mask = torch.rand(T, T) > 0.6
    bool_mask.fill_diagonal_(False)
    for mask in (bool_mask, torch.randn(T, T, dtype=torch.float64)):
        m = itermap.from_torch(model, seq_len=T, mask=mask)
        np.testing.assert_allclose(m.forward(X.numpy()), _forward(model, X, mask), atol=1e-10)


def test_tangent_and_vjp_equal_torch_autograd():
    torch.manual_seed(1)
    T, d = 4, 8
    model = nn.TransformerEncoder(nn.TransformerEncoderLayer(d, 2, 16, batch_first=True,
                                                             activation="gelu"),
                                  2, enable_nested_tensor=False).double().eval()
    m = itermap.from_torch(model, seq_len=T)
    x = torch.randn(T * d, dtype=torch.float64)
    J = torch.autograd.functional.jacobian(
        lambda z: model(z.reshape(1, T, d)).reshape(-1), x).numpy()
    layers = [m.functions[(l + 1, l)] for l in range(2)]
    v = np.random.default_rng(0).normal(size=(T * d, 3))
    w = np.random.default_rng(1).normal(size=(2, T * d))
    xs, xi = [x.numpy()], x.numpy()
    for g in layers:
        xi = g(xi)
        xs.append(xi)
    jv = v
    for g, xi in zip(layers, xs):
        jv = g.tangent(xi, jv)
    wj = w
    for g, xi in zip(reversed(layers), reversed(xs[:-1])):
        wj = g.vjp(xi, wj)
    np.testing.assert_allclose(jv, J @ v, atol=1e-10)
    np.testing.assert_allclose(wj, w @ J, atol=1e-10)


def test_unsupported_modules_and_active_dropout_are_refused():
    d = 8
    with pytest.raises(TypeError, match="TransformerEncoderLayer"):
        itermap.from_torch(nn.Conv1d(2, 2, 3), seq_len=4)
    layer = nn.TransformerEncoderLayer(d, 2, 16, dropout=0.1)   # training mode
    with pytest.raises(ValueError, match="eval"):
        itermap.from_torch(layer, seq_len=4)
    with pytest.raises(ValueError, match="seq_len"):
        itermap.from_torch(layer.eval())
    with pytest.raises(ValueError, match="num_heads|divisible"):
        itermap.block_functions.SelfAttention(np.zeros((15, 5)), None, np.zeros((5, 5)), None,
                                              num_heads=2, seq_len=3)
    with pytest.raises(ValueError, match="mask"):
        itermap.from_torch(layer.eval(), seq_len=4, mask=torch.zeros(3, 4))


def test_to_torch_goes_back_and_from_torch_comes_home():
    torch.manual_seed(2)
    T, d = 5, 8
    models = [
        nn.TransformerEncoder(nn.TransformerEncoderLayer(d, 2, 16, batch_first=True,
                                                         activation="gelu"),
                              2, norm=nn.LayerNorm(d), enable_nested_tensor=False),
        nn.TransformerEncoderLayer(d, 2, 16, norm_first=True,
                                   activation=nn.GELU(approximate="tanh")),
        nn.MultiheadAttention(d, 2, bias=False)]
    X = torch.randn(2, T, d, dtype=torch.float64)
    for model in models:
        m = itermap.from_torch(model.double().eval(), seq_len=T)
        back = itermap.to_torch(m)
        assert itermap.from_torch(back, seq_len=T) == m
        # torch's own module computes what the map computes
        np.testing.assert_allclose(_forward(back, X), m.forward(X.numpy()), atol=1e-12)
    with pytest.raises(TypeError, match="transformer"):
        ln = itermap.block_functions.LayerNorm(np.ones(d), np.zeros(d), seq_len=T)
        itermap.to_torch(itermap.transformer_map([ln]))
