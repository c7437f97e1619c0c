"""The Ray Serve config ``circinus deploy`` writes: strict models of our own.

The file is what ``serve deploy serve.yaml`` reads (Ray's ``ServeDeploySchema``): the complete
desired state of the cluster, since Ray removes every application the file does not list. Ray's
own schema ignores keys it does not know (a misspelled ``num_replica`` is dropped without a
word), so the models here forbid unknown keys and hold only the fields Circinus sets;
:func:`check_with_ray` then validates the same document with Ray's schema when Ray is installed.

The operator deployments' ``user_config`` (:class:`OperatorUserConfig`) and the ingresses'
(:class:`IngressUserConfig`) carry everything a re-plan may change without restarting a replica:
knobs, batch policy, routes, shares and emulated links. Ray hands a changed ``user_config`` to
``reconfigure()`` of the running replicas.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from circinus.errors import SpecError
from circinus.spec.load import validate_document
from circinus.spec.models import KnobValue

INGRESS_PREFIX = "ingress-"
"""An ingress deployment is named ``ingress-<pipeline>``."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


# --- what the replicas read (user_config) -------------------------------------------------------


class BatchPolicy(_Strict):
    """How an operator deployment batches (``@serve.batch``)."""

    max_batch_size: int = Field(ge=1, description="Requests served together by one replica.")
    timeout_s: float = Field(ge=0, description="Longest wait for a batch to fill, s.")


class OperatorUserConfig(_Strict):
    """``user_config`` of one operator deployment."""

    deployment: str = Field(description="The plan's deployment name.")
    operator: str = Field(description="Operator it runs.")
    implementation: str = Field(description="Factory `package.module:attribute` of the world.")
    config: dict[str, KnobValue] = Field(description="Knob -> value, passed to the factory.")
    batch: BatchPolicy


class LinkEmulation(_Strict):
    """One directed link between sites, emulated by delaying messages (module ``links``)."""

    src: str = Field(description="Site the messages leave.")
    dst: str = Field(description="Site the messages enter.")
    bandwidth_mbps: float = Field(gt=0, description="Bandwidth one message sees alone, Mbit/s.")
    rtt_ms: float = Field(ge=0, description="Round-trip time, ms (a message takes half).")
    capacity_mbps: float | None = Field(
        default=None, gt=0, description="Shared by the messages in flight (null: each message "
        "sees the full bandwidth).")


class LanEmulation(_Strict):
    """Messages between two devices of one site."""

    site: str = Field(description="Site name.")
    bandwidth_mbps: float | None = Field(
        default=None, gt=0, description="Bandwidth (null: transfers take only rtt / 2).")
    rtt_ms: float = Field(ge=0, description="Round-trip time, ms.")


class Target(_Strict):
    """One deployment a stage of a query sends requests to."""

    deployment: str = Field(description="Serve deployment name.")
    app: str = Field(description="Serve application it belongs to.")
    share: float = Field(gt=0, le=1, description="Fraction of the stage's requests.")
    site: str = Field(description="Site of its device.")
    device: str = Field(description="Its device.")
    output_kb: float = Field(ge=0, description="Size of one output message, KB.")


class StageRoute(_Strict):
    """One stage of a query's pipeline: its inputs and where it runs."""

    stage: str = Field(description="Stage name.")
    inputs: list[str] = Field(
        min_length=1, description="Upstream stages or sources, in the pipeline's edge order.")
    targets: list[Target] = Field(min_length=1, description="Deployments and their shares.")


class QueryRoute(_Strict):
    """How the ingress serves one admitted query."""

    query: str = Field(description="Query name.")
    sources: dict[str, str] = Field(description="Source -> site its requests come from.")
    source_kb: dict[str, float] = Field(description="Source -> size of its message, KB.")
    stages: list[StageRoute] = Field(min_length=1, description="In topological order; the "
                                     "last is the sink unless `ends` is given.")
    ends: list[str] = Field(
        default_factory=list, description="When the sink has no operator (it only joins): the "
        "sources and stages it waits for; the answer is their outputs, in this order (one "
        "output: itself).")


class IngressUserConfig(_Strict):
    """``user_config`` of a pipeline's ingress."""

    pipeline: str = Field(description="Pipeline name.")
    queries: list[QueryRoute] = Field(description="The pipeline's admitted queries.")
    links: list[LinkEmulation] = Field(
        default_factory=list, description="Links emulated between sites (empty: none).")
    lans: list[LanEmulation] = Field(default_factory=list, description="Local networks.")
    emulate: bool = Field(
        default=True, description="Delay messages between sites as their links would "
        "(false on a real cluster, where the network is real).")
    seed: int = Field(default=0, ge=0, description="Seed of the route draws.")


# --- Ray Serve's file (serve deploy) ------------------------------------------------------------


class ActorOptions(_Strict):
    """``ray_actor_options`` of a deployment."""

    num_cpus: float = Field(ge=0, description="CPUs one replica reserves.")
    num_gpus: float = Field(default=0.0, ge=0, description="GPUs one replica reserves.")
    resources: dict[str, float] = Field(
        default_factory=dict, description="Custom resources: pin the replica to its device.")


class DeploymentConfig(_Strict):
    """One Serve deployment."""

    name: str = Field(description="Deployment name (letters, digits, '-' and '_').")
    num_replicas: int = Field(ge=1, description="Replicas.")
    max_ongoing_requests: int = Field(ge=1, description="Requests one replica holds at once.")
    user_config: dict[str, Any] = Field(description="Handed to the replicas' reconfigure().")
    ray_actor_options: ActorOptions


class ApplicationConfig(_Strict):
    """One Serve application: a pipeline's ingress and the deployments it owns."""

    name: str = Field(description="Application name (the pipeline's).")
    route_prefix: str | None = Field(
        default=None, description="HTTP prefix (null: reached through handles only).")
    import_path: str = Field(description="Builder of the application.")
    args: dict[str, Any] = Field(description="Arguments of the builder.")
    deployments: list[DeploymentConfig] = Field(min_length=1)


class ServeConfig(_Strict):
    """The file ``serve deploy`` reads (the complete desired state)."""

    proxy_location: Literal["Disabled", "HeadOnly", "EveryNode"] = Field(
        default="Disabled", description="HTTP proxies (Disabled: requests come through handles).")
    applications: list[ApplicationConfig] = Field(min_length=1)

    def to_document(self) -> dict[str, Any]:
        """The config as plain data, as ``serve deploy`` reads it."""
        return self.model_dump(mode="json")


def read_serve_config(data: object, *, origin: str) -> ServeConfig:
    """Validate a config read back from a file (e.g. edited by hand).

    Raises:
        SpecError: an unknown or misspelled key, or a value out of range, naming the field.
    """
    return validate_document(ServeConfig, data, origin,
                             hint="write the file with `circinus deploy WORLD PLAN --out FILE`")


def check_with_ray(config: ServeConfig) -> bool:
    """Validate ``config`` with Ray's own ``ServeDeploySchema``; ``False`` when Ray is not
    installed (nothing checked), ``True`` when it accepts it.

    Raises:
        SpecError: Ray's schema rejects it (its first complaint).
    """
    try:
        from ray.serve.schema import ServeDeploySchema
    except ImportError:
        return False
    try:
        ServeDeploySchema.model_validate(config.to_document())
    except Exception as exc:  # Ray's pydantic-compat error type varies with its version
        raise SpecError(f"Ray Serve's schema rejects the config: {' '.join(str(exc).split())}"
                        ) from exc
    return True
