// The typed client of the REST API (types generated from deploy/openapi.json
// into schema.d.ts), with the signed-in bearer token on every request.
import createClient from "openapi-fetch";
import type { components, paths } from "./schema";
import { fieldErrors, type FieldErrors } from "../model/errors";

export type Schemas = components["schemas"];
export type DatabaseCluster = Schemas["DatabaseCluster"];
export type DatabaseClusterTemplate = Schemas["DatabaseClusterTemplate"];
export type OpsRequest = Schemas["OpsRequest"];
export type DatabaseBackup = Schemas["DatabaseBackup"];
export type DatabaseClaim = Schemas["DatabaseClaim"];
export type EngineVersions = Schemas["EngineVersions"];
export type Credentials = Schemas["Credentials"];
export type NamespaceAccess = Schemas["NamespaceAccess"];
export type ErrorBody = Schemas["ErrorBody"];

/** Fired on `window` when the API refuses the token (401): the app signs out. */
export const UNAUTHORIZED_EVENT = "dbaas:unauthorized";

export function announceUnauthorized() {
  if (typeof window !== "undefined") window.dispatchEvent(new Event(UNAUTHORIZED_EVENT));
}

/** An error response of the API: its reason, message, and the fields it names. */
export class ApiError extends Error {
  readonly code: number;
  readonly reason: string;
  readonly fields: FieldErrors;

  constructor(body: ErrorBody) {
    super(body.message);
    this.code = body.code;
    this.reason = body.reason;
    this.fields = fieldErrors(body.message);
  }
}

/** What a failed request becomes: the API's own error, or a network failure. */
function asApiError(error: unknown, status: number): ApiError {
  if (error && typeof error === "object" && "reason" in error && "message" in error) {
    return new ApiError(error as ErrorBody);
  }
  return new ApiError({
    code: status,
    reason: "Unreachable",
    message: `the server answered ${status} without an error body; is dbaas-server running?`,
  });
}

export type Api = ReturnType<typeof connect>;

/** A client that sends `token` as `Authorization: Bearer`. */
export function connect(token: string, baseUrl = "") {
  const client = createClient<paths>({ baseUrl });
  client.use({
    onRequest({ request }) {
      request.headers.set("Authorization", `Bearer ${token}`);
      return request;
    },
  });
  return client;
}

/** The data of an openapi-fetch result, or its error thrown as [`ApiError`]. */
export async function ok<T>(
  pending: Promise<{ data?: T; error?: unknown; response: Response }>,
): Promise<T> {
  let result;
  try {
    result = await pending;
  } catch (cause) {
    throw new ApiError({
      code: 0,
      reason: "Unreachable",
      message: `cannot reach the API (${String(cause)})`,
    });
  }
  if (result.error !== undefined || !result.response.ok) {
    if (result.response.status === 401) announceUnauthorized();
    throw asApiError(result.error, result.response.status);
  }
  return result.data as T;
}

/**
 * A list page. List endpoints that can also watch document a second
 * response type (the event stream); a request without `watch` gets JSON.
 */
export async function okPage<T>(
  pending: Promise<{ data?: T | Schemas["WatchEvent"]; error?: unknown; response: Response }>,
): Promise<T> {
  const data = await ok(pending);
  if (!data || typeof data !== "object" || !("items" in data)) {
    throw new ApiError({ code: 0, reason: "UnexpectedStream", message: "the API answered a list with something else" });
  }
  return data as T;
}
