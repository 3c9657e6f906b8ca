"""``--task translation_bf16``: fairseq's translation task in bf16 mixed precision.

Forward passes and losses run under ``torch.autocast(device, dtype=torch.bfloat16)``:
matrix products in bf16, while parameters, gradients and optimizer state stay fp32
(the parameters are never cast), and autocast keeps softmaxes and the loss in fp32
(fairseq's ``get_normalized_probs`` computes log-probabilities in fp32 anyway). The
backward pass runs outside autocast, as PyTorch recommends. bf16 has fp32's exponent
range, so no loss scaling is needed.

Why not fairseq's ``--bf16``: it casts the whole model and optimizer to bf16 (no fp32
master copy on CPU) and, on the command line, sets ``--tpu``, which crashes on any
machine without torch_xla. This task works the same on CPU and CUDA; it is what
``scripts/train.sh --precision bf16`` uses. Checkpoints hold fp32 weights and load in
plain ``--task translation``. It subclasses ``translation_provenance``, so its checkpoints record
their corpus like every other checkpoint train.sh writes.
"""

import functools

import torch

from fairseq.tasks import register_task
from fairseq.tasks.translation import TranslationConfig

from .translation_provenance import TranslationProvenanceTask


def bf16_autocast(model: torch.nn.Module):
    """``torch.autocast`` to bf16 on the device of ``model``'s parameters."""
    device = next(model.parameters()).device.type
    return torch.autocast(device_type=device, dtype=torch.bfloat16)


def _criterion_in_bf16(criterion, model, sample, **kwargs):
    with bf16_autocast(model):
        return criterion(model, sample, **kwargs)


@register_task("translation_bf16", dataclass=TranslationConfig)
class TranslationBF16Task(TranslationProvenanceTask):
    """:class:`TranslationProvenanceTask` whose forward passes run under bf16 autocast.

    Training: only the criterion call (model forward + loss) is autocast; backward and the
    optimizer step run as in fairseq. Validation (loss and ``--eval-bleu``) and inference
    run entirely under autocast, so validation measures the model as it trains.
    """

    def train_step(self, sample, model, criterion, optimizer, update_num, ignore_grad=False):
        return super().train_step(
            sample,
            model,
            functools.partial(_criterion_in_bf16, criterion),
            optimizer,
            update_num,
            ignore_grad=ignore_grad,
        )

    def valid_step(self, sample, model, criterion):
        with bf16_autocast(model):
            return super().valid_step(sample, model, criterion)

    def inference_step(self, generator, models, sample, prefix_tokens=None, constraints=None):
        with bf16_autocast(models[0]):
            return super().inference_step(
                generator, models, sample, prefix_tokens=prefix_tokens, constraints=constraints
            )
