"""Content owned by Payload CMS (rich descriptions, images, SEO, brand content), kept beside our commerce objects.

The ownership rule: **Payload owns content, we own commerce.** Content fields (rules.CONTENT_FIELDS) are written
only from Payload (its webhook or `sync-from-payload`); commerce fields (titles, handles, prices, stock, status,
vendors) are written only here and pushed to Payload (`sync-to-payload`), where they are read-only copies. A change
to a commerce field made in Payload is ignored (and logged); the next push overwrites it.
"""
