"""Where the files the build installs beside the Python code live (host libraries, headers, samples).

A wheel install keeps everything in one directory. An editable install (``pip install -e .``) does not: the
Python files stay in the source tree while scikit-build-core's default ("redirect") mode installs what CMake
builds into site-packages, adding that directory to the package's ``__path__``; its "inplace" mode leaves the
libraries in the CMake build tree, which is then the source tree itself (``native/``). Nothing here imports
the rest of the package, so the backend code can use it while ``aclnn_moe`` is still being imported.
"""
from __future__ import annotations

import sys
from pathlib import Path

__all__ = ["package_dirs", "find_package_path", "host_lib_dir", "samples_dir", "HOST_LIBRARIES"]

_HERE = Path(__file__).resolve().parent
HOST_LIBRARIES = ("libascendcl.so", "libnnopbase.so", "libopapi.so")


def package_dirs() -> list[Path]:
    """Every directory holding part of the ``aclnn_moe`` package, this file's own first."""
    dirs = [_HERE]
    module = sys.modules.get(__name__.rpartition(".")[0])
    for entry in getattr(module, "__path__", None) or ():
        p = Path(entry).resolve()
        if p not in dirs:
            dirs.append(p)
    return dirs


def find_package_path(relative: str) -> Path | None:
    """The first ``<package dir>/relative`` that exists, or None."""
    for d in package_dirs():
        candidate = d / relative
        if candidate.exists():
            return candidate
    return None


def _has_host_libraries(d: Path) -> bool:
    return all((d / n).is_file() for n in HOST_LIBRARIES)


def host_lib_dir() -> Path:
    """The directory of the embedded host runtime's libraries.

    Tried in order: ``_host/lib`` in each package directory (a wheel, or a redirect-mode editable install), then
    ``native/`` of the source tree this package sits in (an in-place CMake build). When none has all three
    libraries the wheel location is returned, so that the caller's "missing ..." error names the usual place.
    """
    candidates = [d / "_host" / "lib" for d in package_dirs()]
    source_root = _HERE.parent
    if (source_root / "CMakeLists.txt").is_file():
        candidates.append(source_root / "native")
    for c in candidates:
        if _has_host_libraries(c):
            return c
    return candidates[0]


def samples_dir() -> Path | None:
    """The C samples and their Python ports: shipped in the package, or ``samples/`` of a source checkout."""
    shipped = find_package_path("samples")
    if shipped is not None:
        return shipped
    checkout = _HERE.parent / "samples"
    return checkout if checkout.is_dir() else None
