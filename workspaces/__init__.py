"""Work that lasts: workspaces in an embedded SQLite database, with a content-addressed store beside it.

This package knows nothing of Streamlit or of Grad-CAM: the app (``ui.workspace``) decides what a
workspace holds; here it is kept durable, shareable read-only, bounded by quotas, and safe against
hostile ids and names.
"""

from workspaces.blobs import BlobError, ContentStore, is_digest
from workspaces.errors import QuotaExceededError, ReadOnlyError, StorageError, WorkspaceNotFoundError
from workspaces.limits import Limits
from workspaces.schema import SCHEMA_VERSION, SchemaTooNewError
from workspaces.store import Handle, PanelRow, Store, data_dir, is_workspace_id, safe_name

__all__ = [
    "SCHEMA_VERSION",
    "BlobError",
    "ContentStore",
    "Handle",
    "Limits",
    "PanelRow",
    "QuotaExceededError",
    "ReadOnlyError",
    "SchemaTooNewError",
    "StorageError",
    "Store",
    "WorkspaceNotFoundError",
    "data_dir",
    "is_digest",
    "is_workspace_id",
    "safe_name",
]
