"""The Ray Serve deployments a plan runs on, and the application builder the config names.

* :class:`OperatorDeployment` — generic: its ``user_config`` (:class:`OperatorUserConfig`)
  names the world's implementation (``package.module:factory``, loaded as the profiler loads
  it) and the planned knobs; requests are batched with ``@serve.batch`` at the planned batch
  size and timeout. A new ``user_config`` (a knob-only re-plan) reaches :meth:`reconfigure`
  on the running replicas: the factory is called again with the new knobs and the batch policy
  changed in place.
* :class:`Ingress` — one per pipeline: for a request of query ``q`` it follows the pipeline's
  DAG, runs each stage as soon as its inputs are there (joins wait for every input), sends it to
  one deployment of ``q``'s route drawn with the route's shares, and delays every message by
  its emulated link (:mod:`circinus.runtime.links`). It answers the sink's output (a sink
  without an operator: its inputs' outputs, as a tuple when there are several).

Importing this module needs Ray (the ``ray`` extra).
"""

from __future__ import annotations

import asyncio
import random
from typing import Any

from ray import serve
from ray.serve.handle import DeploymentHandle

from circinus.executable.base import load
from circinus.runtime.config import IngressUserConfig, OperatorUserConfig, QueryRoute, Target
from circinus.runtime.links import Network


@serve.deployment
class OperatorDeployment:
    """Runs one operator configuration of the world on batches of requests (see module)."""

    def __init__(self) -> None:
        self._run: Any = None
        self._loaded: tuple[str, str] | None = None

    def reconfigure(self, user_config: dict[str, Any]) -> None:
        """Apply the planned configuration and batch policy (called by Serve at start and on
        every change of ``user_config``)."""
        cfg = OperatorUserConfig.model_validate(user_config)
        key = (cfg.implementation, repr(sorted(cfg.config.items())))
        if key != self._loaded:
            factory = load(cfg.implementation,
                           field_name=f"deployment {cfg.deployment!r} implementation")
            self._run = factory(dict(cfg.config))
            self._loaded = key
        self.batched.set_max_batch_size(cfg.batch.max_batch_size)
        self.batched.set_batch_wait_timeout_s(cfg.batch.timeout_s)

    @serve.batch(max_batch_size=1, batch_wait_timeout_s=0.0)  # type: ignore[untyped-decorator]
    async def batched(self, items: list[Any]) -> list[Any]:
        """One batch through the operator (the replica serves one batch at a time)."""
        out = self._run(items)
        return list(out)

    async def __call__(self, item: Any) -> Any:
        return await self.batched(item)


class _Stage:
    """Where a stage's output is: the value, and the site and device that made it."""

    def __init__(self, value: Any, site: str, device: str | None, kb: float) -> None:
        self.value, self.site, self.device, self.kb = value, site, device, kb


@serve.deployment
class Ingress:
    """A pipeline's entry: routes each query's requests along its plan (see module)."""

    def __init__(self, owned: dict[str, DeploymentHandle] | None = None) -> None:
        self._handles: dict[tuple[str, str], DeploymentHandle] = {}
        self._owned = dict(owned or {})
        self._routes: dict[str, QueryRoute] = {}
        self._rng: dict[str, random.Random] = {}
        self._network = Network([], [])

    def reconfigure(self, user_config: dict[str, Any]) -> None:
        """Apply the routes, shares and emulated links (at start and on every change)."""
        cfg = IngressUserConfig.model_validate(user_config)
        self._routes = {q.query: q for q in cfg.queries}
        self._rng = {q.query: random.Random(f"{cfg.seed}/{q.query}") for q in cfg.queries}
        self._network = Network(cfg.links, cfg.lans, emulate=cfg.emulate)

    def _handle(self, target: Target) -> DeploymentHandle:
        key = (target.app, target.deployment)
        if key not in self._handles:
            owned = self._owned.get(target.deployment)
            self._handles[key] = owned if owned is not None else serve.get_deployment_handle(
                target.deployment, app_name=target.app)
        return self._handles[key]

    async def __call__(self, query: str, payload: Any) -> Any:
        """The sink's output for one request of ``query``; ``payload`` is the source's message
        (a ``{source: message}`` mapping when the pipeline has several sources)."""
        route = self._routes.get(query)
        if route is None:
            raise KeyError(f"query {query!r} is not admitted on this pipeline; known: "
                           f"{', '.join(sorted(self._routes)) or 'none'}")
        rng = self._rng[query]
        done: dict[str, asyncio.Future[_Stage]] = {}
        loop = asyncio.get_running_loop()
        for name, site in route.sources.items():
            fut: asyncio.Future[_Stage] = loop.create_future()
            value = payload[name] if len(route.sources) > 1 else payload
            fut.set_result(_Stage(value, site, None, route.source_kb[name]))
            done[name] = fut
        tasks = []
        for stage in route.stages:
            target = _draw(stage.targets, rng)
            task = asyncio.ensure_future(
                self._stage(target, [done[i] for i in stage.inputs]))
            done[stage.stage] = task
            tasks.append(task)
        if route.ends:  # a sink without an operator: done when the last input is
            outs = [(await done[name]).value for name in route.ends]
            await asyncio.gather(*tasks)
            return outs[0] if len(outs) == 1 else tuple(outs)
        result = await tasks[-1]
        await asyncio.gather(*tasks)
        return result.value

    async def _stage(self, target: Target, inputs: list[asyncio.Future[_Stage]]) -> _Stage:
        ups = [await i for i in inputs]
        await asyncio.gather(*(self._network.send(u.kb, (u.site, u.device),
                                                  (target.site, target.device)) for u in ups))
        arg = ups[0].value if len(ups) == 1 else tuple(u.value for u in ups)
        out = await self._handle(target).remote(arg)
        return _Stage(out, target.site, target.device, target.output_kb)


def _draw(targets: list[Target], rng: random.Random) -> Target:
    if len(targets) == 1:
        return targets[0]
    u = rng.random() * sum(t.share for t in targets)
    for t in targets:
        u -= t.share
        if u < 0:
            return t
    return targets[-1]


def build(args: dict[str, Any]) -> Any:
    """The application of one pipeline: its ingress bound to the deployments it owns.

    ``args``: ``pipeline``, ``ingress`` (the ingress's name) and ``deployments`` (names of the
    operator deployments the application owns); their options come from the config.
    """
    operator: Any = OperatorDeployment  # a Serve Deployment (Ray's decorator is untyped)
    ingress: Any = Ingress
    owned = {name: operator.options(name=name).bind() for name in args["deployments"]}
    return ingress.options(name=args["ingress"]).bind(owned)
