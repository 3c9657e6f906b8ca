"""``common.user_dir`` for fairseq-hydra-train configs, from any working directory.

fairseq imports a user dir by its path (``fairseq.utils.import_user_module``), and a config file
can only spell that path relative to the working directory (``${hydra:runtime.cwd}/...``), so
such a config works from one directory only. The project's configs (configs/*.yaml) instead list
:class:`PluginDirResolver` as a Hydra callback -- Hydra's extension point, instantiated once the
config is composed and before the job resolves it -- which registers the resolver
``fairseq_plugins_dir``; ``common.user_dir: ${fairseq_plugins_dir:}`` then resolves to this
package's folder wherever the project is installed. fairseq imports it from there (already
imported by the callback, which fairseq accepts as the same module).
"""

import os

from hydra.experimental.callback import Callback
from omegaconf import OmegaConf

RESOLVER = "fairseq_plugins_dir"


def plugin_dir() -> str:
    """The folder of the ``fairseq_plugins`` package, for ``--user-dir``."""
    return os.path.dirname(os.path.abspath(__file__))


class PluginDirResolver(Callback):
    """Registers ``${fairseq_plugins_dir:}`` (see the module docstring)."""

    def __init__(self) -> None:
        if not OmegaConf.has_resolver(RESOLVER):
            OmegaConf.register_new_resolver(RESOLVER, plugin_dir)
