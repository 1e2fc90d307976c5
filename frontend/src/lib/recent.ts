/**
 * The documents this browser uploaded, kept in an httpOnly cookie (ids only; the API checks ownership on every
 * read). The API has no list-my-documents route yet, so this is how the documents page knows what to show.
 */
export const RECENT_COOKIE = "vr_recent_docs";
export const RECENT_MAX = 50;
const DOCUMENT_ID = /^[a-f0-9]{32}$/;

export function parseRecent(raw: string | undefined): string[] {
  if (!raw) return [];
  return raw.split(".").filter((id) => DOCUMENT_ID.test(id)).slice(0, RECENT_MAX);
}

/** Newest first, no duplicates, at most RECENT_MAX; anything that is not a document id is dropped. */
export function addRecent(current: string[], added: unknown[]): string[] {
  const fresh = added.filter((id): id is string => typeof id === "string" && DOCUMENT_ID.test(id));
  return [...new Set([...fresh.reverse(), ...current])].slice(0, RECENT_MAX);
}

export function removeRecent(current: string[], removed: string): string[] {
  return current.filter((id) => id !== removed);
}

export function serializeRecent(ids: string[]): string {
  return ids.join(".");
}
