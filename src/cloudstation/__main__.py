"""``python -m cloudstation`` runs the ``cs`` command line."""

from cloudstation.cli.main import main

main()
