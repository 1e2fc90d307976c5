"use client";

import * as Sentry from "@sentry/nextjs";
import { useEffect } from "react";

/** A page failed: report it (scrubbed) and offer a retry; the layout and navigation stay usable. */
export default function PageError({ error, reset }: { error: Error & { digest?: string }; reset: () => void }) {
  useEffect(() => {
    Sentry.captureException(error);
  }, [error]);
  return (
    <section className="card" role="alert">
      <h1>Something went wrong</h1>
      <p>The page could not be shown.{error.digest ? ` Reference: ${error.digest}` : ""}</p>
      <button type="button" onClick={reset}>
        Try again
      </button>
    </section>
  );
}
