"""End to end as a user would: fairseq's own command-line tools with --user-dir."""

import os
import subprocess
import sys

import pytest
import torch

import fairseq_plugins  # noqa: F401  (allowlists what fairseq checkpoints hold)
from helpers import write_reversal_corpus

pytestmark = pytest.mark.slow

BIN = os.path.dirname(sys.executable)
TRAIN_FLAGS = [
    "--task", "translation", "--optimizer", "adam", "--lr", "0.002", "--max-tokens", "600",
    "--max-epoch", "2", "--share-all-embeddings", "--cpu", "--num-workers", "0",
    "--no-progress-bar", "--seed", "1",
]


def run(cmd, cwd, stdin=None):
    env = dict(os.environ, PATH=BIN + os.pathsep + os.environ.get("PATH", ""), OMP_NUM_THREADS="1")
    proc = subprocess.run(cmd, cwd=cwd, input=stdin, capture_output=True, text=True, env=env)
    assert proc.returncode == 0, f"{cmd[0]} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    return proc.stdout + proc.stderr


@pytest.fixture(scope="module")
def data_bin(tmp_path_factory):
    """A tiny 'reverse the words' corpus, binarized with a joined dictionary."""
    root = tmp_path_factory.mktemp("cli")
    write_reversal_corpus(root, {"train": 300, "valid": 20, "test": 12},
                          words=[f"w{i}" for i in range(24)], lengths=(2, 7))
    run(["fairseq-preprocess", "--source-lang", "en", "--target-lang", "de",
         "--trainpref", "train", "--validpref", "valid", "--testpref", "test",
         "--destdir", "bin", "--joined-dictionary", "--workers", "1"], cwd=root)
    return root


@pytest.mark.parametrize("arch", ["transformer_tiny", "contextpool_transformer_tiny"])
def test_train_save_reload_generate(data_bin, arch, repo_root):
    plugins = os.path.join(repo_root, "fairseq_plugins")
    save = data_bin / f"ck_{arch}"
    run(["fairseq-train", "bin", "--user-dir", plugins, "--arch", arch, "--save-dir", str(save)]
        + TRAIN_FLAGS, cwd=data_bin)
    assert (save / "checkpoint_last.pt").is_file()
    state = torch.load(save / "checkpoint_last.pt", weights_only=True)  # after import fairseq_plugins
    has_pool = any(".pool." in k for k in state["model"])
    assert has_pool == arch.startswith("contextpool")

    out = run(["fairseq-generate", "bin", "--user-dir", plugins, "--path", str(save / "checkpoint_last.pt"),
               "--beam", "4", "--lenpen", "0.6", "--cpu", "--max-tokens", "600",
               # fairseq 0.12 drops a last batch smaller than this multiple (issue #5036)
               "--required-batch-size-multiple", "1",
               "--results-path", str(save / "gen")], cwd=data_bin)
    lines = (save / "gen" / "generate-test.txt").read_text().splitlines()
    hyps = [l for l in lines if l.startswith("H-")]
    assert len(hyps) == 12, out[-2000:]
    assert any("BLEU" in l for l in lines)

    out = run(["fairseq-interactive", "bin", "--user-dir", plugins, "--path", str(save / "checkpoint_last.pt"),
               "--source-lang", "en", "--target-lang", "de", "--beam", "2", "--cpu"],
              cwd=data_bin, stdin="w1 w2 w3\nw4 w5\n")
    assert sum(l.startswith("H-") for l in out.splitlines()) == 2


def test_hydra_train_with_project_config(data_bin, repo_root):
    """The project's hydra config, run from another directory than the repository's: its
    common.user_dir resolves to the installed plugin (fairseq_plugins/hydra_user_dir.py)."""
    save = data_bin / "ck_hydra"
    run(["fairseq-hydra-train", "--config-dir", os.path.join(repo_root, "configs"),
         "--config-name", "contextpool_wmt_en_de", f"task.data={data_bin / 'bin'}",
         f"checkpoint.save_dir={save}", f"hydra.run.dir={data_bin / 'hydra'}",
         "model._name=contextpool_transformer_tiny", "model.contextpool_max_size=3",
         "common.cpu=true", "optimization.max_update=4", "dataset.max_tokens=600",
         "lr_scheduler.warmup_updates=2", "dataset.num_workers=0"], cwd=data_bin)
    state = torch.load(save / "checkpoint_last.pt", weights_only=True)
    pools = [k for k in state["model"] if k.endswith(".pool.size_proj.bias")]
    assert len(pools) == 4  # 2 encoder + 2 decoder layers
    # the config's task records the corpus in every checkpoint, as train.sh's does
    record = state["task_state"]["data_provenance"]
    assert record["source_lang"] == "en" and record["target_lang"] == "de", record
    out = run(["fairseq-generate", "bin", "--user-dir", os.path.join(repo_root, "fairseq_plugins"),
               "--path", str(save / "checkpoint_last.pt"), "--beam", "2", "--cpu", "--max-tokens", "600",
               "--required-batch-size-multiple", "1"],
              cwd=data_bin)
    assert sum(l.startswith("H-") for l in out.splitlines()) == 12


@pytest.mark.parametrize("config", ["contextpool_wmt_en_de", "transformer_wmt_en_de"])
def test_hydra_configs_name_the_installed_plugin_as_user_dir(config, repo_root, tmp_path, monkeypatch):
    """Both configs: once Hydra has made their callback, common.user_dir is the plugin's folder,
    whatever the working directory."""
    from hydra.utils import instantiate
    from omegaconf import OmegaConf

    monkeypatch.chdir(tmp_path)
    cfg = OmegaConf.load(os.path.join(repo_root, "configs", f"{config}.yaml"))
    for callback in cfg.hydra.callbacks.values():
        instantiate(callback)
    assert cfg.common.user_dir == os.path.dirname(os.path.abspath(fairseq_plugins.__file__))


def test_every_shell_recipe_finds_fairseq_beside_its_python_without_an_activated_venv(tmp_path):
    """scripts/lib/python.sh: with the venv's bin/ off PATH (no `source .venv/bin/activate`),
    the recipes still find fairseq-train; each recipe sources it, none picks its own Python."""
    import subprocess
    import sys
    from pathlib import Path

    repo = Path(__file__).resolve().parents[1]
    env = {"PATH": "/usr/bin:/bin", "PYTHON": sys.executable, "HOME": str(tmp_path)}
    proc = subprocess.run(["bash", "-c", f'REPO="{repo}"; source "{repo}/scripts/lib/python.sh"; '
                           'command -v fairseq-train; echo "$PYTHON"'],
                          capture_output=True, text=True, env=env)
    assert proc.returncode == 0, proc.stderr
    found, python = proc.stdout.split()
    assert Path(found).parent == Path(sys.executable).parent and python == sys.executable
    for script in sorted((repo / "scripts").glob("*.sh")):
        text = script.read_text(encoding="utf-8")
        assert 'source "$REPO/scripts/lib/python.sh"' in text, script.name
        assert ".venv/bin/python" not in text, f"{script.name} picks its own interpreter"
