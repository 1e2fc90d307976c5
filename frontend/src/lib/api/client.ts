/** The typed API client (openapi-fetch over the generated schema.d.ts), used on the server only. */
import createClient, { type Client } from "openapi-fetch";

import type { components, paths } from "./schema";

export type ApiClient = Client<paths>;
export type SearchItem = components["schemas"]["SearchItem"];
export type JobView = components["schemas"]["JobView"];
export type DocumentView = components["schemas"]["DocumentView"];
export type ChatResponse = components["schemas"]["ChatResponse"];

export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly detail: string,
  ) {
    super(`API ${status}: ${detail}`);
  }
}

/** A client whose every request carries the user's access token; `fetch` is injectable for tests. */
export function apiClient(baseUrl: string, accessToken: string, fetchImpl: typeof fetch = fetch): ApiClient {
  if (!accessToken) throw new Error("apiClient needs an access token");
  return createClient<paths>({
    baseUrl: baseUrl.replace(/\/+$/, ""),
    headers: { Authorization: `Bearer ${accessToken}` },
    cache: "no-store",
    fetch: (request: Request) => fetchImpl(request),
  });
}

/** The message of an API error body (`{"detail": "..."}` or FastAPI's validation list). */
export function errorDetail(error: unknown): string {
  if (error && typeof error === "object" && "detail" in error) {
    const detail = (error as { detail: unknown }).detail;
    if (typeof detail === "string") return detail;
    if (Array.isArray(detail)) return detail.map((d) => (d as { msg?: string }).msg ?? "invalid").join("; ");
  }
  return "request failed";
}

/** `data` of an openapi-fetch result, or an ApiError carrying the status and the API's message. */
export function unwrap<T>(result: { data?: T; error?: unknown; response: Response }): T {
  if (result.data === undefined || result.error !== undefined) {
    throw new ApiError(result.response.status, errorDetail(result.error));
  }
  return result.data;
}

/** Search, typed end to end. */
export async function search(client: ApiClient, q: string, k = 8): Promise<SearchItem[]> {
  return unwrap(await client.GET("/search", { params: { query: { q, k } } }));
}

export async function getDocument(client: ApiClient, documentId: string): Promise<DocumentView | null> {
  const result = await client.GET("/documents/{document_id}", { params: { path: { document_id: documentId } } });
  if (result.response.status === 404) return null;
  return unwrap(result);
}
