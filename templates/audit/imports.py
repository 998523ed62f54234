"""The import audit's parser: every import in a project's Python files, read with the
interpreter's own `ast` (any Python 3.8 or newer; only the standard library).

Usage: python imports.py ROOT PATH... (PATHs relative to ROOT: folders are searched for
*.py files, files are read as they are). Prints one JSON object:
  {"files": N, "imports": [...], "warnings": [...]}
Each import: file (relative to ROOT), line, col, module (as written, absolute imports
only: relative ones name the project itself), top (its first component), scope
("module": runs when the file is imported, including inside if/with/for/class bodies;
"function": runs when the function is called) and the statement's first line.
Left out: imports guarded by a `try` whose handlers catch ImportError (or
ModuleNotFoundError, Exception, BaseException, a bare except), and those under
`if TYPE_CHECKING:`; they are counted in "guarded".
"""

import ast
import json
import os
import sys

SKIP_DIRS = {"__pycache__", "node_modules", "site-packages", ".venv", "venv", ".git", ".tox", "build", "dist"}
CATCHES_IMPORT_ERROR = {"ImportError", "ModuleNotFoundError", "Exception", "BaseException"}


def python_files(root, rel):
    path = os.path.join(root, rel)
    if os.path.isfile(path):
        yield rel
        return
    for dirpath, dirnames, filenames in os.walk(path):
        dirnames[:] = sorted(d for d in dirnames if d not in SKIP_DIRS and not d.startswith("."))
        for name in sorted(filenames):
            if name.endswith(".py"):
                yield os.path.relpath(os.path.join(dirpath, name), root)


def handler_names(handler):
    t = handler.type
    if t is None:
        return {"BaseException"}
    items = t.elts if isinstance(t, ast.Tuple) else [t]
    names = set()
    for item in items:
        if isinstance(item, ast.Name):
            names.add(item.id)
        elif isinstance(item, ast.Attribute):
            names.add(item.attr)
    return names


def guards_import_error(node):
    return any(handler_names(h) & CATCHES_IMPORT_ERROR for h in node.handlers)


def is_type_checking(test):
    if isinstance(test, ast.Name):
        return test.id == "TYPE_CHECKING"
    if isinstance(test, ast.Attribute):
        return test.attr == "TYPE_CHECKING"
    return False


class Imports(ast.NodeVisitor):
    def __init__(self, lines):
        self.lines = lines
        self.found = []
        self.guarded = 0
        self.function = 0
        self.try_guard = 0

    def statement(self, node):
        line = self.lines[node.lineno - 1] if 0 < node.lineno <= len(self.lines) else ""
        return line.strip()

    def add(self, node, module):
        if self.try_guard:
            self.guarded += 1
            return
        self.found.append(
            {
                "line": node.lineno,
                "col": node.col_offset + 1,
                "module": module,
                "top": module.split(".")[0],
                "scope": "function" if self.function else "module",
                "statement": self.statement(node),
            }
        )

    def visit_Import(self, node):
        for alias in node.names:
            self.add(node, alias.name)

    def visit_ImportFrom(self, node):
        if node.level == 0 and node.module:
            self.add(node, node.module)

    def visit_Call(self, node):
        # importlib.import_module("pkg") and __import__("pkg") with a literal name.
        f = node.func
        name = f.attr if isinstance(f, ast.Attribute) else f.id if isinstance(f, ast.Name) else None
        if name in ("import_module", "__import__") and node.args:
            arg = node.args[0]
            if isinstance(arg, ast.Constant) and isinstance(arg.value, str) and not arg.value.startswith("."):
                self.add(node, arg.value)
        self.generic_visit(node)

    def visit_function(self, node):
        for d in getattr(node, "decorator_list", []):
            self.visit(d)
        self.function += 1
        for child in node.body if isinstance(node.body, list) else [node.body]:
            self.visit(child)
        self.function -= 1

    visit_FunctionDef = visit_function
    visit_AsyncFunctionDef = visit_function
    visit_Lambda = visit_function

    def visit_Try(self, node):
        guarded = guards_import_error(node)
        self.try_guard += guarded
        for child in node.body:
            self.visit(child)
        self.try_guard -= guarded
        for part in (node.handlers, node.orelse, node.finalbody):
            for child in part:
                self.visit(child)

    visit_TryStar = visit_Try

    def visit_If(self, node):
        self.visit(node.test)
        if is_type_checking(node.test):
            self.guarded += sum(isinstance(n, (ast.Import, ast.ImportFrom)) for b in node.body for n in ast.walk(b))
        else:
            for child in node.body:
                self.visit(child)
        for child in node.orelse:
            self.visit(child)


def main():
    root = sys.argv[1]
    out = {"files": 0, "guarded": 0, "imports": [], "warnings": []}
    seen = set()
    for rel in sys.argv[2:]:
        for f in python_files(root, rel):
            if f in seen:
                continue
            seen.add(f)
            out["files"] += 1
            with open(os.path.join(root, f), "rb") as fh:
                data = fh.read()
            try:
                tree = ast.parse(data, filename=f)
            except SyntaxError as e:
                what = "not UTF-8 (and no coding line)" if "decode" in str(e.msg) or "utf-8" in str(e.msg).lower() else e.msg
                out["warnings"].append("%s:%s: cannot parse: %s; its imports are not audited" % (f, e.lineno or 1, what))
                continue
            except (ValueError, UnicodeDecodeError) as e:
                out["warnings"].append("%s:1: cannot parse: %s; its imports are not audited" % (f, e))
                continue
            text = data.decode("utf-8", errors="replace")
            v = Imports(text.splitlines())
            v.visit(tree)
            out["guarded"] += v.guarded
            for imp in v.found:
                imp["file"] = f.replace(os.sep, "/")
                out["imports"].append(imp)
    json.dump(out, sys.stdout)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
