import { useCallback, useEffect, useMemo, useState } from "react";
import { ok, okPage, type DatabaseCluster } from "../api/client";
import { useSession } from "../session";
import { href } from "../router";
import { useLiveList } from "../hooks";
import { age, endpoint, searchClusters, sortClusters, type SortKey } from "../model/cluster";
import { ActionButton, Badge, Empty, ErrorNote, Loading } from "../components/ui";

const PAGE_SIZES = [10, 20, 50, 100];

export function ClusterList() {
  const { api, namespace, token, can } = useSession();
  const [pageSize, setPageSize] = useState(20);
  // Continue tokens of the pages before this one; "" is the first page.
  const [pages, setPages] = useState<string[]>([""]);
  const [selector, setSelector] = useState("");
  const [appliedSelector, setAppliedSelector] = useState("");
  const [search, setSearch] = useState("");
  const [sort, setSort] = useState<{ key: SortKey; descending: boolean }>({ key: "name", descending: false });
  const current = pages[pages.length - 1];
  // "local" or a registered Kubernetes cluster's name.
  const [target, setTarget] = useState("local");
  const [registered, setRegistered] = useState<string[]>([]);
  useEffect(() => {
    // Callers who may not list registrations see the local cluster only.
    ok(api.GET("/v1/kubernetesclusters"))
      .then((list) => setRegistered(list.items.map((c) => c.name)))
      .catch(() => setRegistered([]));
  }, [api]);

  const load = useCallback(async () => {
    const query = {
      limit: pageSize,
      ...(current ? { continue: current } : {}),
      ...(appliedSelector ? { labelSelector: appliedSelector } : {}),
    };
    const page =
      target === "local"
        ? await okPage(api.GET("/v1/namespaces/{namespace}/databaseclusters", { params: { path: { namespace }, query } }))
        : await okPage(
            api.GET("/v1/kubernetesclusters/{cluster}/namespaces/{namespace}/databaseclusters", {
              params: { path: { cluster: target, namespace }, query },
            }),
          );
    return { items: page.items, next: page.continue, remaining: page.remainingItemCount };
  }, [api, namespace, pageSize, current, appliedSelector, target]);
  const prefix = target === "local" ? "/v1" : `/v1/kubernetesclusters/${encodeURIComponent(target)}`;
  const watchPath = `${prefix}/namespaces/${encodeURIComponent(namespace)}/databaseclusters${
    appliedSelector ? `?labelSelector=${encodeURIComponent(appliedSelector)}` : ""
  }`;
  const { items, next, remaining, error, live } = useLiveList<DatabaseCluster>(load, watchPath, token);
  const shown = useMemo(
    () => sortClusters(searchClusters(items ?? [], search), sort.key, sort.descending),
    [items, search, sort],
  );
  const now = Date.now();
  const sortBy = (key: SortKey) =>
    setSort((s) => ({ key, descending: s.key === key ? !s.descending : false }));
  const sortState = (key: SortKey) =>
    sort.key === key ? (sort.descending ? "descending" : "ascending") : "none";

  return (
    <section aria-labelledby="clusters-title">
      <div className="page-head">
        <h1 id="clusters-title">Database clusters</h1>
        <span className={`live live-${live}`} role="status">
          {live === "live" ? "Live" : live === "connecting" ? "Connecting…" : "Live updates paused"}
        </span>
        <ActionButton kind="primary" allowed={can("databaseclusters", "create")} onClick={() => (window.location.hash = href({ page: "create" }))}>
          Create database cluster
        </ActionButton>
      </div>
      <div className="toolbar">
        {registered.length > 0 && (
          <div className="field inline">
            <label htmlFor="kubernetes-cluster">Kubernetes cluster</label>
            <select
              id="kubernetes-cluster"
              value={target}
              onChange={(e) => {
                setPages([""]);
                setTarget(e.target.value);
              }}
            >
              {["local", ...registered].map((name) => (
                <option key={name} value={name}>
                  {name}
                </option>
              ))}
            </select>
          </div>
        )}
        <div className="field inline">
          <label htmlFor="search">Search this page</label>
          <input id="search" type="search" value={search} onChange={(e) => setSearch(e.target.value)} placeholder="name, engine or phase" />
        </div>
        <form
          className="field inline"
          onSubmit={(e) => {
            e.preventDefault();
            setPages([""]);
            setAppliedSelector(selector.trim());
          }}
        >
          <label htmlFor="selector">Label selector</label>
          <input id="selector" value={selector} onChange={(e) => setSelector(e.target.value)} placeholder="team=shop,tier!=dev" />
          <button type="submit" className="small">
            Filter
          </button>
        </form>
      </div>
      <ErrorNote error={error} />
      {!items && !error && <Loading what="database clusters" />}
      {items && items.length === 0 && (
        <Empty title={appliedSelector ? "No cluster matches this selector" : `No database clusters in ${namespace} yet`}>
          {can("databaseclusters", "create") ? (
            <p>
              <a href={href({ page: "create" })}>Create one</a> from a template in a few steps.
            </p>
          ) : (
            <p>You may not create clusters in this namespace.</p>
          )}
        </Empty>
      )}
      {items && items.length > 0 && (
        <div className="table-wrap">
          <table>
            <thead>
              <tr>
                <th aria-sort={sortState("name")}>
                  <button type="button" className="sort" onClick={() => sortBy("name")}>Name</button>
                </th>
                <th aria-sort={sortState("engine")}>
                  <button type="button" className="sort" onClick={() => sortBy("engine")}>Engine</button>
                </th>
                <th>Size</th>
                <th aria-sort={sortState("phase")}>
                  <button type="button" className="sort" onClick={() => sortBy("phase")}>Phase</button>
                </th>
                <th aria-sort={sortState("age")}>
                  <button type="button" className="sort" onClick={() => sortBy("age")}>Age</button>
                </th>
                <th className="wide">Endpoint</th>
              </tr>
            </thead>
            <tbody>
              {shown.map((c) => (
                <tr key={c.metadata?.name}>
                  <td>
                    {target === "local" ? (
                      <a href={href({ page: "cluster", name: c.metadata?.name ?? "", tab: "overview" })}>{c.metadata?.name}</a>
                    ) : (
                      c.metadata?.name
                    )}
                  </td>
                  <td>
                    {c.spec.engine.type} {c.spec.engine.version ?? c.status?.engineVersion ?? ""}
                  </td>
                  <td>
                    {c.status?.ready ?? 0}/{c.spec.clusterSize ?? 1}
                  </td>
                  <td>
                    <Badge phase={c.status?.phase} />
                  </td>
                  <td>{age(c.metadata?.creationTimestamp, now)}</td>
                  <td className="wide mono">{endpoint(c)}</td>
                </tr>
              ))}
            </tbody>
          </table>
          {shown.length === 0 && <p className="hint">Nothing on this page matches “{search}”.</p>}
          {target !== "local" && <p className="hint">Cluster pages are shown for the local cluster; use the API or dbaasctl for {target}'s.</p>}
        </div>
      )}
      <nav className="pager" aria-label="Pages">
        <button type="button" className="small" disabled={pages.length === 1} onClick={() => setPages((p) => p.slice(0, -1))}>
          Previous
        </button>
        <span>
          Page {pages.length}
          {typeof remaining === "number" ? ` · ${remaining} more after this page` : ""}
        </span>
        <button type="button" className="small" disabled={!next} onClick={() => next && setPages((p) => [...p, next])}>
          Next
        </button>
        <label htmlFor="page-size">Per page</label>
        <select
          id="page-size"
          value={pageSize}
          onChange={(e) => {
            setPages([""]);
            setPageSize(Number(e.target.value));
          }}
        >
          {PAGE_SIZES.map((size) => (
            <option key={size} value={size}>
              {size}
            </option>
          ))}
        </select>
      </nav>
    </section>
  );
}
