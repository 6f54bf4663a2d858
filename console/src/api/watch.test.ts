import { describe, expect, it } from "vitest";
import { parseEvents } from "./watch";

describe("parseEvents", () => {
  it("reads complete events and keeps the incomplete rest", () => {
    const stream =
      'event: RESYNC\ndata: {}\n\n:keep-alive\n\nevent: ADDED\ndata: {"metadata":{"name":"a"}}\n\nevent: MOD';
    const { events, rest } = parseEvents<{ metadata: { name: string } }>(stream);
    expect(events.map((e) => e.type)).toEqual(["RESYNC", "ADDED"]);
    expect(events[0].object).toBeUndefined();
    expect(events[1].object?.metadata.name).toBe("a");
    expect(rest).toBe("event: MOD");
    const next = parseEvents(rest + 'IFIED\ndata: {"x":1}\n\n');
    expect(next.events).toEqual([{ type: "MODIFIED", object: { x: 1 } }]);
  });
});
