/** Liveness for the container HEALTHCHECK and the kubelet: the server answers; no session, no dependencies. */
export const dynamic = "force-dynamic";

export function GET(): Response {
  return Response.json({ status: "ok" }, { headers: { "cache-control": "no-store" } });
}
