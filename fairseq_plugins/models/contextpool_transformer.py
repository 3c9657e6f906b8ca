"""The ``contextpool_transformer`` model: fairseq's Transformer with ContextPool.

Every setting but ContextPool comes from fairseq's ``transformer`` model and its
architectures, so each ``contextpool_transformer_*`` architecture differs from
its Transformer twin only by the pooling. With no pooled layers
(``--contextpool-encoder-layers none --contextpool-decoder-layers none``) the
model *is* the plain Transformer: same modules, parameters and outputs.
"""

import argparse
import weakref
from dataclasses import dataclass, field, fields
from enum import Enum
from typing import FrozenSet, Optional

from fairseq.dataclass import ChoiceEnum, FairseqDataclass
from fairseq.distributed import fsdp_wrap
from fairseq.models import register_model, register_model_architecture
from fairseq.models.transformer import (
    TransformerConfig,
    TransformerDecoderBase,
    TransformerEncoderBase,
    TransformerModel,
)
from fairseq.models.transformer.transformer_legacy import (
    base_architecture,
    tiny_architecture,
    transformer_iwslt_de_en,
    transformer_wmt_en_de,
    transformer_wmt_en_de_big,
)
from fairseq.models.transformer.transformer_decoder import (
    module_name_fordropout as decoder_dropout_name,
)
from fairseq.models.transformer.transformer_encoder import (
    module_name_fordropout as encoder_dropout_name,
)
from fairseq.modules.checkpoint_activations import checkpoint_wrapper
from omegaconf import OmegaConf

from ..modules.context_pool import NORMALIZE_CHOICES
from ..modules.contextpool_attention import POOL_INPUT_CHOICES
from ..modules.contextpool_transformer_layer import (
    PLACEMENT_CHOICES,
    ContextPoolDecoderLayer,
    ContextPoolEncoderLayer,
    ContextPoolStreamDecoderLayer,
    ContextPoolStreamEncoderLayer,
)


@dataclass
class ContextPoolConfig(FairseqDataclass):
    """ContextPool's options; the defaults are argued in docs/design.md."""

    contextpool_max_size: int = field(
        default=8,
        metadata={"help": "largest pooling radius in tokens; the Gaussian mask is cut at "
                  "|i - j| <= this, so cost grows linearly with it"},
    )
    contextpool_normalize: ChoiceEnum(NORMALIZE_CHOICES) = field(
        default="mean",
        metadata={"help": "'sum': plain sum_j x_j w_j g^i_j as on the poster; 'mean': divided "
                  "by sum_j w_j g^i_j (a weighted average)"},
    )
    contextpool_inputs: ChoiceEnum(POOL_INPUT_CHOICES) = field(
        default="qkv",
        metadata={"help": "which attention inputs are pooled: queries, keys and values "
                  "('qkv') or keys and values only ('kv')"},
    )
    contextpool_encoder_layers: str = field(
        default="all",
        metadata={"help": "encoder layers with ContextPool: 'all', 'none' or a comma list "
                  "of 0-based layer indices such as '0,1'"},
    )
    contextpool_decoder_layers: str = field(
        default="all",
        metadata={"help": "decoder layers with ContextPool: 'all', 'none' or a comma list "
                  "of 0-based layer indices"},
    )
    contextpool_heads: int = field(
        default=1,
        metadata={"help": "pools per layer: 1 pools the attention input once for all heads; "
                  "H > 1 gives each of H groups of attention heads its own weights and sizes, "
                  "pooling its projected queries, keys and values (H must divide the "
                  "attention heads)"},
    )
    contextpool_predictor_kernel: int = field(
        default=1,
        metadata={"help": "tokens the weight and size predictors read: 1 is a per-token "
                  "linear map; K > 1 a 1-D convolution over K tokens (centred in the "
                  "encoder, the current and K - 1 previous tokens in the decoder)"},
    )
    contextpool_placement: ChoiceEnum(PLACEMENT_CHOICES) = field(
        default="attention",
        metadata={"help": "'attention': pool what self-attention reads, the residual keeps "
                  "the unpooled input; 'stream': replace the layer input by its pooled "
                  "features before the layer (attention, residual and FFN see them; needs "
                  "--contextpool-inputs qkv and --contextpool-heads 1)"},
    )


def _layer_indices(spec) -> Optional[FrozenSet[int]]:
    """'all' -> None, 'none' -> {}, '0,2' -> {0, 2}; raises ArgumentTypeError for anything else."""
    text = str(spec).strip().lower()
    if text == "all":
        return None
    if text in ("none", ""):
        return frozenset()
    try:
        indices = frozenset(int(part) for part in text.split(","))
    except ValueError:
        indices = frozenset([-1])
    if min(indices) < 0:
        raise argparse.ArgumentTypeError(
            f"expected 'all', 'none' or comma-separated 0-based layer indices such as '0,1', "
            f"got {spec!r}"
        )
    return indices


def _layer_selection(text) -> str:
    """argparse type of --contextpool-{encoder,decoder}-layers: checks the syntax while
    parsing; the indices are checked against the layer count by the architecture."""
    _layer_indices(text)
    return text


class ContextPoolOptionError(ValueError):
    """A ContextPool option whose value the model cannot use.

    ``option`` names it ('--contextpool-encoder-layers'), ``problem`` says what is wrong with
    the value; the message names the option as both its config field and its flag.
    """

    def __init__(self, option: str, problem: str):
        self.option = option
        self.problem = problem
        super().__init__(f"{option[2:].replace('-', '_')} ({option}) {problem}")


def parse_layer_selection(spec: str, num_layers: int, option: str) -> FrozenSet[int]:
    """Turns 'all' / 'none' / '0,2,5' into a set of layer indices in 0..num_layers - 1.

    ``option`` ('contextpool-encoder-layers') names the option in the ValueError for a bad spec;
    an index out of range is a :class:`ContextPoolOptionError`.
    """
    if spec is None:
        raise ValueError(f"--{option} is not set; build the model through its architecture")
    name = f"{option.replace('-', '_')} (--{option})"
    try:
        indices = _layer_indices(spec)
    except argparse.ArgumentTypeError as err:
        raise ValueError(f"{name}: {err}") from None
    if indices is None:
        return frozenset(range(num_layers))
    bad = sorted(i for i in indices if i >= num_layers)
    if bad:
        raise ContextPoolOptionError(
            f"--{option}",
            f"{spec!r} names layer {', '.join(map(str, bad))}, but the model has "
            f"{num_layers} {option.split('-')[1]} layers: give all, none or indices in "
            f"0..{num_layers - 1}",
        )
    return indices


class _ReadContextPoolOption(argparse.Action):
    """argparse action of every ContextPool option: stores the value and remembers which parser
    read it into which namespace.

    Some checks can only run once the architecture has set the layer and head counts, after
    parsing (``check_options``): a layer index out of range, options that contradict each other
    or the model. Each needs at least one ContextPool option on the command line, so this lets
    that check report it as the parser's own usage error, as for any other bad option value.
    """

    read_by = None  # (weak reference to the latest namespace, the parser that filled it)

    def __call__(self, parser, namespace, values, option_string=None):
        setattr(namespace, self.dest, values)
        _ReadContextPoolOption.read_by = (weakref.ref(namespace), parser)

    @staticmethod
    def parser_of(args) -> Optional[argparse.ArgumentParser]:
        """The parser that read a ContextPool option into ``args``; None if none did."""
        if _ReadContextPoolOption.read_by is None:
            return None
        namespace, parser = _ReadContextPoolOption.read_by
        return parser if namespace() is args else None


def wrap_layer(layer, cfg):
    """Activation checkpointing and FSDP wrapping, exactly as fairseq wraps its layers."""
    if cfg.checkpoint_activations:
        layer = checkpoint_wrapper(layer, offload_to_cpu=cfg.offload_activations)
    # with checkpointing, FSDP must always wrap the checkpointed layer
    min_params_to_wrap = 0 if cfg.checkpoint_activations else cfg.min_params_to_wrap
    return fsdp_wrap(layer, min_num_params=min_params_to_wrap)


class ContextPoolTransformerEncoder(TransformerEncoderBase):
    """:class:`TransformerEncoderBase` whose selected layers pool their input."""

    def build_encoder_layer(self, cfg):
        index = getattr(self, "_num_layers_built", 0)
        self._num_layers_built = index + 1
        pooled = parse_layer_selection(
            cfg.contextpool_encoder_layers, cfg.encoder.layers, "contextpool-encoder-layers"
        )
        if index not in pooled:
            return super().build_encoder_layer(cfg)
        if cfg.contextpool_placement == "stream":
            layer = ContextPoolStreamEncoderLayer(cfg, return_fc=self.return_fc)
        else:
            layer = ContextPoolEncoderLayer(cfg, return_fc=self.return_fc)
        return wrap_layer(layer, cfg)


class ContextPoolTransformerDecoder(TransformerDecoderBase):
    """:class:`TransformerDecoderBase` whose selected layers pool their (causal) input."""

    def build_decoder_layer(self, cfg, no_encoder_attn=False):
        index = getattr(self, "_num_layers_built", 0)
        self._num_layers_built = index + 1
        pooled = parse_layer_selection(
            cfg.contextpool_decoder_layers, cfg.decoder.layers, "contextpool-decoder-layers"
        )
        if index not in pooled:
            return super().build_decoder_layer(cfg, no_encoder_attn)
        if cfg.contextpool_placement == "stream":
            layer = ContextPoolStreamDecoderLayer(cfg, no_encoder_attn)
        else:
            layer = ContextPoolDecoderLayer(cfg, no_encoder_attn)
        return wrap_layer(layer, cfg)


@register_model("contextpool_transformer")
class ContextPoolTransformerModel(TransformerModel):
    """Transformer with Adaptive Context Pooling before each self-attention.

    See :class:`fairseq_plugins.modules.ContextPool` for the math.
    """

    @classmethod
    def add_args(cls, parser):
        super().add_args(parser)
        # every option through _ReadContextPoolOption, so that check_options can report what
        # it finds after parsing as a usage error; a value that is wrong on its own is refused
        # while parsing (OPTION_TYPES); defaults are filled in by the architectures
        # (contextpool_defaults)
        for fld in fields(ContextPoolConfig):
            if not fld.name.startswith("contextpool_"):
                continue  # FairseqDataclass's _name
            option = "--" + fld.name.replace("_", "-")
            is_choice = isinstance(fld.type, type) and issubclass(fld.type, Enum)
            parser.add_argument(
                option, action=_ReadContextPoolOption,
                type=str if is_choice else OPTION_TYPES.get(option, fld.type),
                choices=[choice.value for choice in fld.type] if is_choice else None,
                help=fld.metadata["help"],
            )

    @classmethod
    def build_model(cls, args, task):
        if OmegaConf.is_config(args):
            # fairseq-hydra-train hands legacy models a DictConfig, from which
            # TransformerConfig.from_namespace would drop our extra options.
            args = argparse.Namespace(**OmegaConf.to_container(args, resolve=True))
        contextpool_defaults(args)
        check_option_combinations(args)
        return super().build_model(args, task)

    @classmethod
    def build_encoder(cls, cfg, src_dict, embed_tokens):
        return ContextPoolTransformerEncoder(
            TransformerConfig.from_namespace(cfg), src_dict, embed_tokens
        )

    @classmethod
    def build_decoder(cls, cfg, tgt_dict, embed_tokens):
        cfg = TransformerConfig.from_namespace(cfg)
        return ContextPoolTransformerDecoder(
            cfg, tgt_dict, embed_tokens, no_encoder_attn=cfg.no_cross_attention
        )

    def make_generation_fast_(self, **kwargs):
        """fairseq's, where ``--retain-dropout-modules`` naming a fairseq class also names our
        subclasses of it, so that one list keeps the same dropouts as in the plain Transformer
        (fairseq matches a dropout's ``module_name``, the class name of its module)."""
        listed = kwargs.get("retain_dropout_modules")
        if listed is not None:
            ours = {type(m) for m in self.modules() if type(m).__module__.startswith(_PACKAGE)}
            kwargs["retain_dropout_modules"] = list(listed) + sorted(
                cls.__name__ for cls in ours if fairseq_dropout_name(cls) in listed
            )
        super().make_generation_fast_(**kwargs)


_PACKAGE = __name__.split(".")[0] + "."  # our classes' modules start with it


def fairseq_dropout_name(cls) -> str:
    """The ``module_name`` of the dropouts in ``cls``'s fairseq twin: the name of the nearest
    fairseq class ``cls`` derives from, as fairseq renames it (``TransformerEncoderBase`` ->
    ``TransformerEncoder``)."""
    base = next(b for b in cls.__mro__ if b.__module__.split(".")[0] == "fairseq")
    return encoder_dropout_name(decoder_dropout_name(base.__name__))


def _at_least_one(meaning: str, default: int):
    """An argparse type: an integer >= 1, the error saying what the option means."""

    def parse(text) -> int:
        try:
            value = int(text)
        except (TypeError, ValueError):
            raise argparse.ArgumentTypeError(f"expected an integer >= 1, got {text!r}") from None
        if value < 1:
            raise argparse.ArgumentTypeError(
                f"must be >= 1 ({meaning}; the default is {default}), got {value}"
            )
        return value

    return parse


_max_size = _at_least_one("the largest pooling radius in tokens", 8)
# option -> its argparse type; hydra configs, which skip argparse, are checked by
# contextpool_defaults with the same functions
POSITIVE_OPTIONS = {
    "--contextpool-max-size": _max_size,
    "--contextpool-heads": _at_least_one("the number of pools per layer", 1),
    "--contextpool-predictor-kernel": _at_least_one("the tokens each prediction reads", 1),
}
# argparse types of the options checked while parsing
OPTION_TYPES = {
    **POSITIVE_OPTIONS,
    "--contextpool-encoder-layers": _layer_selection,
    "--contextpool-decoder-layers": _layer_selection,
}


def contextpool_defaults(args):
    """Fills in every ContextPool option the user did not set, and checks the ones set (hydra
    configs do not go through argparse)."""
    for fld in fields(ContextPoolConfig):
        if getattr(args, fld.name, None) is None:
            setattr(args, fld.name, fld.default)
    for option, parse in POSITIVE_OPTIONS.items():
        name = option[2:].replace("-", "_")
        try:
            parse(getattr(args, name))
        except argparse.ArgumentTypeError as err:
            raise ValueError(f"{name} ({option}) {err}") from None


def check_layer_selections(args):
    """The pooled layers against the layer counts; raises :class:`ContextPoolOptionError`."""
    for side in ("encoder", "decoder"):
        parse_layer_selection(
            getattr(args, f"contextpool_{side}_layers"), getattr(args, f"{side}_layers"),
            f"contextpool-{side}-layers",
        )


def check_option_combinations(args):
    """Refuses ContextPool options that contradict each other or the model, naming them;
    raises :class:`ContextPoolOptionError`."""
    if args.contextpool_placement == "stream":
        if args.contextpool_inputs != "qkv":
            raise ContextPoolOptionError(
                "--contextpool-placement",
                "stream pools the layer input itself, so attention reads pooled queries, keys "
                f"and values: it needs --contextpool-inputs qkv, got {args.contextpool_inputs!r}",
            )
        if int(args.contextpool_heads) != 1:
            raise ContextPoolOptionError(
                "--contextpool-placement",
                "stream pools the layer input, before the attention heads exist: it needs "
                f"--contextpool-heads 1, got {args.contextpool_heads}",
            )
    for side in ("encoder", "decoder"):
        heads = getattr(args, f"{side}_attention_heads")
        layers = parse_layer_selection(
            getattr(args, f"contextpool_{side}_layers"), getattr(args, f"{side}_layers"),
            f"contextpool-{side}-layers",
        )
        if layers and heads % int(args.contextpool_heads):
            raise ContextPoolOptionError(
                "--contextpool-heads",
                f"{args.contextpool_heads} must divide --{side}-attention-heads {heads}: each "
                "pool serves a group of attention heads",
            )


def check_options(args):
    """The checks that need the layer and head counts, which the architecture has just set:
    for fairseq-train this runs right after parsing, before anything is loaded.

    A problem with options given on the command line is the parser's usage error (one line,
    exit code 2, as argparse reports a bad value); otherwise a :class:`ContextPoolOptionError`.
    """
    try:
        check_layer_selections(args)
        check_option_combinations(args)
    except ContextPoolOptionError as err:
        parser = _ReadContextPoolOption.parser_of(args)
        if parser is None:
            raise
        parser.error(f"argument {err.option}: {err.problem}")


def _register_twin(name: str, transformer_architecture):
    """Registers ``name`` as ``transformer_architecture`` plus ContextPool defaults."""

    @register_model_architecture("contextpool_transformer", name)
    def architecture(args):
        contextpool_defaults(args)
        transformer_architecture(args)
        check_options(args)

    architecture.__name__ = name
    architecture.__doc__ = f"``{transformer_architecture.__name__}`` with ContextPool."
    return architecture


contextpool_transformer = _register_twin("contextpool_transformer", base_architecture)
contextpool_transformer_tiny = _register_twin("contextpool_transformer_tiny", tiny_architecture)
contextpool_transformer_iwslt_de_en = _register_twin(
    "contextpool_transformer_iwslt_de_en", transformer_iwslt_de_en
)
contextpool_transformer_wmt_en_de = _register_twin(
    "contextpool_transformer_wmt_en_de", transformer_wmt_en_de
)
contextpool_transformer_wmt_en_de_big = _register_twin(
    "contextpool_transformer_wmt_en_de_big", transformer_wmt_en_de_big
)
