"use client";

import * as Sentry from "@sentry/nextjs";
import { useEffect } from "react";

/** The root layout itself failed: this replaces the whole document, so it brings its own html and body. */
export default function GlobalError({ error, reset }: { error: Error & { digest?: string }; reset: () => void }) {
  useEffect(() => {
    Sentry.captureException(error);
  }, [error]);
  return (
    <html lang="en">
      <body>
        <h1>VisionRAG is unavailable</h1>
        <p>An unexpected error occurred.{error.digest ? ` Reference: ${error.digest}` : ""}</p>
        <button type="button" onClick={reset}>
          Try again
        </button>
      </body>
    </html>
  );
}
