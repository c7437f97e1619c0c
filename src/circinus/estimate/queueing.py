"""Queueing kernels: pure functions of rates and service times, in seconds.

NOTE: a replica group of ``c`` identical replicas fed by a share of the query's Poisson stream is
modelled as an M/G/c queue whose customers are *batches*. The mean wait uses the Allen-Cunneen
approximation ``Wq = C(c, a) / (c*mu - lam) * (ca2 + cs2) / 2``, where ``C`` is Erlang's C
formula, ``ca2`` the squared coefficient of variation of batch inter-arrival times (1/b for
batches of ``b`` Poisson arrivals: the sum of ``b`` exponentials) and ``cs2`` that of the batch
service time. The wait distribution is approximated as "no wait with probability 1 - C, else
exponential with mean Wq / C", which is exact for M/M/c. For M/M/1 it reproduces the textbook
sojourn time: exponential with mean ``1 / (mu - lam)``.

A link with a capacity is shared by every transfer in flight on it: with ``n`` in flight each is
sent at ``min(B, C / n)`` (``B`` one transfer's bandwidth, ``C`` the capacity), as the simulator
serves it (:mod:`circinus.simulate.network`). The number in flight is then a birth-death chain
with total rate ``min(n, c) * B`` (``c = C / B``, any real number >= 1), a *symmetric* queue:
its stationary law ``pi_n ~ a^n / prod_{k<=n} min(k, c)`` (``a`` the offered load in units of
``B``) holds for any distribution of message sizes (insensitivity: Kelly, *Reversibility and
Stochastic Networks*, 1979, ch. 3; Bonald and Proutiere, "Insensitive bandwidth sharing in data
networks", Queueing Systems 44, 2003), and the mean time a message spends on the wire is
proportional to its size (Cohen, "The multiple phase service network with generalized processor
sharing", Acta Informatica 12, 1979). By Little's law the factor over its time alone is the
*slowdown* ``E[N] / a`` (:func:`shared_link_slowdown`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from scipy.special import gammaincinv


def erlang_b(servers: int, offered: float) -> float:
    """Probability that an arrival finds every server busy in an M/M/c/c loss system (Erlang's
    B formula), by the recursion ``B_k = a B_{k-1} / (k + a B_{k-1})``, stable for thousands of
    servers and any offered load ``a >= 0``.

    Example: one server at offered load 1 loses half the arrivals: ``erlang_b(1, 1.0) == 0.5``.
    """
    assert servers >= 0 and offered >= 0, (servers, offered)
    # NOTE: the recursion costs one step per server, and a link's "servers" (its capacity over
    # one transfer's bandwidth) may number a million. Two shortcuts keep it to O(sqrt(a))
    # steps when there are at least as many servers as the load: far below the load
    # (k < a - 12 sqrt(a)) almost every server is busy, so B_k ~ 1 - k/a is a fine start (its
    # error shrinks by k/a < 1 per step, by e^-72 up to k = a); and past the load B falls
    # faster than geometrically, so once it underflows every later B_k is 0.
    start = 0
    b = 1.0  # no server: every arrival is lost
    window = 12.0 * math.sqrt(offered)
    if offered <= servers and offered - window > 64:
        start = int(offered - window)
        b = 1.0 - start / offered
    for k in range(start + 1, servers + 1):
        b = offered * b / (k + offered * b)
        if b < 1e-300:
            return 0.0
    return b


def erlang_c(servers: int, offered: float) -> float:
    """Probability that an arrival waits in an M/M/c queue (Erlang's C formula).

    ``offered`` is the offered load ``a = lam / mu`` in servers; it must be below ``servers``.
    Computed with the Erlang-B recursion, which is stable for thousands of servers.

    Example: one server at 50 % load waits with probability 0.5: ``erlang_c(1, 0.5) == 0.5``.
    """
    assert servers >= 1 and 0 <= offered < servers, (servers, offered)
    if offered == 0:
        return 0.0
    b = erlang_b(servers, offered)
    rho = offered / servers
    return b / (1 - rho + rho * b)


@dataclass(frozen=True)
class Sojourn:
    """Mean and variance of the time a request spends at one replica group, seconds."""

    mean: float
    var: float
    utilization: float


def batch_queue_sojourn(
    *, rate: float, batch: int, batch_service: float, service_cv: float, replicas: int,
    fill_rate: float | None = None, own_service: float | None = None,
) -> Sojourn:
    """Time from a request's arrival at a replica group to the end of its batch's service.

    Args:
        rate: requests per second reaching this group (Poisson), from every query it serves.
        batch: batch size ``b``; the group waits for ``b`` requests before serving.
        batch_service: mean service time of one batch, seconds.
        service_cv: coefficient of variation of the batch service time.
        replicas: identical replicas ``c`` serving batches in parallel.
        fill_rate: requests per second that fill the batches (default ``rate``). A shared
            deployment's batches fill from all its queries; a bound on the wait that holds
            whoever the co-tenants are takes the query's own rate here.
        own_service: mean service time of the batch this request rides in (default
            ``batch_service``; a request whose work differs from its co-tenants').

    Returns an infinite sojourn when the group is saturated (utilisation >= 1).

    Example: M/M/1 with ``rate=0.5`` and ``batch_service=1``, ``service_cv=1`` gives
    ``mean=2`` and ``var=4`` (exponential with rate ``mu - lam = 0.5``).
    """
    fill = rate if fill_rate is None else fill_rate
    own = batch_service if own_service is None else own_service
    batch_rate = rate / batch
    offered = batch_rate * batch_service
    rho = offered / replicas
    if rho >= 1 - 1e-12:  # saturated (a level of 1 computed back from a rate rounds to it)
        return Sojourn(math.inf, math.inf, rho)
    # Waiting for the batch to fill: a request is equally likely to be any of the b positions
    # and then waits for the J = b - k further arrivals (J uniform on 0..b-1), each gap
    # exponential with rate lam. Var = E[J]/lam^2 + Var(J)/lam^2 = (b-1)(b+7) / (12 lam^2):
    # for b = 2, lam = 1, half wait 0 and half an Exp(1), variance 0.75.
    fill_mean = (batch - 1) / (2 * fill)
    fill_var = (batch - 1) * (batch + 7) / (12 * fill * fill)
    # Queueing of batches (Allen-Cunneen), wait = 0 w.p. 1-C, else exponential.
    c_wait = erlang_c(replicas, offered)
    ca2, cs2 = 1.0 / batch, service_cv * service_cv
    wq = c_wait / (replicas / batch_service - batch_rate) * (ca2 + cs2) / 2
    wq_var = (2 * wq * wq / c_wait - wq * wq) if c_wait > 0 else 0.0
    svc_var = (service_cv * own) ** 2
    return Sojourn(
        mean=fill_mean + wq + own,
        var=fill_var + wq_var + svc_var,
        utilization=rho,
    )


def shared_link_slowdown(utilization: float, servers: float) -> float:
    """Mean time on the wire of a message on a shared link, over its time alone at full
    bandwidth (see the module note).

    Args:
        utilization: ``rho``, the link's traffic over its capacity (all queries together).
        servers: ``c``, the capacity over one transfer's bandwidth. Below 1 a lone transfer
            already gets only the capacity, ``1 / c`` times slower than its bandwidth says.

    With ``m = floor(c)`` and ``a = rho * c``, the chain's weights are ``a^n / n!`` up to ``m``
    and a geometric tail of ratio ``rho`` beyond, so with ``B`` Erlang's B formula for ``m``
    servers at load ``a`` (the truncated chain's probability of ``m`` in flight, and its mean
    ``a (1 - B)``): ``E[N] = (a (1 - B)(1 - rho) + B rho (m (1 - rho) + 1) / (1 - rho)) /
    (1 - rho + B rho)``. For an integer ``c`` this is M/M/c's ``a + C rho / (1 - rho)``, and
    the slowdown ``1 + C / (c (1 - rho))`` (``C`` Erlang's C formula). Returns ``inf`` at
    ``rho >= 1``.

    Examples: ``c = 1`` is processor sharing, ``1 / (1 - rho)``: ``shared_link_slowdown(0.5, 1)
    == 2``; two transfers' worth of capacity at half load, ``1 + (1/3) / (2 * 0.5) = 4/3``;
    with ``c`` far above the load nobody waits and the slowdown tends to 1.
    """
    assert utilization >= 0 and servers > 0, (utilization, servers)
    if utilization >= 1:
        return math.inf
    alone = max(1.0, 1.0 / servers)  # a lone transfer's rate is min(B, C)
    servers = max(servers, 1.0)
    if utilization == 0:
        return alone
    rho, m = utilization, math.floor(servers)
    offered = rho * servers
    b = erlang_b(m, offered)
    in_flight = (offered * (1 - b) * (1 - rho) + b * rho * (m * (1 - rho) + 1) / (1 - rho)) / (
        1 - rho + b * rho)
    return alone * in_flight / offered


def transfer_seconds(size_kb: float, bandwidth_mbps: float | None, rtt_ms: float) -> float:
    """Time to send one message: size / bandwidth + half the round-trip time.

    ``bandwidth_mbps=None`` means an instantaneous transfer. A KB is 1,024 bytes and a Mbit/s is
    10^6 bit/s, so 125 KB over 8.192 Mbit/s take 0.125 s: ``transfer_seconds(125, 8.192, 0)``.
    """
    wire = 0.0 if bandwidth_mbps is None else size_kb * 8.192e-3 / bandwidth_mbps
    return wire + rtt_ms / 2000.0


def quantile(mean: float, var: float, q: float) -> float:
    """The ``q``-quantile (0 < q < 1) of a gamma distribution with this mean and variance.

    A sum of queueing delays and service times is positive and right-skewed; matching the first
    two moments with a gamma is exact for an exponential sojourn (M/M/1) and tends to the
    normal as stages add up. Zero variance gives the mean.

    Example: an exponential with mean 1 has 99th percentile ln(100) = 4.605.
    """
    if not math.isfinite(mean) or not math.isfinite(var):
        return math.inf
    if var <= mean * mean * 1e-12:
        return mean
    shape = mean * mean / var
    scale = var / mean
    return float(gammaincinv(shape, q)) * scale
