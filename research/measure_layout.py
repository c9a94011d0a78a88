"""Measure the package's shape: ``.py`` files at the package root, functions over 80 lines, and imports of seg_jax
modules made inside functions (issue 45's criteria).

    python -m research.measure_layout            # from the repository root
"""
from __future__ import annotations

import ast
import sys
from pathlib import Path

LONG_FUNCTION = 80


def measure(package: Path) -> dict:
    """{'root_files', 'long_functions': [(lines, 'path:line name')], 'inner_imports', 'inner_seg_jax_imports'}."""
    long_functions, inner, inner_own = [], 0, 0
    for path in sorted(package.rglob("*.py")):
        tree = ast.parse(path.read_text())
        seen = set()
        for node in ast.walk(tree):
            if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                continue
            lines = node.end_lineno - node.lineno + 1
            if lines > LONG_FUNCTION:
                long_functions.append((lines, f"{path}:{node.lineno} {node.name}"))
            for sub in ast.walk(node):
                if isinstance(sub, (ast.Import, ast.ImportFrom)) and id(sub) not in seen:
                    seen.add(id(sub))
                    inner += 1
                    module = sub.module if isinstance(sub, ast.ImportFrom) else sub.names[0].name
                    inner_own += bool(module and module.startswith("seg_jax"))
    return {"root_files": len(list(package.glob("*.py"))), "long_functions": sorted(long_functions, reverse=True),
            "inner_imports": inner, "inner_seg_jax_imports": inner_own}


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    found = measure(Path(argv[0]) if argv else Path("seg_jax"))
    print(f".py files at the package root: {found['root_files']}")
    print(f"functions over {LONG_FUNCTION} lines: {len(found['long_functions'])}")
    for lines, where in found["long_functions"]:
        print(f"  {lines:4d} {where}")
    print(f"imports inside functions: {found['inner_imports']}, of seg_jax modules: {found['inner_seg_jax_imports']}")


if __name__ == "__main__":
    main()
