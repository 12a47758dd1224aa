"""The dependency rule of DESIGN.md section 2, enforced by reading import statements."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
ARRAY_LIBS = {"numpy", "cupy", "torch", "cupyx"}
# Core modules allowed to import NumPy, and why: each is host-side by nature.
HOST_SIDE = {
    "initial_weights.py": "initial weights from a host numpy.random.Generator",
    "host_rng.py": "batch orders and splits from a host numpy.random.Generator",
    "fingerprints.py": "a hash of the data's bytes, on the host",
    "sample_weights.py": "users' sample and class weights, checked on the host",
    "gradcheck.py": "the float64 NumPy reference, perturbed entry by entry on the host",
    "consistency.py": "host batches, and relative norms of host copies vs the reference",
    "io.py": "model files: .npy members read and written on the host",
    "checkpoint.py": "checkpoint files: host copies of the training state",
    "datasets.py": "data loading from files, on the host",
    "csvfile.py": "CSV files read on the host",
    "cli/commands.py": "the CLI's input and output files",
    "cli/data.py": "the CLI's data files, split and classes, on the host",
    **dict.fromkeys(
        [f"sklearn/{m}.py" for m in ("_base", "_epochs", "_lbfgs", "_estimators")],
        "scikit-learn's interface: NumPy arrays in and out",
    ),
    "distributed.py": "each rank's share of the host permutation",
    "sharded.py": "MPI's host buffers of a sharded optimizer update (NumPy arrays only)",
    "streaming.py": "rows gathered from host memory maps",
    "targets.py": "class labels as users hold them (text, any hashable values), on the host",
    "input_scale.py": "the scale of a fit's inputs, summed on the host or read off the device",
    "safetensors_file.py": "model files: tensors' bytes read and written on the host",
    "onnx_file.py": "ONNX files: initializers from host copies of the weights",
    "torch_modules.py": "torch modules built from host copies of the weights, to leave bpgpu",
    "converters.py": "weights of torch and scikit-learn models copied to the host",
}
# The floors of DESIGN.md / ARCHITECTURE.md, bottom up: a module imports (at the top or
# deferred inside a function) only modules on its own floor or below.
FLOORS = {
    "backends": 0,
    **dict.fromkeys(
        [
            "_errors",
            "_args",
            "_version",
            "activations",
            "costs",
            "layers",
            "optimizers",
            "schedules",
            "core",
            "inputs",
            "model",
            "scoring",
            "programs",
            "compiled_training",
            "graphs",
            "precision",
            "batches",
            "initial_weights",
            "host_rng",
            "fingerprints",
            "sample_weights",
            "targets",
        ],
        1,
    ),  # the math
    **dict.fromkeys(
        [
            "io",
            "checkpoint",
            "datasets",
            "csvfile",
            "_paths",
            "interchange",
            "safetensors_file",
            "onnx_file",
            "torch_modules",
        ],
        2,
    ),  # file formats
    **dict.fromkeys(
        [
            "history",
            "callbacks",
            "recovery",
            "epochs",
            "distributed",
            "sharded",
            "streaming",
            "settings",
            "runstate",
            "run_callbacks",
            "input_scale",
            "spans",
            "trainer",
            "training",
        ],
        3,
    ),  # training
    **dict.fromkeys(
        ["network", "network_files", "network_weights", "network_fit"], 4
    ),  # the MLP class, a thin face
    **dict.fromkeys(["gradcheck", "consistency", "converters"], 5),  # tools built on MLP
    **dict.fromkeys(
        ["cli", "__init__", "__main__", "bench", "sklearn"], 6
    ),  # the command line, the package
}


def imports(path: Path):
    """(module, level) for every import statement in a file."""
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, 0
        elif isinstance(node, ast.ImportFrom):
            yield node.module or "", node.level


def test_core_imports_no_array_library_outside_host_io():
    offenders = []
    for path in sorted((ROOT / "bpgpu").rglob("*.py")):
        for module, _ in imports(path):
            rel = path.relative_to(ROOT / "bpgpu").as_posix()
            if module.split(".")[0] in ARRAY_LIBS and rel not in HOST_SIDE:
                offenders.append(f"{path.relative_to(ROOT)} imports {module}")
    assert not offenders, "core code must use the backend's xp:\n" + "\n".join(offenders)


def test_backends_import_nothing_from_the_core():
    offenders = []
    for path in sorted((ROOT / "backends").rglob("*.py")):
        for module, level in imports(path):
            if module.split(".")[0] == "bpgpu" or level > 1:
                offenders.append(f"{path.relative_to(ROOT)} imports {'.' * level}{module}")
    assert not offenders, "backends/ must stand alone:\n" + "\n".join(offenders)


def test_the_rule_checker_sees_a_violation(tmp_path):
    """The checker itself can fail: a file importing torch is reported."""
    bad = tmp_path / "bad.py"
    bad.write_text("import os\nfrom torch import nn\n")
    assert ("torch", 0) in set(imports(bad))


def test_import_bpgpu_loads_no_gpu_library():
    code = "import sys, bpgpu; print(sorted(m for m in ('cupy', 'torch') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def module_graph(root: Path = ROOT / "bpgpu") -> dict[str, set[str]]:
    """bpgpu module -> the bpgpu modules it imports, deferred imports included.

    Names are paths under bpgpu/ without ``.py`` (``cli/commands``, ``__init__`` for the
    package itself); ``bpgpu.backends...`` is ``backends`` and ``bpgpu.bench...``
    ``bench``, outside this tree.
    """
    files = {p.relative_to(root).with_suffix("").as_posix(): p for p in root.rglob("*.py")}

    def resolve(dotted: str) -> str | None:
        parts = dotted.split(".")
        if parts[0] != "bpgpu":
            return None
        if len(parts) > 1 and parts[1] in ("backends", "bench"):
            return parts[1]
        for n in range(len(parts) - 1, 0, -1):  # the longest prefix that is a module
            name = "/".join(parts[1 : n + 1])
            if name in files:
                return name
            if f"{name}/__init__" in files:
                return f"{name}/__init__"
        return "__init__"

    graph: dict[str, set[str]] = {}
    for name, path in files.items():
        package = name.rsplit("/", 1)[0].replace("/", ".") if "/" in name else ""
        edges = set()
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            targets = []
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:  # relative: from the module's own package
                    up = ["bpgpu", *package.split(".")] if package else ["bpgpu"]
                    up = up[: len(up) - (node.level - 1)]
                    base = ".".join(up + ([base] if base else []))
                # `from bpgpu import io` imports the module bpgpu.io
                targets = [f"{base}.{a.name}" for a in node.names] + [base]
                targets = [t for t in targets if resolve(t) not in (None, "__init__")] or [base]
            for t in targets:
                r = resolve(t)
                if r is not None and r != name:
                    edges.add(r)
        graph[name] = edges
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle as a list of modules, or None."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(n: str) -> list[str] | None:
        state[n] = 1
        path.append(n)
        for m in sorted(graph.get(n, ())):
            if state.get(m) == 1:
                return path[path.index(m) :] + [m]
            if m not in state and (found := visit(m)):
                return found
        path.pop()
        state[n] = 2
        return None

    for n in sorted(graph):
        if n not in state and (found := visit(n)):
            return found
    return None


def floor(name: str) -> int:
    top = name.split("/")[0]
    return FLOORS[top] if top in FLOORS else FLOORS[name]


def test_no_import_cycle_among_bpgpu_modules_deferred_imports_included():
    cycle = find_cycle(module_graph())
    assert cycle is None, "import cycle: " + " -> ".join(cycle)


def test_every_module_imports_only_its_floor_or_below():
    graph = module_graph()
    unknown = [n for n in graph if n.split("/")[0] not in FLOORS and n not in FLOORS]
    assert not unknown, f"give these modules a floor in FLOORS: {unknown}"
    upward = [
        f"{n} (floor {floor(n)}) imports {m} (floor {floor(m)})"
        for n, edges in graph.items()
        for m in edges
        if floor(m) > floor(n)
    ]
    assert not upward, "imports that go up a floor:\n" + "\n".join(sorted(upward))


def test_the_cycle_finder_finds_a_deferred_cycle(tmp_path):
    """The checkers can fail: a deferred import that closes a loop is a cycle."""
    pkg = tmp_path / "bpgpu"
    pkg.mkdir()
    (pkg / "a.py").write_text("from bpgpu.b import f\n")
    (pkg / "b.py").write_text("def f():\n    from bpgpu import a\n")
    (pkg / "c.py").write_text("from . import a\n")
    graph = module_graph(pkg)
    assert graph["b"] == {"a"} and graph["c"] == {"a"}
    assert find_cycle(graph) in (["a", "b", "a"], ["b", "a", "b"])


# ---- size: a house you can read (STYLE.md, "Files stay small") -------------------------

CLASS_LINES = 360  # "a class past ~350 lines is two classes": code lines, docstrings not
# counted (the public API's numpydoc sections and Examples are required, not complexity)
FUNCTION_LINES = 80  # code lines, the docstring not counted
# declarative tables written as a function: one statement per option, nothing to follow
TABLES = {"cli/parser.py": {"add_commands"}}


def _docstring_lines(node) -> int:
    """The lines of ``node``'s own docstring (0 without one)."""
    first = node.body[0]
    if isinstance(first, ast.Expr) and isinstance(getattr(first, "value", None), ast.Constant):
        return first.end_lineno - first.lineno + 1 if isinstance(first.value.value, str) else 0
    return 0


def class_code_lines(node) -> int:
    """A class's lines without the docstrings of the class and its methods."""
    docs = sum(
        _docstring_lines(n)
        for n in ast.walk(node)
        if isinstance(n, (ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef))
    )
    return node.end_lineno - node.lineno + 1 - docs


def code_lines(node) -> int:
    """A function's lines without its docstring."""
    body = node.body
    first = body[0]
    is_doc = isinstance(first, ast.Expr) and isinstance(getattr(first, "value", None), ast.Constant)
    start = first.end_lineno + 1 if is_doc and len(body) > 1 else first.lineno
    return node.end_lineno - start + 1


def oversized(path: Path, rel: str) -> list[str]:
    found = []
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.ClassDef):
            n = class_code_lines(node)
            if n > CLASS_LINES:
                found.append(f"{rel}: class {node.name} is {n} code lines (> {CLASS_LINES})")
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            n = code_lines(node)
            if n > FUNCTION_LINES and node.name not in TABLES.get(rel, ()):
                found.append(f"{rel}: {node.name} has {n} code lines (> {FUNCTION_LINES})")
    return found


def test_no_class_or_function_outgrows_the_floor():
    found = []
    for top in ("bpgpu", "backends"):
        for path in sorted((ROOT / top).rglob("*.py")):
            found += oversized(path, path.relative_to(ROOT / top).as_posix())
    assert not found, "split these along a seam:\n" + "\n".join(found)


def test_the_size_checker_sees_a_long_function_and_a_long_class(tmp_path):
    body = "".join(f"    x{i} = {i}\n" for i in range(FUNCTION_LINES + 1))
    long_function = tmp_path / "f.py"
    long_function.write_text('def f():\n    """Doc."""\n' + body)
    assert oversized(long_function, "f.py") == [
        f"f.py: f has {FUNCTION_LINES + 1} code lines (> {FUNCTION_LINES})"
    ]
    long_function.write_text('def f():\n    """Doc."""\n' + body[: -len(body.splitlines()[-1]) - 1])
    assert oversized(long_function, "f.py") == []
    methods = "".join(
        f"    def m{i}(self):\n        return {i}\n\n" for i in range(CLASS_LINES // 3 + 1)
    )
    long_class = tmp_path / "c.py"
    long_class.write_text("class C:\n" + methods)
    assert [m.split(" is ")[0] for m in oversized(long_class, "c.py")] == ["c.py: class C"]
    # the same number of lines, most of them docstrings: not code
    doc = '        """Doc.\n\n        More.\n        """\n'
    documented = "".join(
        f"    def m{i}(self):\n{doc}        return {i}\n\n" for i in range(CLASS_LINES // 6)
    )
    long_class.write_text("class C:\n" + documented)
    assert documented.count("\n") > CLASS_LINES and oversized(long_class, "c.py") == []
