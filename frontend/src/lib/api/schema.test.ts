/**
 * Drift check: src/lib/api/schema.d.ts must be what `npm run gen:api` makes from openapi.json, and openapi.json
 * what the FastAPI app serves today (pytest's tests/app/test_frontend_openapi.py checks that half with Python).
 */
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";

import openapiTS, { astToString } from "openapi-typescript";
import { describe, expect, it } from "vitest";

const here = (path: string) => fileURLToPath(new URL(path, import.meta.url));

describe("generated API types", () => {
  it("match the committed OpenAPI schema (run `npm run gen:api`)", async () => {
    const schema = JSON.parse(readFileSync(here("../../../openapi.json"), "utf8")) as Record<string, unknown>;
    const generated = astToString(await openapiTS(schema as never));
    const committed = readFileSync(here("./schema.d.ts"), "utf8");
    const body = (text: string) => text.replace(/^\/\*\*[\s\S]*?\*\/\s*/, "").trim();
    expect(body(committed)).toBe(body(generated));
  });
});
