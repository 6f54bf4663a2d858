import { describe, expect, it } from "vitest";
import { deletedSince, fresher } from "./freshness";

const at = (rv: string, phase: string) => ({ metadata: { resourceVersion: rv }, phase });

describe("freshness", () => {
  it("keeps the newer state, comparing revisions as numbers", () => {
    expect(fresher(at("9", "Creating"), at("10", "Ready")).phase).toBe("Ready");
    expect(fresher(at("11", "Updating"), at("10", "Ready")).phase).toBe("Updating");
    expect(fresher(at("10", "Ready"), undefined).phase).toBe("Ready");
    // Not numbers: the candidate (the newest answer) wins.
    expect(fresher(at("x", "A"), at("y", "B")).phase).toBe("A");
  });

  it("knows whether a deletion came after a state", () => {
    expect(deletedSince(at("9", "Ready"), at("12", "Ready"))).toBe(true);
    expect(deletedSince(at("13", "Ready"), at("12", "Ready"))).toBe(false);
  });
});
