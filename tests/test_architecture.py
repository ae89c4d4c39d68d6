"""The library's shape, checked: no import cycle, no code outside the backends asking which language
backend it holds (capabilities are declared, not discovered with isinstance), and one name for one meaning."""

from __future__ import annotations

import ast
import re
from collections import defaultdict
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
BACKENDS = ("playground/language/local.py", "playground/language/remote/")
BACKEND_TYPES = re.compile(r"isinstance\([^)]*\b(LocalLanguageModel|RemoteLanguageModel|LanguageBackend)\b")

# Imports every module of playground/ as the first playground module of a clean import state: a cycle
# shows up as an ImportError for whichever module starts it. One interpreter, so torch loads once.
IMPORT_EACH = """
import importlib, pkgutil, sys
import playground
names = sorted(m.name for m in pkgutil.walk_packages(playground.__path__, "playground."))
failures = []
for name in names:
    for loaded in [m for m in sys.modules if m.startswith("playground.")]:
        del sys.modules[loaded]
    try:
        importlib.import_module(name)
    except Exception as error:
        failures.append(f"{name}: {type(error).__name__}: {error}")
print(len(names), "modules")
print("\\n".join(failures))
sys.exit(1 if failures else 0)
"""


def test_every_playground_module_imports_on_its_own():
    result = subprocess.run([sys.executable, "-c", IMPORT_EACH], cwd=REPO, capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr[-3000:]


def test_no_isinstance_on_a_language_backend_outside_the_backends():
    found = []
    for path in [*REPO.glob("playground/**/*.py"), *REPO.glob("tabs/**/*.py"), REPO / "app.py"]:
        relative = path.relative_to(REPO).as_posix()
        if relative.startswith(BACKENDS):
            continue
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
            if BACKEND_TYPES.search(line):
                found.append(f"{relative}:{number}: {line.strip()}")
    assert not found, "\n".join(found)


# Public functions that share a name because they are one operation at two layers of the backend protocol: the
# checked, priced request and the local backend's implementation of the `LanguageBackend` method it calls.
SAME_OPERATION = {
    "temperature_sweep": {"playground/language/sampling_requests.py", "playground/language/sweep.py"},
    "logit_lens": {"playground/language/inside_the_model.py", "playground/language/logit_lens.py"},
}


def test_no_two_public_functions_in_the_library_share_a_name():
    """A name says what a function does: two module-level functions called the same (diffusion steps and sampling
    steps, two label scorers returning different types) make a reader guess which one an import means."""
    where = defaultdict(set)
    for path in REPO.glob("playground/**/*.py"):
        for node in ast.parse(path.read_text(encoding="utf-8")).body:
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and not node.name.startswith("_"):
                where[node.name].add(path.relative_to(REPO).as_posix())
    shared = {name: sorted(paths) for name, paths in where.items()
              if len(paths) > 1 and paths != SAME_OPERATION.get(name)}
    assert not shared, shared
