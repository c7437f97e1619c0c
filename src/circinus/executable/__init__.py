"""Executable pipelines: real operators that run on this machine, for profiling.

Every stage is a factory ``stage(config) -> run`` where ``run`` maps a batch (a list of inputs)
to a list of outputs, and every pipeline has a ``dataset()`` of profiling inputs with labels.
"""
