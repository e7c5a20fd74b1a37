"""The shape of the house (README "Architecture"), checked on the source itself:

- imports only go down: platform < models < feature slices < entry points (runtime, cli, the
  app factory);
  hal/ imports nothing of the app;
- a slice reaches another slice only through its public modules (service functions, the
  session resolver, counters and record writer), and slices import each other without cycles;
- no source file is over 400 lines;
- metadata/session.json has one writer (scanner_app/sessions/record.py).
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
APP = ROOT / "scanner_app"

# Lower number = lower layer. A module may import its own package and anything lower.
LAYERS = {
    "config": 0, "platform": 0,
    "models": 1,
    "accounts": 2, "sessions": 2, "captures": 2, "scans": 2, "uploads": 2, "station": 2,
    "reconstruction": 2, "rig": 2,
    # Entry points: the processes, the CLI and the app factory that wires the slices together.
    "runtime": 3, "cli": 3, "migrations": 3, "blueprints": 3, "<factory>": 3,
}
SLICES = {name for name, layer in LAYERS.items() if layer == 2}
# What other slices may import of a slice: its service functions (and the session plumbing
# every kind of new work needs). Views, jobs and internals stay private to their slice.
PUBLIC = {
    "sessions": {"service", "resolver", "counters", "record", "hooks"},
    "captures": {"service"},
    "scans": {"service", "hooks"},
    "uploads": {"service"},
    "accounts": {"service"},
    "station": {"health"},
    "reconstruction": {"service"},
    "rig": {"service"},
}


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def package_of(module: str) -> str:
    parts = module.split(".")
    if parts[0] != "scanner_app":
        return parts[0]
    return parts[1] if len(parts) > 1 else "<factory>"


def imports_of(path: Path) -> set[str]:
    """Every scanner_app or hal module a file imports, at top level or inside functions."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            for alias in node.names:
                found.add(f"{node.module}.{alias.name}")
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
    return {name for name in found if name.split(".")[0] in ("scanner_app", "hal")}


def source_files(*folders: str) -> list[Path]:
    return sorted(p for folder in folders for p in (ROOT / folder).rglob("*.py")
                  if "__pycache__" not in p.parts)


def layering_problems() -> list[str]:
    problems = []
    for path in source_files("scanner_app"):
        if "versions" in path.parts:
            continue  # migrations are frozen history
        me = package_of(module_name(path))
        for target in sorted(imports_of(path)):
            other = package_of(target)
            if target.startswith("hal") or other == me:
                continue
            if target == "scanner_app.create_app":
                other = "<factory>"
            if LAYERS[other] > LAYERS[me]:
                problems.append(f"{module_name(path)} imports {target} (upward: {me} → {other})")
            elif me in SLICES and other in SLICES:
                module = target.split(".")[2]
                if module not in PUBLIC.get(other, set()):
                    problems.append(f"{module_name(path)} imports {target}: use {other}'s "
                                    f"service functions or a hook instead")
    return problems


def slice_graph() -> dict[str, set[str]]:
    graph: dict[str, set[str]] = {name: set() for name in SLICES}
    for path in source_files("scanner_app"):
        me = package_of(module_name(path))
        if me not in SLICES:
            continue
        graph[me] |= {package_of(t) for t in imports_of(path)} & SLICES - {me}
    return graph


def test_imports_only_go_down_and_slices_meet_through_services() -> None:
    assert layering_problems() == []


def test_slices_import_each_other_without_cycles() -> None:
    graph = slice_graph()
    done: set[str] = set()

    def visit(node: str, path: list[str]) -> None:
        if node in path:
            pytest.fail("slices import each other in a circle: "
                        + " → ".join(path[path.index(node):] + [node]))
        if node in done:
            return
        for nxt in sorted(graph[node]):
            visit(nxt, path + [node])
        done.add(node)

    for name in sorted(graph):
        visit(name, [])


def test_hal_knows_nothing_of_the_app() -> None:
    offenders = [f"{module_name(p)} imports {t}" for p in source_files("hal")
                 for t in imports_of(p) if t.startswith("scanner_app")]
    assert offenders == []


def test_the_check_catches_an_upward_import(tmp_path: Path, monkeypatch) -> None:
    """The rules above are not vacuous: a model importing a slice, and a slice importing
    another slice's views, are both reported."""
    fake = {APP / "models" / "zz_fake.py": "from scanner_app.scans.service import start_scan\n",
            APP / "uploads" / "zz_fake.py": "from scanner_app.scans.views import scan_panel\n"}
    real_source_files = source_files

    def with_fakes(*folders: str) -> list[Path]:
        return real_source_files(*folders) + (list(fake) if "scanner_app" in folders else [])

    real_read = Path.read_text
    monkeypatch.setattr(Path, "read_text",
                        lambda self, *a, **k: fake[self] if self in fake else real_read(self))
    monkeypatch.setattr(f"{__name__}.source_files", with_fakes)
    problems = layering_problems()
    assert any("zz_fake imports scanner_app.scans.service.start_scan (upward" in p
               for p in problems)
    assert any("uploads.zz_fake imports scanner_app.scans.views.scan_panel" in p
               for p in problems)


def test_no_source_file_is_over_400_lines() -> None:
    long = [f"{p.relative_to(ROOT)} ({n} lines)" for p in source_files("scanner_app", "hal")
            if (n := len(p.read_text().splitlines())) > 400]
    assert long == []


def test_session_json_has_one_writer() -> None:
    """Only the storage manager names the file, and only sessions/record.py writes it."""
    naming = [module_name(p) for p in source_files("scanner_app")
              if '"session.json"' in p.read_text() and "versions" not in p.parts]
    assert naming == ["scanner_app.platform.storage"]
    writers = [module_name(p) for p in source_files("scanner_app")
               if "session_record_path" in calls_in(p)
               and calls_in(p) & {"atomic_write_json", "atomic_open", "write_text", "open"}]
    assert writers == ["scanner_app.sessions.record"]


def calls_in(path: Path) -> set[str]:
    """Names of the functions and methods a file calls."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Call):
            func = node.func
            names.add(func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", ""))
    return names


STATUS_VALUES = {"queued", "running", "paused", "completed", "failed", "cancelled",
                 "interrupted", "processing", "done", "active"}


def status_literals(path: Path) -> list[str]:
    """String literals that stand for a status in code: compared with something, listed in a
    membership test, or passed as status=... (docstrings, comments and messages are fine)."""
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        candidates: list[ast.AST] = []
        if isinstance(node, ast.Compare):
            candidates = [node.left, *node.comparators]
            for part in list(candidates):
                if isinstance(part, (ast.Tuple, ast.List, ast.Set)):
                    candidates += part.elts
        elif isinstance(node, ast.keyword) and node.arg == "status":
            candidates = [node.value]
        for part in candidates:
            if isinstance(part, ast.Constant) and part.value in STATUS_VALUES:
                found.append(f"{path.relative_to(ROOT)}:{part.lineno} {part.value!r}")
    return found


def test_no_status_string_outside_its_enum() -> None:
    """Statuses are ScanStatus / UploadStatus / SessionStatus members everywhere but in the
    enums themselves and in frozen migrations; templates ask can_pause, is_active and so on."""
    code = [hit for p in source_files("scanner_app")
            if p.name != "statuses.py" and "versions" not in p.parts
            for hit in status_literals(p)]
    assert code == []
    names = "|".join(sorted(STATUS_VALUES - {"active"}))
    jinja_compare = re.compile(r"""(==|!=|\bin)\s*[\[(]?\s*["'](""" + names + r""")["']""")
    templates = [f"{p.relative_to(ROOT)}: {m.group(0)}"
                 for p in sorted((ROOT / "templates").rglob("*.html"))
                 for m in jinja_compare.finditer(p.read_text())]
    assert templates == []
