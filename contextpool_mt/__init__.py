"""contextpool-mt's pipeline: corpus preparation, averaging, evaluation, reports, the study.

Each stage is a module with a ``main`` and a console command (pyproject.toml); the shell recipes
in scripts/ chain them with fairseq-train. The fairseq plugin itself is ``fairseq_plugins``.
"""
