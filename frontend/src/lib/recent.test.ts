import { describe, expect, it } from "vitest";

import { RECENT_MAX, addRecent, parseRecent, removeRecent, serializeRecent } from "./recent";

const id = (n: number) => n.toString(16).padStart(32, "0");

describe("recent documents cookie", () => {
  it("keeps only document ids, newest first, without duplicates, bounded", () => {
    let ids = addRecent([], [id(1), "../../etc", 42, id(2)]);
    expect(ids).toEqual([id(2), id(1)]);
    ids = addRecent(ids, [id(1)]);
    expect(ids).toEqual([id(1), id(2)]);
    const many = addRecent([], Array.from({ length: 80 }, (_, i) => id(i)));
    expect(many).toHaveLength(RECENT_MAX);
    expect(parseRecent(serializeRecent(removeRecent(ids, id(1))))).toEqual([id(2)]);
    expect(parseRecent("garbage.<script>")).toEqual([]);
  });
});
