"""Checkpoints written by an earlier version of the plugin still load and compute the same.

tests/fixtures/contextpool_tiny/ holds tiny fairseq-train checkpoints (the default options, and
kv + sum + pre-norm + a layer selection) and their outputs on one batch, written by
tests/fixtures/make_contextpool_fixture.py before the per-head pools, the predictor kernel and
the stream placement existed. Loaded through fairseq's own loader (the checkpoint's options
lack the new ones, which take their defaults), the models must reproduce those outputs.
"""

from pathlib import Path

import pytest
import torch
from fairseq import checkpoint_utils

import fairseq_plugins  # noqa: F401  (registers the model, allowlists checkpoint contents)
from fairseq_plugins.modules import ContextPool

FIXTURE = Path(__file__).resolve().parent / "fixtures" / "contextpool_tiny"
VARIANTS = ("defaults", "kv_sum_prenorm")


@pytest.fixture(scope="module")
def recorded():
    return torch.load(FIXTURE / "outputs.pt", weights_only=True)


def load(name):
    models, _, _ = checkpoint_utils.load_model_ensemble_and_task(
        [str(FIXTURE / f"{name}.pt")],
        arg_overrides={"data": str(FIXTURE), "source_lang": "en", "target_lang": "de"})
    return models[0].eval()


def outputs(model, recorded):
    with torch.no_grad():
        encoder_out = model.encoder(recorded["src_tokens"], src_lengths=recorded["src_lengths"])
        logits = model.decoder(recorded["prev_output_tokens"], encoder_out=encoder_out)
        lprobs = model.get_normalized_probs(logits, log_probs=True)
    return {"encoder_out": encoder_out["encoder_out"][0], "lprobs": lprobs}


@pytest.mark.parametrize("name", VARIANTS)
def test_old_checkpoint_reproduces_its_outputs(name, recorded):
    model = load(name)
    expected = recorded["expected"][name]
    for key, value in outputs(model, recorded).items():  # float32: another CPU may round apart
        torch.testing.assert_close(value, expected["float32"][key], rtol=1e-5, atol=1e-5,
                                   msg=lambda m: f"{name} {key} (float32): {m}")
    for key, value in outputs(model.double(), recorded).items():
        torch.testing.assert_close(value, expected["float64"][key], rtol=1e-10, atol=1e-10,
                                   msg=lambda m: f"{name} {key} (float64): {m}")


@pytest.mark.parametrize("name", VARIANTS)
def test_the_fixture_pools_matter(name, recorded):
    """The comparison above can fail: narrowing every pool to its own token moves the outputs
    far beyond its tolerance."""
    model = load(name).double()
    pools = [m for m in model.modules() if isinstance(m, ContextPool)]
    assert len(pools) == (4 if name == "defaults" else 2)
    with torch.no_grad():
        for pool in pools:
            pool.size_proj.bias.fill_(-30.0)
    changed = outputs(model, recorded)
    expected = recorded["expected"][name]["float64"]
    for key in ("encoder_out", "lprobs"):
        assert (changed[key] - expected[key]).abs().max() > 1e-3, key
