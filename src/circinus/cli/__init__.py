"""The ``circinus`` command-line interface."""
