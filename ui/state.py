"""Every session-state key the app uses, in one place, with typed access.

Widget values are dropped by Streamlit when the page that drew them is left, so choices that
must survive page switches are copied into the plain ``SETTINGS`` keys below, and each widget
is re-seeded from them when it is drawn again (see :func:`persist`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar, cast

import streamlit as st

if TYPE_CHECKING:
    from gradcam_core import Box
    from ui.batch import BatchRun
    from ui.board import Panel
    from ui.images import ImageEntry

T = TypeVar("T")

# Plain (non-widget) keys: they survive page switches.
IMAGES = "images"  # dict[str, ImageEntry]: every image of this session, by key
CURRENT = "current_image"  # str: key of the image being explained
BOARD = "board"  # list[Panel]: pinned panels
CROP = "crop"  # dict[str, Box]: crop box chosen per image key
CROP_REVISION = "crop_revision"  # dict[str, int]: per image key, bumped when the box is typed or reset
OBJECT_BOX = "object_box"  # dict[str, Box]: the object's box drawn per image key, to score maps against
OBJECT_REVISION = "object_revision"  # dict[str, int]: as CROP_REVISION, for OBJECT_BOX
BATCH = "batch"  # BatchRun | None: the last misclassification run
BATCH_ROUND = "batch_round"  # int: bumps after each batch run, giving the batch uploader a fresh key
BATCH_VIEW = "batch_view"  # ImageEntry | None: the batch row being looked at, decoded again from its bytes
SETTINGS = "settings"  # dict[str, Any]: sidebar and display choices, by widget key
CUSTOM = "custom_models"  # list[str]: model keys of the models this session uploaded
UPLOAD_ROUND = "upload_round"  # int: bumps after each upload, giving the uploader a fresh key
SANITY = "sanity"  # (key, SanityCheck): the last sanity check run
FAITH = "faithfulness"  # (key, (map result, random-map result)): the last faithfulness measurement
LINK_READ = "link_read"  # bool: the opening URL's parameters were applied
LINK_PENDING = "link_pending"  # dict[str, str]: link values a page still has to validate (layer, class)
LINK_WARNINGS = "link_warnings"  # list[str]: link values that could not be used
ROUTED = "routed"  # bool: this session was rerouted through app.py's st.navigation (ui.page_setup.page_setup)
VIA_APP = "via_app"  # bool: the run under way came through app.py's st.navigation (set there, read by page_setup)
GO_TO = "go_to"  # str: the page a callback asked for; ui.page_setup.page_setup switches to it
MODEL_SWITCHED = "model_switched"  # str: why picking a sample switched the model (shown once)
UPLOAD_ERRORS = "upload_errors"  # list[tuple[str, str]]: (file name, reason) from the last upload
# The workspace (ui/workspace.py).
WORKSPACE = "workspace"  # workspaces.Handle | None: this session's own workspace, writable
SHARED_BOARD = "shared_board"  # workspaces.Handle | None: a board opened read-only through a `board` link
WS_ATTACHED = "ws_attached"  # bool: the link's workspace was opened (once per session)
WS_SAVED = "ws_saved"  # dict[str, str]: per saved key, the JSON last written (what changed is saved)
WS_DIGESTS = "ws_digests"  # dict[str, str]: per uploaded image's key, the SHA-256 its bytes are stored under
WS_PANELS = "ws_panels"  # str: the stored board as this session last read or wrote it (to see another tab's)
TITLE = "report_title"  # str: the board report's title
NOTES = "notes"  # dict[str, str]: per board panel's uid, the note printed under it in the report

# Widget keys (also the keys inside SETTINGS for persisted ones).
W_MODEL = "w_model"
W_LAYER = "w_layer"
W_METHOD = "w_method"
W_CUSTOM_ARCH = "w_custom_arch"
W_CUSTOM_FILE = "w_custom_file"
W_CUSTOM_LABELS = "w_custom_labels"
W_CUSTOM_HEIGHT = "w_custom_height"
W_CUSTOM_WIDTH = "w_custom_width"
W_CUSTOM_CROP = "w_custom_crop"
W_CUSTOM_MEAN = "w_custom_mean"
W_CUSTOM_STD = "w_custom_std"
W_CUSTOM_LOAD = "w_custom_load"
W_SAMPLE = "w_sample"
W_UPLOAD = "w_upload"
W_IMAGE = "w_image_choice"
W_CLASS = "w_class"
W_ALPHA = "w_alpha"
W_CMAP = "w_cmap"
W_SEEN = "w_seen"
W_MULTI = "w_multi"
W_MODE = "w_mode"
W_VIEW = "w_view"
W_CONTRAST = "w_contrast"
W_FAITH = "w_faith"
W_FILL = "w_fill"
W_SHARED = "w_shared"
W_CROPPER = "w_cropper"
W_CROP_X = "w_crop_x"
W_CROP_Y = "w_crop_y"
W_CROP_W = "w_crop_w"
W_CROP_H = "w_crop_h"
W_CROP_RESET = "w_crop_reset"
W_BOARD_NORM = "w_board_norm"
W_SHARE = "w_share"  # the Board's "Make a read-only link" button
W_TITLE = "w_title"  # the Board's report title
W_NOTE = "w_note"  # prefix: f"{W_NOTE}.{panel uid}", a board panel's note
SHARE_LINK = "share_link"  # str: the read-only link made for this session's board
SHARED_PANELS = "shared_panels"  # (rows JSON, SharedBoard): the shared board, read once per change
W_SMOOTH = "w_smooth"  # the sidebar's smoothing choice
W_GUIDED_VIEW = "w_guided_view"  # how Guided Grad-CAM's pixel map is drawn
W_OBJECT_ON = "w_object_on"  # prefix: f"{W_OBJECT_ON}.{image key}", Explain's "score against a box" toggle
W_GRID = "w_grid"  # Explain: which grid to compare (none, methods, layers, classes)
W_GRID_SCALE = "w_grid_scale"
W_GRID_SLOW = "w_grid_slow"  # include Score-CAM in the methods grid
W_GRID_PIN = "w_grid_pin"  # pin the whole grid; f"{W_GRID_PIN}.{i}" pins cell i
W_SANITY = "w_sanity"  # the sanity check's Run button
W_BATCH_UPLOAD = "w_batch_upload"
W_BATCH_CSV = "w_batch_csv"
W_WRONG_ONLY = "w_wrong_only"
W_TABLE = "w_table"
W_MIS_MODE = "w_mis_mode"  # Misclassifications: run a batch here, or open an audit file
W_AUDIT_SOURCE = "w_audit_source"
W_AUDIT_FILE = "w_audit_file"
W_AUDIT_UPLOAD = "w_audit_upload"
W_AUDIT_LAYER = "w_audit_layer"  # prefix: f"{W_AUDIT_LAYER}.{file name}"
W_AUDIT_CHART = "w_audit_chart"
W_AUDIT_CELL = "w_audit_cell"
W_AUDIT_SORT = "w_audit_sort"
W_AUDIT_DESC = "w_audit_desc"
W_AUDIT_LIMIT = "w_audit_limit"
W_AUDIT_RIGHT = "w_audit_right"
W_AUDIT_TABLE = "w_audit_table"  # prefix: f"{W_AUDIT_TABLE}.{audit digest}"
W_AUDIT_OPEN = "w_audit_open"  # prefix of the "Open in …" buttons, by page
W_EXPERIMENT = "w_experiment"  # prefix of the experiments' buttons (ui/experiments.py)
# Prefixes of keys made per item: f"{PREFIX}_{item}" (f"{W_TRUTH}.{row}" for the truth pickers).
W_PIN = "pin"  # the Pin buttons: pin_explain, pin_Before, pin_After
W_REMOVE = "remove"  # a board panel's Remove button, by index
W_TRUTH = "truth"  # a batch row's true-class picker, by row key
W_DOWNLOAD = "download"  # a model's weights Download button, by model name


def upload_key() -> str:
    """The image uploader's current key.

    A new key after each upload drops the widget's copy of the original files, so only the
    decoded, downscaled images stay in the session.
    """
    return f"{W_UPLOAD}.{st.session_state.get(UPLOAD_ROUND, 0)}"


def batch_upload_key() -> str:
    """The batch uploader's current key: a new one after each run, so a run replaces the batch."""
    return f"{W_BATCH_UPLOAD}.{st.session_state.get(BATCH_ROUND, 0)}"


def get(key: str, default: T) -> T:
    """The value under ``key``, set to ``default`` first if absent."""
    return cast(T, st.session_state.setdefault(key, default))


# Typed access to the containers above (each made empty on first use, then changed in place).
def board() -> list[Panel]:
    """The pinned panels, oldest first."""
    return get(BOARD, cast("list[Panel]", []))


def images() -> dict[str, ImageEntry]:
    """Every image of this session, by key."""
    return get(IMAGES, cast("dict[str, ImageEntry]", {}))


def crops() -> dict[str, Box]:
    """The crop box chosen per image key."""
    return get(CROP, cast("dict[str, Box]", {}))


def crop_revisions() -> dict[str, int]:
    """Per image key, a number bumped when its box is typed or reset."""
    return get(CROP_REVISION, cast("dict[str, int]", {}))


def object_boxes() -> dict[str, Box]:
    """The object's box drawn per image key (the whole image: none drawn)."""
    return get(OBJECT_BOX, cast("dict[str, Box]", {}))


def object_revisions() -> dict[str, int]:
    """Per image key, a number bumped when its object box is typed or cleared."""
    return get(OBJECT_REVISION, cast("dict[str, int]", {}))


def custom_models() -> list[str]:
    """The keys of the models this session uploaded."""
    return get(CUSTOM, cast("list[str]", []))


def notes() -> dict[str, str]:
    """The board panels' notes, by panel uid."""
    return get(NOTES, cast("dict[str, str]", {}))


def link_warnings() -> list[str]:
    """The opening link's values that could not be used."""
    return get(LINK_WARNINGS, cast("list[str]", []))


def link_pending() -> dict[str, str]:
    """The link's values a page still has to validate (layer, class)."""
    return get(LINK_PENDING, cast("dict[str, str]", {}))


def batch() -> BatchRun | None:
    """The last misclassification run, if any."""
    return cast("BatchRun | None", st.session_state.get(BATCH))


def _settings() -> dict[str, Any]:
    return get(SETTINGS, cast("dict[str, Any]", {}))


def setting(key: str, default: Any = None) -> Any:
    """A persisted choice (see module docstring)."""
    return _settings().get(key, default)


def remember(key: str, value: Any) -> None:
    """Persist a choice across pages."""
    _settings()[key] = value


def persist(key: str, default: Any) -> None:
    """Seed widget ``key`` from its persisted value before the widget is drawn.

    Streamlit resets a widget to its default when another page draws it, so every page seeds it
    from ``SETTINGS``, where each widget's ``on_change`` (:func:`store`) keeps the latest choice.
    """
    st.session_state[key] = setting(key, default)


def store(key: str) -> Callable[[], None]:
    """An ``on_change`` callback that persists widget ``key``'s new value (see :func:`persist`)."""
    return lambda: remember(key, st.session_state[key])


# Slow methods (Score-CAM): see ui/slow.py.
SLOW_RUNNING = "slow_running"  # str | None: the explain call whose slow run started and has not finished
W_SLOW_RUN = "w_slow_run"  # prefix of the "Run Score-CAM" buttons
W_SLOW_CANCEL = "w_slow_cancel"  # prefix of the "Cancel" buttons
