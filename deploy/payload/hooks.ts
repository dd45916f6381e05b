// Payload CMS 3: send content changes to CityOS Commerce (POST /webhooks/payload), signed with PAYLOAD_SECRET.
// Install on the products, categories, vendors and stores collections:
//   hooks: { afterChange: [notifyCityOS], afterDelete: [notifyCityOSDelete] }
import { createHmac, randomUUID } from 'node:crypto'
import type { CollectionAfterChangeHook, CollectionAfterDeleteHook } from 'payload'

const CONTENT_FIELDS = ['richDescription', 'descriptionHtml', 'images', 'seo', 'brand'] as const
const CITYOS_URL = process.env.CITYOS_URL ?? 'http://127.0.0.1:8000'
const SECRET = process.env.PAYLOAD_SECRET ?? ''

function contentChanged(doc: Record<string, unknown>, previousDoc?: Record<string, unknown>): boolean {
  if (!previousDoc) return true
  return CONTENT_FIELDS.some((field) => JSON.stringify(doc[field]) !== JSON.stringify(previousDoc[field]))
}

async function send(body: Record<string, unknown>): Promise<void> {
  const raw = JSON.stringify(body)
  for (const delay of [0, 1000, 4000, 16000]) {
    if (delay) await new Promise((resolve) => setTimeout(resolve, delay))
    const t = Math.floor(Date.now() / 1000)
    const v1 = createHmac('sha256', SECRET).update(`${t}.${raw}`).digest('hex')
    try {
      const response = await fetch(`${CITYOS_URL}/webhooks/payload`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'x-cityos-signature': `t=${t},v1=${v1}` },
        body: raw,
      })
      if (response.status < 500) return // 2xx handled (or a duplicate / refusal recorded); 4xx will not improve
    } catch {
      // network error: retry; sync-from-payload catches up whatever is still missed
    }
  }
}

export const notifyCityOS: CollectionAfterChangeHook = async ({ doc, previousDoc, operation, collection, context }) => {
  // Our own pushes change commerce fields only: nothing to send back (and no loop).
  if (context?.skipCityOS || !contentChanged(doc, previousDoc)) return doc
  void send({ id: randomUUID(), event: 'afterChange', collection: collection.slug, operation, doc })
  return doc
}

export const notifyCityOSDelete: CollectionAfterDeleteHook = async ({ doc, collection, context }) => {
  if (context?.skipCityOS) return doc
  void send({ id: randomUUID(), event: 'afterDelete', collection: collection.slug, operation: 'delete', doc })
  return doc
}
