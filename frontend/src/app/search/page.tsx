import { serverEnv } from "@/env";
import { ApiError, apiClient, search, type SearchItem } from "@/lib/api/client";
import { accessToken } from "@/lib/auth/token";
import { PageThumb } from "@/components/PageThumb";
import { redirect } from "next/navigation";

export default async function SearchPage({ searchParams }: { searchParams: Promise<{ q?: string }> }) {
  const q = ((await searchParams).q ?? "").trim().slice(0, 512);
  const env = serverEnv();
  let items: SearchItem[] | null = null;
  let error: string | null = null;
  if (q) {
    const token = await accessToken();
    if (!token) redirect(`/signin?callbackUrl=${encodeURIComponent(`/search?q=${q}`)}`);
    try {
      items = await search(apiClient(env.API_URL, token), q, 8);
    } catch (exc) {
      if (!(exc instanceof ApiError)) throw exc;
      error = exc.status === 429 ? "Too many searches: wait a moment." : exc.detail;
    }
  }
  return (
    <section>
      <h1>Search</h1>
      <form className="row card" action="/search" method="get" role="search">
        <input type="search" name="q" defaultValue={q} placeholder="Ask about your documents" aria-label="query" maxLength={512} />
        <button className="primary" type="submit">
          Search
        </button>
      </form>
      {error && (
        <p role="alert" className="error">
          {error}
        </p>
      )}
      {items && items.length === 0 && <p className="muted">No pages found.</p>}
      {items && items.length > 0 && (
        <ul className="results" aria-label="results">
          {items.map((item, index) => (
            <PageThumb key={`${item.label}-${index}`} item={item} pagesOrigin={env.PAGES_IMAGE_ORIGIN} />
          ))}
        </ul>
      )}
    </section>
  );
}
