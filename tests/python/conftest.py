"""What every Python test needs, whether pytest runs from ctest or by hand: the tools' packages
(`from evaluation import eval_io`, `from lib.paths import MODEL_CARD`) as tools/oac's PYTHONPATH gives them,
here and in the tool scripts a test runs, and tests/support (core_build, the fixture generators)."""
import os
import sys
from pathlib import Path

TESTS = Path(__file__).resolve().parents[1]
TOOLS = TESTS.parent / "tools"
SUPPORT = TESTS / "support"

for folder in (SUPPORT, TOOLS):
    if str(folder) not in sys.path:
        sys.path.insert(0, str(folder))
if str(TOOLS) not in os.environ.get("PYTHONPATH", "").split(os.pathsep):
    os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(TOOLS), os.environ.get("PYTHONPATH")]))
