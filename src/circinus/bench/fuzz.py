"""A seeded fuzz campaign: mutated worlds through the loader, the planner and the plan file.

(The console's rendering of plans is fuzzed through the CLI, in ``tests/cli/test_fuzz_cli.py``.)

NOTE: the promise under test is that bad input gets one clear error and that accepted input
plans: every case ends in exactly one *outcome*, and the campaign counts them by class.

* ``rejected``: a :class:`~circinus.errors.SpecError` (or another Circinus error), as promised;
* ``planned``: accepted, planned, every figure of the plan file finite and the file's JSON
  read back unchanged;
* ``accepted``: accepted but not planned (a world that must be profiled first);
* ``traceback``: any other exception, anywhere;
* ``changed``: accepted, but a value of the input is not the value the world holds (a number
  rounded into another, a string turned into something else): silently changed data;
* ``nonfinite``: planned, but a cost, goodput or latency of the plan is NaN or infinite, or a
  cost is negative;
* ``hang``: the case outlived its time budget (the campaign's parent kills the worker).

A CLI case runs ``circinus`` with random options and files: ``planned`` then means exit 0,
``rejected`` a non-zero exit whose stderr ends in one ``error:`` line (no terminal escape, at
most 520 characters), ``traceback`` anything else, and ``changed`` an input file rewritten or a
temporary file left behind.

A case is one example world with 1 to 3 mutations (:func:`mutate`): a value replaced by an
extreme or a value of another type, a key removed, added or renamed, a list emptied or grown, a
name pointed elsewhere; one case in five is also mutated as text after it is written as YAML or
JSON (duplicate keys, aliases, cut files, stray characters) and read back by the loader. The
same seed gives the same cases.
"""

from __future__ import annotations

import copy
import json
import math
import multiprocessing
import random
import tempfile
import time
import traceback
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from circinus.spec.load import field_range

OUTCOMES = ("rejected", "planned", "accepted", "traceback", "changed", "nonfinite", "hang")
"""Every outcome, the acceptable ones first."""
FAILURES = ("traceback", "changed", "nonfinite", "hang")
"""Outcomes that break the promise."""

EXAMPLES = ("tiny.yaml", "jellybean-vqa.yaml", "edge-cloud-vision.yaml", "meeting-companion.yaml",
            "digits-edge-cloud.yaml", "ocr-branches.yaml")
QUERIES_KEPT = 3
"""Queries kept from each example, so that a case plans in a fraction of a second."""

_EXTREMES: tuple[Any, ...] = (
    0, -0.0, -1, 1, 0.5, 1e-9, 5e-324, 2.2e-308, 1e-300, 1e16 + 2, 1e30, 1e308, -1e308,
    2**53 + 1, 2**63, 10**30, 10**400, -(10**400), 99.99999999999999, 1e6, 1e7, 86_401,
    # the ends of the world format's ranges, where accepted values are most extreme
    0.000001, 0.0001, 0.001, 0.01, 100, 99.999, 1000, 65_536, 86_400, 1_000_000,
    10_000_000, 1_000_000_000, 2**32 - 1,
)
_ODD_VALUES: tuple[Any, ...] = (
    None, True, False, "", "x", "1e400", "NaN", "\x1b[31mred\x1b[0m", "é" * 3, "a" * 5000,
    [], {}, [1, 2], {"when": {}, "value": 1}, [[[[[]]]]],
)
_KEYS = ("\x1b[2Jwipe", "unknown", "name", "value", "when", "", "a" * 300, "0")


@dataclass(frozen=True)
class CaseResult:
    """One case: its number, the mutations applied, its outcome and, for a failure, detail."""

    case: int
    example: str
    mutations: tuple[str, ...]
    outcome: str
    detail: str = ""
    seconds: float = 0.0


@dataclass
class CampaignReport:
    """Outcomes by class over a campaign, and every failing case."""

    seed: int
    cases: int
    cli_cases: int = 0
    counts: Counter[str] = field(default_factory=Counter)
    cli_counts: Counter[str] = field(default_factory=Counter)
    failures: list[CaseResult] = field(default_factory=list)
    seconds: float = 0.0
    slowest: float = 0.0

    def add(self, result: CaseResult) -> None:
        (self.counts if result.case >= 0 else self.cli_counts)[result.outcome] += 1
        self.slowest = max(self.slowest, result.seconds)
        if result.outcome in FAILURES:
            self.failures.append(result)

    def to_json(self) -> dict[str, Any]:
        return {
            "seed": self.seed, "cases": self.cases, "seconds": round(self.seconds, 1),
            "slowest_case_seconds": round(self.slowest, 2),
            "outcomes": {k: self.counts.get(k, 0) for k in OUTCOMES},
            "cli_cases": self.cli_cases,
            "cli_outcomes": {k: self.cli_counts.get(k, 0) for k in OUTCOMES},
            "failures": [r.__dict__ for r in self.failures[:200]],
        }


# ----------------------------------------------------------------------------------- mutation
def base_worlds(examples_dir: Path) -> dict[str, dict[str, Any]]:
    """The example worlds as plain data, each cut to its first :data:`QUERIES_KEPT` queries."""
    out = {}
    for name in EXAMPLES:
        data = yaml.safe_load((examples_dir / name).read_text(encoding="utf-8"))
        data["queries"] = data["queries"][:QUERIES_KEPT]
        out[name] = data
    return out


def _paths(node: Any, prefix: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    yield prefix
    if isinstance(node, dict):
        for k, v in node.items():
            yield from _paths(v, (*prefix, k))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield from _paths(v, (*prefix, i))


def _get(node: Any, path: tuple[Any, ...]) -> Any:
    for part in path:
        node = node[part]
    return node


def _names(data: Any) -> list[str]:
    return sorted({v for p in _paths(data) if p and p[-1] in ("name", "site", "hardware",
                                                                  "operator", "pipeline")
                   for v in [_get(data, p)] if isinstance(v, str)})


def mutate(data: dict[str, Any], rng: random.Random) -> str:
    """Apply one random mutation to ``data`` in place; returns what it did."""
    paths = [p for p in _paths(data) if p]
    numbers = [p for p in paths if isinstance(_get(data, p), int | float)
               and not isinstance(_get(data, p), bool)]
    # Numbers, most often: a value of the right type gets past the type checks, into the maths.
    path = rng.choice(numbers if numbers and rng.random() < 0.6 else paths)
    parent, key = _get(data, path[:-1]), path[-1]
    value = parent[key]
    where = ".".join(map(str, path))
    roll = rng.random()
    if isinstance(value, bool) or roll < 0.05:
        new = rng.choice(_ODD_VALUES)
        parent[key] = copy.deepcopy(new)
        return f"{where} = {_brief(new)}"
    if isinstance(value, int | float) and roll < 0.9:
        bounds = field_range(path)
        if bounds and rng.random() < 0.4:  # a bound of the field's range, or just past it
            sign, end = rng.choice(bounds)
            step = max(abs(end) * 1e-9, 1e-12) * (1 if sign in (">", ">=") else -1)
            new = rng.choice((end, end + step, end - step))
            if isinstance(value, int) and float(new).is_integer():
                new = int(new)
            parent[key] = new
            return f"{where} = {_brief(new)} (a bound)"
        if rng.random() < 0.6:
            new = rng.choice(_EXTREMES)
        else:
            scale = rng.randint(-30, 30) * rng.choice((1, -1))
            new = value * 10**scale if scale >= 0 else value // 10**-scale if isinstance(
                value, int) else value / 10**-scale
        parent[key] = new
        return f"{where} = {_brief(new)}"
    if isinstance(value, str) and roll < 0.6:
        names = _names(data)
        new = rng.choice([*names, "nowhere", value + value, "\x1b[31m" + value])
        parent[key] = new
        return f"{where} = {_brief(new)}"
    if isinstance(value, list) and roll < 0.7:
        if value and rng.random() < 0.5:
            value.append(copy.deepcopy(rng.choice(value)))
            return f"{where} += a copy of an item"
        value.clear()
        return f"{where} = []"
    if isinstance(value, dict) and roll < 0.7:
        if value and rng.random() < 0.5:
            k = rng.choice(list(value))
            del value[k]
            return f"del {where}.{k}"
        k = rng.choice(_KEYS)
        value[k] = copy.deepcopy(rng.choice((*_EXTREMES, *_ODD_VALUES)))
        return f"{where}.{_brief(k)} = {_brief(value[k])}"
    if isinstance(parent, dict):
        del parent[key]
        return f"del {where}"
    parent[key] = copy.deepcopy(rng.choice((*_EXTREMES, *_ODD_VALUES)))
    return f"{where} = {_brief(parent[key])}"


def mutate_text(text: str, rng: random.Random, *, is_json: bool) -> tuple[str, str]:
    """One random mutation of a world file's text; returns the text and what it did."""
    roll = rng.random()
    if roll < 0.2:
        cut = rng.randrange(len(text))
        return text[:cut], f"cut at {cut}"
    if roll < 0.4 and is_json:
        return text.replace('"queries":', '"queries": [], "queries":', 1), "queries twice"
    if roll < 0.4:
        return text.replace("\nqueries:", "\nqueries: []\nqueries:", 1), "queries twice"
    if roll < 0.55 and not is_json:
        bomb = "".join(f"l{i}: &l{i} [" + ", ".join([f"*l{i - 1}"] * 9) + "]\n"
                       for i in range(1, 10))
        return "l0: &l0 [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n" + bomb + text, \
            "alias bomb"
    if roll < 0.7:
        depth = rng.choice((70, 1000, 100_000))
        nest = "[" * depth + "]" * depth
        return text.replace("description:" if not is_json else '"description":',
                            ("description: " if not is_json else '"description": ') + nest
                            + ("\n_description:" if not is_json else ', "_d":'), 1), \
            f"nesting {depth}"
    pos = rng.randrange(len(text))
    char = rng.choice(("\t", "\x00", "\x1b", "{", "]", ":", "&", "*", "'", '"', "\\", "\ufeff"))
    return text[:pos] + char + text[pos:], f"{char!r} at {pos}"


def _brief(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


# -------------------------------------------------------------------------------- the checks
def run_case(data: dict[str, Any], text: str | None = None, suffix: str = ".yaml") -> tuple[
        str, str]:
    """Load (from ``text`` through a file when given, else from ``data``), check, plan and
    write the plan file of one world; returns ``(outcome, detail)``."""
    from circinus.errors import CircinusError
    from circinus.spec.load import parse_world, read_document
    from circinus.spec.validate import build_index

    try:
        if text is not None:
            with tempfile.TemporaryDirectory() as folder:
                path = Path(folder) / f"world{suffix}"
                path.write_text(text, encoding="utf-8")
                data = read_document(path)
        world = parse_world(data)
        index = build_index(world)
    except CircinusError:
        return "rejected", ""
    except Exception:
        return "traceback", _last_lines(traceback.format_exc())
    changed = _changed(data, world.model_dump(mode="python"))
    if changed:
        return "changed", changed
    return _plan(index)


def _plan(index: Any) -> tuple[str, str]:
    from circinus.errors import CircinusError
    from circinus.plan.file import PlanFile, to_plan_file
    from circinus.planner import Planner
    from circinus.spec.unknowns import needs_profiling

    if needs_profiling(index.world):
        return "accepted", ""
    try:
        result = Planner(settings=index.world.planner, why_not=True).plan(index)
        planfile = to_plan_file(index, result)
        text = planfile.model_dump_json()
        again = PlanFile.model_validate_json(text)
    except CircinusError:
        return "rejected", ""
    except Exception:
        return "traceback", _last_lines(traceback.format_exc())
    bad = _nonfinite(json.loads(text))
    if bad:
        return "nonfinite", bad
    if again.model_dump_json() != text:
        return "changed", "the plan file does not read back as written"
    return "planned", ""


def _changed(given: Any, held: Any, path: str = "") -> str:
    """The first value of the input that the validated world holds differently."""
    if isinstance(given, dict) and isinstance(held, dict):
        for k, v in given.items():
            if k in held:
                found = _changed(v, held[k], f"{path}.{k}")
                if found:
                    return found
        return ""
    if isinstance(given, list) and isinstance(held, list | tuple):
        if len(given) != len(held):
            return f"{path}: {len(given)} items became {len(held)}"
        for i, (a, b) in enumerate(zip(given, held, strict=True)):
            found = _changed(a, b, f"{path}[{i}]")
            if found:
                return found
        return ""
    if isinstance(given, bool) or isinstance(held, bool):
        return "" if given == held and type(given) is type(held) else \
            f"{path}: {_brief(given)} became {_brief(held)}"
    if isinstance(given, int | float) and isinstance(held, int | float):
        return "" if given == held else f"{path}: {_brief(given)} became {_brief(held)}"
    if isinstance(given, str) and isinstance(held, str):
        return "" if given == held else f"{path}: {_brief(given)} became {_brief(held)}"
    if given is None or held is None or isinstance(given, str):
        return ""  # a default filled in, or a number given as text (its value is checked)
    return ""


def _nonfinite(node: Any, path: str = "") -> str:
    if isinstance(node, float) and not math.isfinite(node):
        return f"{path} = {node}"
    if isinstance(node, int | float) and "cost" in path and node < 0:
        return f"{path} = {node}"
    if isinstance(node, dict):
        for k, v in node.items():
            found = _nonfinite(v, f"{path}.{k}")
            if found:
                return found
    if isinstance(node, list):
        for i, v in enumerate(node):
            found = _nonfinite(v, f"{path}[{i}]")
            if found:
                return found
    return ""


def _last_lines(text: str, n: int = 4) -> str:
    return " | ".join(line.strip() for line in text.strip().splitlines()[-n:])


# -------------------------------------------------------------------------------- CLI cases
_NUMBERS = ("0", "-1", "1", "0.05", "1e308", "-1e308", "5e-324", "nan", "inf", "-inf", "abc", "",
            "9" * 400, "1e6", "86401", "3.5", "\x1b[31m1")
_WORDS = ("circinus", "exhaustive", "milp", "lp", "fcfs", "exact", "poisson", "azure", "world",
          "plan", "nope", "\x1b[2Jx", "a" * 300, "", "alert=0.5,vqa=0.5", "alert=2", "x=y",
          "circinus,infaas", "0.5,1", "1,nan", "mysql://u:p@h/d", "postgresql://[::1",
          "sqlite:////no/such/dir/p.db", "nosuch://x")


def make_cli_case(worlds: dict[str, dict[str, Any]], seed: int, case: int
                  ) -> tuple[list[str], dict[str, str]]:
    """CLI case ``case`` of the campaign of ``seed``: the arguments after ``circinus`` and the
    files to write first (name -> text) in the case's empty working folder."""
    rng = random.Random(f"cli/{seed}/{case}")
    example = rng.choice([w for w in sorted(worlds) if w not in ("digits-edge-cloud.yaml",
                                                                "ocr-branches.yaml")])
    data = copy.deepcopy(worlds[example])
    files: dict[str, str] = {}
    if rng.random() < 0.3:
        _, _, data, text, suffix = make_case(worlds, seed + 1_000_003, case)
        files["w" + suffix] = text if text is not None else yaml.safe_dump(data)
    else:
        files["w.yaml"] = yaml.safe_dump(data, sort_keys=False)
    world = next(iter(files))
    paths = (world, "absent.yaml", ".", "out", "w" * 300 + ".yaml", "plan.json", "r/x.json")

    def number() -> str:
        return rng.choice(_NUMBERS)

    def path() -> str:
        return rng.choice(paths)

    command = rng.choice(("plan", "plan", "plan", "validate", "simulate", "simulate", "gen",
                          "schema", "report", "profile"))
    options: dict[str, Callable[[], str]] = {}
    args = [command]
    if command == "plan":
        args.append(world if rng.random() < 0.8 else path())
        options = {"--json": path, "--time-limit": number, "--search": lambda: rng.choice(
            _WORDS), "--selector": lambda: rng.choice(_WORDS), "--show": number,
            "--store": lambda: rng.choice(_WORDS)}
        args += rng.sample(["-q", "--no-why-not", "--debug"], rng.randint(0, 2))
    elif command == "validate":
        args.append(world if rng.random() < 0.8 else path())
    elif command == "simulate":
        files["plan.json"] = "{}" if rng.random() < 0.2 else ""  # written by a plan run first
        args += [world, "plan.json" if rng.random() < 0.8 else path()]
        options = {"--duration": number, "--seed": number, "--trace": lambda: rng.choice(_WORDS),
                   "--json": path, "--show": number}
    elif command == "gen":
        args += ["-n", rng.choice(("3", "0", "-5", "100001", "abc", "20")), "-o",
                 rng.choice(("g.yaml", "g.json", "g.txt", world, ".", "no/dir/g.yaml"))]
        options = {"--edge-sites": number, "--edge-boxes": number, "--cloud-gpus": number,
                   "--slo-tightness": number, "--mix": lambda: rng.choice(_WORDS),
                   "--seed": number}
    elif command == "schema":
        args.append(rng.choice(("world", "plan", "nope", "\x1b[31m")))
    elif command == "report":
        args += [world, "--out", rng.choice(("out", world, ".", "r")), "--methods",
                 rng.choice(("circinus", "nope", "", "circinus,circinus")), "--loads",
                 rng.choice(("1", "0", "-1", "nan", "1e9", "x")), "--duration", "5"]
        options = {"--panels": number, "--jobs": lambda: rng.choice(("1", "0", "-1", "x"))}
    else:  # profile: the examples with nothing to measure, or a store that cannot work
        args.append(world)
        options = {"--store": lambda: rng.choice(_WORDS), "--out": path}
    for option in rng.sample(sorted(options), min(len(options), rng.randint(0, 3))):
        args += [option, options[option]()]
    return args, files


def run_cli_case(args: list[str], files: dict[str, str], *, timeout_s: float) -> tuple[str, str]:
    """Run ``circinus ARGS`` in a fresh folder holding ``files`` (a plan file named
    ``plan.json`` with empty text is made by ``circinus plan`` first) and judge what it
    printed: ``(outcome, detail)``."""
    import hashlib
    import os
    import subprocess
    import sys

    with tempfile.TemporaryDirectory() as folder:
        here = Path(folder)
        for name, text in files.items():
            (here / name).write_text(text, encoding="utf-8")
        world = next(iter(files))
        if files.get("plan.json") == "":
            try:
                subprocess.run([sys.executable, "-m", "circinus", "plan", world, "-q", "--json",
                                "plan.json"], cwd=here, capture_output=True, timeout=timeout_s,
                               check=False)
            except subprocess.TimeoutExpired:
                return "hang", f"`circinus plan` making plan.json: no exit in {timeout_s:g} s"
        before = {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in here.iterdir()}
        try:
            run = subprocess.run([sys.executable, "-m", "circinus", *args], cwd=here,
                                 capture_output=True, timeout=timeout_s, check=False,
                                 env={**os.environ, "COLUMNS": "100",
                                      "CIRCINUS_CACHE": str(here / ".cache")})
        except subprocess.TimeoutExpired:
            return "hang", f"no exit in {timeout_s:g} s"
        out, err = run.stdout.decode(errors="replace"), run.stderr.decode(errors="replace")
        if "Traceback" in out + err and "--debug" not in args:
            return "traceback", _last_lines(err)
        if run.returncode not in (0, 1, 2, 3, 4, 5):
            return "traceback", f"exit {run.returncode}: {_last_lines(err)}"
        if run.returncode != 0:
            lines = [line for line in err.splitlines() if line.strip()]
            problem = ("" if lines and lines[-1].startswith("error: ") else "no error line") \
                or ("raw escape" if "\x1b" in err else "") \
                or ("error line too long" if len(lines[-1]) > 520 else "")
            if problem and "--debug" not in args:
                return "traceback", f"{problem}: {err[-300:]!r}"
        outputs = {args[i + 1] for i, a in enumerate(args[:-1]) if a in ("--json", "--out",
                                                                              "-o")}
        inputs = {a for i, a in enumerate(args[1:], 1)
                  if not a.startswith("-") and not args[i - 1].startswith("-")}
        for name, digest in before.items():
            p = here / name
            rewritten = not p.exists() or hashlib.sha256(p.read_bytes()).hexdigest() != digest
            if rewritten and (name in inputs or name not in outputs):
                return "changed", f"input {name} was changed or removed"
        stray = [p.name for p in here.rglob("*") if p.name.endswith((".tmp", ".partial"))]
        if stray:
            return "changed", f"left behind: {stray}"
    return "rejected" if run.returncode else "planned", ""


# ------------------------------------------------------------------------------ the campaign
def make_case(worlds: dict[str, dict[str, Any]], seed: int, case: int
              ) -> tuple[str, tuple[str, ...], dict[str, Any], str | None, str]:
    """Case number ``case`` of the campaign of ``seed``: (example, mutations, data, text or
    ``None``, file suffix)."""
    rng = random.Random(f"{seed}/{case}")
    example = rng.choice(sorted(worlds))
    data = copy.deepcopy(worlds[example])
    done = [mutate(data, rng) for _ in range(rng.choice((1, 1, 2, 3)))]
    text, suffix = None, ".yaml"
    if rng.random() < 0.2:
        is_json = rng.random() < 0.5
        suffix = ".json" if is_json else ".yaml"
        try:
            text = json.dumps(data) if is_json else yaml.safe_dump(data, sort_keys=False)
        except (ValueError, TypeError, OverflowError):
            text = None
        if text:
            text, what = mutate_text(text, rng, is_json=is_json)
            done.append(f"text: {what}")
    return example, tuple(done), data, text, suffix


def _worker(examples_dir: str, seed: int, tasks: Any, results: Any, timeout_s: float) -> None:
    worlds = base_worlds(Path(examples_dir))
    while True:
        case = tasks.get()
        if case is None:
            return
        start = time.perf_counter()
        if case >= 0:
            example, done, data, text, suffix = make_case(worlds, seed, case)
            outcome, detail = run_case(data, text, suffix)
        else:
            args, files = make_cli_case(worlds, seed, -case - 1)
            example, done = "cli", (" ".join(args),)
            outcome, detail = run_cli_case(args, files, timeout_s=timeout_s / 2)
        results.put(CaseResult(case, example, done, outcome, detail,
                               time.perf_counter() - start))


def run_campaign(examples_dir: Path, *, cases: int, cli_cases: int = 0, seed: int = 0,
                 jobs: int = 2, timeout_s: float = 60.0,
                 progress: Callable[[CaseResult], None] | None = None) -> CampaignReport:
    """Run world cases ``0 .. cases-1`` and CLI cases ``0 .. cli_cases-1`` of the campaign of
    ``seed`` on ``jobs`` worker processes; a case that outlives ``timeout_s`` counts as a hang
    (its worker is killed and replaced). CLI cases run the installed command in a process of
    its own each, with ``timeout_s / 2`` to finish."""
    ctx = multiprocessing.get_context("spawn")
    worlds = base_worlds(examples_dir)
    report = CampaignReport(seed=seed, cases=cases, cli_cases=cli_cases)
    began = time.perf_counter()
    todo = [*range(cases), *(-i - 1 for i in range(cli_cases))]
    workers: list[tuple[Any, Any, Any, int | None, float]] = []

    def start_worker() -> tuple[Any, Any, Any, int | None, float]:
        tasks, results = ctx.Queue(), ctx.Queue()
        proc = ctx.Process(target=_worker,
                           args=(str(examples_dir), seed, tasks, results, timeout_s),
                           daemon=True)
        proc.start()
        return proc, tasks, results, None, 0.0

    try:
        workers = [start_worker() for _ in range(max(1, jobs))]
        while todo or any(w[3] is not None for w in workers):
            for i, (proc, tasks, results, case, since) in enumerate(workers):
                if case is None and todo:
                    case = todo.pop(0)
                    tasks.put(case)
                    workers[i] = (proc, tasks, results, case, time.perf_counter())
                    continue
                if case is None:
                    continue
                try:
                    result = results.get(timeout=0.02)
                except Exception:  # queue.Empty
                    if time.perf_counter() - since > timeout_s or not proc.is_alive():
                        proc.kill()
                        proc.join()
                        outcome = "hang" if proc.exitcode is None or proc.exitcode < 0 else \
                            "traceback"
                        example, done = (make_case(worlds, seed, case)[:2] if case >= 0 else
                                         ("cli", (" ".join(make_cli_case(worlds, seed,
                                                                         -case - 1)[0]),)))
                        result = CaseResult(case, example, done, outcome,
                                            f"no answer in {timeout_s:g} s" if outcome == "hang"
                                            else f"worker died, exit {proc.exitcode}",
                                            time.perf_counter() - since)
                        workers[i] = start_worker()
                        report.add(result)
                        if progress is not None:
                            progress(result)
                    continue
                report.add(result)
                if progress is not None:
                    progress(result)
                workers[i] = (proc, tasks, results, None, 0.0)
    finally:
        for proc, tasks, *_ in workers:
            if proc.is_alive():
                tasks.put(None)
        for proc, tasks, results, *_ in workers:
            proc.join(timeout=5)
            if proc.is_alive():
                proc.kill()
                proc.join()
            for queue in (tasks, results):
                queue.close()
                queue.cancel_join_thread()
    report.seconds = time.perf_counter() - began
    report.failures.sort(key=lambda r: r.case)
    return report
