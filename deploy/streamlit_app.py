"""Entry point for hosting (Streamlit Community Cloud): runs the app at the top of the repository.

It exists so that the host installs deploy/requirements.txt (CPU-only PyTorch) instead of the top-level
requirements.txt; the page itself is app.py, unchanged. Locally, use `streamlit run app.py`.
"""

import runpy
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]  # bnviz itself is installed by deploy/requirements.txt (-e .)
runpy.run_path(str(ROOT / "app.py"), run_name="__main__")
