import type { Metadata } from "next";
import type { ReactNode } from "react";

import { serverEnv } from "@/env";
import { currentUserName } from "@/lib/auth/token";
import { Nav } from "@/components/Nav";

import { Providers } from "./providers";
import "./globals.css";

export const metadata: Metadata = { title: "VisionRAG", description: "Search and chat over your documents' pages" };
// Every page depends on the session and carries a per-request CSP nonce: nothing is prerendered.
export const dynamic = "force-dynamic";

export default async function RootLayout({ children }: { children: ReactNode }) {
  const user = await currentUserName();
  return (
    <html lang="en">
      <head>
        <meta name="sentry-environment" content={serverEnv().SENTRY_ENVIRONMENT} />
      </head>
      <body>
        <Providers>
          <Nav user={user} />
          <main>{children}</main>
        </Providers>
      </body>
    </html>
  );
}
