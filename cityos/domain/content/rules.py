"""The ownership rule between Payload CMS and us, as pure functions.

Payload owns content: `CONTENT_FIELDS` of a document (rich description, images, SEO, brand content) are read from
Payload and never sent to it. We own commerce: `COMMERCE_FIELDS` (titles, handles, status, the store and vendor;
prices and stock stay here) are sent to Payload as read-only copies and never read back. When both sides changed
between two syncs, each side's fields win on their side: Payload's edit of a commerce field is ignored and logged
(`commerce_drift`), and the next push overwrites it.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from cityos.domain.content.models import ContentKind

# Our kind → Payload collection slug (kebab-case, external-apis.md §5).
COLLECTIONS: dict[ContentKind, str] = {
    ContentKind.PRODUCT: "products",
    ContentKind.CATEGORY: "categories",
    ContentKind.VENDOR: "vendors",
    ContentKind.STORE: "stores",
}
KIND_OF_COLLECTION = {slug: kind for kind, slug in COLLECTIONS.items()}

CONTENT_FIELDS = ("richDescription", "descriptionHtml", "images", "seo", "brand")
COMMERCE_FIELDS: dict[ContentKind, tuple[str, ...]] = {
    ContentKind.PRODUCT: ("title", "handle", "status", "store", "vendor"),
    ContentKind.CATEGORY: ("name", "handle", "store", "parent"),
    ContentKind.VENDOR: ("name", "handle", "status", "store"),
    ContentKind.STORE: ("name", "handle"),
}
TEXT_LIMIT = 100_000


def _text(value: Any, limit: int = 1000) -> str | None:
    return value[:limit] if isinstance(value, str) and value else None


def _url(value: Any) -> str | None:
    text = _text(value, 2000)
    return text if text and (text.startswith("https://") or text.startswith("http://") or text.startswith("/")) \
        else None


def content_of(document: dict[str, Any]) -> dict[str, Any]:
    """The content fields of a Payload document, in the shape we keep (unknown keys and bad values dropped).

    - `richDescription`: the rich-text JSON as Payload stores it (Lexical), `descriptionHtml`: its HTML;
    - `images`: `[{url, alt}]` (an upload relation at depth ≥ 1 is an object with `url` and `alt`);
    - `seo`: `{title, description, imageUrl}`; `brand`: `{tagline, story, logoUrl}`."""
    content: dict[str, Any] = {}
    rich = document.get("richDescription")
    if isinstance(rich, dict | list):
        content["richDescription"] = rich
    if html := _text(document.get("descriptionHtml"), TEXT_LIMIT):
        content["descriptionHtml"] = html
    images = []
    for image in document.get("images") or []:
        source = image.get("image") if isinstance(image, dict) and isinstance(image.get("image"), dict) else image
        if isinstance(source, dict) and (url := _url(source.get("url"))):
            images.append({"url": url, "alt": _text(source.get("alt")) or _text(image.get("alt"))})
    if images:
        content["images"] = images
    seo = document.get("seo") if isinstance(document.get("seo"), dict) else {}
    if seo:
        content["seo"] = {"title": _text(seo.get("title")), "description": _text(seo.get("description"), 2000),
                          "imageUrl": _url(seo.get("imageUrl"))}
    brand = document.get("brand") if isinstance(document.get("brand"), dict) else {}
    if brand:
        content["brand"] = {"tagline": _text(brand.get("tagline")), "story": _text(brand.get("story"), TEXT_LIMIT),
                            "logoUrl": _url(brand.get("logoUrl"))}
    return content


def commerce_document(kind: ContentKind, row: Any) -> dict[str, Any]:
    """What we send to Payload for one of our objects: its id and tenant (the keys), and our commerce fields."""
    document: dict[str, Any] = {"cityosId": str(row.id), "tenant": str(row.tenant_id)}
    if kind is ContentKind.PRODUCT:
        document.update(title=row.title, handle=row.handle, status=row.status, store=str(row.store_id),
                        vendor=str(row.vendor_id) if row.vendor_id else None)
    elif kind is ContentKind.CATEGORY:
        document.update(name=row.name, handle=row.handle, store=str(row.store_id),
                        parent=str(row.parent_id) if row.parent_id else None)
    elif kind is ContentKind.VENDOR:
        document.update(name=row.name, handle=row.handle, status=row.status, store=str(row.store_id))
    else:
        document.update(name=row.name, handle=row.handle)
    return document


def commerce_drift(kind: ContentKind, document: dict[str, Any], ours: dict[str, Any]) -> list[str]:
    """The commerce fields a Payload document holds with values other than ours (edited in Payload: ignored)."""
    return [name for name in COMMERCE_FIELDS[kind] if name in document and document[name] != ours.get(name)]


def object_id_of(document: dict[str, Any]) -> uuid.UUID | None:
    try:
        return uuid.UUID(str(document.get("cityosId")))
    except ValueError:
        return None


def tenant_of(document: dict[str, Any]) -> uuid.UUID | None:
    try:
        return uuid.UUID(str(document.get("tenant")))
    except ValueError:
        return None


def parse_timestamp(value: Any) -> datetime | None:
    """Payload's ISO 8601 timestamps (`2026-11-27T08:00:00.000Z`)."""
    if not isinstance(value, str):
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None


def payload_timestamp(moment: datetime) -> str:
    """Our timestamp in Payload's format (UTC, milliseconds, `Z`)."""
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def is_newer(incoming: datetime | None, kept: datetime | None) -> bool:
    """Apply a document version only if it is newer than the one kept (a late webhook loses to a later pull)."""
    return kept is None or (incoming is not None and incoming > kept)
