"""Configs of your own, outside the package: every directory on ``GRADLAB_CONFIG_PATH``
(separated by ``:``) is searched after gradlab's ``conf/``, so its ``experiment/NAME.yaml``,
``data/NAME.yaml``, ... are options of their groups (``experiment=NAME``). The same as
Hydra's ``hydra.searchpath=[file://DIR]``, for every command and ``gradlab.run`` at once."""

import os

from hydra.core.config_search_path import ConfigSearchPath
from hydra.plugins.search_path_plugin import SearchPathPlugin


class GradlabConfigPath(SearchPathPlugin):
    def manipulate_search_path(self, search_path: ConfigSearchPath) -> None:
        for directory in os.environ.get("GRADLAB_CONFIG_PATH", "").split(os.pathsep):
            if directory:
                path = os.path.abspath(os.path.expanduser(directory))
                search_path.append(provider="GRADLAB_CONFIG_PATH", path=f"file://{path}")
