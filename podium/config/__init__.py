"""The experiment YAML as pydantic models: schema, load + `--set`, errors, docs."""

from podium.config.schema import *  # noqa: F403 - the package's face is the schema's __all__
from podium.config.schema import __all__  # noqa: F401
