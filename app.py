"""Grad-CAM Explorer's entrypoint: the navigation between its pages (``streamlit run app.py``)."""

import os

# Idle OpenMP threads sleep instead of spinning: on a busy CPU, spinning threads slow every session's
# forward pass several times over (measured by bench.app_speed). Set before torch is imported.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import streamlit as st

from ui import state, workspace  # (imports torch)

#: (file, title, URL path) of every page, in the navigation's order; Home is the default.
PAGES = [
    ("pages/0_Home.py", "Home", "home"),
    ("pages/1_Explain.py", "Explain", "Explain"),
    ("pages/2_Crop_and_Compare.py", "Crop & compare", "Crop_and_Compare"),
    ("pages/3_Board.py", "Board", "Board"),
    ("pages/4_Misclassifications.py", "Misclassifications", "Misclassifications"),
]

st.session_state[state.VIA_APP] = True  # this run is routed here (ui.page_setup)
try:
    st.navigation(
        [st.Page(path, title=title, url_path=url, default=i == 0) for i, (path, title, url) in enumerate(PAGES)]
    ).run()
finally:  # what the page changed is saved before the next interaction (a rerun or stop included)
    workspace.sync()
