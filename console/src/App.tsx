import { useCallback, useEffect, useState } from "react";
import { UNAUTHORIZED_EVENT } from "./api/client";
import { SessionProvider, forgetToken, storedToken, useSession } from "./session";
import { href, useRoute } from "./router";
import { SignIn } from "./pages/SignIn";
import { ClusterList } from "./pages/ClusterList";
import { CreateWizard } from "./pages/CreateWizard";
import { ClusterDetail } from "./pages/ClusterDetail";
import { Claims } from "./pages/Claims";
import { Settings } from "./pages/Settings";
import { ErrorNote } from "./components/ui";

export function App() {
  const [token, setToken] = useState<string | null>(() => storedToken());
  const [notice, setNotice] = useState<string>();
  const signedOut = useCallback((why?: string) => {
    forgetToken();
    setNotice(why);
    setToken(null);
  }, []);
  // Any request the API refuses for the token (401) signs out, with a reason.
  useEffect(() => {
    if (!token) return;
    const refused = () => signedOut("Your token is no longer accepted; sign in again.");
    window.addEventListener(UNAUTHORIZED_EVENT, refused);
    return () => window.removeEventListener(UNAUTHORIZED_EVENT, refused);
  }, [token, signedOut]);
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
        {session.accessError && (
          <ErrorNote error={`What you may do in ${session.namespace} could not be read, so actions are shown disabled: ${session.accessError.message}`} />
        )}
        {route.page === "clusters" && <ClusterList key={session.namespace} />}
        {route.page === "create" && <CreateWizard key={session.namespace} restoreFrom={route.restoreFrom} />}
        {route.page === "cluster" && <ClusterDetail key={`${session.namespace}/${route.name}`} name={route.name} tab={route.tab} />}
        {route.page === "claims" && <Claims key={session.namespace} />}
        {route.page === "settings" && <Settings key={session.namespace} />}
      </main>
    </div>
  );
}
