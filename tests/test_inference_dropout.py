"""Monte Carlo dropout (``--retain-dropout --retain-dropout-modules ...``, fairseq's
test_inference_dropout): one list keeps the same dropouts in ContextPool and its Transformer twin."""

import pytest
from fairseq.modules.fairseq_dropout import FairseqDropout
from omegaconf import OmegaConf

from helpers import build_model, make_dictionary

# fairseq 0.12.3 names the layers' dropouts after TransformerEncoderLayerBase /
# TransformerDecoderLayerBase; "TransformerEncoderLayer" (fairseq's own test) matches nothing
LISTS = [
    None,  # every dropout
    ["TransformerEncoder", "TransformerEncoderLayer"],
    ["TransformerEncoder", "TransformerEncoderLayerBase"],
    ["TransformerDecoder", "TransformerDecoderLayerBase", "MultiheadAttention"],
    ["MultiheadAttention"],
]
POOLED = [("all", "all"), ("0", "1")]


def retained(model, modules):
    """prepare_for_inference_ as fairseq-generate calls it; {path: apply_during_inference}."""
    cfg = OmegaConf.create({"generation": {
        "beam": 2, "print_alignment": False, "no_beamable_mm": False,
        "retain_dropout": True, "retain_dropout_modules": modules,
    }})
    model.prepare_for_inference_(cfg)
    return {name: m.apply_during_inference for name, m in model.named_modules()
            if isinstance(m, FairseqDropout)}


@pytest.mark.parametrize("encoder_layers, decoder_layers", POOLED)
@pytest.mark.parametrize("modules", LISTS)
def test_same_list_retains_the_same_dropouts_as_the_transformer(modules, encoder_layers,
                                                                decoder_layers):
    d = make_dictionary()
    plain = retained(build_model("transformer_tiny", d), modules)
    ours = retained(build_model("contextpool_transformer_tiny", d,
                                contextpool_encoder_layers=encoder_layers,
                                contextpool_decoder_layers=decoder_layers), modules)
    assert ours == plain
    assert any(plain.values())  # every list above keeps some dropout


def test_our_class_names_select_only_the_pooled_modules():
    d = make_dictionary()
    model = build_model("contextpool_transformer_tiny", d, contextpool_encoder_layers="0",
                        contextpool_decoder_layers="none")
    kept = {name for name, on in retained(model, ["ContextPoolEncoderLayer"]).items() if on}
    assert kept == {"encoder.layers.0.dropout_module", "encoder.layers.0.activation_dropout_module"}


def test_no_dropout_retained_by_default():
    model = build_model("contextpool_transformer_tiny", make_dictionary())
    cfg = OmegaConf.create({"generation": {"beam": 2}})
    model.prepare_for_inference_(cfg)
    assert not any(m.apply_during_inference for m in model.modules()
                   if isinstance(m, FairseqDropout))
