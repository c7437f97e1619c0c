"""``python -m circinus`` runs the command-line interface."""

from circinus.cli.main import main

main()
