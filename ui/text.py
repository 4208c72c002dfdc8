"""Showing user-supplied text (file names, labels, link values) literally."""


def plain_text(text: str) -> str:
    """Escape markdown (and Streamlit's $…$ maths) so that a file name is shown literally."""
    return "".join("\\" + c if c in "\\`*_{}[]()#+!<>|~$" else c for c in text)
