"""Train the small RNN and GRU of notebooks/08_trained_pytorch_rnn.ipynb (needs torch).

Run from the repository root: ``python data/train_torch_rnns.py``. Each network
learns the 2-bit flip-flop task (Sussillo and Barak, Neural Computation 2013):
two input channels carry rare +1/-1 pulses, and each output channel holds the sign
of the last pulse on its channel. The weights go to ``data/flipflop_<kind>.safetensors``
under torch's key names (``rnn.weight_ih_l0``, ..., ``readout.weight``), the
architecture of the recurrent part in the file's metadata, so the notebook runs
without torch.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch
from safetensors.numpy import save_file
from torch import nn

HERE = Path(__file__).resolve().parent
BITS, T, P_PULSE = 2, 60, 0.05


def flipflop_batch(batch, rng):
    """Inputs (B, T, BITS) of rare +-1 pulses and targets holding the last pulse's sign."""
    pulses = (rng.random((batch, T, BITS)) < P_PULSE) * rng.choice([-1.0, 1.0],
                                                                   (batch, T, BITS))
    targets = np.zeros_like(pulses)
    state = np.zeros((batch, BITS))
    for t in range(T):
        state = np.where(pulses[:, t] != 0, pulses[:, t], state)
        targets[:, t] = state
    return torch.as_tensor(pulses, dtype=torch.float32), torch.as_tensor(targets,
                                                                         dtype=torch.float32)


class FlipFlop(nn.Module):
    def __init__(self, kind, hidden):
        super().__init__()
        cls = {"rnn": nn.RNN, "gru": nn.GRU}[kind]
        self.rnn = cls(BITS, hidden, batch_first=True)
        self.readout = nn.Linear(hidden, BITS)

    def forward(self, x):
        return self.readout(self.rnn(x)[0])


def train(kind, hidden, steps, seed):
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    model = FlipFlop(kind, hidden)
    opt = torch.optim.Adam(model.parameters(), lr=0.01)
    for step in range(steps):
        x, y = flipflop_batch(64, rng)
        loss = nn.functional.mse_loss(model(x), y)
        opt.zero_grad()
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        if step % 100 == 0 or step == steps - 1:
            print(f"{kind} step {step}: loss {loss.item():.4f}", flush=True)
    arrays = {k: v.detach().numpy().copy() for k, v in model.state_dict().items()}
    arch = f"{type(model.rnn).__name__}(batch_first=True)"
    save_file(arrays, HERE / f"flipflop_{kind}.safetensors",
              metadata={"architecture": json.dumps(arch), "task": "2-bit flip-flop",
                        "final_loss": f"{loss.item():.5f}"})


def main():
    torch.set_num_threads(1)
    train("rnn", 24, 600, seed=1)
    train("gru", 16, 600, seed=2)


if __name__ == "__main__":
    main()
