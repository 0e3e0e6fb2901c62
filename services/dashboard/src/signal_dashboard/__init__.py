"""Signal Stream dashboard: the live network view for network engineers (Streamlit)."""
