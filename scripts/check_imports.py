"""`make lint` runs this: the import rules of docs/architecture.md, checked on every module.

    .venv/bin/python scripts/check_imports.py [--verbose] [ROOT]

It reads the sources with `ast` and imports none of them, so it needs only the standard library.
Each broken rule is one line, `path:line: rule: detail`, and the exit status is then 1; a tree
that keeps every rule prints nothing. --verbose also lists the imports made inside functions:
they run late on purpose, so they count for every rule but the one against import cycles.
"""

import argparse
import ast
import fnmatch
import sys
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

# The layers, lowest first. A module imports its own package and the packages of lower layers,
# nothing else of the project; two packages of one layer import neither the other. A package of
# the table that is not in the tree yet is no error.
LAYERS = (
    ("common",),  # helpers: cache counters, SSE, clock, secrets registry, error pages, request defences, the Redis bus
    ("providers",),  # the upstream client (providers/upstream/), keys, the model catalogue
    ("usage",),  # usage rows, quotas, the report
    ("conversations", "accounts"),  # the chat; sign-in, sign-up, throttles, password pages
    # the OpenAI-compatible /v1/ and personal tokens (may store a turn as a conversation); the prompt
    # library (a prompt may become a system prompt); retention periods and "Delete all my data" (act
    # on conversations, usage and, through the account, tokens); ratings of replies
    ("api", "prompts", "retention", "feedback"),
    ("chatsite",),  # the project package: settings, root URLs, WSGI, logging; it wires every app
)
# The packages beside the layers. The Makefile's scripts import none of the layers' packages;
# tests and benchmarks import anything.
IMPORTS_NONE = ("scripts",)
IMPORTS_ANY = ("tests", "bench")
LAYER_OF = {package: rank for rank, layer in enumerate(LAYERS) for package in layer}


class Ban(NamedTuple):
    rule: str
    modules: str  # a module and its submodules; "*.models" is every module named models
    imports: tuple[str, ...]  # the same patterns, for what those modules may not import
    why: str


BANS = (
    Ban(
        "upstream-client",
        "providers.upstream",
        ("django.db", "django.template", "django.shortcuts", "django.http", "*.models", "*.views"),
        "the upstream client knows no database, template or page",
    ),
    Ban("models", "*.models", ("requests", "providers.upstream"), "models know no HTTP"),
)

MAX_LINES = 360
SIZE_EXEMPT = ("tests/*", "*/migrations/*")


@dataclass(frozen=True)
class Import:
    line: int
    module: str  # absolute: relative imports are resolved
    names: tuple[str, ...]  # what `from module import ...` takes; empty for `import module`
    late: bool  # inside a function: it runs when the function is called, not on import


@dataclass(frozen=True)
class Module:
    name: str
    path: str  # relative to the root, as printed
    lines: int
    imports: tuple[Import, ...]

    @property
    def package(self) -> str | None:
        """The top-level package, or None for a file at the root (manage.py)."""
        return self.path.split("/")[0] if "/" in self.path else None


Problem = tuple[str, int, str, str]  # path, line, rule, detail


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("root", nargs="?", type=Path, default=Path(__file__).resolve().parent.parent)
    parser.add_argument("--verbose", action="store_true", help="also list the imports made inside functions")
    args = parser.parse_args(argv)
    modules, problems = read(args.root)
    problems += check(modules)
    for path, line, rule, detail in sorted(problems):
        print(f"{path}:{line}: {rule}: {detail}")
    if args.verbose:
        late = [(module, imp) for module in modules.values() for imp in module.imports if imp.late]
        for module, imp in late:
            print(f"{module.path}:{imp.line}: late import of {_said(imp)}")
        print(f"{len(modules)} modules, {len(late)} imports inside functions, {len(problems)} problems")
    return 1 if problems else 0


def read(root: Path) -> tuple[dict[str, Module], list[Problem]]:
    """Every module under root by dotted name, and a problem for each file that does not parse."""
    modules, problems = {}, []
    for path in _sources(root):
        relative = path.relative_to(root)
        parts = relative.with_suffix("").parts
        is_package = parts[-1] == "__init__"
        name = ".".join(parts[:-1] if is_package else parts)
        text = path.read_text(encoding="utf-8")
        try:
            tree = ast.parse(text, filename=str(relative))
        except SyntaxError as error:
            problems.append((relative.as_posix(), error.lineno or 1, "syntax", error.msg))
            continue
        package = name.split(".") if is_package else name.split(".")[:-1]
        imports = tuple(_imports(tree, package))
        modules[name] = Module(name, relative.as_posix(), len(text.splitlines()), imports)
    return modules, problems


def _sources(folder: Path):
    for entry in sorted(folder.iterdir()):
        if entry.is_dir() and not entry.name.startswith(".") and entry.name != "__pycache__":
            yield from _sources(entry)
        elif entry.suffix == ".py" and entry.is_file():
            yield entry


def _imports(node: ast.AST, package: list[str], late: bool = False):
    for child in ast.iter_child_nodes(node):
        if isinstance(child, ast.Import):
            for alias in child.names:
                yield Import(child.lineno, alias.name, (), late)
        elif isinstance(child, ast.ImportFrom):
            # `from . import x` is from the package itself, `from .. import x` from its parent.
            base = package[: max(len(package) - child.level + 1, 0)] if child.level else []
            module = ".".join([*base, child.module] if child.module else base)
            names = tuple(alias.name for alias in child.names if alias.name != "*")
            yield Import(child.lineno, module, names, late)
        yield from _imports(child, package, late or isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef))


def check(modules: dict[str, Module]) -> list[Problem]:
    """A problem for every rule a module breaks."""
    packages = {}  # each top-level package, with the path of its first file
    for module in modules.values():
        if module.package:
            packages.setdefault(module.package, module.path)
    problems = [
        (path, 1, "layers", f"{package} is in no layer of scripts/check_imports.py")
        for package, path in packages.items()
        if package not in LAYER_OF and package not in IMPORTS_NONE + IMPORTS_ANY
    ]
    project = set(packages) | set(LAYER_OF) | set(IMPORTS_NONE) | set(IMPORTS_ANY)
    for module in modules.values():
        problems += _layers(module, project)
        problems += _bans(module)
        if module.lines > MAX_LINES and not any(fnmatch.fnmatch(module.path, p) for p in SIZE_EXEMPT):
            problems.append((module.path, MAX_LINES + 1, "size", f"{module.lines} lines, over {MAX_LINES}"))
    return problems + _cycles(modules)


def _layers(module: Module, project: set[str]) -> list[Problem]:
    importer = module.package
    if importer in IMPORTS_NONE:
        banned, rule = set(LAYER_OF), f"{importer} imports no package of the layers"
    elif importer in LAYER_OF:
        lower = sorted((p for p in LAYER_OF if LAYER_OF[p] < LAYER_OF[importer]), key=LAYER_OF.get)
        banned = project - {importer, *lower}
        rule = f"{importer} may import " + (", ".join(lower) or "no other package")
    else:
        return []
    problems = []
    for imp in module.imports:
        if any(name.split(".")[0] in banned for name in _named(imp)):
            problems.append((module.path, imp.line, "layers", f"{module.name} imports {_said(imp)}; {rule}"))
    return problems


def _bans(module: Module) -> list[Problem]:
    problems = []
    for ban in BANS:
        if not _matches(module.name, ban.modules):
            continue
        for imp in module.imports:
            if any(_matches(name, pattern) for name in _named(imp) for pattern in ban.imports):
                problems.append((module.path, imp.line, ban.rule, f"{module.name} imports {_said(imp)}: {ban.why}"))
    return problems


def _named(imp: Import) -> list[str]:
    """The module an import names, then each `module.name` it takes (a submodule or not)."""
    return [name for name in [imp.module, *(_join(imp.module, n) for n in imp.names)] if name]


def _said(imp: Import) -> str:
    return f"{', '.join(imp.names)} from {imp.module}" if imp.names else imp.module


def _join(module: str, name: str) -> str:
    return f"{module}.{name}" if module else name


def _matches(name: str, pattern: str) -> bool:
    parts, wanted = name.split("."), pattern.split(".")
    if wanted[0] == "*":
        wanted = wanted[1:]
        return any(parts[i : i + len(wanted)] == wanted for i in range(1, len(parts)))
    return parts[: len(wanted)] == wanted


def _cycles(modules: dict[str, Module]) -> list[Problem]:
    """One cycle of module-level imports for each knot of modules that import each other."""
    edges = {name: _edges(module, modules) for name, module in modules.items()}
    reach = {name: _reachable(name, edges) for name in edges}
    problems, seen = [], set()
    for start in sorted(edges):
        if start in seen or start not in reach[start]:
            continue
        knot = {name for name in reach[start] if start in reach[name]}
        seen |= knot
        cycle = _shortest_cycle(start, edges)
        detail = " -> ".join(cycle)
        if len(knot) > len(cycle) - 1:
            detail += f" ({len(knot)} modules import each other)"
        problems.append((modules[start].path, edges[start][cycle[1]], "cycle", detail))
    return problems


def _edges(module: Module, modules: dict[str, Module]) -> dict[str, int]:
    """The project's modules this one imports on import, each with the line of its first import."""
    edges = {}
    for imp in module.imports:
        if imp.late:
            continue
        # `from pkg import name` imports pkg.name where that is a module, else pkg.
        named = [_join(imp.module, n) for n in imp.names]
        for target in [name if name in modules else imp.module for name in named] or [imp.module]:
            # A name that is no module of the project (`import a.b` of an attribute) runs its nearest package.
            while target and target not in modules:
                target = target.rpartition(".")[0]
            if target and target != module.name:
                edges.setdefault(target, imp.line)
    return edges


def _reachable(start: str, edges: dict[str, dict[str, int]]) -> set[str]:
    found, todo = set(), list(edges[start])
    while todo:
        name = todo.pop()
        if name not in found:
            found.add(name)
            todo.extend(edges[name])
    return found


def _shortest_cycle(start: str, edges: dict[str, dict[str, int]]) -> list[str]:
    """start -> ... -> start through the fewest imports (start is on a cycle)."""
    came_from, todo = {}, deque([start])
    while start not in came_from:
        name = todo.popleft()
        for target in edges[name]:
            if target not in came_from:
                came_from[target] = name
                todo.append(target)
    cycle = [start, came_from[start]]
    while cycle[-1] != start:
        cycle.append(came_from[cycle[-1]])
    return cycle[::-1]


if __name__ == "__main__":
    sys.exit(main())
