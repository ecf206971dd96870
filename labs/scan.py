"""Static integrity scan of the code a student wrote in a notebook: parsed with `ast`, never run.

Findings come in two kinds, each with a category, a short text, the cell (grade_id or "cell N") and a line.

forbidden ("re-implements"): uses of what the exercise asks the student to write. A lesson declares dotted
patterns ("hardswish*", "utils.checkpoint"); a pattern matches an identifier chain when its components match
consecutive components of the chain (case-sensitive fnmatch each). Chains come from names, attribute chains,
`getattr(obj, "literal")`, imports, and string constants that are dotted identifiers ("aten.hardswish"; prose
and docstrings never match). Names resolve through imports and aliases: `F.hardswish` is
`torch.nn.functional.hardswish`. A student's own name (`silu_x = ...`, `def checkpoint`) is not a use.

review: code that reaches for the grader or the runtime (IPython machinery, tracing, code objects,
introspection, native/unsafe, builtins, torch internals, patching modules, files and OS, network, processes,
dynamic lookups), and cells that do not parse. Never scored: an instructor reads them.

Module-rooted names: the cell's imports and simple aliases (`T = torch.Tensor`), those of the notebook's other
cells, and `SETUP_NAMES` (what the lessons' setup cells bind: torch, F, nn, Function, ...) unless rebound in
the notebook's namespace. Module rules (subprocess, os, ...) apply to chains rooted there and to unshadowed
builtins, so a student's own variable `signal` is not the signal module. Patching is a store or delete on an
attribute of a module-rooted chain (`torch.allclose = ...`, `torch.Tensor.__gt__ = ...`, `Function.apply =
...`) or rebinding a setup name at module level; attributes of other objects (`ctx.x = x`, `self.w = w`) are
the student's own.
"""

from __future__ import annotations

import ast
import functools
import re
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass
from fnmatch import fnmatchcase


@dataclass(frozen=True)
class Finding:
    kind: str        # "forbidden" or "review"
    category: str    # "re-implements", "patching modules", ...
    what: str        # e.g. "uses torch.nn.functional.hardswish", "patches torch.allclose"
    cell: str        # grade_id of the cell, or "cell 7"
    line: int


SETUP_NAMES: dict[str, str] = {m: m for m in (
    "torch", "math", "numpy", "os", "sys", "builtins", "warnings", "functools", "inspect", "random",
    "matplotlib", "IPython", "time")} | {
    "F": "torch.nn.functional", "nn": "torch.nn", "np": "numpy", "plt": "matplotlib.pyplot",
    "Function": "torch.autograd.Function", "gradcheck": "torch.autograd.gradcheck",
    "gradgradcheck": "torch.autograd.gradgradcheck", "torch_checkpoint": "torch.utils.checkpoint.checkpoint",
    "checkpoint_sequential": "torch.utils.checkpoint.checkpoint_sequential", "_probe": "_probe"}

# Builtins that reach for the runtime; unshadowed, `exec` resolves to `builtins.exec` for the rules below.
_BUILTINS = {"open", "get_ipython", "__IPYTHON__", "In", "Out", "vars", "globals", "locals", "setattr", "delattr",
             "__import__", "exec", "eval", "compile", "breakpoint", "__builtins__"}

# (category, chain prefixes, fnmatch per component): the first rule with a prefix of a resolved chain decides.
_RULES = [(category, [p.split(".") for p in prefixes.split()]) for category, prefixes in (
    ("tracing", "sys.settrace sys.setprofile sys.monitoring sys.addaudithook threading.settrace* "
                "threading.setprofile*"),
    ("introspection", "sys._getframe sys._current_frames gc inspect"),
    ("dynamic lookups", "sys.modules builtins.vars"),
    ("processes", "subprocess multiprocessing signal threading concurrent pty _thread os.system os.fork* os.exec* "
                  "os.spawn* os.kill* os.popen os._exit os.posix_spawn* os.abort asyncio.create_subprocess_*"),
    ("network", "socket ssl urllib http requests httpx ftplib smtplib telnetlib xmlrpc aiohttp websockets "
                "asyncio.open_connection asyncio.start_server"),
    ("files and OS", "os io pathlib shutil tempfile glob fileinput sqlite3 builtins.open"),
    ("IPython machinery", "IPython ipykernel jupyter_client zmq builtins.get_ipython builtins.__IPYTHON__ "
                          "builtins.In builtins.Out"),
    ("native/unsafe", "ctypes _ctypes cffi mmap marshal pickle dill cloudpickle shelve"),
    ("builtins", "builtins importlib"),
    ("torch internals", "torch.ops torch.library torch.overrides"),
)]

# Attribute (or name) components that are findings wherever they appear in a chain.
_ATTRS = {a: "code objects" for a in ("__code__", "__closure__", "__globals__", "__defaults__", "__kwdefaults__",
                                      "__subclasses__", "__mro__", "__bases__", "__getattribute__", "__setattr__",
                                      "__delattr__")} | {
    a: "introspection" for a in ("f_back", "f_globals", "f_locals", "f_builtins", "f_code", "tb_frame", "gi_frame",
                                 "cr_frame", "ag_frame")} | {
    a: "torch internals" for a in ("__torch_function__", "__torch_dispatch__", "TorchFunctionMode",
                                   "TorchDispatchMode", "_disable_current_modes")} | {
    "__builtins__": "builtins", "__dict__": "dynamic lookups"}

_DOTTED = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$")


def matches(pattern: str, chain: Sequence[str]) -> bool:
    """Whether the components of `pattern` match consecutive components of `chain` (fnmatch each)."""
    parts = pattern.split(".")
    return any(all(fnmatchcase(c, p) for c, p in zip(chain[i:i + len(parts)], parts, strict=True))
               for i in range(len(chain) - len(parts) + 1))


def _literal_getattr(node: ast.AST) -> bool:
    return (isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "getattr"
            and len(node.args) >= 2 and isinstance(node.args[1], ast.Constant) and isinstance(node.args[1].value, str))


def _chain(node: ast.AST) -> list[str]:
    """Identifier chain of a name, attribute or getattr with a literal name; "" stands for any other root."""
    if isinstance(node, ast.Name):
        return [node.id]
    if isinstance(node, ast.Attribute):
        return _chain(node.value) + [node.attr]
    if _literal_getattr(node):
        return _chain(node.args[0]) + [node.args[1].value]
    return [""]


def _imports(tree: ast.AST) -> Iterator[tuple[ast.stmt, str, str | None, str]]:
    """(statement, full dotted path, the name it binds or None, the path that name refers to) per import."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for a in node.names:
                yield node, a.name, a.asname or a.name.split(".")[0], a.name if a.asname else a.name.split(".")[0]
        elif isinstance(node, ast.ImportFrom):
            for a in node.names:
                full = ".".join(p for p in (node.module, a.name if a.name != "*" else None) if p)
                yield node, full, None if a.name == "*" else a.asname or a.name, full


_DEFS = ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef


def _module_scope(tree: ast.AST) -> Iterator[ast.AST]:
    """The nodes of a cell that run in the notebook's namespace (not inside functions, classes, comprehensions)."""
    todo = list(ast.iter_child_nodes(tree))
    while todo:
        node = todo.pop()
        yield node
        if not isinstance(node, _DEFS | ast.Lambda | ast.ListComp | ast.SetComp | ast.DictComp | ast.GeneratorExp):
            todo.extend(ast.iter_child_nodes(node))


def _bound_name(node: ast.AST) -> str | None:
    if isinstance(node, _DEFS):
        return node.name
    if isinstance(node, ast.Name) and not isinstance(node.ctx, ast.Load):
        return node.id
    return node.arg if isinstance(node, ast.arg) else None


def _bound(tree: ast.AST, module_scope: bool = False) -> set[str]:
    """Names the code binds itself (assignments, arguments, definitions; imports left out)."""
    return {n for node in (_module_scope(tree) if module_scope else ast.walk(tree)) if (n := _bound_name(node))}


def _names(tree: ast.AST, inherited: Mapping[str, str], bound: set[str]) -> dict[str, str]:
    """The module-rooted names of a cell: {name: dotted path}."""
    names = {k: v for k, v in inherited.items() if k not in bound}
    names |= {bind: ref for _, _, bind, ref in _imports(tree) if bind}
    for node in ast.walk(tree):  # simple aliases: x = torch.autograd (breadth first: in order within a block)
        if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
            chain = _chain(node.value)
            if chain[0] in names:
                names[node.targets[0].id] = ".".join([names[chain[0]], *chain[1:]])
    return names


def _text(chain: Sequence[str]) -> str:
    return ".".join(c or "(...)" for c in chain)


def _rule(full: list[str]) -> str | None:
    if full[0] == "torch" and any(c.startswith("_") and not c.endswith("__") for c in full[1:]):
        return "torch internals"
    return next((cat for cat, prefixes in _RULES for p in prefixes
                 if len(full) >= len(p) and all(fnmatchcase(c, q) for c, q in zip(full, p, strict=False))), None)


@functools.lru_cache(maxsize=4096)  # a class shares most cells; the trees are only read
def parse(source: str) -> tuple[ast.Module | None, SyntaxError | None, bool]:
    """(tree, error, whether IPython syntax -- magics, shell escapes -- had to be transformed first)."""
    try:
        return ast.parse(source), None, False
    except SyntaxError as err:
        try:
            from IPython.core.inputtransformer2 import TransformerManager
            return ast.parse(TransformerManager().transform_cell(source)), None, True
        except (ImportError, SyntaxError, ValueError):
            return None, err, False
        except (MemoryError, RecursionError):
            return None, _too_deep(), False
    except (MemoryError, RecursionError):  # nested past what Python's parser takes: it cannot compile it either
        return None, _too_deep(), False


def _too_deep() -> SyntaxError:
    err = SyntaxError("nested too deeply for Python to compile")
    err.lineno = 1
    return err


def scan_source(source: str, cell: str, forbidden: Sequence[str] = (),
                names: Mapping[str, str] = SETUP_NAMES, own: Collection[str] = ()) -> list[Finding]:
    """Findings in one cell. `names`: module-rooted names bound elsewhere ({name: dotted path});
    `own`: names the student's other cells bind (their own functions and variables)."""
    return list(_scan_source(source, cell, tuple(forbidden), frozenset(names.items()), frozenset(own)))


@functools.lru_cache(maxsize=4096)  # the same cell in the same notebook context: the same findings
def _scan_source(source: str, cell: str, forbidden: tuple[str, ...], names_items: frozenset,
                 own: frozenset[str]) -> tuple[Finding, ...]:
    names = dict(names_items)
    tree, error, magic = parse(source)
    if tree is None:
        return (Finding("review", "does not parse", f"does not parse: {error.msg}", cell, error.lineno or 0),)
    found: list[Finding] = []
    shadowed = _bound(tree, module_scope=True) | set(own)  # no longer what the setup or an import bound
    bound = _bound(tree) | set(own)
    known = _names(tree, names, shadowed)
    parent = {child: node for node in ast.walk(tree) for child in ast.iter_child_nodes(node)}

    def add(node: ast.AST, kind: str, category: str, what: str) -> None:
        found.append(Finding(kind, category, what, cell, getattr(node, "lineno", 1)))

    def check(node: ast.AST, raw: list[str], full: list[str] | None, verb: str, label: str = "") -> None:
        mine = full is None and raw[0] in bound  # the student's own name: only its attributes can match
        what = f"{verb} {label or _text(raw if full in (None, ['builtins', *raw]) else full)}"
        if any(matches(p, chain) for p in forbidden for chain in (raw[1:] if mine else raw, full or ())):
            add(node, "forbidden", "re-implements", what)
        for category in [_ATTRS[c] for c in raw if c in _ATTRS] + [_rule(full) if full else None]:
            if category:
                add(node, "review", category, what)

    if magic:
        add(tree.body[0] if tree.body else tree, "review", "IPython machinery", "uses IPython magics or shell escapes")
    for stmt, full, _, _ in _imports(tree):
        check(stmt, full.split("."), full.split("."), "imports")
    for node in _module_scope(tree):  # a setup name rebound in the notebook's namespace, for every later cell
        if (name := _bound_name(node)) in SETUP_NAMES:
            add(node, "review", "patching modules", f"rebinds {name}")
    for node in ast.walk(tree):
        up = parent.get(node)
        if isinstance(node, ast.Name | ast.Attribute) or _literal_getattr(node):
            if (isinstance(up, ast.Attribute) and up.value is node) or (_literal_getattr(up) and up.args[0] is node):
                continue  # whole chains only
            raw = _chain(node)
            full = (known[raw[0]].split(".") + raw[1:] if raw[0] in known else
                    ["builtins", *raw] if raw[0] in _BUILTINS and raw[0] not in shadowed else None)
            reads_env = isinstance(up, ast.Subscript) and isinstance(up.ctx, ast.Load) and full == ["os", "environ"]
            if reads_env or (full or [])[:3] in (["os", "environ", "get"], ["os", "getenv"]):
                continue  # reading the environment (LAB_DEVICE) is fine
            store = not isinstance(getattr(node, "ctx", ast.Load()), ast.Load)
            if store and raw[-1] == "__class__":
                add(node, "review", "code objects", f"assigns {_text(raw)}")
            if store and full and len(raw) > 1:  # what it patches says enough
                add(node, "review", "patching modules",
                    f"{'deletes' if isinstance(node.ctx, ast.Del) else 'patches'} {'.'.join(full)}")
            elif store and len(raw) == 1:  # the student's own variable, unless a special name
                if raw[0] in _ATTRS:
                    add(node, "review", _ATTRS[raw[0]], f"defines {raw[0]}")
            else:
                check(node, raw, full, "uses")
        elif isinstance(node, ast.Constant) and isinstance(node.value, str) and _DOTTED.match(node.value) \
                and not isinstance(up, ast.Expr):  # a bare string statement (docstring) does nothing
            check(node, node.value.split("."), None, "uses", f'"{node.value}"')
        elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.name in _ATTRS:
            add(node, "review", _ATTRS[node.name], f"defines {node.name}")
        elif isinstance(node, ast.ClassDef) and any("Tensor" in ast.unparse(b) for b in node.bases):
            add(node, "review", "torch internals", f"subclasses a Tensor ({node.name})")
        elif isinstance(node, ast.Call):
            func, args = _chain(node.func), node.args
            if func[0] in ("getattr", "hasattr") and func[0] not in shadowed and len(args) >= 2 and not (
                    isinstance(args[1], ast.Constant) and isinstance(args[1].value, str)):
                add(node, "review", "dynamic lookups", f"{func[0]} with a computed name")
            if func[-1] in ("display", "publish_display_data") and (
                    any(k.arg == "raw" for k in node.keywords) or any(isinstance(a, ast.Dict) for a in args)):
                add(node, "review", "IPython machinery", "displays a raw MIME bundle")
    return tuple(_tidy(found))


def _tidy(found: list[Finding], order: Mapping[str, int] | None = None) -> list[Finding]:
    """One finding per (kind, what, cell), the first line kept; in cell order, then by line."""
    first: dict[tuple[str, str, str], Finding] = {}
    for f in sorted(found, key=lambda f: f.line):
        first.setdefault((f.kind, f.what, f.cell), f)
    return sorted(first.values(), key=lambda f: ((order or {}).get(f.cell, 0), f.line, f.kind, f.category, f.what))


def _nbgrader(cell) -> dict:
    return cell.get("metadata", {}).get("nbgrader") or {}


def is_student_cell(cell) -> bool:
    """An answer cell (nbgrader solution) or a code cell without nbgrader metadata (one the student added)."""
    return cell.get("cell_type") == "code" and (not _nbgrader(cell) or bool(_nbgrader(cell).get("solution")))


def scan_notebook(nb, forbidden: Sequence[str] = (), student_cells: Callable[[object], bool] | None = None,
                  *, source=None) -> list[Finding]:
    """Findings in the student cells of `nb` (`student_cells`, default `is_student_cell`), names resolved through
    the imports of every code cell. With `source` (the instructor's notebook), a finding in a cell without
    nbgrader metadata is dropped when its line is, verbatim, one of the instructor's code lines: the release's
    own demonstration cells (which call F.hardswish to compare) are not the student's code."""
    chosen = student_cells or is_student_cell
    codes = [(i, c, parse(c.source)[0]) for i, c in enumerate(nb.cells) if c.get("cell_type") == "code"]
    names = dict(SETUP_NAMES)
    for _, _, tree in codes:  # imports and aliases hold for every later cell (and, run out of order, earlier ones)
        names = _names(tree, names, set()) if tree else names
    own = {n for _, c, tree in codes if tree and chosen(c) for n in _bound(tree, module_scope=True)} - names.keys()
    instructor = {ln.strip() for c in (source.cells if source else ()) if c.get("cell_type") == "code"
                  for ln in c.source.splitlines() if ln.strip()}
    found, order = [], {}
    for i, c, _ in codes:
        if not chosen(c):
            continue
        cell = _nbgrader(c).get("grade_id") or f"cell {i}"
        order.setdefault(cell, i)
        lines = c.source.splitlines()
        found += [f for f in scan_source(c.source, cell, forbidden, names, own) if _nbgrader(c).get("solution")
                  or not 0 < f.line <= len(lines) or lines[f.line - 1].strip() not in instructor]
    return _tidy(found, order)
