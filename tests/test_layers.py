"""The import graph of ``rlt_data/``: no circle, and no module imports one in a layer above its own.

Issue #19 asks for it ("the import graph has no circle and no module imports one above its
layer ... a test walks the imports of ``rlt_data/`` and checks them"); the layers and the current
offenders come from ``../shared/reviews/architecture.md`` section 1.2 ("Layers, circles, upward
imports") and section 5 ("The one big step", "Five smaller mends"), read against commit bb851b1.

The graph is read statically (``ast``), without importing anything: every ``import`` and
``from ... import`` statement of every module, function-level ones included (most of today's
upward imports are function-level, "written there to dodge the circles they make"), relative
imports resolved. A package's ``__init__`` is its own node (``rlt_data.backends``). ``from .x import
y`` is an edge to ``x.y`` when ``y`` is a module, else to ``x``. Imports by name at run time
(``importlib.import_module``: the backend registry, ``cli.trl_command``) are not edges.

``LAYERS`` is the intended layering, bottom first; a module may import modules of its own layer or
below. ``KNOWN_VIOLATIONS`` lists today's offending edges, each one an upward import or the edge
that closes a circle inside one layer. The test fails on a new offending edge, and on a listed
edge that no longer offends (gone, or no longer upward or in a circle): the list only shrinks, and
the refactor of issue #19 should empty it. A new module fails until it is placed in ``LAYERS``.

``python tests/test_layers.py`` prints the graph, the layers and the circles.
"""

from __future__ import annotations

import ast
import functools
import sys
from collections import deque
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "rlt_data"

# Bottom first. A module may import its own layer and the layers below it.
LAYERS: list[tuple[str, list[str]]] = [
    ("foundation", [
        "rlt_data",  # __version__ only
        "rlt_data.errors",
    ]),
    # The options, as pure data: "each a dataclass with help on the field, Literal choices and its own
    # checks, in a module that imports nothing above errors" (issue #19, What to build 1; review 5,
    # "rlt_data/options.py -- pure data; imports errors only").
    ("options", [
        "rlt_data.options",
    ]),
    # Pure rules, text and records: no store, no model (review 1.2, layer 1; sharding, slurm_time,
    # contamination and memory_plan import errors only).
    ("rules and records", [
        "rlt_data.protocol",
        "rlt_data.records",
        "rlt_data.state",
        "rlt_data.selection",
        "rlt_data.sharding",
        "rlt_data.report",
        "rlt_data.testing.toy",
        "rlt_data.slurm_time",
        "rlt_data.contamination",
        "rlt_data.memory_plan",
    ]),
    # The run folder on disk, input rows, models and tokenizers, the log-prob kernels (review 1.2, layer 2).
    ("store, input and models", [
        "rlt_data.locks",
        "rlt_data.shards",
        "rlt_data.sources",
        "rlt_data.models",
        "rlt_data.backends.logprobs",
        "rlt_data.testing",
        "rlt_data.testing.tiny",
        "rlt_data.testing.toy_training",
    ]),
    # Engines, the reward, what a finished run folder shows, and publishing it (review 1.2, layer 3).
    # hub sits below merge: "publish only publishes ... push refuses an incomplete run;
    # push-to-hub --allow-partial finalizes through merge at the command layer first" (issue #19, 5).
    ("engines, scoring, card and publishing", [
        "rlt_data.backends",
        "rlt_data.backends.dummy_backend",
        "rlt_data.backends.attention",
        "rlt_data.backends.transformers_backend",
        "rlt_data.backends.vllm_backend",
        "rlt_data.vllm_cpu",
        "rlt_data.scoring",
        "rlt_data.card",
        "rlt_data.plots",
        "rlt_data.hub",
        "rlt_data.eval_sets",
        "rlt_data.eval_card",
    ]),
    # The stages, decontamination, student training, exports (review 1.2, layer 5).
    ("stages and work", [
        "rlt_data.stages.common",
        "rlt_data.stages.cost",
        "rlt_data.stages.generate",
        "rlt_data.stages.given",
        "rlt_data.stages.student",
        "rlt_data.stages.teacher",
        "rlt_data.decontaminate",
        "rlt_data.export",
        "rlt_data.train",
        # the teacher's two TRL scripts, on the student's TRL plumbing (train: parse_options, fit)
        "rlt_data.teacher",
        "rlt_data.teacher.common",
        "rlt_data.teacher.reward",
        "rlt_data.teacher.sft",
        "rlt_data.teacher.grpo",
    ]),
    # The commands: each a composition of the option sections, with the checks that need other modules
    # (model paths, --keep-by columns, decontamination benchmarks): "checks that need other modules run
    # at the command edge" (issue #19, 1).
    ("commands", [
        "rlt_data.config",
    ]),
    # The merge of a run's shards: the driver calls it after the executor; hub, below, must not
    # ("publish only publishes": issue #19, 5).
    ("merge", [
        "rlt_data.merge",
    ]),
    # The stage registry (stages_for) stands above the stages it lists; what the stages share goes
    # below them (review 5, mend 4: the driver reads `needs` and opens each role's model once).
    ("stage registry", [
        "rlt_data.stages",
    ]),
    # Who runs the shards (review 1.2, layer 7), now below the driver: "an executor receives a shard
    # job (spec, count, which shards) and a worker entry point and never imports pipeline" (issue #19, 2).
    ("executors", [
        "rlt_data.executors",
        "rlt_data.executors.local",
        "rlt_data.executors.ray",
        "rlt_data.executors.slurm",
    ]),
    # The drivers of a command (review 1.2, layer 6).
    ("drivers", [
        "rlt_data.pipeline",
        "rlt_data.worker",
        "rlt_data.evaluate",
        "rlt_data.train_teacher",
    ]),
    ("command line", [
        "rlt_data.cli",
    ]),
]

# Offending edges tolerated for now, "importer -> imported": "{edge}: why". At bb851b1 there were 18
# (config importing seven modules to validate, hub -> merge, the executors -> pipeline, the stages
# -> their package: review 1.2); issue #19 removed them all. Keep it empty: move the code or invert
# the call instead of listing an edge here.
KNOWN_VIOLATIONS: dict[str, str] = {}


# -- the graph ------------------------------------------------------------------------------------
def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def modules() -> dict[str, Path]:
    return {module_name(p): p for p in sorted(PACKAGE.rglob("*.py")) if "__pycache__" not in p.parts}


def imports(name: str, path: Path, known: set[str]) -> list[tuple[str, int]]:
    """(imported rlt_data module, line) for every import statement of ``path``."""
    is_package = path.name == "__init__.py"
    package = name if is_package else name.rpartition(".")[0]
    found: list[tuple[str, int]] = []

    def nearest(dotted: str) -> str | None:
        while dotted and dotted not in known:
            dotted = dotted.rpartition(".")[0]
        return dotted or None

    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                target = nearest(alias.name)
                if target:
                    found.append((target, node.lineno))
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base_parts = package.split(".")
                if node.level > 1:
                    base_parts = base_parts[: len(base_parts) - (node.level - 1)]
                base = ".".join(base_parts)
                full = f"{base}.{node.module}" if node.module else base
            else:
                full = node.module or ""
            for alias in node.names:
                target = f"{full}.{alias.name}" if f"{full}.{alias.name}" in known else nearest(full)
                if target:
                    found.append((target, node.lineno))
    return found


@functools.lru_cache(maxsize=1)
def _graph() -> dict[str, dict[str, list[str]]]:
    """importer -> {imported: ["rlt_data/x.py:LINE", ...]}, rlt_data modules only, no self edges."""
    found = modules()
    known = set(found)
    edges: dict[str, dict[str, list[str]]] = {name: {} for name in found}
    for name, path in found.items():
        for target, line in imports(name, path, known):
            spot = f"{path.relative_to(ROOT)}:{line}"
            if target != name and spot not in edges[name].get(target, []):
                edges[name].setdefault(target, []).append(spot)
    return {a: {b: sorted(s, key=lambda x: int(x.rpartition(":")[2])) for b, s in t.items()} for a, t in edges.items()}


def graph() -> dict[str, dict[str, list[str]]]:
    return {a: dict(t) for a, t in _graph().items()}


def strongly_connected(edges: dict[str, dict[str, list[str]]]) -> list[list[str]]:
    """The circles: strongly connected groups of more than one module (Tarjan), sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    groups: list[list[str]] = []
    counter = 0

    def visit(start: str) -> None:  # iterative: no recursion limit
        nonlocal counter
        work = [(start, iter(sorted(edges.get(start, {}))))]
        index[start] = low[start] = counter
        counter += 1
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            for child in children:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(edges.get(child, {})))))
                    break
                if child in on_stack:
                    low[node] = min(low[node], index[child])
            else:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[node])
                if low[node] == index[node]:
                    group = []
                    while True:
                        member = stack.pop()
                        on_stack.discard(member)
                        group.append(member)
                        if member == node:
                            break
                    if len(group) > 1:
                        groups.append(sorted(group))

    for node in sorted(edges):
        if node not in index:
            visit(node)
    return sorted(groups)


def shortest_cycle(edges: dict[str, dict[str, list[str]]], group: list[str]) -> list[str]:
    """One shortest circle through the group's first module, as a list of modules (first repeated last)."""
    start, members = group[0], set(group)
    parent: dict[str, str] = {}
    queue = deque([start])
    while queue:
        node = queue.popleft()
        for child in sorted(edges[node]):
            if child == start:
                path = [node]
                while path[-1] != start:
                    path.append(parent[path[-1]])
                return [*reversed(path), start]
            if child in members and child not in parent:
                parent[child] = node
                queue.append(child)
    return group  # unreachable for a strongly connected group


def describe_circles(edges: dict[str, dict[str, list[str]]], groups: list[list[str]]) -> str:
    lines = []
    for number, group in enumerate(groups, 1):
        short = [m.removeprefix("rlt_data.") for m in shortest_cycle(edges, group)]
        lines.append(f"circle {number} ({len(group)} modules): {', '.join(m.removeprefix('rlt_data.') for m in group)}")
        lines.append(f"  e.g. {' -> '.join(short)}")
        for importer in group:
            for imported in sorted(set(edges[importer]) & set(group)):
                lines.append(f"    {importer} -> {imported}  ({', '.join(edges[importer][imported])})")
    return "\n".join(lines)


def layer_of() -> dict[str, int]:
    return {m: i for i, (_, members) in enumerate(LAYERS) for m in members}


def upward(edges: dict[str, dict[str, list[str]]]) -> set[str]:
    level = layer_of()
    return {f"{a} -> {b}" for a, targets in edges.items() for b in targets
            if a in level and b in level and level[b] > level[a]}


def without(edges: dict[str, dict[str, list[str]]], dropped: set[str]) -> dict[str, dict[str, list[str]]]:
    return {a: {b: where for b, where in targets.items() if f"{a} -> {b}" not in dropped} for a, targets in edges.items()}


def in_circle(edges: dict[str, dict[str, list[str]]], edge: str) -> bool:
    """Whether ``a -> b`` closes a circle: ``b`` reaches ``a``."""
    a, b = edge.split(" -> ")
    seen, queue = {b}, deque([b])
    while queue:
        node = queue.popleft()
        if node == a:
            return True
        for child in edges.get(node, {}):
            if child not in seen:
                seen.add(child)
                queue.append(child)
    return False


def where(edges: dict[str, dict[str, list[str]]], edge: str) -> str:
    a, b = edge.split(" -> ")
    return ", ".join(edges.get(a, {}).get(b, []))


# -- the tests ------------------------------------------------------------------------------------
def test_every_module_has_a_layer() -> None:
    placed = [m for _, members in LAYERS for m in members]
    twice = sorted({m for m in placed if placed.count(m) > 1})
    found = set(modules())
    unplaced = sorted(found - set(placed))
    gone = sorted(set(placed) - found)
    assert not twice, f"modules in two layers of LAYERS: {twice}"
    assert not unplaced, f"modules not in LAYERS (add each to the layer it belongs to, in tests/test_layers.py): {unplaced}"
    assert not gone, f"LAYERS names modules that no longer exist (remove them): {gone}"


def test_known_violations_are_well_formed() -> None:
    found = set(modules())
    for edge in KNOWN_VIOLATIONS:
        a, sep, b = edge.partition(" -> ")
        assert sep and a in found | set(layer_of()) and b, f"KNOWN_VIOLATIONS entry {edge!r}: write 'rlt_data.a -> rlt_data.b'"


def test_no_new_upward_import() -> None:
    edges = graph()
    new = sorted(upward(edges) - set(KNOWN_VIOLATIONS))
    level = layer_of()
    assert not new, "imports of a module in a higher layer (move the code, or invert the call):\n" + "\n".join(
        f"  {e}  ({LAYERS[level[e.split(' -> ')[0]]][0]} imports {LAYERS[level[e.split(' -> ')[1]]][0]}; {where(edges, e)})"
        for e in new
    )


def test_no_circle() -> None:
    edges = graph()
    groups = strongly_connected(without(edges, set(KNOWN_VIOLATIONS)))
    assert not groups, (
        "import circles (not counting the edges in KNOWN_VIOLATIONS):\n" + describe_circles(edges, groups)
        + "\n\nall circles, with the known edges:\n" + describe_circles(edges, strongly_connected(edges))
    )


def test_known_violations_still_occur() -> None:
    """An entry that is mended must leave the list, so that it cannot come back unseen."""
    edges = graph()
    ups = upward(edges)
    stale = []
    for edge in sorted(KNOWN_VIOLATIONS):
        a, _, b = edge.partition(" -> ")
        if b not in edges.get(a, {}):
            stale.append(f"  {edge}: not imported (any more)")
        elif edge not in ups and not in_circle(edges, edge):
            stale.append(f"  {edge}: neither upward nor in a circle any more ({where(edges, edge)})")
    assert not stale, "mended: remove these entries from KNOWN_VIOLATIONS in tests/test_layers.py:\n" + "\n".join(stale)


def test_import_resolution(tmp_path: Path) -> None:
    """Absolute, relative, package-level, function-level and submodule imports become the right edges."""
    known = {"p", "p.a", "p.b", "p.sub", "p.sub.c", "p.sub.d"}
    (tmp_path / "sub").mkdir()
    init = tmp_path / "sub" / "__init__.py"
    init.write_text("from . import c\nfrom .d import thing\nfrom .. import a, __version__\n")
    module = tmp_path / "sub" / "c.py"
    module.write_text(
        "import os\nimport p.b\nfrom p.sub import d\nfrom . import helper\n"
        "def f():\n    from ..a import x\n    from ...outside import y\n    import p.sub.d.e as z\n"
    )
    assert sorted(imports("p.sub", init, known)) == [("p", 3), ("p.a", 3), ("p.sub.c", 1), ("p.sub.d", 2)]
    assert sorted(imports("p.sub.c", module, known)) == [("p.a", 6), ("p.b", 2), ("p.sub", 4), ("p.sub.d", 3), ("p.sub.d", 8)]


def test_circles_are_found() -> None:
    edges = {"a": {"b": ["a.py:1"]}, "b": {"c": ["b.py:1"]}, "c": {"a": ["c.py:1"]}, "d": {"a": ["d.py:1"]}, "e": {}}
    assert strongly_connected(edges) == [["a", "b", "c"]]
    assert shortest_cycle(edges, ["a", "b", "c"]) == ["a", "b", "c", "a"]
    assert in_circle(edges, "c -> a") and not in_circle(edges, "d -> a")
    assert strongly_connected(without(edges, {"c -> a"})) == []
    assert "e.g. a -> b -> c -> a" in describe_circles(edges, [["a", "b", "c"]])


if __name__ == "__main__":
    edges = graph()
    level = layer_of()
    for a in sorted(edges):
        for b in sorted(edges[a]):
            mark = " UP" if a in level and b in level and level[b] > level[a] else ""
            print(f"{a} -> {b}{mark}  ({where(edges, f'{a} -> {b}')})")
    print()
    print(describe_circles(edges, strongly_connected(edges)) or "no circle")
    print()
    print("circles without the known violations:")
    print(describe_circles(edges, strongly_connected(without(edges, set(KNOWN_VIOLATIONS)))) or "none")
    sys.exit(0)
