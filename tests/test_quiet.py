"""No noise of ours: the hydra deprecation warnings of fairseq's own config calls are filtered
by the plugin, and the plots import matplotlib without its DEBUG lines (issue 25, item 12)."""

import os
import subprocess
import sys

import pytest

from helpers import binarize, write_reversal_corpus

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# what fairseq-train runs before its first log line: parse, then compose the hydra config
PARSE_AND_COMPOSE = """
import sys
from fairseq import options
from fairseq.dataclass.utils import convert_namespace_to_omegaconf
argv = sys.argv[1:]
convert_namespace_to_omegaconf(options.parse_args_and_arch(options.get_training_parser(), argv))
"""
HYDRA_MESSAGES = [
    "hydra.experimental.initialize() is no longer experimental",
    "The version_base parameter is not specified",
    "Usage of deprecated keyword in package header",
    "is validated against ConfigStore schema with the same name",
    "The strict flag in the compose API is deprecated",
]


@pytest.fixture(scope="module")
def data_bin(tmp_path_factory):
    root = tmp_path_factory.mktemp("quiet")
    write_reversal_corpus(root, {"train": 10, "valid": 4})
    binarize(root)
    return root / "data-bin"


def stderr_of(*argv):
    proc = subprocess.run([sys.executable, "-c", PARSE_AND_COMPOSE, *argv],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return proc.stderr


def test_fairseq_runs_without_hydra_deprecation_warnings(data_bin):
    plain = stderr_of(str(data_bin), "--arch", "transformer_tiny")
    assert all(message in plain for message in HYDRA_MESSAGES)  # what fairseq alone prints
    ours = stderr_of(str(data_bin), "--arch", "contextpool_transformer_tiny",
                     "--user-dir", os.path.join(REPO, "fairseq_plugins"))
    assert not [message for message in HYDRA_MESSAGES if message in ours], ours


def test_plots_import_matplotlib_without_debug_lines():
    """fairseq leaves the root logger at DEBUG; matplotlib logs at DEBUG while imported."""
    code = ("import logging, fairseq.tasks; assert logging.getLogger().level == logging.DEBUG\n"
            "from contextpool_mt.plotting import pyplot; pyplot()")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "DEBUG:matplotlib" not in proc.stderr, proc.stderr
