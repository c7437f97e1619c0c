"""Queueing kernels: pure functions of rates and service times, in seconds.

NOTE: a replica group of ``c`` identical replicas fed by a share of the query's Poisson stream is
modelled as an M/G/c queue whose customers are *batches*. The mean wait uses the Allen-Cunneen
approximation ``Wq = C(c, a) / (c*mu - lam) * (ca2 + cs2) / 2``, where ``C`` is Erlang's C
formula, ``ca2`` the squared coefficient of variation of batch inter-arrival times (1/b for
batches of ``b`` Poisson arrivals: the sum of ``b`` exponentials) and ``cs2`` that of the batch
service time. The wait distribution is approximated as "no wait, or exponential" with mean Wq,
the exponential decaying at the queue's Cramer-Lundberg rate (:func:`wait_decay`), so that a
request waits with probability ``Wq x rate``: for M/M/c that is Erlang's C and the exact
conditional law; behind near-constant service the tail decays faster than an exponential of
mean ``Wq / C`` would. For M/M/1 it reproduces the textbook sojourn time: exponential with mean
``1 / (mu - lam)``. Requests that arrive more evenly than a Poisson stream (behind a
low-variance stage, :mod:`circinus.estimate.arrivals`) make batches with gaps of SCV ``c_a^2 / b``
and wait less, by Kraemer and Langenbach-Belz's factor (:func:`klb_factor`) and a faster
decay. For one replica serving single Poisson requests (M/G/1) the wait's variance and third
central moment are Takacs's exact ones (:func:`mg1_wait_moments`) instead of the "none, or
exponential" law's: they agree at high load and for exponential service, but at low load
behind near-constant service the wait is the residual of the service in progress (nearly
uniform), whose spread the exponential law understates by up to 40 % (variance) and half
(third moment), 12 % optimistic at p99 on a 5 %-busy replica. Every time is carried by its
mean, variance and third central moment (the third cumulant): the cumulants of independent
parts add, and the percentile is read off a *shifted* gamma with all three (:func:`quantile`),
which keeps the tail of a rare wait behind a near-constant service time that a gamma of mean
and variance flattens.

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
*slowdown* ``E[N] / a`` (:func:`shared_link_slowdown`). The spread of the delay around that mean
is heavier than an exponential's (a message that arrives behind a busy period is slowed for all
of it): :func:`shared_link_delay` takes the variance of processor sharing's sojourn of a job of
given size (Coffman, Muntz and Trotter, "Waiting time distributions for processor-sharing
systems", JACM 17, 1970) and the law "no delay, or an exponential one" that matches it.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

from scipy.optimize import brentq
from scipy.special import gammaincinv, ndtri

from circinus.estimate.arrivals import departure_scv


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
    """Mean, variance and third central moment of the time a request spends at one replica
    group, seconds."""

    mean: float
    var: float
    utilization: float
    third: float = 0.0
    """Third central moment, s³ (0: symmetric, as a constant)."""
    wait: tuple[float, float, float] = (0.0, 0.0, 0.0)
    """Mean, variance and third central moment of the wait in the queue of batches (part of
    the sojourn): what a burst of arrivals lengthens at every stage it reaches at once."""
    arrival_share: float = 0.0
    """``c_A^2 / (c_A^2 + c_S^2)`` for the batches' arrival and service SCVs: the part of the
    wait's variability that the arrivals drive (in heavy traffic), which stages fed by the same
    arrivals share (:mod:`circinus.estimate.join`)."""
    departure_scv: float = 1.0
    """SCV of the gaps between the requests leaving (:func:`~circinus.estimate.arrivals.
    departure_scv`; 1 after a batching group, see :mod:`circinus.estimate.arrivals`)."""


Moments3 = tuple[float, float, float]
"""``(mean, variance, third central moment)`` of a time."""


def raw_to_central(m1: float, m2: float, m3: float) -> Moments3:
    """``(mean, variance, third central moment)`` from the raw moments ``E[X]``, ``E[X^2]``,
    ``E[X^3]``. Example: an exponential of mean 1 (raw 1, 2, 6) has ``(1, 1, 2)``."""
    var = m2 - m1 * m1
    return m1, var, m3 - 3 * m1 * m2 + 2 * m1 ** 3


def central_to_raw(mean: float, var: float, third: float) -> Moments3:
    """The inverse of :func:`raw_to_central`."""
    return mean, var + mean * mean, third + 3 * mean * var + mean ** 3


def mixture(parts: list[tuple[float, Moments3]]) -> Moments3:
    """Moments of a mixture: with probability ``w`` a time with moments ``m`` for each
    ``(w, m)`` of ``parts`` (weights summing to 1). Example: half 0, half 2 has mean 1,
    variance 1 and third moment 0."""
    r1 = r2 = r3 = 0.0
    for w, (m, v, t) in parts:
        a, b, c = central_to_raw(m, v, t)
        r1 += w * a
        r2 += w * b
        r3 += w * c
    if not (math.isfinite(r1) and math.isfinite(r2) and math.isfinite(r3)):
        return math.inf, math.inf, math.inf
    mean, var, third = raw_to_central(r1, r2, r3)
    return mean, max(var, 0.0), third


def atom_exponential(mean: float, var: float) -> Moments3:
    """Moments of the law "0 with probability ``1 - p``, else exponential" with this mean and
    variance (``p = 2 mean^2 / (var + mean^2)``); when ``var < mean^2`` no such law exists and
    the gamma with this mean and variance is taken. Example: ``p = 1`` is the exponential,
    third moment ``2 mean^3``."""
    if mean <= 0.0:
        return 0.0, 0.0, 0.0
    if var >= mean * mean:
        p = 2 * mean * mean / (var + mean * mean)
        theta = mean / p
        return raw_to_central(mean, 2 * p * theta ** 2, 6 * p * theta ** 3)
    return mean, var, 2 * var * var / mean  # gamma: third cumulant 2 k theta^3


def batch_queue_sojourn(
    *, rate: float, batch: int, batch_service: float, service_cv: float, replicas: int,
    fill_rate: float | None = None, own_service: float | None = None,
    dispersion: float = 1.0, arrival_scv: float = 1.0,
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
        dispersion: index of dispersion of the arrivals (1: Poisson; more where co-tenants'
            fan-out sends bursts): it multiplies the arrival variability of Allen-Cunneen's
            wait, which for one replica and batch 1 gives the mean wait of a Poisson request
            behind bursts, ``lam s^2 I / (2 (1 - rho))`` for a constant service ``s``.
        arrival_scv: SCV ``c_a^2`` of the gaps between the requests arriving (1: Poisson;
            below 1: smoother, as behind a low-variance stage, :mod:`circinus.estimate.arrivals`).
            Batches of ``b`` then arrive with SCV ``c_a^2 / b``, the batch fills with gaps of
            that SCV, and the wait takes Kraemer and Langenbach-Belz's correction for smooth
            arrivals (:func:`klb_factor`) relative to Poisson arrivals, whose wait is unchanged.
            It scales the burst-driven ``dispersion / b`` alike (both 1 by default).

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
    scv = min(max(arrival_scv, 0.0), 1.0)
    # Waiting for the batch to fill (its mean depends on the rate only) and queueing of
    # batches (Allen-Cunneen), at Poisson arrivals: wait = 0 w.p. 1-C, else exponential.
    _, fill_var, fill_third = _fill_moments(batch, fill, 1.0)
    fill_mean = (batch - 1) / (2 * fill)
    c_wait = erlang_c(replicas, offered)
    ca2, cs2 = dispersion / batch, service_cv * service_cv
    wq = c_wait / (replicas / batch_service - batch_rate) * (ca2 + cs2) / 2
    if c_wait > 0 and wq > 0:
        # The wait is "none, or exponential" with mean wq; the exponential decays at the
        # queue's Cramer-Lundberg rate (see wait_decay), so it waits with probability wq * rate.
        waits = min(1.0, wq * wait_decay(rate * batch_service / replicas, batch, service_cv)
                    * replicas / batch_service)
        if dispersion > 1.0 + 1e-9:
            # Behind bursts the work found is lumpy: it decays no faster than the bursts
            # drain, so the wait is taken as "none w.p. 1 - C, else exponential" (Erlang's C).
            waits = c_wait
        theta = wq / waits
        _, wq_var, wq_third = raw_to_central(wq, 2 * waits * theta ** 2,
                                             6 * waits * theta ** 3)
    else:
        wq_var = wq_third = 0.0
    if replicas == 1 and batch == 1 and dispersion <= 1.0 + 1e-9 and wq > 0:
        _, wq_var, wq_third = mg1_wait_moments(rate, batch_service, service_cv)
    if scv < 1.0:
        # Smoother arrivals shorten the mean wait (Kraemer and Langenbach-Belz); its spread
        # is kept at the Poisson-fed one, which stands in for the positive correlation of the
        # waits along a chain (see the arrivals module note).
        poisson = klb_factor(rho, ca2, cs2)
        if poisson > 0.0:  # (0 only for an idle group, which never waits)
            wq *= klb_factor(rho, scv * ca2, cs2) / poisson * (scv * ca2 + cs2) / (ca2 + cs2)
        ca2 *= scv
    svc_var = (service_cv * own) ** 2
    svc_third = 2 * service_cv ** 4 * own ** 3  # gamma of mean own and cv service_cv
    return Sojourn(
        mean=fill_mean + wq + own,
        var=fill_var + wq_var + svc_var,
        utilization=rho,
        third=fill_third + wq_third + svc_third,
        wait=(wq, wq_var, wq_third),
        arrival_share=ca2 / (ca2 + cs2) if ca2 + cs2 > 0 else 0.0,
        departure_scv=departure_scv(rho, scv, cs2, replicas) if batch == 1 else 1.0,
    )


def mg1_wait_moments(rate: float, service: float, cv: float) -> Moments3:
    """Mean, variance and third central moment of the wait of a Poisson request at one server
    (M/G/1, FIFO) with gamma service of mean ``service`` and coefficient of variation ``cv``,
    by Takacs's recursion ``E[W^k] = lam / (1 - rho) sum_{j=1..k} C(k, j) E[S^(j+1)] / (j + 1)
    E[W^(k-j)]`` (Takacs, "A single-server queue with Poisson input", Operations Research 10,
    1962), the gamma's raw moments being ``E[S^n] = s^n prod_{i<n} (1 + i cv^2)``.

    Example: M/D/1 at 50 % load (``rate=0.5``, ``service=1``, ``cv=0``) waits 0.5 on average
    with variance 7/12 (the "none, or exponential" law of that mean gives 0.55 at best).
    """
    rho = rate * service
    assert 0 <= rho < 1, rho
    cv2 = cv * cv
    e2 = service * service * (1 + cv2)
    e3 = e2 * service * (1 + 2 * cv2)
    e4 = e3 * service * (1 + 3 * cv2)
    k = rate / (1 - rho)
    w1 = k * e2 / 2  # Pollaczek-Khinchine
    w2 = 2 * w1 * w1 + k * e3 / 3
    w3 = k * (1.5 * e2 * w2 + e3 * w1 + e4 / 4)  # the recursion's three terms, written out
    mean, var, third = raw_to_central(w1, w2, w3)
    return mean, max(var, 0.0), third


def klb_factor(utilization: float, arrival_scv: float, service_scv: float) -> float:
    """Kraemer and Langenbach-Belz's factor on the Allen-Cunneen (Kingman) mean wait of a
    GI/G/c queue whose arrivals are smoother than Poisson (``arrival_scv < 1``):
    ``exp(-2 (1 - rho) (1 - c_a^2)^2 / (3 rho (c_a^2 + c_s^2)))``, 1 for ``c_a^2 >= 1``
    (Whitt, "Approximations for the GI/G/m queue", 1993, eq. 2.25; QNA's GI/G/1 wait).

    It is exact at both ends (1 for Poisson; 0 for a clock feeding a constant service below
    saturation, which never waits) and within a few per cent of E_k/M/1 (Erlang arrivals:
    at 70 % load with ``c_a^2 = 0.5`` it gives a mean wait of 1.67 service times, the exact
    one is 1.58). Example: ``klb_factor(0.5, 0.5, 0.0) == exp(-1/3)``.
    """
    if arrival_scv >= 1.0:
        return 1.0
    if utilization <= 0.0:
        return 0.0
    both = arrival_scv + service_scv
    if both <= 0.0:
        return 0.0
    return math.exp(-2 * (1 - utilization) * (1 - arrival_scv) ** 2 / (3 * utilization * both))


@functools.lru_cache(maxsize=1 << 14)
def wait_decay(load: float, batch: int, cv: float, arrival_scv: float = 1.0) -> float:
    """The rate at which the tail of the wait of a queue of batches decays, in units of
    ``replicas / batch service time``: the root ``x > 0`` of ``E[e^(x S')] E[e^(-x A)] = 1``
    (Cramer-Lundberg: ``P(W > t) ~ K e^(-x t)`` for the GI/G/1 queue), with ``c`` replicas
    taken as one server ``c`` times as fast, ``S'`` a gamma of mean 1 and coefficient of
    variation ``cv``, and ``A`` the gap between batches, an Erlang of ``batch`` gaps of rate
    ``load`` (requests per batch service time over ``c``; ``load / batch`` is the
    utilisation). With requests arriving with gaps of SCV ``arrival_scv`` below 1, ``A`` is
    the gamma of the same mean and SCV ``arrival_scv / batch`` (the Erlang at 1); for one
    server and exponential service the root is then GI/M/1's exact decay ``mu (1 - sigma)``.

    For M/M/c this is ``c mu - lam`` in those units (``1 - load``), the exact conditional
    rate; for M/D/1 at half load it is 1.256 (``0.5 (e^x - 1) = x``), so a wait behind a
    constant service decays faster than the exponential of mean ``Wq / C`` (rate 1) says.
    Example: ``wait_decay(0.5, 1, 1.0) == 0.5``.
    """
    smooth = min(max(arrival_scv, 0.0), 1.0)

    def gap(x: float) -> float:
        svc = x if cv <= 0.0 else -math.log1p(-x * cv * cv) / (cv * cv)
        if smooth < 1e-9:  # a constant gap between batches
            return svc - batch * x / load
        return svc - batch / smooth * math.log1p(x * smooth / load)

    hi = math.inf if cv <= 0.0 else 1.0 / (cv * cv)
    top = min(hi * (1 - 1e-12), 1.0)
    while gap(top) < 0:  # the root lies beyond: widen (gap grows without bound)
        if top >= hi * (1 - 1e-9) or top > 1e12:  # (a clock into a constant service: none)
            return top
        top = min(top * 2.0, hi * (1 - 1e-12))
    lo = 1e-9 * top
    if gap(lo) >= 0:  # no root inside (a saturated queue): no decay
        return lo
    return float(brentq(gap, lo, top, xtol=1e-12, rtol=1e-10))


def _fill_moments(batch: int, rate: float, scv: float) -> Moments3:
    """Mean, variance and third central moment of the wait for a batch to fill: a request is
    equally likely to be any of the ``b`` positions and waits for the ``J`` further arrivals
    (``J`` uniform on ``0 .. b - 1``), each gap of mean ``1 / rate`` and SCV ``scv`` (a gamma).

    The cumulants of a random sum of ``J`` independent gaps ``X`` are ``E[J] k1``,
    ``E[J] k2 + Var(J) k1^2`` and ``E[J] k3 + 3 Var(J) k1 k2`` (``J`` is symmetric). Example:
    ``b = 2``, ``rate = 1``, Poisson (``scv = 1``): half wait 0 and half an Exp(1), moments
    ``(0.5, 0.75, 1.75)``.
    """
    if batch == 1:
        return 0.0, 0.0, 0.0
    g = 1.0 / rate
    mean_j, var_j = (batch - 1) / 2, (batch * batch - 1) / 12
    k2, k3 = scv * g * g, 2 * scv * scv * g ** 3
    return mean_j * g, mean_j * k2 + var_j * g * g, mean_j * k3 + 3 * var_j * g * k2


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


def shared_link_delay(slowdown: float, wire_s: float) -> Moments3:
    """Moments of the extra delay of a message on a shared link over its time alone (see the
    module note), seconds.

    Args:
        slowdown: ``S``, its mean time on the wire over its time alone there
            (:func:`shared_link_slowdown` over a lone transfer's ``max(1, 1 / c)``).
        wire_s: ``x``, its time alone on the wire.

    The mean is ``(S - 1) x`` (exact). The variance is that of processor sharing's sojourn of
    a job of size ``x`` among jobs of mean size ``x`` (M/M/1-PS, Coffman, Muntz and Trotter
    1970) at the load ``r = 1 - 1 / S`` that gives the same mean slowdown:
    ``x^2 (2 r / (1 - r)^3 - 2 r (1 - e^-(1 - r)) / (1 - r)^4)``; the delay is then "none, or
    exponential" with that mean and variance (:func:`atom_exponential`). Against the
    simulator's link (equal messages, Poisson arrivals, 200,000 of them) the variance is within
    5 % at ``c = 1`` and above it by up to 2x at low loads with ``c = 3``, the chance of a delay
    within 0.1 (0.70 predicted 0.74 at ``c = 1``, half load), the skewness within 0.1.

    Example: ``c = 1`` at half load (``S = 2``): mean ``x``, variance ``1.70 x^2``, a delay
    with probability 0.74.
    """
    if slowdown <= 1.0 or wire_s <= 0.0:
        return 0.0, 0.0, 0.0
    if not math.isfinite(slowdown):
        return math.inf, math.inf, math.inf
    r = 1.0 - 1.0 / slowdown
    u = 1.0 - r
    var = wire_s * wire_s * (2 * r / u ** 3 - 2 * r * -math.expm1(-u) / u ** 4)
    return atom_exponential((slowdown - 1.0) * wire_s, var)


def transfer_seconds(size_kb: float, bandwidth_mbps: float | None, rtt_ms: float) -> float:
    """Time to send one message: size / bandwidth + half the round-trip time.

    ``bandwidth_mbps=None`` means an instantaneous transfer. A KB is 1,024 bytes and a Mbit/s is
    10^6 bit/s, so 125 KB over 8.192 Mbit/s take 0.125 s: ``transfer_seconds(125, 8.192, 0)``.
    """
    wire = 0.0 if bandwidth_mbps is None else size_kb * 8.192e-3 / bandwidth_mbps
    return wire + rtt_ms / 2000.0


MAX_SHAPE = 1e6
"""Above this shape a gamma is read as the normal it tends to."""


def gamma_fit(mean: float, var: float, third: float | None) -> tuple[float, float, float]:
    """``(shape, scale, shift)`` of the gamma matching these moments, shifted so that its mean
    is ``mean``: with ``third`` the skewness ``g`` gives the shape ``4 / g^2`` (Pearson's type
    III); without it, or with a skewness at or below the coefficient of variation's double
    (which would put the start below 0), the plain gamma of mean and variance. The shape is
    ``inf`` for a constant or a near-normal law."""
    sd = math.sqrt(var)
    plain = 2 * sd / mean if mean > 0 else math.inf  # the plain gamma's skewness
    skew = plain if third is None else third / (sd ** 3)
    if not skew > plain:
        skew = plain
    shape = 4.0 / (skew * skew) if skew > 0 else math.inf
    if not shape < MAX_SHAPE:
        return math.inf, 0.0, mean
    scale = sd * skew / 2
    return shape, scale, mean - shape * scale


def quantile(mean: float, var: float, q: float, third: float | None = None) -> float:
    """The ``q``-quantile (0 < q < 1) of the gamma matching these moments (:func:`gamma_fit`).

    A sum of queueing delays and service times is positive and right-skewed; a gamma matching
    mean and variance is exact for an exponential sojourn (M/M/1) and tends to the normal as
    stages add up. With the third central moment, the gamma is shifted to match the skewness
    too: a near-constant service plus a rare exponential wait keeps its exponential tail.
    Zero variance gives the mean.

    Examples: an exponential with mean 1 has 99th percentile ln(100) = 4.605 with or without
    ``third=2``; 10 ms of service plus a wait that is exponential of mean 10 ms one time in
    ten (mean 11, variance 19, third 542 ms³) has an exact p99 of 10 + 10 ln 10 = 33.0 ms,
    read as 31.6 with ``third`` and 23.6 without (p95: exact 16.9, 17.4 and 19.0).
    """
    if not math.isfinite(mean) or not math.isfinite(var):
        return math.inf
    if var <= mean * mean * 1e-12:
        return mean
    if third is not None and not math.isfinite(third):
        third = None
    shape, scale, shift = gamma_fit(mean, var, third)
    if math.isinf(shape):
        return mean + math.sqrt(var) * float(ndtri(q))
    return max(0.0, shift + float(gammaincinv(shape, q)) * scale)
