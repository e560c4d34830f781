"""What every Python test needs: the tools' packages importable as tools/oac's PYTHONPATH makes them
(`from evaluation import eval_io`, `from lib.paths import MODEL_CARD`), whether pytest runs from ctest or by hand."""
import sys
from pathlib import Path

TOOLS = Path(__file__).resolve().parents[2] / "tools"
if str(TOOLS) not in sys.path:
    sys.path.insert(0, str(TOOLS))
