"""``python -m gradcam_core``: see :mod:`gradcam_core.cli`."""

import sys

from gradcam_core.cli import main

sys.exit(main())
