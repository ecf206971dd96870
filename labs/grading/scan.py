"""Static review scan of the code a student wrote in a notebook: parsed with `ast`, never run, never scored.

What it decides: nothing. Every finding is a review flag for an instructor (grader.Judge lists them in the
report). Zero for delegation is given only on runtime evidence: a graded test's own probes' op and call logs
(labs/grading/probekit.py, labs/grading/judge.py). A name in a cell is never evidence.

Which cells: with the source notebook, every code cell whose text differs from each of the source's code
cells (blank lines ignored; a locked cell as the release shows it, hidden tests dropped, counts as the
source's). Metadata the student wrote decides nothing.

Findings have a kind, a category, a short text, the cell (grade_id or "cell N") and a line.
- "forbidden" (category "re-implements", still only a flag): a use of what the exercise re-implements. A
  lesson declares dotted patterns ("hardswish*"); a pattern matches an identifier chain when its components
  match consecutive components of the chain (fnmatch each). Chains come from names, attribute chains,
  `getattr(obj, "literal")`, imports and dotted string constants; names resolve through imports and
  aliases (`F.hardswish` is `torch.nn.functional.hardswish`). It counts only where an answer could run it:
  inside a def, class or a lambda bound to a name, an alias or import, in a cell that binds a name one of
  the source's answer cells binds. A scratch comparison at module level (`print(mine(x) - F.hardswish(x))`)
  or in a scratch cell is not flagged: if the answer runs the built-in, its probes' logs show it.
- "review": code outside the lesson's allowlist (`allow`: dotted patterns, the first component resolved
  through the setup's names, "F.*" is torch.nn.functional.*; a module-rooted chain is covered when each
  component of the shorter of chain and pattern matches), and, allowlist or not, code that reaches for the
  grader or the runtime (IPython machinery, tracing, code objects, introspection, native/unsafe, builtins,
  string execution, torch internals, patching modules, files and OS, network, processes and threads,
  dynamic lookups such as a computed getattr), binding or `global`-declaring a name the grader's own code
  uses (`_probe`, every name the source's setup and hidden regions bind), cells that do not parse, and
  notebooks over the scan's bounds.

Bounds: a cell over `MAX_CELL_CHARS` is not parsed (a flag); the scan stops after `MAX_CELLS` code cells or
`MAX_NOTEBOOK_CHARS` scanned characters (a flag). Each cell is scanned once against names shared by the
whole notebook (never copied per cell), so the time is linear in the notebook's size.

What it cannot prove: anything about what runs. Python is dynamic; a determined student can reach any
name without writing it. That is why it only flags.

`hidden_region_problems(source)` is the gate's side: a hidden-test region that compares in the kernel
(assert, comparisons, allclose and friends, a difference of two results) or calls a helper the student
could rebind (a `_name` not defined by the setup's hidden region or the region itself).
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


def _names_into(tree: ast.AST, names: dict[str, str], lookup: Mapping[str, str] | None = None) -> None:
    """Adds a cell's module-rooted names to `names` in place ({name: dotted path}): its imports and its
    simple aliases (`x = torch.autograd`), resolved through `lookup` (default: `names` itself)."""
    lookup = names if lookup is None else lookup
    names.update({bind: ref for _, _, bind, ref in _imports(tree) if bind})
    for node in ast.walk(tree):  # simple aliases: x = torch.autograd (breadth first: in order within a block)
        if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
            chain = _chain(node.value)
            if chain[0] in names or chain[0] in lookup:
                root = names[chain[0]] if chain[0] in names else lookup[chain[0]]
                names[node.targets[0].id] = ".".join([root, *chain[1:]])


def _text(chain: Sequence[str]) -> str:
    return ".".join(c or "(...)" for c in chain)


def _rule(full: list[str]) -> str | None:
    if full[0] == "torch" and any(c.startswith("_") and not c.endswith("__") for c in full[1:]):
        return "torch internals"
    return next((cat for cat, prefixes in _RULES for p in prefixes
                 if len(full) >= len(p) and all(fnmatchcase(c, q) for c, q in zip(full, p, strict=False))), None)


MAX_CELL_CHARS = 100_000      # one cell the scan parses (the lessons' largest is under 5,000)
MAX_NOTEBOOK_CHARS = 1_000_000  # all the cells it scans in one notebook
MAX_CELLS = 2_000             # code cells of one notebook


def parse(source: str) -> tuple[ast.Module | None, SyntaxError | None, bool]:
    """(tree, error, whether IPython syntax -- magics, shell escapes -- had to be transformed first).
    A source over `MAX_CELL_CHARS` is not parsed: it is an error (a review flag), in bounded time."""
    if len(source) > MAX_CELL_CHARS:
        err = SyntaxError(f"over {MAX_CELL_CHARS:,} characters: too large to scan")
        err.lineno = 1
        return None, err, False
    return _parse(source)


@functools.lru_cache(maxsize=1024)  # a class shares most cells; the trees are only read
def _parse(source: str) -> tuple[ast.Module | None, SyntaxError | None, bool]:
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
                names: Mapping[str, str] = SETUP_NAMES, own: Collection[str] = (), *,
                allow: Sequence[str] = (), reserved: Collection[str] = ()) -> list[Finding]:
    """Findings in one cell. `names`: module-rooted names bound elsewhere ({name: dotted path});
    `own`: names the student's other cells bind (their own functions and variables); `allow`: the
    lesson's allowlist (dotted patterns, prefixes of a resolved chain; empty: no allowlist);
    `reserved`: names the grader's hidden code uses (binding one is a flag). Neither `names` nor
    `own` is copied: a notebook's cells share them, so scanning a notebook stays linear."""
    return _scan_source(source, cell, tuple(forbidden), names, own, _allowed(allow, names), frozenset(reserved))


def _allowed(allow: Sequence[str], names: Mapping[str, str] = SETUP_NAMES) -> tuple[list[str], ...]:
    """Allow patterns as component lists, their first component resolved through the setup's names
    ("F.*" is torch.nn.functional.*)."""
    out = []
    for pattern in allow:
        head, *rest = pattern.split(".")
        root = names.get(head, SETUP_NAMES.get(head, head)) if head != "*" else head
        out.append(root.split(".") + rest)
    return tuple(out)


def allowed(chain: Sequence[str], allow: Sequence[Sequence[str]]) -> bool:
    """Whether a resolved chain is covered by one of the (resolved) allow patterns: each component
    of the shorter of the two matches (fnmatch), so `import torch` is covered by "torch.*", and
    "torch.*" covers torch.nn.functional.relu."""
    return any(all(fnmatchcase(c, p) for c, p in zip(chain, pattern, strict=False)) for pattern in allow)


class _Scope(Mapping):
    """A cell's module-rooted names: its own imports and aliases over the notebook's, without the
    names the cell or the student's other cells bind themselves (no copy of the notebook's)."""

    def __init__(self, local: dict[str, str], inherited: Mapping[str, str], hidden: Collection[str],
                 hidden_too: Collection[str]):
        self.local, self.inherited, self.hidden, self.hidden_too = local, inherited, hidden, hidden_too

    def __getitem__(self, name: str) -> str:
        if name in self.local:
            return self.local[name]
        if name in self.hidden or name in self.hidden_too:
            raise KeyError(name)
        return self.inherited[name]

    def __iter__(self):
        return iter({**{k: 1 for k in self.inherited if k not in self.hidden and k not in self.hidden_too},
                     **self.local})

    def __len__(self) -> int:
        return sum(1 for _ in self)


class _Either:
    """Membership in either of two collections, without building their union."""

    def __init__(self, a: Collection[str], b: Collection[str]):
        self.a, self.b = a, b

    def __contains__(self, name) -> bool:
        return name in self.a or name in self.b


def _scan_source(source: str, cell: str, forbidden: tuple[str, ...], names: Mapping[str, str],
                 own: Collection[str], allow: tuple[list[str], ...], reserved: frozenset[str]) -> list[Finding]:
    tree, error, magic = parse(source)
    if tree is None:
        return [Finding("review", "does not parse", f"does not parse: {error.msg}", cell, error.lineno or 0)]
    found: list[Finding] = []
    cell_shadowed = _bound(tree, module_scope=True)
    shadowed = _Either(cell_shadowed, own)  # no longer what the setup or an import bound
    bound = _Either(_bound(tree), own)
    local: dict[str, str] = {}
    known = _Scope(local, names, cell_shadowed, own)
    _names_into(tree, local, known)
    parent = {child: node for node in ast.walk(tree) for child in ast.iter_child_nodes(node)}

    top: set[ast.AST] = set()  # run at module level: not in a def or class, nor in a lambda bound to a name
    todo = list(ast.iter_child_nodes(tree))
    while todo:
        node = todo.pop()
        top.add(node)
        up = parent.get(node)
        bound_lambda = isinstance(node, ast.Lambda) and isinstance(up, ast.Assign | ast.AnnAssign | ast.NamedExpr)
        if not isinstance(node, _DEFS) and not bound_lambda:
            todo.extend(ast.iter_child_nodes(node))

    def _comparison(node: ast.AST) -> bool:
        """A use at module level that binds nothing to it (`print(mine(x) - F.hardswish(x))`): a scratch
        comparison, not a flag. Inside a function, class or lambda, or as the value of an assignment
        (`hard_swish_custom = F.hardswish`), it may be what the answer runs: a flag."""
        up = parent.get(node)
        return node in top and not isinstance(node, ast.stmt) and not (
            isinstance(up, ast.Assign | ast.AnnAssign | ast.AugAssign | ast.NamedExpr) and up.value is node)

    def add(node: ast.AST, kind: str, category: str, what: str) -> None:
        found.append(Finding(kind, category, what, cell, getattr(node, "lineno", 1)))

    def check(node: ast.AST, raw: list[str], full: list[str] | None, verb: str, label: str = "") -> None:
        mine = full is None and raw[0] in bound  # the student's own name: only its attributes can match
        what = f"{verb} {label or _text(raw if full in (None, ['builtins', *raw]) else full)}"
        if any(matches(p, chain) for p in forbidden for chain in (raw[1:] if mine else raw, full or ())) \
                and not _comparison(node):
            add(node, "forbidden", "re-implements", what)
        categories = [_ATTRS[c] for c in raw if c in _ATTRS] + [_rule(full) if full else None]
        for category in categories:
            if category:
                add(node, "review", category, what)
        if allow and full and not any(categories) and not allowed(full, allow):
            add(node, "review", "outside the lesson's allowlist", what)

    for node in ast.walk(tree):  # `global _probe` in a function rebinds the notebook's name from inside it
        if isinstance(node, ast.Global):
            for name in node.names:
                if name in reserved or name in SETUP_NAMES:
                    add(node, "review", "patching the grader" if name in reserved else "patching modules",
                        f"declares global {name}, a name the {'grader' if name in reserved else 'setup'} binds")
    if magic:
        add(tree.body[0] if tree.body else tree, "review", "IPython machinery", "uses IPython magics or shell escapes")
    for stmt, full, _, _ in _imports(tree):
        check(stmt, full.split("."), full.split("."), "imports")
    for node in _module_scope(tree):  # a setup name rebound in the notebook's namespace, for every later cell
        if (name := _bound_name(node)) in SETUP_NAMES:
            add(node, "review", "patching modules", f"rebinds {name}")
        elif name in reserved:
            add(node, "review", "patching the grader", f"rebinds {name}, a name the grader's tests use")
    for stmt, _, name, _ in _imports(tree):
        if name in reserved:
            add(stmt, "review", "patching the grader", f"rebinds {name}, a name the grader's tests use")
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
    return _tidy(found)


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


def _unmarked(source: str) -> str:
    """A source cell's whole text, its nbgrader region markers dropped (the setup cell binds in both)."""
    return "\n".join(line for line in source.splitlines()
                     if line.strip() not in ("### BEGIN HIDDEN TESTS", "### END HIDDEN TESTS",
                                             "### BEGIN SOLUTION", "### END SOLUTION"))


def _hidden(source: str) -> str:
    """The hidden-test regions of a source cell's text."""
    out, inside = [], False
    for line in source.splitlines():
        if line.strip() == "### BEGIN HIDDEN TESTS":
            inside = True
        elif line.strip() == "### END HIDDEN TESTS":
            inside = False
        elif inside:
            out.append(line)
    return "\n".join(out)


def _plain(text: str, drop_hidden: bool = False) -> str:
    """A cell's text for comparing with the source's: blank lines and trailing spaces dropped and, with
    `drop_hidden`, the hidden-test regions too (the release shows a locked cell that way)."""
    out, inside = [], False
    for line in text.splitlines():
        if drop_hidden and line.strip() in ("### BEGIN HIDDEN TESTS", "### END HIDDEN TESTS"):
            inside = line.strip() == "### BEGIN HIDDEN TESTS"
        elif line.strip() and not (drop_hidden and inside):
            out.append(line.rstrip())
    return "\n".join(out)


def reserved_names(source_nb) -> frozenset[str]:
    """Names the grader's own code relies on: the probe kit's, and every name the source's setup cell
    and hidden-test regions bind (at module level or through `global`)."""
    names = {"_probe"}
    for cell in source_nb.cells:
        if cell.get("cell_type") != "code":
            continue
        text = cell.source if _nbgrader(cell).get("grade_id") == "setup" else _hidden(cell.source)
        tree = parse(text)[0] if text else None
        if tree is not None:
            names |= _bound(tree, module_scope=True) | {n for _, _, n, _ in _imports(tree) if n}
            names |= {n for node in ast.walk(tree) if isinstance(node, ast.Global) for n in node.names}
    return frozenset(names - (SETUP_NAMES.keys() - {"_probe"}) - {"_"})


def scan_notebook(nb, forbidden: Sequence[str] = (), student_cells: Callable[[object], bool] | None = None,
                  *, source=None, allow: Sequence[str] = ()) -> list[Finding]:
    """Findings in the student cells of `nb`, names resolved through the imports of every code cell.

    With `source` (the instructor's notebook) the student cells are every code cell whose text differs
    from each of the source's code cells: metadata the student wrote decides nothing. Binding a name the
    source's setup or hidden tests bind (`reserved_names`) is a flag, and a re-implemented name
    ("forbidden" kind, a flag like the others) counts only in a cell that binds a name one of the
    source's answer cells binds (a scratch cell that compares with the built-in is not flagged: what the
    answer runs is proven by the probes' logs). Without `source`, `student_cells` (default
    `is_student_cell`) chooses and every re-implemented name counts. `allow`: the lesson's allowlist
    (empty: none declared, no allowlist flags).

    Linear in the notebook's size and bounded: a cell over `MAX_CELL_CHARS` is not parsed, and past
    `MAX_CELLS` code cells or `MAX_NOTEBOOK_CHARS` scanned characters the scan stops; each is a flag."""
    cells = [(i, c) for i, c in enumerate(nb.cells) if c.get("cell_type") == "code"]
    over: list[Finding] = []
    if len(cells) > MAX_CELLS:
        over.append(Finding("review", "over the scan's bounds", f"has {len(cells)} code cells (over {MAX_CELLS:,}): "
                            "the cells past that were not scanned", f"cell {cells[MAX_CELLS][0]}", 0))
        cells = cells[:MAX_CELLS]
    if source is not None:
        theirs = {t for c in source.cells if c.get("cell_type") == "code"
                  for t in (_plain(c.source), _plain(c.source, drop_hidden=True))}
        chosen = [(i, c) for i, c in cells if _plain(c.source) not in theirs]
        answers = {n for c in source.cells if c.get("cell_type") == "code" and _nbgrader(c).get("solution")
                   for n in _bound(parse(c.source)[0] or ast.Module([], []), module_scope=True)}
        reserved = reserved_names(source)
    else:
        pick = student_cells or is_student_cell
        chosen = [(i, c) for i, c in cells if pick(c)]
        answers, reserved = None, frozenset({"_probe"})
    budget, scanned = MAX_NOTEBOOK_CHARS, []
    for i, c in chosen:
        budget -= len(c.source)
        if budget < 0:
            over.append(Finding("review", "over the scan's bounds", f"over {MAX_NOTEBOOK_CHARS:,} characters of "
                                "code: the cells from here on were not scanned", f"cell {i}", 0))
            break
        scanned.append((i, c))
    chosen_ids = {i for i, _ in scanned}
    names = dict(SETUP_NAMES)
    trees = {}
    for i, c in cells:  # imports and aliases hold for every later cell (and, run out of order, earlier ones)
        if len(c.source) <= MAX_CELL_CHARS and (i in chosen_ids or source is None or _plain(c.source) in theirs):
            trees[i] = parse(c.source)[0]
            if trees[i] is not None:
                _names_into(trees[i], names)
    own = {n for i in chosen_ids if trees.get(i) for n in _bound(trees[i], module_scope=True)} - names.keys()
    resolved_allow = _allowed(allow, names)
    found, order = list(over), {f.cell: 0 for f in over}
    for i, c in scanned:
        cell = _nbgrader(c).get("grade_id") or f"cell {i}"
        order.setdefault(cell, i)
        tree = trees.get(i)
        answer_like = answers is None or (tree is not None and bool(_bound(tree, module_scope=True) & answers))
        found += [f for f in _scan_source(c.source, cell, tuple(forbidden) if answer_like else (), names, own,
                                          resolved_allow, reserved)]
    return _tidy(found, order)


_COMPARERS = {"allclose", "isclose", "equal", "assert_close", "gradcheck", "gradgradcheck", "testing"}


def hidden_region_problems(source_nb) -> list[str]:
    """Where a hidden-test region of the source computes a verdict in the kernel instead of recording
    a raw value (point 2 of the design), for a gate: an `assert`; a comparing function (allclose,
    equal, gradcheck, torch.testing, ...); a comparison or a subtraction of two computed values inside
    what a `_probe` records (`lambda: f(x) - g(x)`, `lambda: f(x) == g(x)`; a comparison with a
    literal, such as `g is None`, only encodes the student's value); a subtraction of two call results
    anywhere; a call of what the lesson declares it re-implements (`reimplements`); a call of a
    notebook-level helper other than `_probe`, those the setup cell binds (the input builders) and
    those the region defines itself, which the student could rebind. Texts are the instructor's."""
    reimplemented = [str(p) for p in source_nb.metadata.get("lab", {}).get("exercise", {}).get("reimplements", [])]
    setup_trees = [parse(_unmarked(c.source))[0] or ast.Module([], []) for c in source_nb.cells
                   if c.get("cell_type") == "code" and _nbgrader(c).get("grade_id") == "setup"]
    setup = {n for tree in setup_trees for n in _bound(tree, module_scope=True)}
    setup |= {(a.asname or a.name).split(".")[0] for tree in setup_trees for node in ast.walk(tree)
              if isinstance(node, ast.Import | ast.ImportFrom) for a in node.names}
    problems = []
    for c in source_nb.cells:
        text = _hidden(c.source) if c.get("cell_type") == "code" else ""
        tree = parse(text)[0] if text else None
        if tree is None or _nbgrader(c).get("grade_id") == "setup":
            continue
        gid = _nbgrader(c).get("grade_id") or "a cell"
        mine = _bound(tree)  # what the region itself defines (its own lambdas' helpers, loop variables)
        recorded = {id(n) for call in ast.walk(tree) if isinstance(call, ast.Call) and _chain(call.func) == ["_probe"]
                    for arg in call.args[1:2] for n in ast.walk(arg)}
        for node in ast.walk(tree):
            line = getattr(node, "lineno", 0)
            if isinstance(node, ast.Assert):
                problems.append(f"{gid}, hidden line {line}: asserts in the kernel")
            elif isinstance(node, ast.Compare) and id(node) in recorded and \
                    not any(isinstance(side, ast.Constant) for side in (node.left, *node.comparators)):
                problems.append(f"{gid}, hidden line {line}: records a comparison ({ast.unparse(node)[:60]})")
            elif isinstance(node, ast.BinOp) and isinstance(node.op, ast.Sub) and (
                    isinstance(node.left, ast.Call) and isinstance(node.right, ast.Call)
                    or id(node) in recorded and not isinstance(node.left, ast.Constant)
                    and not isinstance(node.right, ast.Constant)):
                problems.append(f"{gid}, hidden line {line}: subtracts two results in the kernel")
            elif isinstance(node, ast.Call):
                chain = _chain(node.func)
                if any(c in _COMPARERS for c in chain):
                    problems.append(f"{gid}, hidden line {line}: calls {_text(chain)}, which compares in the kernel")
                elif any(matches(pattern, chain) for pattern in reimplemented):
                    problems.append(f"{gid}, hidden line {line}: computes with {_text(chain)}, the built-in the "
                                    "exercise re-implements, in the kernel")
                elif len(chain) == 1 and chain[0].startswith("_") and chain[0] != "_probe" \
                        and chain[0] not in setup and chain[0] not in mine:
                    problems.append(f"{gid}, hidden line {line}: calls {chain[0]}, a helper the student can rebind")
    return problems
