"use client";

import type { ReactNode } from "react";
import { SessionProvider } from "next-auth/react";

/** Polling the session runs the jwt callback on the server, which refreshes the access token before it expires
 * (the refreshed token goes back into the httpOnly cookie; the browser never sees it). */
export const SESSION_REFETCH_S = 4 * 60;

export function Providers({ children }: { children: ReactNode }) {
  return (
    <SessionProvider refetchInterval={SESSION_REFETCH_S} refetchOnWindowFocus>
      {children}
    </SessionProvider>
  );
}
