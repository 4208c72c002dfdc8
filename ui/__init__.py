"""Streamlit helpers shared by the app's pages. The engine (gradcam_core) never imports this."""
