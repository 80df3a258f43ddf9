"""``python -m gradlab COMMAND [arguments]`` (see ``gradlab.cli``)."""

from gradlab.cli import main

main()
