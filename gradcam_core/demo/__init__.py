"""The bundled offline demo: a small CNN trained on the shapes world, with a planted shortcut."""
