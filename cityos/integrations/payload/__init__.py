"""Payload CMS (content): our commerce objects pushed to its collections, its content pulled and received by
webhook. Payload owns content, we own commerce (cityos/domain/content)."""
