"""GraphQL types of Payload's content. Payload owns these fields (edited there, read-only here); see
cityos/domain/content."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

import strawberry
from strawberry.scalars import JSON

from cityos.domain.base import table_of
from cityos.domain.content.models import Content as ContentModel
from cityos.domain.content.models import ContentKind
from cityos.graphql.core.context import Info

CONTENT_TABLE = table_of(ContentModel)


@strawberry.type(description="An image chosen in Payload CMS.")
class ContentImage:
    url: str = strawberry.field(description="Absolute (or site-relative) URL of the image.")
    alt: str | None = strawberry.field(description="Alternative text, or null.")


@strawberry.type(description="Search-engine metadata edited in Payload CMS.")
class Seo:
    title: str | None = strawberry.field(description="The page title for search engines, or null.")
    description: str | None = strawberry.field(description="The meta description, or null.")
    image_url: str | None = strawberry.field(description="The social sharing image URL, or null.")


@strawberry.type(description="Brand content edited in Payload CMS (vendors and stores).")
class BrandContent:
    tagline: str | None = strawberry.field(description="A one-line tagline, or null.")
    story: str | None = strawberry.field(description="The brand story (plain text or HTML), or null.")
    logo_url: str | None = strawberry.field(description="The logo URL, or null.")


@strawberry.type(description="Content of an object, owned by Payload CMS: edited there, synced here, read-only "
                             "through this API. Commerce fields (title, prices, stock, status) stay on the object.")
class Content:
    rich_description: JSON | None = strawberry.field(description="The rich description as Payload stores it "
                                                                 "(Lexical rich-text JSON), or null.")
    description_html: str | None = strawberry.field(description="The rich description rendered as HTML, or null.")
    images: list[ContentImage] = strawberry.field(description="Images, in the editor's order.")
    seo: Seo | None = strawberry.field(description="Search-engine metadata, or null.")
    brand: BrandContent | None = strawberry.field(description="Brand content, or null.")
    updated_at: datetime | None = strawberry.field(description="When the content was last changed in Payload "
                                                               "(its updatedAt), or null.")

    @classmethod
    def of(cls, row: Any) -> Content:
        content: dict[str, Any] = row.content or {}
        seo = content.get("seo")
        brand = content.get("brand")
        return cls(
            rich_description=content.get("richDescription"), description_html=content.get("descriptionHtml"),
            images=[ContentImage(url=image["url"], alt=image.get("alt")) for image in content.get("images") or []],
            seo=Seo(title=seo.get("title"), description=seo.get("description"), image_url=seo.get("imageUrl"))
            if seo else None,
            brand=BrandContent(tagline=brand.get("tagline"), story=brand.get("story"), logo_url=brand.get("logoUrl"))
            if brand else None,
            updated_at=row.payload_updated_at)


async def load_content(info: Info, kind: ContentKind, object_id: uuid.UUID) -> Content | None:
    """The object's content (one batched statement per level); null when Payload has none for it yet."""
    rows = await info.context.loaders.many_by_key(CONTENT_TABLE, "object_id").load(object_id)
    row = next((row for row in rows if row.kind == kind.value and row.payload_updated_at is not None), None)
    return Content.of(row) if row else None
