// Payload CMS 3 collections CityOS Commerce syncs with (see README.md). Commerce fields are read-only copies of
// ours; content fields are the editors'.
import type { CollectionConfig, Field } from 'payload'
import { notifyCityOS, notifyCityOSDelete } from './hooks'

const readOnly = { admin: { readOnly: true } }

const keys: Field[] = [
  { name: 'cityosId', type: 'text', required: true, unique: true, index: true, ...readOnly },
  { name: 'tenant', type: 'text', required: true, index: true, ...readOnly },
]

const content: Field[] = [
  { name: 'richDescription', type: 'richText' },
  { name: 'descriptionHtml', type: 'textarea' },
  {
    name: 'images',
    type: 'array',
    fields: [
      { name: 'image', type: 'upload', relationTo: 'media', required: true },
      { name: 'alt', type: 'text' },
    ],
  },
  {
    name: 'seo',
    type: 'group',
    fields: [
      { name: 'title', type: 'text' },
      { name: 'description', type: 'textarea' },
      { name: 'imageUrl', type: 'text' },
    ],
  },
]

const brand: Field = {
  name: 'brand',
  type: 'group',
  fields: [
    { name: 'tagline', type: 'text' },
    { name: 'story', type: 'textarea' },
    { name: 'logoUrl', type: 'text' },
  ],
}

const commerce = (names: string[]): Field[] => names.map((name) => ({ name, type: 'text', ...readOnly }) as Field)

const synced = (slug: string, title: string, fields: Field[]): CollectionConfig => ({
  slug,
  admin: { useAsTitle: title },
  hooks: { afterChange: [notifyCityOS], afterDelete: [notifyCityOSDelete] },
  fields: [...keys, ...fields],
})

export const Products = synced('products', 'title', [...commerce(['title', 'handle', 'status', 'store', 'vendor']), ...content])
export const Categories = synced('categories', 'name', [...commerce(['name', 'handle', 'store', 'parent']), ...content])
export const Vendors = synced('vendors', 'name', [...commerce(['name', 'handle', 'status', 'store']), ...content, brand])
export const Stores = synced('stores', 'name', [...commerce(['name', 'handle']), ...content, brand])

// The API user CityOS authenticates as: `Authorization: users API-Key <PAYLOAD_API_KEY>`.
export const Users: CollectionConfig = { slug: 'users', auth: { useAPIKey: true }, fields: [] }
