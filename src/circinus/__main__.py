"""``python -m circinus`` runs the command-line interface."""

from circinus.cli.launch import run

run()
