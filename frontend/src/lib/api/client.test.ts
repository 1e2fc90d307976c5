import { describe, expect, it, vi } from "vitest";

import { ApiError, apiClient, getDocument, search } from "./client";

function recorder(status: number, body: unknown) {
  const seen: Request[] = [];
  const fetchImpl = vi.fn(async (request: Request) => {
    seen.push(request);
    return new Response(JSON.stringify(body), { status, headers: { "content-type": "application/json" } });
  }) as unknown as typeof fetch;
  return { seen, fetchImpl };
}

const ITEM = { image_url: "https://pages.example/p1.jpg?X-Amz-Signature=1", label: "a.pdf - page 1", payload: { page: 1 }, score: 0.9 };

describe("apiClient", () => {
  it("sends the bearer token and the typed query to the API base URL", async () => {
    const { seen, fetchImpl } = recorder(200, [ITEM]);
    const items = await search(apiClient("http://api.internal:8000/", "tok-1", fetchImpl), "what is x?", 3);
    expect(items).toEqual([ITEM]);
    const request = seen[0]!;
    expect(request.headers.get("authorization")).toBe("Bearer tok-1");
    const url = new URL(request.url);
    expect(`${url.origin}${url.pathname}`).toBe("http://api.internal:8000/search");
    expect(Object.fromEntries(url.searchParams)).toEqual({ q: "what is x?", k: "3" });
  });

  it("refuses to build a client without a token", () => {
    expect(() => apiClient("http://api", "")).toThrow(/access token/);
  });

  it("turns an error body into an ApiError with the status and the API's message", async () => {
    const { fetchImpl } = recorder(429, { detail: "rate limit exceeded" });
    const error = await search(apiClient("http://api", "t", fetchImpl), "q").catch((exc: unknown) => exc);
    expect(error).toBeInstanceOf(ApiError);
    expect(error).toMatchObject({ status: 429, detail: "rate limit exceeded" });
  });

  it("joins FastAPI validation messages", async () => {
    const { fetchImpl } = recorder(422, { detail: [{ msg: "too short" }, { msg: "bad k" }] });
    await expect(search(apiClient("http://api", "t", fetchImpl), "q")).rejects.toMatchObject({ detail: "too short; bad k" });
  });

  it("reads a missing document as null and fills the path parameter", async () => {
    const { seen, fetchImpl } = recorder(404, { detail: "document not found" });
    const id = "0123456789abcdef0123456789abcdef";
    expect(await getDocument(apiClient("http://api", "t", fetchImpl), id)).toBeNull();
    expect(new URL(seen[0]!.url).pathname).toBe(`/documents/${id}`);
  });
});
