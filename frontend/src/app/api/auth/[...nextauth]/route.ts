import NextAuth from "next-auth";

import { authOptions } from "@/lib/auth/options";

export const dynamic = "force-dynamic";

type Handler = (request: Request, context: unknown) => Promise<Response>;

// Built per request so a missing variable is a clear error here, not a crash at import time during the build.
const handler: Handler = (request, context) => (NextAuth(authOptions()) as Handler)(request, context);

export { handler as GET, handler as POST };
