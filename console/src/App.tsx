import { useCallback, useState } from "react";
import { SessionProvider, storedToken, useSession } from "./session";
import { href, useRoute } from "./router";
import { SignIn } from "./pages/SignIn";
import { ClusterList } from "./pages/ClusterList";
import { CreateWizard } from "./pages/CreateWizard";
import { ClusterDetail } from "./pages/ClusterDetail";
import { Claims } from "./pages/Claims";
import { Settings } from "./pages/Settings";

export function App() {
  const [token, setToken] = useState<string | null>(() => storedToken());
  const [notice, setNotice] = useState<string>();
  const signedOut = useCallback((why?: string) => {
    setNotice(why);
    setToken(null);
  }, []);
  if (!token) {
    return (
      <SignIn
        notice={notice}
        onSignedIn={(t) => {
          setNotice(undefined);
          setToken(t);
        }}
      />
    );
  }
  return (
    <SessionProvider token={token} onSignOut={signedOut}>
      <Shell />
    </SessionProvider>
  );
}

function Shell() {
  const route = useRoute();
  const session = useSession();
  const [namespace, setNamespace] = useState(session.namespace);
  const section = route.page === "create" || route.page === "cluster" ? "clusters" : route.page;
  return (
    <div className="shell">
      <header className="topbar">
        <a className="brand" href={href({ page: "clusters" })}>
          dbaas
        </a>
        <nav aria-label="Main">
          <a href={href({ page: "clusters" })} aria-current={section === "clusters" ? "page" : undefined}>
            Database clusters
          </a>
          <a href={href({ page: "claims" })} aria-current={section === "claims" ? "page" : undefined}>
            Claims
          </a>
          <a href={href({ page: "settings" })} aria-current={section === "settings" ? "page" : undefined}>
            Settings
          </a>
        </nav>
        <form
          className="namespace"
          onSubmit={(e) => {
            e.preventDefault();
            session.setNamespace(namespace.trim());
          }}
        >
          <label htmlFor="namespace">Namespace</label>
          <input id="namespace" value={namespace} onChange={(e) => setNamespace(e.target.value)} />
          <button type="submit" className="small">
            Switch
          </button>
        </form>
        <button type="button" className="small plain" onClick={session.signOut}>
          Sign out
        </button>
      </header>
      <main>
        {route.page === "clusters" && <ClusterList key={session.namespace} />}
        {route.page === "create" && <CreateWizard key={session.namespace} restoreFrom={route.restoreFrom} />}
        {route.page === "cluster" && <ClusterDetail key={`${session.namespace}/${route.name}`} name={route.name} tab={route.tab} />}
        {route.page === "claims" && <Claims key={session.namespace} />}
        {route.page === "settings" && <Settings key={session.namespace} />}
      </main>
    </div>
  );
}
