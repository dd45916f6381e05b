"""The GraphQL documents the storefront, admin and vendor apps send (graphql/operations/)."""

from __future__ import annotations

from pathlib import Path

OPERATIONS_DIR = Path(__file__).resolve().parents[1] / "graphql" / "operations"


def all_operations() -> dict[str, str]:
    """'group/Name' → document."""
    return {f"{path.parent.name}/{path.stem}": path.read_text()
            for path in sorted(OPERATIONS_DIR.glob("*/*.graphql"))}
