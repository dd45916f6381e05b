"""Content from Payload CMS (descriptions, images, SEO, brand) on our objects: `Product.content`, `Category.content`."""
