"""Running a plan on Ray Serve: the config ``circinus deploy`` writes, the deployments it runs,
the emulated links between sites, the local cluster and the load that ``circinus serve`` drives.

The config (:mod:`~circinus.runtime.config`, :mod:`~circinus.runtime.build`) and the emulated
links (:mod:`~circinus.runtime.links`) need nothing beyond the core install; the deployments
(:mod:`~circinus.runtime.app`), the cluster (:mod:`~circinus.runtime.cluster`) and the load
(:mod:`~circinus.runtime.load`) need Ray: ``pip install 'circinus[ray]'``
(:func:`require_ray` says so in one line).
"""

from __future__ import annotations

from circinus.errors import CircinusError


class MissingExtraError(CircinusError):
    """A command needs packages of an optional extra that are not installed."""

    exit_code = 6


def require_ray(command: str) -> None:
    """Raise :class:`MissingExtraError` naming the extra when Ray Serve is not installed."""
    try:
        import ray.serve  # noqa: F401
    except ImportError:
        raise MissingExtraError(
            f"{command} needs Ray Serve, which is not installed; install it with "
            "`pip install 'circinus[ray]'`") from None
