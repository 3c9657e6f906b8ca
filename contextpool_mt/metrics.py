"""The metrics of evaluation and report, defined once: BLEU, chrF, WMT14's compound-split BLEU
and the paired bootstrap between systems.

* ``bleu_detok``: sacreBLEU corpus BLEU of the detokenised hypotheses against the raw reference,
  sacreBLEU's default 13a tokenisation, exp smoothing, case-sensitive.
* ``chrf``: sacreBLEU chrF2 (character 6-grams, beta 2, no word n-grams).
* ``bleu_tok_compound_split``: the number WMT14 EN-DE papers report (tensor2tensor's
  get_ende_bleu.sh, fairseq's compound_split_bleu.sh): hypothesis and reference each through
  Moses' replace-unicode-punctuation and tokenizer.perl -l TGT (sacremoses, default XML escaping,
  no aggressive hyphen splitting), then ``s{(\\S)-(\\S)}{$1 ##AT##-##AT## $2}g``, then BLEU on the
  tokens with no further tokenisation and no smoothing (sacreBLEU ``tokenize='none',
  smooth_method='none'``, which matches multi-bleu.perl).

``DESCRIPTIONS`` holds these sentences for reports; a scores.json stores each metric's sacreBLEU
signature, which pins the rest.
"""

from __future__ import annotations

import re
from importlib import metadata

KEYS = ("bleu_detok", "chrf", "bleu_tok_compound_split")
DESCRIPTIONS = {
    "bleu_detok": "sacreBLEU corpus BLEU of the detokenised hypotheses (hyp.txt) against the raw "
    "reference, default 13a tokenisation, exp smoothing, case-sensitive",
    "chrf": "sacreBLEU chrF2 (character 6-grams, beta 2, no word n-grams) of hyp.txt against the "
    "raw reference",
    "bleu_tok_compound_split": "tokenised compound-split BLEU as in WMT14 EN-DE papers: hyp and ref "
    "through Moses replace-unicode-punctuation and tokenizer.perl (sacremoses), hyphens split as "
    "##AT##-##AT##, then BLEU with tokenize='none', smooth_method='none' (multi-bleu.perl)",
}

_COMPOUND = re.compile(r"(\S)-(\S)")


class MetricError(RuntimeError):
    """Hypotheses and references that cannot be scored together."""


def compound_split(line: str) -> str:
    """Splits hyphenated compounds the way WMT14 EN-DE BLEU scripts do.

    The same substitution as ``perl -ple 's{(\\S)-(\\S)}{$1 ##AT##-##AT## $2}g'``:
    non-overlapping, left to right, so in "a-b-c" only the first hyphen is split
    (the "b" is consumed by the first match), exactly as Perl does.
    """
    return _COMPOUND.sub(r"\1 ##AT##-##AT## \2", line)


class CompoundSplitTokenizer:
    """Moses replace-unicode-punctuation + tokenizer.perl -l LANG, then compound splitting."""

    def __init__(self, lang: str):
        from sacremoses import MosesPunctNormalizer, MosesTokenizer

        self.lang = lang
        self._normalizer = MosesPunctNormalizer(lang=lang)
        self._tokenizer = MosesTokenizer(lang=lang)

    def tokenize(self, line: str) -> str:
        text = self._normalizer.replace_unicode_punct(line)
        return self._tokenizer.tokenize(text, aggressive_dash_splits=False, return_str=True, escape=True)

    def __call__(self, line: str) -> str:
        return compound_split(self.tokenize(line))


def bleu_detok_metric():
    from sacrebleu.metrics import BLEU

    return BLEU()


def chrf_metric():
    from sacrebleu.metrics import CHRF

    return CHRF()


def tok_bleu_metric():
    """BLEU on text that is already tokenised and compound-split."""
    from sacrebleu.metrics import BLEU

    return BLEU(tokenize="none", smooth_method="none", force=True)


def signatures() -> dict:
    """This environment's sacreBLEU signature of each metric (one reference), to compare with
    the ones a scores.json recorded (a signature is only known once a metric has scored)."""
    out = {}
    for key, metric in (("bleu_detok", bleu_detok_metric()), ("chrf", chrf_metric()),
                        ("bleu_tok_compound_split", tok_bleu_metric())):
        metric.corpus_score(["a b c d"], [["a b c d"]])
        out[key] = str(metric.get_signature())
    return out


def _bleu_dict(metric, score) -> dict:
    return {
        "score": score.score,
        "signature": str(metric.get_signature()),
        "precisions": list(score.precisions),
        "bp": score.bp,
        "ratio": score.ratio,
        "sys_len": score.sys_len,
        "ref_len": score.ref_len,
        "string": str(score),
    }


def score_bleu_detok(hyps, refs) -> dict:
    metric = bleu_detok_metric()
    return _bleu_dict(metric, metric.corpus_score(list(hyps), [list(refs)]))


def score_chrf(hyps, refs) -> dict:
    metric = chrf_metric()
    score = metric.corpus_score(list(hyps), [list(refs)])
    return {"score": score.score, "signature": str(metric.get_signature()), "name": score.name,
            "string": str(score)}


def score_bleu_tok_compound_split(hyps_tok, refs_tok) -> dict:
    """BLEU on already tokenised, compound-split text (see CompoundSplitTokenizer)."""
    metric = tok_bleu_metric()
    return _bleu_dict(metric, metric.corpus_score(list(hyps_tok), [list(refs_tok)]))


def score_all(hyps, refs, lang: str) -> dict:
    """All three corpus scores of ``hyps`` against ``refs`` (target language ``lang``).

    Returns {'bleu_detok', 'chrf', 'bleu_tok_compound_split', 'hyps_tok', 'refs_tok'}.
    """
    if len(hyps) != len(refs):
        raise MetricError(f"{len(hyps)} hypotheses but {len(refs)} references")
    splitter = CompoundSplitTokenizer(lang)
    hyps_tok = [splitter(h) for h in hyps]
    refs_tok = [splitter(r) for r in refs]
    tok = score_bleu_tok_compound_split(hyps_tok, refs_tok)
    tok["tokenizer"] = f"sacremoses {metadata.version('sacremoses')} (lang={lang})"
    return {
        "bleu_detok": score_bleu_detok(hyps, refs),
        "chrf": score_chrf(hyps, refs),
        "bleu_tok_compound_split": tok,
        "hyps_tok": hyps_tok,
        "refs_tok": refs_tok,
    }


def paired_bootstrap(named_hyps: list, refs: list, metrics: dict, n_samples: int):
    """sacreBLEU's paired bootstrap resampling (``PairedTest(test_type='bs')``, the Moses
    bootstrap-hypothesis-difference-significance.pl procedure); ``named_hyps[0]`` is the baseline.

    Returns (signatures by metric name, results by metric name: one per system, baseline first).

    A system that scores exactly the baseline's score gets p = 1: its observed difference, 0, is
    the least extreme value the test statistic |difference| can take, so every resample is at
    least as extreme. sacreBLEU counts only resamples *more* extreme (``stats > observed``),
    which for two identical systems (every resampled difference 0) gives the smallest p it can,
    1 / (n_samples + 1), as if identical systems differed significantly.
    """
    from sacrebleu.significance import PairedTest

    test = PairedTest(named_hyps, metrics, references=[refs], test_type="bs", n_samples=n_samples)
    signatures, results = test()
    for name, per_system in results.items():
        if name == "System":  # the column of system names
            continue
        baseline = per_system[0]
        for result in per_system[1:]:
            if result.score == baseline.score:
                result.p_value = 1.0
    return {k: str(v) for k, v in signatures.items()}, results
