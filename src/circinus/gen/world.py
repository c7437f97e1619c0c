"""Generate a whole world from a :class:`~circinus.gen.spec.GenSpec`.

NOTE: the world has ``edge_sites`` edge sites, each with ``edge_boxes`` i7-12700H boxes and one
uplink to a single cloud site holding an RTX 4090 pool. Queries are dealt round-robin to the
sites, so a query can use its own site's boxes and the cloud pool (edge sites are not linked to
each other). A site's boxes share :data:`SLOTS_PER_QUERY` replica slots per query originating
there, and the pool has :data:`GPUS_PER_QUERY` GPUs per query unless ``cloud_gpus`` is given:
capacity follows the load, so the admitted fraction stays level as ``queries`` grows. The
figures are calibrated for shared deployments (queries at a site share replicas of a
configuration, and the pool's replicas serve queries of every site): 77 % of 1,000 queries are
admitted (seed 0; 1.3 slots and 0.1 GPU per query, sized for replicas of every query's own,
admitted 999 when shared and 76 % dedicated). One query alone takes 1.25-4 slots on the edge or
up to 0.75 GPU, a share of a shared replica far less, so the planner must choose. The default
number of sites grows like ``sqrt(queries)``, which bounds the planner's work: it searches once
per (pipeline, site, rate, work scale, SLO percentile), and with rates on a grid there are at
most 20 such groups per site (vision: 8 rates x 2 percentiles; vqa: 4 rates).

Everything is drawn from ``random.Random`` streams seeded with ``(seed, purpose)``, and lists are
built in a fixed order, so the same spec gives an identical dict.
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from circinus.gen.data import AZURE, JELLYBEAN, TIMM, read_azure_trace, upstream_commit
from circinus.gen.pipelines import (
    CAMERAS,
    CLOUD_HW,
    EDGE_HW,
    GPU_OVERHEAD_MS,
    GPU_REPLICA_UNITS,
    catalogue,
    hardware,
)
from circinus.gen.rates import RATE_GRID, WINDOW_S, TraceRates
from circinus.gen.spec import GenSpec, QueryMix

SLOTS_PER_QUERY = 0.4  # edge replica slots per query at its site (calibrated: see NOTE)
MIN_SLOTS_PER_BOX = 2  # even a site without queries gets usable boxes
GPUS_PER_QUERY = 0.005  # cloud GPUs per query (shared deployments: calibrated, see NOTE)
SITES_PER_SQRT_QUERY = 0.4  # default edge_sites = max(2, round(0.4 * sqrt(queries)))
EDGE_PRICE, GPU_PRICE = 0.015, 0.70  # $ per slot-hour (amortised box), $ per GPU-hour
CLOUD = "cloud"
# Uplink classes (stand-ins): name, draw weight, Mbit/s per transfer, RTT ms, $/GB, and whether
# lines are bundled: a wired site has one line per QUERIES_PER_LINE queries (capacity_mbps =
# lines x Mbit/s), so a big site's aggregate traffic stays within what its lines carry; an LTE
# site has one line whatever its size.
UPLINKS = [
    ("fiber", 4, 200.0, 10.0, 0.01, True),
    ("cable", 4, 100.0, 15.0, 0.02, True),
    ("lte", 2, 30.0, 40.0, 0.05, False),
]
QUERIES_PER_LINE = 25
RATE_RANGES = {"vision": (1.0, 20.0), "vqa": (1.0, 5.0)}  # req/s, see circinus.gen.rates
COST_CAP_SHARE = 0.2  # share of queries that also get a max_cost_per_hour


@dataclass(frozen=True)
class QueryClass:
    """An SLO class: its pipeline kind and the values its queries draw from (stand-ins)."""

    pipeline: str  # "vision" or "vqa"
    percentile: float
    latency_ms: tuple[float, ...]  # before slo_tightness
    min_accuracy: tuple[float, ...]  # vision: recall x top-1 (fraction); vqa: JellyBean's %
    cost_caps: tuple[float, ...]  # $/h


CLASSES = {
    "alert": QueryClass("vision", 99.0, (150.0, 200.0, 250.0), (0.55, 0.6, 0.65), (0.5, 1.0)),
    "monitor": QueryClass("vision", 95.0, (250.0, 300.0, 400.0), (0.6, 0.65, 0.7, 0.75),
                          (0.25, 0.5, 1.0)),
    "analytics": QueryClass("vision", 95.0, (600.0, 800.0, 1000.0), (0.7, 0.75), (0.25, 0.5)),
    "vqa": QueryClass("vqa", 95.0, (300.0, 450.0, 600.0), (54.0, 55.0, 56.0, 57.0),
                      (0.5, 1.0, 2.0)),
}


def default_edge_sites(queries: int) -> int:
    """Edge sites when the spec leaves them unset: 100 -> 4, 1,000 -> 13, 10,000 -> 40."""
    return max(2, round(SITES_PER_SQRT_QUERY * math.sqrt(queries)))


def default_cloud_gpus(queries: int) -> int:
    """GPUs in the pool when the spec leaves them unset: 100 -> 1, 1,000 -> 5, 10,000 -> 50."""
    return max(1, math.ceil(GPUS_PER_QUERY * queries))


def _rng(seed: int, purpose: str) -> random.Random:
    """An independent stream per purpose (str seeds hash with SHA-512: stable across runs)."""
    return random.Random(f"circinus.gen:{seed}:{purpose}")


def class_counts(mix: QueryMix, n: int) -> list[tuple[str, int]]:
    """Queries per class: largest-remainder apportionment of ``n`` (ties: the listed order).

    Example: mix (0.2, 0.35, 0.15, 0.3) and n = 10 give (2, 4, 1, 3): 3.5 and 1.5 have equal
    remainders, and alert... vqa order gives the extra query to monitor.
    """
    shares = mix.fractions()
    counts = [math.floor(f * n + 1e-9) for _, f in shares]
    order = sorted(range(len(shares)), key=lambda k: (-(shares[k][1] * n - counts[k]), k))
    for k in order[: n - sum(counts)]:
        counts[k] += 1
    return [(name, c) for (name, _), c in zip(shares, counts, strict=True)]


@dataclass(frozen=True)
class _Site:
    """An edge site as drawn: its name, its camera type and its uplink class."""

    name: str
    camera: str
    uplink: tuple[str, int, float, float, float, bool]


def _draw_sites(spec: GenSpec, count: int) -> list[_Site]:
    """``count`` edge sites, camera type and uplink class drawn per site."""
    rng = _rng(spec.seed, "sites")
    width = max(3, len(str(count - 1)))
    cameras = sorted(CAMERAS)
    return [_Site(f"edge-{k:0{width}d}", rng.choice(cameras),
                  rng.choices(UPLINKS, weights=[u[1] for u in UPLINKS])[0])
            for k in range(count)]


def _infrastructure(sites: list[_Site], per_site: list[int], boxes: int,
                    gpus: int) -> dict[str, Any]:
    """Sites, devices and links: ``boxes`` boxes per edge site, an uplink each, one GPU pool."""
    out_sites: list[dict[str, Any]] = []
    devices: list[dict[str, Any]] = []
    links: list[dict[str, Any]] = []
    for site, queries in zip(sites, per_site, strict=True):
        out_sites.append({"name": site.name, "tier": "edge", "lan_bandwidth_mbps": 1000.0,
                          "lan_rtt_ms": 0.5})
        slots = max(MIN_SLOTS_PER_BOX * boxes, math.ceil(SLOTS_PER_QUERY * queries))
        for b in range(boxes):
            units = slots // boxes + (b < slots % boxes)
            devices.append({"name": f"{site.name}/box-{b + 1}", "site": site.name,
                            "hardware": EDGE_HW, "units": units,
                            "price_per_unit_hour": EDGE_PRICE})
        _, _, mbps, rtt, price, bundled = site.uplink
        lines = max(1, math.ceil(queries / QUERIES_PER_LINE)) if bundled else 1
        links.append({"src": site.name, "dst": CLOUD, "bandwidth_mbps": mbps, "rtt_ms": rtt,
                      "price_per_gb": price, "capacity_mbps": lines * mbps, "both_ways": True})
    out_sites.append({"name": CLOUD, "tier": "cloud", "lan_bandwidth_mbps": 10000.0,
                      "lan_rtt_ms": 0.2})
    devices.append({"name": f"{CLOUD}/gpu-pool", "site": CLOUD, "hardware": CLOUD_HW,
                    "units": gpus, "price_per_unit_hour": GPU_PRICE})
    return {"sites": out_sites, "devices": devices, "links": links}


def _query(i: int, width: int, cls: str, site: _Site, rate: float, tightness: float,
           rng: random.Random) -> dict[str, Any]:
    """One query of class ``cls`` at ``site``; SLO values drawn from the class."""
    qc = CLASSES[cls]
    slo: dict[str, Any] = {"latency_ms": round(rng.choice(qc.latency_ms) * tightness, 3),
                           "percentile": qc.percentile,
                           "min_accuracy": rng.choice(qc.min_accuracy)}
    if rng.random() < COST_CAP_SHARE:
        slo["max_cost_per_hour"] = rng.choice(qc.cost_caps)
    query: dict[str, Any] = {"name": f"q{i:0{width}d}-{site.name}-{cls}"}
    if qc.pipeline == "vqa":
        query.update(pipeline="vqa", sources={"ReadImage": site.name, "ReadSpeech": site.name})
    else:
        query.update(pipeline=f"vision-{site.camera}", sources={"camera": site.name})
    query.update(rate_rps=rate, slo=slo)
    if qc.pipeline == "vision" and CAMERAS[site.camera][1] != 1.0:
        query["work_scale"] = {"decode": CAMERAS[site.camera][1]}
    return query


def _queries(spec: GenSpec, sites: list[_Site]) -> Iterator[dict[str, Any]]:
    """``spec.queries`` queries, one after another: classes apportioned then shuffled, dealt
    round-robin to sites, each with a rate from the Azure trace (see
    :mod:`circinus.gen.rates`)."""
    classes = [name for name, count in class_counts(spec.mix, spec.queries)
               for _ in range(count)]
    _rng(spec.seed, "classes").shuffle(classes)
    trace = TraceRates.from_trace(read_azure_trace("conv"))
    rates, slos = _rng(spec.seed, "rates"), _rng(spec.seed, "slos")
    width = max(3, len(str(spec.queries - 1)))
    for i, cls in enumerate(classes):
        low, high = RATE_RANGES[CLASSES[cls].pipeline]
        yield _query(i, width, cls, sites[i % len(sites)], trace.draw(rates, low, high),
                     spec.slo_tightness, slos)


def generate(spec: GenSpec) -> dict[str, Any]:
    """A world as plain data (what a world file parses to) for ``spec``; deterministic.

    The result passes :func:`circinus.spec.parse_world` and :func:`circinus.spec.build_index`.

    Raises:
        SpecError: if the bundled real data (``data/real/``) is missing or malformed.
    """
    head, queries = generate_parts(spec)
    planner = head.pop("planner")
    return {**head, "queries": list(queries), "planner": planner}


def generate_parts(spec: GenSpec) -> tuple[dict[str, Any], Iterator[dict[str, Any]]]:
    """:func:`generate`'s world without its ``queries``, and the queries one at a time (in
    order; drawn as they are taken), for writing a large world without holding every query
    (a million take about 1.5 GB as plain data). In the world the queries come before
    ``planner``.

    Raises:
        SpecError: if the bundled real data (``data/real/``) is missing or malformed.
    """
    n_sites = spec.edge_sites or default_edge_sites(spec.queries)
    gpus = spec.cloud_gpus or default_cloud_gpus(spec.queries)
    sites = _draw_sites(spec, n_sites)
    per_site = [spec.queries // n_sites + (k < spec.queries % n_sites) for k in range(n_sites)]
    operators, pipelines = catalogue()
    queries = _queries(spec, sites)
    head = {
        "version": 1,
        "name": f"gen-{spec.queries}q-seed{spec.seed}",
        "description": description(spec, n_sites, gpus, _count_variants(operators)),
        "hardware": hardware(),
        **_infrastructure(sites, per_site, spec.edge_boxes, gpus),
        "operators": operators,
        "pipelines": pipelines,
        "planner": {"max_utilization": 0.8, "max_devices_per_operator": 1, "extra_replicas": 1,
                    "candidates_per_query": 8, "time_limit_s": 30.0},
    }
    return head, queries


def _count_variants(operators: list[dict[str, Any]]) -> int:
    """Number of classifier variants (one accuracy entry each)."""
    return len(next(op for op in operators if op["name"] == "classify")["accuracy"])


def description(spec: GenSpec, n_sites: int, gpus: int, n_variants: int) -> str:
    """The world's description: what was asked, what is real (with attribution), the stand-ins."""
    mix = ", ".join(f"{name} {f:g}" for name, f in spec.mix.fractions())
    return (
        f"Generated by `circinus gen` (circinus.gen): {spec.queries} queries, {n_sites} edge "
        f"sites, {gpus} cloud GPUs, slo_tightness {spec.slo_tightness:g}, mix ({mix}), seed "
        f"{spec.seed}. REAL: classify = {n_variants} timm variants (first Pareto layer of "
        "ImageNet top-1 vs i7-12700H batch-1 latency; accuracy = top-1 / 100), RTX 4090 AMP "
        "throughput "
        f"(huggingface/pytorch-image-models, Apache-2.0, commit {upstream_commit(TIMM)[:12]}); "
        "the VQA pipeline (DAG, variants, message sizes, end-to-end accuracy table, per-request "
        "latencies of worker cpu-5 as the i7-12700h class and gpu-1 as the rtx4090 class) from "
        f"JellyBean (Wu et al., MLSys 2023, MIT, commit {upstream_commit(JELLYBEAN)[:12]}); "
        f"rate_rps = request rate of a seeded {WINDOW_S:g}-s slice of the Azure LLM inference "
        "trace 2023 (conversation service; CC-BY 4.0; Patel et al., \"Splitwise: Efficient "
        "generative LLM inference using phase splitting\", ISCA 2024; commit "
        f"{upstream_commit(AZURE)[:12]}), rescaled log-affinely to the pipeline's range and "
        f"snapped to {list(RATE_GRID)} req/s. STAND-INS (assumptions, not measurements): "
        f"rtx4090 service time t(b) = {GPU_OVERHEAD_MS:g} ms + b * 1000 / throughput, "
        f"{GPU_REPLICA_UNITS:g} GPU per cloud replica; decode and detect operators; sd/hd "
        "cameras; sites, boxes, uplinks, prices, SLO classes and cost caps."
    )
