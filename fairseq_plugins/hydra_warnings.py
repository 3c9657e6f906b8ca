"""Silences the hydra deprecation warnings that fairseq 0.12.3's own calls raise on every run.

fairseq composes its configuration with hydra's 1.0 API (``hydra.experimental``, ``strict``,
``# @package _group_`` headers); hydra 1.3 answers each call with a UserWarning, six warnings and
about 20 lines before the first log line of every fairseq-train, fairseq-generate or
fairseq-interactive run. They are about fairseq's code, not about the user's configuration, and
nothing the user can act on. Importing the plugin filters exactly these messages; every other
warning, hydra's included, still shows.
"""

import warnings

# beginnings of the messages (matched with re.match: leading newlines spelt out as \s*)
HYDRA_DEPRECATIONS = (
    r"hydra\.experimental\.(initialize|compose)\(\) is no longer experimental",
    r"\s*The version_base parameter is not specified",
    r"In '[^']*': Usage of deprecated keyword in package header '# @package _group_'",
    r"\s*'[^']*' is validated against ConfigStore schema with the same name",
    r"\s*The strict flag in the compose API is deprecated",
)


def filter_hydra_deprecations() -> None:
    """Adds an "ignore" warnings filter for each message of :data:`HYDRA_DEPRECATIONS`."""
    for message in HYDRA_DEPRECATIONS:
        warnings.filterwarnings("ignore", message=message, category=UserWarning)
