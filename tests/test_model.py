"""The contextpool_transformer model: twins, layer selection, incremental decoding."""

import argparse

import pytest
import torch
from fairseq.models import ARCH_CONFIG_REGISTRY

from fairseq.models.transformer import TransformerConfig
from fairseq.modules import MultiheadAttention
from fairseq.modules.transformer_layer import TransformerDecoderLayerBase, TransformerEncoderLayerBase

from fairseq_plugins.models.contextpool_transformer import ContextPoolConfig
from fairseq_plugins.modules import ContextPool, ContextPoolSelfAttention
from helpers import build_model, make_dictionary, random_batch
from reference import make_padding_mask, reference_context_pool, reference_pooled_attention

TWINS = {
    "contextpool_transformer": "transformer",
    "contextpool_transformer_tiny": "transformer_tiny",
    "contextpool_transformer_iwslt_de_en": "transformer_iwslt_de_en",
    "contextpool_transformer_wmt_en_de": "transformer_wmt_en_de",
    "contextpool_transformer_wmt_en_de_big": "transformer_wmt_en_de_big",
}
CONTEXTPOOL_OPTIONS = {f.name for f in ContextPoolConfig.__dataclass_fields__.values()}
# issue 24's options, alone and combined (transformer_tiny has 2 heads, 2 + 2 layers)
VARIANTS = {
    "heads2": dict(contextpool_heads=2),
    "heads2_kv_sum": dict(contextpool_heads=2, contextpool_inputs="kv", contextpool_normalize="sum"),
    "kernel3": dict(contextpool_predictor_kernel=3),
    "kernel2_kv_sum": dict(contextpool_predictor_kernel=2, contextpool_inputs="kv",
                           contextpool_normalize="sum"),
    "heads2_kernel3": dict(contextpool_heads=2, contextpool_predictor_kernel=3),
    "heads2_kernel2_prenorm": dict(contextpool_heads=2, contextpool_predictor_kernel=2,
                                   encoder_normalize_before=True, decoder_normalize_before=True),
    "stream": dict(contextpool_placement="stream"),
    "stream_kernel3_sum": dict(contextpool_placement="stream", contextpool_predictor_kernel=3,
                               contextpool_normalize="sum"),
    "stream_prenorm_layers": dict(contextpool_placement="stream", contextpool_encoder_layers="1",
                                  contextpool_decoder_layers="0", encoder_normalize_before=True,
                                  decoder_normalize_before=True),
}


@pytest.mark.parametrize("arch,twin", sorted(TWINS.items()))
def test_architectures_equal_their_transformer_twin(arch, twin):
    ours, theirs = argparse.Namespace(), argparse.Namespace()
    ARCH_CONFIG_REGISTRY[arch](ours)
    ARCH_CONFIG_REGISTRY[twin](theirs)
    ours = vars(ours)
    assert set(ours) - set(vars(theirs)) == CONTEXTPOOL_OPTIONS
    assert {k: v for k, v in ours.items() if k not in CONTEXTPOOL_OPTIONS} == vars(theirs)


def test_wmt_base_sizes():
    args = argparse.Namespace()
    ARCH_CONFIG_REGISTRY["contextpool_transformer_wmt_en_de"](args)
    assert (args.encoder_layers, args.decoder_layers) == (6, 6)
    assert (args.encoder_embed_dim, args.encoder_ffn_embed_dim) == (512, 2048)
    assert args.encoder_attention_heads == 8


def test_no_pooled_layers_is_the_plain_transformer():
    d = make_dictionary()
    torch.manual_seed(0)
    plain = build_model("transformer_tiny", d).eval()
    torch.manual_seed(0)
    ours = build_model(
        "contextpool_transformer_tiny", d,
        contextpool_encoder_layers="none", contextpool_decoder_layers="none",
    ).eval()
    assert ours.state_dict().keys() == plain.state_dict().keys()
    for key, value in plain.state_dict().items():
        assert torch.equal(ours.state_dict()[key], value), key
    src, lengths, prev = random_batch(d)
    torch.testing.assert_close(ours(src, lengths, prev)[0], plain(src, lengths, prev)[0], rtol=0, atol=0)


def test_pooled_model_differs_and_keeps_transformer_parameter_names():
    d = make_dictionary()
    plain = build_model("transformer_tiny", d)
    ours = build_model("contextpool_transformer_tiny", d)
    extra = set(ours.state_dict()) - set(plain.state_dict())
    assert set(plain.state_dict()) <= set(ours.state_dict())
    assert extra and all(".self_attn.pool." in k for k in extra)


@pytest.mark.parametrize(
    "enc,dec,expect_enc,expect_dec",
    [("all", "all", [0, 1], [0, 1]), ("1", "none", [1], []), ("none", "0", [], [0]), ("0,1", "1", [0, 1], [1])],
)
def test_layer_selection(enc, dec, expect_enc, expect_dec):
    m = build_model(contextpool_encoder_layers=enc, contextpool_decoder_layers=dec)
    pooled = lambda layers: [i for i, l in enumerate(layers) if isinstance(l.self_attn, ContextPoolSelfAttention)]
    assert pooled(m.encoder.layers) == expect_enc
    assert pooled(m.decoder.layers) == expect_dec
    for layer in m.decoder.layers:
        if isinstance(layer.self_attn, ContextPoolSelfAttention):
            assert layer.self_attn.pool.causal
    for layer in m.encoder.layers:
        if isinstance(layer.self_attn, ContextPoolSelfAttention):
            assert not layer.self_attn.pool.causal


@pytest.mark.parametrize("spec,message", [("2", "names layer 2, but the model has 2 encoder layers"), ("first", "comma-separated")])
def test_bad_layer_selection_is_a_clear_error(spec, message):
    with pytest.raises(ValueError, match=message):
        build_model(contextpool_encoder_layers=spec)


def test_options_reach_every_pool():
    m = build_model(contextpool_max_size=5, contextpool_normalize="sum", contextpool_inputs="kv")
    pools = [mod for mod in m.modules() if isinstance(mod, ContextPool)]
    assert len(pools) == 4
    assert all(p.max_size == 5 and p.normalize == "sum" for p in pools)
    assert all(l.self_attn.pool_inputs == "kv" for l in m.encoder.layers)


def test_cross_self_attention_is_refused():
    with pytest.raises(ValueError, match="cross-self-attention"):
        build_model(cross_self_attention=True)


def _incremental_outputs(model, prev, enc):
    state = {}
    outs = []
    for t in range(prev.size(1)):
        out, _ = model.decoder(prev[:, : t + 1], encoder_out=enc, incremental_state=state)
        outs.append(out)
    return torch.cat(outs, dim=1), state


@pytest.mark.parametrize("inputs", ["qkv", "kv"])
@pytest.mark.parametrize("normalize", ["sum", "mean"])
@pytest.mark.parametrize("max_size", [1, 3])
def test_incremental_decoding_equals_full_forward(inputs, normalize, max_size):
    d = make_dictionary()
    torch.manual_seed(1)
    m = build_model(contextpool_inputs=inputs, contextpool_normalize=normalize, contextpool_max_size=max_size).eval()
    src, lengths, prev = random_batch(d, tgt_len=9)
    prev = torch.where(prev == d.pad(), torch.full_like(prev, d.nspecial), prev)
    with torch.no_grad():
        enc = m.encoder(src, src_lengths=lengths)
        full, _ = m.decoder(prev, encoder_out=enc)
        steps, _ = _incremental_outputs(m, prev, enc)
    torch.testing.assert_close(steps, full, rtol=1e-5, atol=1e-5)


def _check_beam_reordering(**options):
    """Four cached steps, a beam reorder, three more steps: equal to the full forward of the
    reordered prefixes (three beam hypotheses of one source sentence, as in beam search)."""
    d = make_dictionary()
    torch.manual_seed(2)
    m = build_model(contextpool_max_size=2, **options).eval()
    src, lengths, prev = random_batch(d, batch_size=3, tgt_len=7)
    src, lengths = src[:1].expand(3, -1), lengths[:1].expand(3)
    prev = torch.where(prev == d.pad(), torch.full_like(prev, d.nspecial), prev)
    order = torch.tensor([2, 0, 0])
    with torch.no_grad():
        enc = m.encoder(src, src_lengths=lengths)
        state = {}
        for t in range(4):
            m.decoder(prev[:, : t + 1], encoder_out=enc, incremental_state=state)
        m.decoder.reorder_incremental_state_scripting(state, order)
        enc_r = m.encoder.reorder_encoder_out(enc, order)
        prev_r = prev.index_select(0, order)
        outs = [m.decoder(prev_r[:, : t + 1], encoder_out=enc_r, incremental_state=state)[0]
                for t in range(4, 7)]
        full, _ = m.decoder(prev_r, encoder_out=enc_r)
    torch.testing.assert_close(torch.cat(outs, 1), full[:, 4:], rtol=1e-5, atol=1e-5)


def test_incremental_state_follows_beam_reordering():
    _check_beam_reordering()


def test_decoder_is_causal_end_to_end():
    d = make_dictionary()
    m = build_model(contextpool_max_size=4).eval()
    src, lengths, prev = random_batch(d, batch_size=1, tgt_len=8)
    with torch.no_grad():
        enc = m.encoder(src, src_lengths=lengths)
        out, _ = m.decoder(prev, encoder_out=enc)
        changed = prev.clone()
        changed[:, 5:] = (changed[:, 5:] + 1 - d.nspecial) % (len(d) - d.nspecial) + d.nspecial
        out2, _ = m.decoder(changed, encoder_out=enc)
    torch.testing.assert_close(out2[:, :5], out[:, :5], rtol=0, atol=0)
    assert not torch.allclose(out2[:, 5:], out[:, 5:])


def test_encoder_padding_does_not_change_real_positions():
    d = make_dictionary()
    m = build_model().eval()
    src = torch.tensor([[7, 8, 9, 10, d.eos()]])
    padded = torch.cat([torch.full((1, 3), d.pad()), src], dim=1)  # fairseq left-pads sources
    with torch.no_grad():
        a = m.encoder(src, src_lengths=torch.tensor([5]))["encoder_out"][0]
        b = m.encoder(padded, src_lengths=torch.tensor([5]))["encoder_out"][0]
    torch.testing.assert_close(b[3:], a, rtol=1e-5, atol=1e-5)


def test_activation_checkpointing_keeps_outputs_and_gradients():
    d = make_dictionary()
    torch.manual_seed(3)
    plain = build_model(dictionary=d)
    torch.manual_seed(3)
    ckpt = build_model(dictionary=d, checkpoint_activations=True)
    assert type(ckpt.encoder.layers[0]).__name__ != type(plain.encoder.layers[0]).__name__ or hasattr(
        ckpt.encoder.layers[0], "precheckpoint_forward"
    )
    src, lengths, prev = random_batch(d)
    for model in (plain, ckpt):
        model.train()
        model(src, lengths, prev)[0].sum().backward()
    g_plain = plain.encoder.layers[0].self_attn.pool.size_proj.weight.grad
    g_ckpt = ckpt.encoder.layers[0].self_attn.pool.size_proj.weight.grad
    torch.testing.assert_close(g_ckpt, g_plain, rtol=1e-5, atol=1e-6)


def test_max_size_from_a_config_names_the_option():
    """hydra configs skip argparse: the architecture defaults check them and name the option."""
    with pytest.raises(ValueError, match=r"contextpool_max_size \(--contextpool-max-size\) must be >= 1"):
        build_model(contextpool_max_size=0)


# --------------------------------------------------------------------------- issue 24's options


def _no_pad_prev(d, prev):
    return torch.where(prev == d.pad(), torch.full_like(prev, d.nspecial), prev)


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_variant_incremental_decoding_equals_full_forward(variant):
    d = make_dictionary()
    torch.manual_seed(1)
    m = build_model(contextpool_max_size=3, **VARIANTS[variant]).eval()
    src, lengths, prev = random_batch(d, tgt_len=9)
    prev = _no_pad_prev(d, prev)
    with torch.no_grad():
        enc = m.encoder(src, src_lengths=lengths)
        full, _ = m.decoder(prev, encoder_out=enc)
        steps, _ = _incremental_outputs(m, prev, enc)
    torch.testing.assert_close(steps, full, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_variant_incremental_state_follows_beam_reordering(variant):
    _check_beam_reordering(**VARIANTS[variant])


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_variant_decoder_is_causal(variant):
    d = make_dictionary()
    m = build_model(contextpool_max_size=4, **VARIANTS[variant]).eval()
    src, lengths, prev = random_batch(d, batch_size=2, tgt_len=8)
    prev = _no_pad_prev(d, prev)
    with torch.no_grad():
        enc = m.encoder(src, src_lengths=lengths)
        out, _ = m.decoder(prev, encoder_out=enc)
        for t in (2, 5):
            changed = prev.clone()
            changed[:, t:] = (changed[:, t:] + 1 - d.nspecial) % (len(d) - d.nspecial) + d.nspecial
            out2, _ = m.decoder(changed, encoder_out=enc)
            torch.testing.assert_close(out2[:, :t], out[:, :t], rtol=0, atol=0)
            assert not torch.allclose(out2[:, t:], out[:, t:])


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_variant_encoder_padding_changes_nothing(variant):
    """A sentence alone, left-padded (fairseq's default) and right-padded in a batch."""
    d = make_dictionary()
    m = build_model(**VARIANTS[variant]).eval()
    src = torch.tensor([[7, 8, 9, 10, 11, d.eos()]])
    pads = torch.full((1, 3), d.pad())
    length = torch.tensor([6])
    with torch.no_grad():
        alone = m.encoder(src, src_lengths=length)["encoder_out"][0]
        left = m.encoder(torch.cat([pads, src], 1), src_lengths=length)["encoder_out"][0]
        right = m.encoder(torch.cat([src, pads], 1), src_lengths=length)["encoder_out"][0]
    torch.testing.assert_close(left[3:], alone, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(right[:6], alone, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_variant_options_reach_every_layer(variant):
    options = VARIANTS[variant]
    m = build_model(**options)
    stream = options.get("contextpool_placement") == "stream"
    pools = [mod for mod in m.modules() if isinstance(mod, ContextPool)]
    assert len(pools) == (2 if "contextpool_encoder_layers" in options else 4)
    for pool in pools:
        assert pool.heads == options.get("contextpool_heads", 1)
        assert pool.predictor_kernel == options.get("contextpool_predictor_kernel", 1)
    for layer in list(m.encoder.layers) + list(m.decoder.layers):
        pooled = any(isinstance(mod, ContextPool) for mod in layer.modules())
        assert isinstance(layer.self_attn, ContextPoolSelfAttention) == (pooled and not stream)
        assert hasattr(layer, "pool") == (pooled and stream)


def test_stream_layers_run_fairseqs_layer_on_the_pooled_input():
    """placement stream: the layer's output is fairseq's plain layer (same weights) applied to
    ContextPool(x), the pool computed by the float64 loop reference; with pre-norm, so the
    pooled features feed the norm, attention, residual and FFN alike."""
    d = make_dictionary()
    torch.manual_seed(4)
    m = build_model(dictionary=d, contextpool_placement="stream", contextpool_predictor_kernel=3,
                    encoder_normalize_before=True, decoder_normalize_before=True).double().eval()
    cfg = TransformerConfig.from_namespace(m.args)
    T, B, C = 6, 2, m.args.encoder_embed_dim
    x = torch.randn(T, B, C, dtype=torch.float64)
    mask = make_padding_mask([6, 4], T, left_pad=True)
    for side, plain in (("encoder", TransformerEncoderLayerBase(cfg)),
                        ("decoder", TransformerDecoderLayerBase(cfg))):
        layer = getattr(m, side).layers[0]
        with torch.no_grad():
            for pool in [layer.pool]:
                pool.size_proj.weight.normal_(0, 1.0)  # sizes spread: the pool mixes tokens
        state = {k: v for k, v in layer.state_dict().items() if not k.startswith("pool.")}
        plain.load_state_dict(state)
        plain = plain.double().eval()
        pooled = reference_context_pool(layer.pool, x, mask if side == "encoder" else None)
        with torch.no_grad():
            if side == "encoder":
                got, want, unpooled = layer(x, mask), plain(pooled, mask), plain(x, mask)
            else:
                memory = torch.randn(5, B, C, dtype=torch.float64)
                future = torch.triu(torch.full((T, T), float("-inf"), dtype=torch.float64), 1)
                got = layer(x, memory, self_attn_mask=future)[0]
                want = plain(pooled, memory, self_attn_mask=future)[0]
                unpooled = plain(x, memory, self_attn_mask=future)[0]
        torch.testing.assert_close(got, want, rtol=1e-10, atol=1e-10)
        assert not torch.allclose(got, unpooled)
        assert isinstance(layer.self_attn, MultiheadAttention)
        assert not isinstance(layer.self_attn, ContextPoolSelfAttention)


@pytest.mark.parametrize("causal", [False, True])
@pytest.mark.parametrize("inputs", ["qkv", "kv"])
@pytest.mark.parametrize("groups,kernel", [(2, 1), (4, 3)])
def test_per_head_attention_matches_loop_reference(causal, inputs, groups, kernel):
    """Each head group pools its own projected queries, keys and values: the attention's own
    core against the float64 loop reference (4 heads)."""
    torch.manual_seed(5)
    pool = ContextPool(8, max_size=2, causal=causal, heads=groups, predictor_kernel=kernel)
    attn = ContextPoolSelfAttention(8, 4, pool=pool, pool_inputs=inputs).double().eval()
    with torch.no_grad():
        pool.size_proj.weight.normal_(0, 1.0)
    T, B = 6, 3
    x = torch.randn(T, B, 8, dtype=torch.float64)
    mask = make_padding_mask([6, 4, 2], T, left_pad=not causal)
    future = torch.triu(torch.full((T, T), float("-inf"), dtype=torch.float64), 1) if causal else None
    with torch.no_grad():
        got, weights = attn(x, x, x, key_padding_mask=mask, attn_mask=future, need_weights=False)
    assert weights is None
    want = reference_pooled_attention(attn, x, mask)
    real = ~mask.t()
    torch.testing.assert_close(got[real], want[real], rtol=1e-10, atol=1e-10)


def test_per_head_attention_weights_when_asked():
    torch.manual_seed(6)
    pool = ContextPool(8, max_size=2, heads=2)
    attn = ContextPoolSelfAttention(8, 4, pool=pool).double().eval()
    x = torch.randn(5, 2, 8, dtype=torch.float64)
    mask = make_padding_mask([5, 3], 5, left_pad=True)
    with torch.no_grad():
        fused, _ = attn(x, x, x, key_padding_mask=mask, need_weights=False)
        explicit, mean = attn(x, x, x, key_padding_mask=mask, need_weights=True)
        _, per_head = attn(x, x, x, key_padding_mask=mask, need_head_weights=True)
    torch.testing.assert_close(explicit, fused, rtol=1e-10, atol=1e-10)
    assert mean.shape == (2, 5, 5) and per_head.shape == (4, 2, 5, 5)
    torch.testing.assert_close(per_head.mean(0), mean)
    torch.testing.assert_close(mean.sum(-1), torch.ones(2, 5, dtype=torch.float64))
    assert torch.all(mean[1, :, :2] == 0)  # padding keys


@pytest.mark.parametrize("overrides, message", [
    (dict(contextpool_placement="stream", contextpool_inputs="kv"),
     r"\(--contextpool-placement\) stream .* needs --contextpool-inputs qkv, got 'kv'"),
    (dict(contextpool_placement="stream", contextpool_heads=2),
     r"\(--contextpool-placement\) stream .* needs --contextpool-heads 1, got 2"),
    (dict(contextpool_heads=3), r"\(--contextpool-heads\) 3 must divide --encoder-attention-heads 2"),
    (dict(contextpool_heads=4, encoder_attention_heads=4, contextpool_encoder_layers="0"),
     r"\(--contextpool-heads\) 4 must divide --decoder-attention-heads 2"),
    (dict(contextpool_heads=0), r"contextpool_heads \(--contextpool-heads\) must be >= 1"),
    (dict(contextpool_predictor_kernel=0),
     r"contextpool_predictor_kernel \(--contextpool-predictor-kernel\) must be >= 1"),
])
def test_contradicting_options_are_clear_errors(overrides, message):
    with pytest.raises(ValueError, match=message):
        build_model(**overrides)


def test_heads_need_only_divide_the_pooled_sides_heads():
    m = build_model(contextpool_heads=4, encoder_attention_heads=4, contextpool_decoder_layers="none")
    assert all(layer.self_attn.pool.heads == 4 for layer in m.encoder.layers)


@pytest.mark.parametrize("args, message", [
    (["--contextpool-max-size", "0"], "argument --contextpool-max-size: must be >= 1"),
    (["--contextpool-max-size", "-3"], "argument --contextpool-max-size: must be >= 1"),
    (["--contextpool-max-size", "two"],
     "argument --contextpool-max-size: expected an integer >= 1, got 'two'"),
    (["--contextpool-heads", "0"], "argument --contextpool-heads: must be >= 1"),
    (["--contextpool-predictor-kernel", "-1"], "argument --contextpool-predictor-kernel: must be >= 1"),
    (["--contextpool-predictor-kernel", "three"],
     "argument --contextpool-predictor-kernel: expected an integer >= 1, got 'three'"),
    (["--contextpool-placement", "residual"], "argument --contextpool-placement: invalid choice"),
])
def test_options_are_checked_while_parsing(tmp_path, capsys, args, message):
    from fairseq import options

    (tmp_path / "dict.en.txt").write_text("a 1\n")
    (tmp_path / "dict.de.txt").write_text("a 1\n")
    parser = options.get_training_parser()
    with pytest.raises(SystemExit):
        options.parse_args_and_arch(parser, [
            str(tmp_path), "--arch", "contextpool_transformer_tiny", *args])
    assert message in capsys.readouterr().err


def test_new_options_have_help():
    from fairseq import options

    parser = options.get_training_parser()
    options.parse_args_and_arch(parser, ["/nonexistent", "--arch", "contextpool_transformer_tiny"])
    helps = {opt: a.help for a in parser._actions for opt in a.option_strings}
    for option in ("--contextpool-heads", "--contextpool-predictor-kernel", "--contextpool-placement"):
        assert helps.get(option), option


@pytest.mark.parametrize("inputs", ["qkv", "kv"])
def test_per_head_attention_gradcheck(inputs):
    torch.manual_seed(7)
    pool = ContextPool(4, max_size=2, causal=True, heads=2, predictor_kernel=2)
    attn = ContextPoolSelfAttention(4, 2, pool=pool, pool_inputs=inputs).double()
    x = torch.randn(4, 2, 4, dtype=torch.float64, requires_grad=True)
    mask = make_padding_mask([4, 3], 4)
    future = torch.triu(torch.full((4, 4), float("-inf"), dtype=torch.float64), 1)
    params = [attn.q_proj.weight, attn.v_proj.bias, pool.size_proj.weight, pool.weight_proj.bias]
    assert torch.autograd.gradcheck(
        lambda x, *p: attn(x, x, x, key_padding_mask=mask, attn_mask=future,
                           need_weights=False)[0], (x, *params))


def test_stream_layer_gradcheck():
    torch.manual_seed(8)
    m = build_model(contextpool_placement="stream", contextpool_predictor_kernel=3,
                    encoder_embed_dim=8, encoder_ffn_embed_dim=8).double()
    layer = m.encoder.layers[0]
    x = torch.randn(5, 2, 8, dtype=torch.float64, requires_grad=True)
    mask = make_padding_mask([5, 3], 5, left_pad=True)
    params = [layer.pool.size_proj.weight, layer.self_attn.k_proj.weight]
    assert torch.autograd.gradcheck(lambda x, *p: layer(x, mask), (x, *params))
