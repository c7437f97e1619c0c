"""Generate ``examples/meeting-companion.yaml``: an ASR -> LLM -> TTS world from a real LLM trace.

A meeting companion transcribes 6 s audio chunks from a meeting room (ASR), lets an LLM answer
or summarise with the meeting as context, and speaks the answer (TTS). ``DESCRIPTION`` and
``HEADER`` below state what is real (rates and token counts from the Azure LLM inference trace
2023, CC-BY 4.0, Patel et al., Splitwise, ISCA 2024) and what is a stand-in; the constants name
every stand-in's assumption. No measured latency table exists for this pipeline.

Run from anywhere: ``python scripts/examples/make_meeting_companion.py [--out PATH]``.
"""

from __future__ import annotations

import argparse
import bisect
import hashlib
import random
import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from circinus.gen.data import Request, read_azure_trace

REPO = Path(__file__).resolve().parents[2]
DEFAULT_OUT = REPO / "examples/meeting-companion.yaml"
SEED = 20231116
N_SESSIONS = 96
ZIPF_S = 0.8  # session weight of the k-th busiest session ~ 1 / k^ZIPF_S
REF_CTX, REF_GEN = 1024, 128  # tokens every LLM/TTS profile is stated for
AUDIO_S = 6.0  # seconds of audio per request: 16 kHz 16-bit mono PCM = 187.5 KB
SPEECH_S = REF_GEN * 0.75 / 2.5  # 128 tokens ~ 96 words, spoken at 2.5 words/s = 38.4 s
CHUNK_KB = AUDIO_S * 16_000 * 2 / 1024
LLM_REF = ("8b", "l4")  # profile whose prefill/decode mix sets the llm work_scale

# Whisper-like (int8 on CPU, fp16 on GPU). model -> accuracy (1 - WER on meeting speech),
# {hardware: (real-time factor, units, memory GB)}
ASR: dict[str, tuple[float, dict[str, tuple[float, float, float]]]] = {
    "tiny": (0.83, {"edge-cpu": (0.06, 2, 0.4), "l4": (0.008, 0.25, 1.0)}),
    "base": (0.87, {"edge-cpu": (0.12, 2, 0.6), "l4": (0.012, 0.25, 1.5)}),
    "small": (0.90, {"edge-cpu": (0.30, 4, 1.2), "l4": (0.025, 0.25, 2.5)}),
}
# model -> answer quality (MMLU-like score of a Llama-3-class model of that size),
# {hardware: (prefill ms/token, decode ms/token, units, memory GB)} at batch 1: 1b q4 on CPU,
# fp16 on L4; 8b fp8 on L4, fp16 on H100; 70b fp16 tensor-parallel over 4 H100.
LLM: dict[str, tuple[float, dict[str, tuple[float, float, float, float]]]] = {
    "1b": (0.49, {"edge-cpu": (2.0, 25.0, 8, 2.0), "l4": (0.05, 10.0, 0.5, 6.0)}),
    "8b": (0.69, {"l4": (0.25, 25.0, 1, 20.0), "h100": (0.04, 7.0, 1, 40.0)}),
    "70b": (0.84, {"h100": (0.12, 15.0, 4, 180.0)}),
}
# fast is piper-like, hq XTTS-like. voice -> (intelligibility, codec kbit/s,
# {hardware: (real-time factor, units, memory GB)})
TTS: dict[str, tuple[float, float, dict[str, tuple[float, float, float]]]] = {
    "fast": (0.95, 16.0, {"edge-cpu": (0.03, 2, 0.3), "l4": (0.004, 0.25, 1.0)}),
    "hq": (0.98, 24.0, {"l4": (0.04, 0.5, 4.0), "h100": (0.015, 0.25, 4.0)}),
}
# name -> (cores, memory GB, uplink Mbit/s, RTT ms to cloud-eu-west, RTT ms to cloud-us-east);
# an edge core costs $0.01/h (amortised box and power)
OFFICES = {
    "office-berlin": (16, 64, 200, 18, 95),
    "office-london": (32, 128, 500, 12, 78),
    "office-madrid": (8, 32, 100, 30, 110),
    "office-newyork": (16, 64, 300, 80, 10),
    "office-chicago": (8, 32, 200, 100, 22),
    "office-toronto": (16, 64, 150, 95, 25),
}
# name -> {hardware: (units, $ per unit-hour, memory GB per unit)}, near on-demand list prices
# Sized for shared deployments (sessions share LLM, ASR and TTS replicas): the pools hold about
# what the shared plan uses (24/16/32/24 GPUs, sized for replicas of every session's own, left
# 80 of 96 idle when shared), so the selection trades between regions and models.
CLOUDS = {
    "cloud-eu-west": {"l4": (4, 0.85, 24), "h100": (2, 4.50, 80)},
    "cloud-us-east": {"l4": (4, 0.80, 24), "h100": (6, 4.00, 80)},
}
# SLO class -> (share, p95 latency ms, min accuracy, max $/h, weight); a notes session only
# wants a spoken recap, so it tolerates 20 s
SLO_CLASSES = {
    "premium": (0.15, 10_000, 0.65, None, 4.0),
    "live": (0.35, 7_000, 0.52, 6.0, 2.0),
    "lite": (0.30, 9_000, 0.38, 1.5, 1.0),
    "notes": (0.20, 20_000, None, 0.5, 0.5),
}


@dataclass(frozen=True)
class Session:
    """One meeting session cut from the trace: its request count, span and mean tokens."""

    requests: int
    span_s: float
    mean_ctx: float
    mean_gen: float


def split_sessions(trace: Sequence[Request]) -> list[Session]:
    """Deal requests to sessions by a seeded hash of their row, with Zipf-like weights."""
    cum, total = [], 0.0
    for k in range(N_SESSIONS):
        total += 1.0 / (k + 1) ** ZIPF_S
        cum.append(total)
    members: list[list[Request]] = [[] for _ in range(N_SESSIONS)]
    for i, request in enumerate(trace):
        digest = hashlib.blake2b(f"{SEED}:{i}".encode(), digest_size=8).digest()
        u = int.from_bytes(digest, "big") / 2**64
        members[min(bisect.bisect_right(cum, u * total), N_SESSIONS - 1)].append(request)
    sessions = []
    for reqs in members:
        assert len(reqs) >= 2, "every session needs two requests to have a span"
        sessions.append(Session(
            requests=len(reqs),
            span_s=reqs[-1][0] - reqs[0][0],
            mean_ctx=statistics.fmean(r[1] for r in reqs),
            mean_gen=statistics.fmean(r[2] for r in reqs),
        ))
    return sessions


def _cv(values: Sequence[float]) -> float:
    """Coefficient of variation (std / mean), rounded for a stable file."""
    return round(statistics.pstdev(values) / statistics.fmean(values), 3)


def _batches(batch1_ms: float, growth: float) -> dict[int, float]:
    """Batch time = batch-1 time x (1 + growth x (b - 1)): sub-linear growth on a GPU."""
    return {b: round(batch1_ms * (1 + growth * (b - 1)), 1) for b in (2, 4, 8)}


def _profile(model: str, hw: str, mean_ms: float, cv: float, units: float, mem: float,
             batch: dict[int, float] | None = None, knob: str = "model") -> dict[str, Any]:
    """One latency profile of a single-knob operator, in the format's field order."""
    prof: dict[str, Any] = {"config": {knob: model}, "hardware": hw, "mean_ms": round(mean_ms, 1),
                            "cv": cv}
    if batch:
        prof["batch_ms"] = batch
    prof.update(units=units, memory_gb=mem)
    return prof


def asr_operator() -> dict[str, Any]:
    """Whisper-like ASR: time = audio seconds x real-time factor; accuracy = 1 - WER."""
    profiles = [
        _profile(m, hw, AUDIO_S * 1000 * rtf, 0.15, units, mem,
                 _batches(AUDIO_S * 1000 * rtf, 0.3) if hw != "edge-cpu" else None)
        for m, (_, hws) in ASR.items() for hw, (rtf, units, mem) in hws.items()
    ]
    return {"name": "asr", "knobs": {"model": list(ASR)}, "profiles": profiles,
            "output_kb": 4.0,  # transcript window with meeting context, ~1k tokens of text
            "accuracy": [{"when": {"model": m}, "value": a} for m, (a, _) in ASR.items()]}


def llm_operator(trace: Sequence[Request]) -> dict[str, Any]:
    """LLM: time = prefill x REF_CTX + decode x REF_GEN; cv from the trace's token spread."""
    profiles = []
    for model, (_, hws) in LLM.items():
        for hw, (pre, dec, units, mem) in hws.items():
            mean = pre * REF_CTX + dec * REF_GEN
            cv = _cv([pre * c + dec * g for _, c, g in trace])
            # A batch prefills every prompt; its decode steps are ~8 % slower per extra member.
            batch = None if hw == "edge-cpu" else {
                b: round(b * pre * REF_CTX + dec * REF_GEN * (1 + 0.08 * (b - 1)), 1)
                for b in (2, 4, 8)}
            profiles.append(_profile(model, hw, mean, cv, units, mem, batch))
    return {"name": "llm", "knobs": {"model": list(LLM)}, "profiles": profiles,
            "output_kb": 2.0,  # answer text with metadata
            "accuracy": [{"when": {"model": m}, "value": q} for m, (q, _) in LLM.items()]}


def tts_operator(trace: Sequence[Request]) -> dict[str, Any]:
    """TTS: time = seconds of speech for REF_GEN tokens x real-time factor."""
    cv = _cv([g for _, _, g in trace])
    sizes = {v: round(SPEECH_S * kbps * 1000 / 8 / 1024, 1) for v, (_, kbps, _) in TTS.items()}
    profiles = [
        _profile(v, hw, SPEECH_S * 1000 * rtf, cv, units, mem,
                 _batches(SPEECH_S * 1000 * rtf, 0.35) if hw != "edge-cpu" else None, "voice")
        for v, (_, _, hws) in TTS.items() for hw, (rtf, units, mem) in hws.items()
    ]
    return {"name": "tts", "knobs": {"voice": list(TTS)}, "profiles": profiles,
            "output_kb": [{"when": {"voice": v}, "value": kb} for v, kb in sizes.items()],
            "accuracy": [{"when": {"voice": v}, "value": i} for v, (i, _, _) in TTS.items()]}


def infrastructure() -> dict[str, list[dict[str, Any]]]:
    """Hardware classes, sites, devices and links (all stand-ins)."""
    sites: list[dict[str, Any]] = []
    devices: list[dict[str, Any]] = []
    links: list[dict[str, Any]] = []
    for office, (cores, mem, uplink, *rtts) in OFFICES.items():
        sites.append({"name": office, "tier": "edge", "lan_bandwidth_mbps": 1000.0,
                      "lan_rtt_ms": 0.5})
        devices.append({"name": f"{office}/edge-box", "site": office, "hardware": "edge-cpu",
                        "units": cores, "price_per_unit_hour": 0.01, "memory_gb": mem})
        for cloud, rtt in zip(CLOUDS, rtts, strict=True):
            links.append({"src": office, "dst": cloud, "bandwidth_mbps": float(uplink),
                          "rtt_ms": float(rtt), "price_per_gb": 0.05,
                          "capacity_mbps": float(uplink), "both_ways": True})
    for cloud, pools in CLOUDS.items():
        sites.append({"name": cloud, "tier": "cloud", "lan_bandwidth_mbps": 25_000.0,
                      "lan_rtt_ms": 0.2})
        devices += [{"name": f"{cloud}/{hw}-pool", "site": cloud, "hardware": hw, "units": units,
                     "price_per_unit_hour": price, "memory_gb": units * mem}
                    for hw, (units, price, mem) in pools.items()]
    links.append({"src": "cloud-eu-west", "dst": "cloud-us-east", "bandwidth_mbps": 1000.0,
                  "rtt_ms": 75.0, "price_per_gb": 0.02, "both_ways": True})
    hardware = [
        {"name": "edge-cpu", "kind": "cpu", "description": "16-core x86 mini PC class; units "
         "are cores (stand-in)"},
        {"name": "l4", "kind": "gpu", "description": "NVIDIA L4-like, 24 GB (stand-in)"},
        {"name": "h100", "kind": "gpu", "description": "NVIDIA H100-like, 80 GB (stand-in)"},
    ]
    return {"hardware": hardware, "sites": sites, "devices": devices, "links": links}


def queries(sessions: Sequence[Session]) -> list[dict[str, Any]]:
    """One query per session, at an office round-robin, with a seeded SLO class."""
    rng = random.Random(SEED)
    names = list(SLO_CLASSES)
    shares = [SLO_CLASSES[n][0] for n in names]
    pre, dec = LLM[LLM_REF[0]][1][LLM_REF[1]][:2]
    offices = list(OFFICES)
    out = []
    for k, s in enumerate(sessions):
        _, latency, accuracy, cost, weight = SLO_CLASSES[rng.choices(names, shares)[0]]
        office = offices[k % len(offices)]
        slo: dict[str, Any] = {"latency_ms": float(latency), "percentile": 95.0}
        if accuracy is not None:
            slo["min_accuracy"] = accuracy
        if cost is not None:
            slo["max_cost_per_hour"] = cost
        llm = (pre * s.mean_ctx + dec * s.mean_gen) / (pre * REF_CTX + dec * REF_GEN)
        out.append({
            "name": f"{office.removeprefix('office-')}/room-{k // len(offices) + 1:02d}",
            "pipeline": "meeting-companion", "sources": {"mic": office},
            "rate_rps": float(f"{s.requests / s.span_s:.4g}"), "slo": slo, "weight": weight,
            "work_scale": {"llm": round(llm, 3), "tts": round(s.mean_gen / REF_GEN, 3)},
        })
    return out


DESCRIPTION = (
    "Meeting companion: meeting-room speech is transcribed (asr), an LLM answers or summarises "
    "(llm) and the answer is spoken (tts). REAL: arrival rates and token counts come from the "
    "Azure LLM inference trace 2023, conversation service (AzureLLMInferenceTrace_conv.csv, "
    "https://github.com/Azure/AzurePublicDataset, licence CC-BY 4.0; attribution: Patel et al., "
    '"Splitwise: Efficient generative LLM inference using phase splitting", ISCA 2024): its '
    f"requests are dealt to {N_SESSIONS} sessions by a seeded hash with Zipf-like weights (our "
    "choice), so together the queries carry the whole trace; rate_rps = requests of the session "
    "/ their span; work_scale.llm = service time at its mean context/generated tokens over that "
    f"at the {REF_CTX}/{REF_GEN} reference tokens of the profiles (prefill/decode mix of "
    f"{LLM_REF[0]} on {LLM_REF[1]}); work_scale.tts = its mean generated tokens / {REF_GEN}; LLM "
    "and TTS cv = spread of per-request work over the trace. STAND-INS, not measurements: "
    "whisper-like ASR times (audio seconds x real-time factor) and accuracy (1 - WER); LLM times "
    "(prefill ms/token x context + decode ms/token x output, Llama-3-class 1B/8B/70B on L4-like "
    "and H100-like GPUs and an edge CPU) and quality (MMLU-like score); TTS times (speech "
    "seconds x real-time factor) and intelligibility; hardware, prices, sites, links, message "
    "sizes and SLOs. Generated by scripts/examples/make_meeting_companion.py; do not hand-edit."
)
_SLO_LINES = "\n".join(
    f"#   {n}: share {c[0]}, p95 {c[1]} ms, min_accuracy {c[2]}, max $/h {c[3]}, weight {c[4]}"
    for n, c in SLO_CLASSES.items()
)
HEADER = f"""\
# Meeting companion (ASR -> LLM -> TTS) over edge offices and two cloud regions.
# GENERATED by scripts/examples/make_meeting_companion.py (seed {SEED}); do not hand-edit,
# change the script and re-run it.
#
# Data: Azure LLM inference trace 2023, conversation service, AzureLLMInferenceTrace_conv.csv
# from https://github.com/Azure/AzurePublicDataset (bundled in data/real/azure-llm-inference-2023/).
# Licence CC-BY 4.0. Attribution: Pratyush Patel, Esha Choukse, Chaojie Zhang, Aashaka Shah,
# Inigo Goiri, Saeed Maleki, Ricardo Bianchini, "Splitwise: Efficient generative LLM inference
# using phase splitting", ISCA 2024.
#
# Real: per-query rate_rps (request count / span of the trace requests dealt to the session),
# per-query work_scale of llm and tts (the session's mean tokens relative to the profiles'
# reference of {REF_CTX} context / {REF_GEN} generated tokens), cv of the llm and tts profiles
# (per-request spread over the trace).
# Our choice: dealing requests to {N_SESSIONS} sessions by seeded hash, Zipf weights s={ZIPF_S}.
# SLO classes, dealt to sessions by seeded draws:
{_SLO_LINES}
# Stand-ins (assumptions, not measurements): all service times, units, memory, accuracies,
# prices, sites, links, message sizes and SLOs; see the script's docstring and constants.
# Sizing: the cloud pools hold about what shared deployments use, so not every session fits.
"""


def build_world(trace: Sequence[Request]) -> dict[str, Any]:
    """The whole world as plain data, in the order of the format's fields."""
    infra = infrastructure()
    pipeline = {
        "name": "meeting-companion",
        "sources": [{"name": "mic", "output_kb": round(CHUNK_KB, 1)}],
        "stages": [{"name": s, "operator": s} for s in ("asr", "llm", "tts")],
        "edges": [["mic", "asr"], ["asr", "llm"], ["llm", "tts"]],
        "accuracy": {"rule": "product"},
    }
    return {
        "version": 1, "name": "meeting-companion", "description": DESCRIPTION, **infra,
        "operators": [asr_operator(), llm_operator(trace), tts_operator(trace)],
        "pipelines": [pipeline], "queries": queries(split_sessions(trace)),
    }


def render(world: dict[str, Any]) -> str:
    """The YAML text: the header comment, then the world."""
    return HEADER + yaml.safe_dump(world, sort_keys=False, width=100, allow_unicode=False)


def main(argv: Sequence[str] | None = None) -> int:
    """Write the world to ``--out`` (default: examples/meeting-companion.yaml)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="YAML file to write")
    args = parser.parse_args(argv)
    world = build_world(read_azure_trace("conv"))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(render(world), encoding="utf-8")
    print(f"wrote {args.out}: {len(world['queries'])} queries")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
