// Who is signed in: the bearer token (kept in this tab's session storage,
// never in a cookie), the namespace in view, and what the caller may do
// there (GET /v1/namespaces/{namespace}/access).
import { createContext, useCallback, useContext, useEffect, useMemo, useState } from "react";
import type { ReactNode } from "react";
import { connect, ok, type Api, type ApiError, type NamespaceAccess } from "./api/client";

const TOKEN_KEY = "dbaas.token";
const NAMESPACE_KEY = "dbaas.namespace";

export interface Session {
  token: string;
  namespace: string;
  api: Api;
  access: NamespaceAccess | undefined;
  /** Why `access` could not be read (actions are then shown disabled). */
  accessError: ApiError | undefined;
  /** Whether the caller may `verb` the resource (plural) in the namespace. */
  can: (resource: string, verb: string) => boolean;
  setNamespace: (namespace: string) => void;
  signOut: () => void;
}

const SessionContext = createContext<Session | undefined>(undefined);

export function useSession(): Session {
  const session = useContext(SessionContext);
  if (!session) throw new Error("useSession outside a signed-in page");
  return session;
}

/** Checks `token` by asking what it may do in `namespace`. */
export async function signIn(token: string, namespace: string): Promise<NamespaceAccess> {
  const access = await ok(
    connect(token).GET("/v1/namespaces/{namespace}/access", { params: { path: { namespace } } }),
  );
  sessionStorage.setItem(TOKEN_KEY, token);
  sessionStorage.setItem(NAMESPACE_KEY, namespace);
  return access;
}

export function storedToken(): string | null {
  return sessionStorage.getItem(TOKEN_KEY);
}

export function forgetToken() {
  sessionStorage.removeItem(TOKEN_KEY);
}

export function SessionProvider(props: {
  token: string;
  onSignOut: (why?: string) => void;
  children: ReactNode;
}) {
  const { token, onSignOut } = props;
  const [namespace, setNamespaceState] = useState(
    () => sessionStorage.getItem(NAMESPACE_KEY) ?? "default",
  );
  const [access, setAccess] = useState<NamespaceAccess>();
  const [accessError, setAccessError] = useState<ApiError>();
  const api = useMemo(() => connect(token), [token]);

  useEffect(() => {
    let current = true;
    setAccess(undefined);
    setAccessError(undefined);
    ok(api.GET("/v1/namespaces/{namespace}/access", { params: { path: { namespace } } }))
      .then((answer) => current && setAccess(answer))
      // A 401 also signs out, through the app's handler (ok() announces it).
      .catch((error: ApiError) => current && setAccessError(error));
    return () => {
      current = false;
    };
  }, [api, namespace, onSignOut]);

  const setNamespace = useCallback((next: string) => {
    sessionStorage.setItem(NAMESPACE_KEY, next);
    setNamespaceState(next);
  }, []);
  const signOut = useCallback(() => onSignOut(), [onSignOut]);
  const can = useCallback(
    (resource: string, verb: string) => access?.resources[resource]?.[verb] === true,
    [access],
  );
  const session = useMemo(
    () => ({ token, namespace, api, access, accessError, can, setNamespace, signOut }),
    [token, namespace, api, access, accessError, can, setNamespace, signOut],
  );
  return <SessionContext.Provider value={session}>{props.children}</SessionContext.Provider>;
}
