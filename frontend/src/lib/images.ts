/** A page image URL is shown only when it points at the pages bucket (defence in depth behind the CSP). */
export function isPageImage(url: string | null | undefined, pagesOrigin: string): url is string {
  if (!url) return false;
  try {
    return new URL(url).origin === new URL(pagesOrigin).origin;
  } catch {
    return false;
  }
}
