// Pages are addressed by the URL's hash (#/clusters/shop), so the server
// serves one page and every link can be bookmarked.
import { useEffect, useState } from "react";

export type Route =
  | { page: "clusters" }
  | { page: "create"; restoreFrom?: string }
  | { page: "cluster"; name: string; tab: string }
  | { page: "claims" }
  | { page: "settings" };

export function parseRoute(hash: string): Route {
  const [path, query = ""] = hash.replace(/^#\/?/, "").split("?");
  const parts = path.split("/").filter(Boolean).map(decodeURIComponent);
  const params = new URLSearchParams(query);
  if (parts[0] === "clusters" && parts[1] === "new") {
    return { page: "create", restoreFrom: params.get("restoreFrom") ?? undefined };
  }
  if (parts[0] === "clusters" && parts[1]) {
    return { page: "cluster", name: parts[1], tab: parts[2] ?? "overview" };
  }
  if (parts[0] === "claims") return { page: "claims" };
  if (parts[0] === "settings") return { page: "settings" };
  return { page: "clusters" };
}

export function href(route: Route): string {
  switch (route.page) {
    case "clusters":
      return "#/clusters";
    case "create":
      return route.restoreFrom
        ? `#/clusters/new?restoreFrom=${encodeURIComponent(route.restoreFrom)}`
        : "#/clusters/new";
    case "cluster":
      return `#/clusters/${encodeURIComponent(route.name)}${route.tab === "overview" ? "" : `/${route.tab}`}`;
    case "claims":
      return "#/claims";
    case "settings":
      return "#/settings";
  }
}

export function navigate(route: Route) {
  window.location.hash = href(route);
}

export function useRoute(): Route {
  const [route, setRoute] = useState(() => parseRoute(window.location.hash));
  useEffect(() => {
    const changed = () => setRoute(parseRoute(window.location.hash));
    window.addEventListener("hashchange", changed);
    return () => window.removeEventListener("hashchange", changed);
  }, []);
  return route;
}
