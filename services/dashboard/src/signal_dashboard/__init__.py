"""Signal Stream dashboard: the live network view for network engineers (Streamlit)."""

from __future__ import annotations

__version__ = "0.4.0"
