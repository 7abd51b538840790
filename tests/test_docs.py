"""The API reference in docs/ builds with Sphinx with warnings as errors, documents every public name of the
package (taken from its __all__, so new operators are covered without a hand list) and shows the porting guide's
C sample beside its Python port."""
from __future__ import annotations

import html
import re
import subprocess
import sys
from pathlib import Path

import pytest

import aclnn_moe

DOCS = Path(__file__).resolve().parent.parent / "docs"


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    for module in ("sphinx", "myst_parser"):
        try:
            __import__(module)
        except ImportError:
            pytest.skip(f"{module} is not installed (pip install '.[docs]')")
    out = tmp_path_factory.mktemp("docs")
    r = subprocess.run([sys.executable, "-m", "sphinx", "-W", "--keep-going", "-q", "-b", "html", str(DOCS),
                        str(out)], capture_output=True, text=True, timeout=600, cwd=DOCS.parent / "tests")
    assert r.returncode == 0, r.stdout[-5000:] + r.stderr[-5000:]
    return out


def test_docs_build_without_warnings(built):
    for page in ("index", "levels", "operators", "runtime", "capi", "policies", "porting", "cli", "install"):
        assert (built / f"{page}.html").is_file(), page


def test_every_public_name_is_documented(built):
    page = (built / "operators.html").read_text()
    missing = [n for n in aclnn_moe.__all__ if f'id="aclnn_moe.{n}"' not in page]
    assert not missing, missing
    assert len(aclnn_moe.__all__) >= 20


def test_policies_and_environment_come_from_the_readme(built):
    policies = html.unescape(re.sub(r"<[^>]+>", "", (built / "policies.html").read_text()))
    for topic in ("Errors.", "Lifetimes.", "Threads and streams.", "Memory.", "Numerics."):
        assert topic in policies, topic
    install = (built / "install.html").read_text()
    for var in ("ACLNN_MOE_BACKEND", "ACLNN_MOE_NUM_THREADS", "ACLNN_MOE_HOST_LIBDIR", "ASCEND_HOME_PATH"):
        assert var in install, var


def test_porting_guide_shows_the_c_sample_beside_its_port(built):
    text = html.unescape(re.sub(r"<[^>]+>", "", (built / "porting.html").read_text()))
    assert "aclnnMoeComputeExpertTokensGetWorkspaceSize(sortedExperts, numExperts, out, &workspaceSize" in text
    assert "lib.aclnnMoeComputeExpertTokensGetWorkspaceSize(" in text
    assert "def create_acl_tensor" in text and "CreateAclTensor(" in text
