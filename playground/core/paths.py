"""Where the checkout's shipped data lives (one home, so a module can move without its paths breaking)."""

from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
ASSETS = REPO / "assets"
