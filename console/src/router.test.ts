import { describe, expect, it } from "vitest";
import { href, parseRoute, type Route } from "./router";

describe("routes", () => {
  it("round-trip through the hash", () => {
    const routes: Route[] = [
      { page: "clusters" },
      { page: "create" },
      { page: "create", restoreFrom: "shop-nightly" },
      { page: "cluster", name: "shop", tab: "overview" },
      { page: "cluster", name: "shop", tab: "backups" },
      { page: "claims" },
      { page: "settings" },
    ];
    for (const route of routes) expect(parseRoute(href(route))).toEqual(route);
    expect(parseRoute("")).toEqual({ page: "clusters" });
    expect(parseRoute("#/nonsense")).toEqual({ page: "clusters" });
  });
});
