"""ContextPool learns: a short training run on a small learnable task (reverse)."""

import time

import pytest
import torch
import torch.nn.functional as F

from helpers import build_model, make_dictionary

pytestmark = pytest.mark.slow


def reverse_batch(d, g, batch_size=32, max_len=8):
    """Sources of random symbols, targets the same symbols reversed (fairseq padding)."""
    low, high = d.nspecial, d.nspecial + 10
    lengths = torch.randint(3, max_len + 1, (batch_size,), generator=g)
    src = torch.full((batch_size, max_len + 1), d.pad())
    tgt = torch.full((batch_size, max_len + 1), d.pad())
    for b, n in enumerate(lengths.tolist()):
        seq = torch.randint(low, high, (n,), generator=g)
        src[b, max_len - n :] = torch.cat([seq, torch.tensor([d.eos()])])  # left-padded
        tgt[b, : n + 1] = torch.cat([seq.flip(0), torch.tensor([d.eos()])])  # right-padded
    prev = torch.roll(tgt, 1, dims=1)
    prev[:, 0] = d.eos()
    prev[tgt == d.pad()] = d.pad()
    return src, lengths + 1, prev, tgt


def train_reverse(arch, steps, **overrides):
    torch.manual_seed(0)
    d = make_dictionary(12)
    model = build_model(arch, d, **overrides)
    opt = torch.optim.Adam(model.parameters(), lr=3e-3, betas=(0.9, 0.98))
    g = torch.Generator().manual_seed(0)
    for _ in range(steps):
        src, lengths, prev, tgt = reverse_batch(d, g)
        logits = model(src, lengths, prev)[0]
        loss = F.cross_entropy(logits.transpose(1, 2), tgt, ignore_index=d.pad())
        opt.zero_grad()
        loss.backward()
        opt.step()
    model.eval()
    g_eval = torch.Generator().manual_seed(123)
    with torch.no_grad():
        src, lengths, prev, tgt = reverse_batch(d, g_eval, batch_size=256)
        logits = model(src, lengths, prev)[0]
        loss = F.cross_entropy(logits.transpose(1, 2), tgt, ignore_index=d.pad()).item()
        mask = tgt != d.pad()
        accuracy = (logits.argmax(-1)[mask] == tgt[mask]).float().mean().item()
    return loss, accuracy


def test_contextpool_learns_to_reverse():
    start = time.time()
    loss, accuracy = train_reverse("contextpool_transformer_tiny", steps=200)
    # chance level is ln(11) = 2.4 nats; a model that learnt the task is far below
    assert loss < 0.3, (loss, accuracy, time.time() - start)
    assert accuracy > 0.9, (loss, accuracy)
