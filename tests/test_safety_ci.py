"""The CI safety net (.ci/safety) is a strict bash script that runs every job issue 12 asks for, and the commands
native/fuzz/README.md documents exist: the programs it names are the ones native/fuzz/build.py builds, the
options it passes are the ones the drivers accept. Running the net itself takes minutes (it is CI's job)."""
from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SAFETY = ROOT / ".ci" / "safety"
FUZZ = ROOT / "native" / "fuzz"
README = FUZZ / "README.md"


def script() -> str:
    return SAFETY.read_text()


def test_strict_bash():
    text = script()
    assert text.startswith("#!/usr/bin/env bash\n")
    assert re.search(r"^set -euo pipefail$", text, re.M)
    assert SAFETY.stat().st_mode & 0o111, ".ci/safety must be executable"
    if shutil.which("bash"):
        r = subprocess.run(["bash", "-n", str(SAFETY)], capture_output=True, text=True)
        assert r.returncode == 0, r.stderr
    if shutil.which("shellcheck"):
        r = subprocess.run(["shellcheck", "-S", "warning", str(SAFETY)], capture_output=True, text=True)
        assert r.returncode == 0, r.stdout


def test_every_job_is_there():
    text = script()
    # (a) the pytest suite against ASan+UBSan libraries, no recovery, libasan preloaded into python
    assert "--sanitize asan" in text and "ACLNN_MOE_HOST_LIBDIR=" in text and "LD_PRELOAD=" in text
    assert re.search(r"ACLNN_MOE_HOST_LIBDIR=.*\n?.*pytest", text)
    assert "-fno-sanitize-recover=all" in (FUZZ / "build.py").read_text()
    # (b) the seeded fuzz driver for at least 2x10^4 cases, the corpus and the reproducers
    m = re.search(r"ACLNN_MOE_FUZZ_CASES:-(\d+)", text)
    assert m and int(m.group(1)) >= 20000
    assert 'fuzz_driver" -n "$CASES"' in text and "native/fuzz/corpus/*" in text and "repro_*" in text
    # (c) the 8-thread driver under TSan
    assert "--sanitize tsan" in text and re.search(r"fuzz_threads\" -j 8", text)
    # (d) the leak check of 10^4 cycles with LSan
    m = re.search(r"ACLNN_MOE_LEAK_CYCLES:-(\d+)", text)
    assert m and int(m.group(1)) >= 10000 and "detect_leaks=1" in text and "--leak" in text
    # reports are fatal
    assert "halt_on_error=1" in text and "abort_on_error=1" in text


def test_every_reproducer_class_is_checked_in():
    classes = sorted(int(m.group(1)) for p in (FUZZ / "repro").glob("class*.c")
                     if (m := re.match(r"class(\d+)_", p.name)))
    assert classes == list(range(1, 9)), classes


def test_readme_documents_the_commands():
    text = README.read_text()
    for needed in ["-n 1000000", "fuzz_libfuzzer", "--sanitize fuzzer", "--leak 10000", "fuzz_threads -j 8",
                   ".ci/safety", "-f 123456 -n 1 -v"]:
        assert needed in text, needed
    # the options the README uses exist in the driver's usage
    driver = (FUZZ / "fuzz_driver.c").read_text()
    for opt in set(re.findall(r"fuzz_driver (?:[^\n]*?)(--[a-z-]+)", text)):
        assert f'"{opt}"' in driver, opt


@pytest.mark.parametrize("name", ["fuzz_driver", "fuzz_threads", "fuzz_libfuzzer"])
def test_programs_named_are_built(name):
    build = (FUZZ / "build.py").read_text()
    assert f'"{name}"' in build and (FUZZ / f"{name}.c").exists()
