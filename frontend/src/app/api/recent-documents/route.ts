/** POST {add?: string[], remove?: string}: updates the httpOnly list of this browser's documents (src/lib/recent.ts). */
import { cookies } from "next/headers";
import { NextResponse } from "next/server";

import { serverEnv } from "@/env";
import { RECENT_COOKIE, addRecent, parseRecent, removeRecent, serializeRecent } from "@/lib/recent";

export const dynamic = "force-dynamic";

export async function POST(request: Request): Promise<Response> {
  const body = (await request.json().catch(() => null)) as { add?: unknown; remove?: unknown } | null;
  if (!body) return NextResponse.json({ detail: "JSON body required" }, { status: 400 });
  const jar = await cookies();
  let ids = parseRecent(jar.get(RECENT_COOKIE)?.value);
  if (Array.isArray(body.add)) ids = addRecent(ids, body.add);
  if (typeof body.remove === "string") ids = removeRecent(ids, body.remove);
  jar.set(RECENT_COOKIE, serializeRecent(ids), {
    httpOnly: true,
    sameSite: "lax",
    secure: serverEnv().NEXTAUTH_URL.startsWith("https://"),
    path: "/",
    maxAge: 90 * 24 * 3600,
  });
  return NextResponse.json({ documents: ids });
}
