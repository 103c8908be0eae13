"""The codebase's shape: helpers/ is exactly what the notebooks import (no tools, no CLI), and no
block of code is written twice between the notebooks and the helpers."""

import ast
import re
from collections import defaultdict
from pathlib import Path

import nbformat

from tools import student

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
HELPERS = sorted((ROOT / "helpers").rglob("*.py"))


def _code(path: Path):
    """(place, source) of every code cell of a notebook, or of a module."""
    if path.suffix == ".ipynb":
        cells = nbformat.read(path, as_version=4).cells
        return [(f"{path.name} cell {i}", student.as_python(c.source)) for i, c in enumerate(cells)
                if c.cell_type == "code"]
    return [(str(path.relative_to(ROOT)), path.read_text())]


class _Anonymous(ast.NodeTransformer):
    """Variable and argument names replaced by v0, v1, ... in order of appearance: a copy with
    renamed variables is still a copy."""

    def __init__(self):
        self.names: dict[str, str] = {}

    def visit_Name(self, node):
        return ast.Name(id=self.names.setdefault(node.id, f"v{len(self.names)}"), ctx=ast.Load())

    def visit_arg(self, node):
        node.arg, node.annotation = self.names.setdefault(node.arg, f"v{len(self.names)}"), None
        return node


def repeated_blocks(paths, window: int = 3, min_nodes: int = 40) -> list[list[str]]:
    """Places where the same `window` consecutive statements (at least `min_nodes` AST nodes,
    names anonymised) appear in more than one file."""
    seen = defaultdict(list)
    for path in paths:
        for place, source in _code(path):
            for node in ast.walk(ast.parse(source)):
                body = getattr(node, "body", None)
                if not (isinstance(body, list) and body and isinstance(body[0], ast.stmt)):
                    continue
                for i in range(len(body) - window + 1):
                    block = body[i:i + window]
                    if any(isinstance(s, (ast.FunctionDef, ast.ClassDef, ast.Import,
                                          ast.ImportFrom)) for s in block):
                        continue  # a definition is compared through its own body
                    tree = _Anonymous().visit(ast.parse("\n".join(ast.unparse(s) for s in block)))
                    if sum(1 for _ in ast.walk(tree)) >= min_nodes:
                        seen[ast.dump(tree)].append((path, f"{place}, line {block[0].lineno}"))
    return [[where for _, where in places] for places in seen.values()
            if len({path for path, _ in places}) > 1]


def test_no_block_of_code_is_written_twice_between_notebooks_and_helpers():
    assert repeated_blocks([*NOTEBOOKS, *HELPERS]) == []


def test_the_duplicate_finder_finds_a_copy_with_renamed_variables(tmp_path):
    original = ROOT / "helpers" / "diffusion.py"
    source = ast.parse(original.read_text())
    sampler = next(n for n in source.body if getattr(n, "name", "") == "ddim_sample")
    copy = re.sub(r"\blevel\b", "a_t", ast.unparse(sampler)).replace("ddim_sample", "my_sampler")
    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(copy)])
    nbformat.write(notebook, tmp_path / "copy.ipynb")
    assert repeated_blocks([original, tmp_path / "copy.ipynb"]) != []


MODULES = {".".join(p.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__"): p
           for p in HELPERS}


def _imports(source: str, package: str = "") -> set[str]:
    """The helpers modules that `source` (of a module in `package`) imports."""
    found = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: from . import x, from ..stub import STUB
                parent = package.split(".")[:len(package.split(".")) - node.level + 1]
                base = ".".join([*parent, *([base] if base else [])])
            for name in [f"{base}.{a.name}" for a in node.names] + [base]:
                if name in MODULES:
                    found.add(name)
        elif isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name in MODULES}
    if "pkgutil.iter_modules(__path__)" in source:  # a package that imports all its modules
        found |= {m for m in MODULES if m.startswith(f"{package}.")}
    return found


def test_helpers_hold_only_what_the_notebooks_import():
    """Every helpers module is imported by a notebook, or by a module a notebook imports; and
    none is a command-line tool (those live in tools/)."""
    reached, todo = set(), [(source, "") for nb in NOTEBOOKS for _, source in _code(nb)]
    while todo:
        source, package = todo.pop()
        for module in _imports(source, package) - reached:
            reached.add(module)
            path = MODULES[module]
            todo.append((path.read_text(), module if path.name == "__init__.py"
                         else module.rsplit(".", 1)[0]))
    assert sorted(set(MODULES) - reached) == [], "helpers that no notebook needs"
    for path in HELPERS:
        text = path.read_text()
        assert "__main__" not in text and "argparse" not in text, f"{path.name} is a tool"


def _bindings(tree: ast.Module, module: str) -> dict[str, tuple]:
    """What each name imported at the top of a helpers module (or a notebook, module '') stands
    for: ('module', 'helpers.x') for a helpers module, ('def', 'helpers.x', 'name') for one of
    its functions, classes or values."""
    package = module if MODULES.get(module, Path()).name == "__init__.py" else \
        module.rsplit(".", 1)[0]
    found = {}
    for node in ast.walk(tree):  # also inside a try (the set-up cell) or a function
        if not isinstance(node, (ast.Import, ast.ImportFrom)):
            continue
        base = getattr(node, "module", None) or ""
        if getattr(node, "level", 0):
            parent = package.split(".")[:len(package.split(".")) - node.level + 1]
            base = ".".join([*parent, *([base] if base else [])])
        for alias in node.names:
            if isinstance(node, ast.Import):
                if alias.name in MODULES:
                    found[alias.asname or alias.name] = ("module", alias.name)
            elif f"{base}.{alias.name}" in MODULES:
                found[alias.asname or alias.name] = ("module", f"{base}.{alias.name}")
            elif base in MODULES:
                found[alias.asname or alias.name] = ("def", base, alias.name)
    return found


def _uses(nodes, module: str, bindings: dict, defined: set) -> set[tuple[str, str]]:
    """(module, name) of every helpers definition that the code of `nodes` names."""
    used = set()
    for node in (n for top in nodes for n in ast.walk(top)):
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) \
                and bindings.get(node.value.id, ("",))[0] == "module":
            used.add((bindings[node.value.id][1], node.attr))
        elif isinstance(node, ast.Name):
            if bindings.get(node.id, ("",))[0] == "def":
                used.add(bindings[node.id][1:])
            elif node.id in defined:
                used.add((module, node.id))
    return used


def helpers_graph():
    """{(module, name): definitions it uses} for every top-level function and class of helpers/,
    and {module: definitions its top-level statements use} (run when it is imported)."""
    defs, on_import, bindings = {}, {}, {}
    for module, path in MODULES.items():
        tree = ast.parse(path.read_text())
        bindings[module] = _bindings(tree, module)
        defined = {n.name for n in tree.body if isinstance(n, (ast.FunctionDef, ast.ClassDef))}
        for node in tree.body:
            if isinstance(node, (ast.FunctionDef, ast.ClassDef)):
                defs[(module, node.name)] = _uses([node], module, bindings[module], defined)
            elif not isinstance(node, (ast.Import, ast.ImportFrom)):
                on_import.setdefault(module, set()).update(
                    _uses([node], module, bindings[module], defined))
    return defs, on_import, bindings


def reached_from(sources: list[str]) -> set[tuple[str, str]]:
    """The helpers definitions that code (notebook cells or modules) reaches, transitively."""
    defs, on_import, bindings = helpers_graph()
    todo = set()
    for source in sources:
        tree = ast.parse(source)
        todo |= _uses([tree], "", _bindings(tree, ""), set())
    reached = set()
    while todo:
        item = todo.pop()
        module, name = item
        target = bindings.get(module, {}).get(name)
        if target and target[0] == "def":  # re-exported: the real one
            todo.add(target[1:])
        if MODULES.get(module, Path()).name == "__init__.py":  # helpers.checks exports every
            todo |= {(m, n) for m, n in defs if m.startswith(f"{module}.") and n == name}
        if item in reached:
            continue
        reached.add(item)
        todo |= defs.get(item, set()) | on_import.get(module, set())
    return {item for item in reached if item in defs}


def test_every_helpers_function_serves_a_notebook_not_only_the_harness():
    """Each function and class in helpers/ is reached from a notebook's code (directly or through
    other helpers). One that only tools/ or the tests reach belongs in tools/: the lesson code
    holds nothing that exists for the harness."""
    defs, _, _ = helpers_graph()
    from_notebooks = reached_from(["\n".join(src for _, src in _code(nb)) for nb in NOTEBOOKS])
    only_elsewhere = sorted(f"{m}.{n}" for m, n in set(defs) - from_notebooks)
    assert only_elsewhere == [], f"not used by any notebook: {only_elsewhere}"


def test_the_reachability_walk_sees_a_function_that_only_a_tool_uses(tmp_path):
    defs, _, _ = helpers_graph()
    some = reached_from(["from helpers import train\ntrain.fit(model, loss, batches, 10)"])
    assert ("helpers.train", "fit") in some and ("helpers.train", "adam") in some
    assert ("helpers.evaluate", "fid") not in some
