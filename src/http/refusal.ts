import type { IncomingMessage } from 'node:http';
import { err, isRegistryError } from '../oci/index.js';
import type { Access, Action, Principal } from './access.js';
import type { V2Route } from './v2-path.js';

/**
 * How a refused request is answered: one rule for every /v2/ route.
 *
 * A refusal (DENIED) goes to an authenticated caller as 403 with its reason. To a caller who
 * sent no credentials (anonymous pull on loopback, or an anonymous token from /auth/token) it
 * is 401 with the `WWW-Authenticate` challenge when credentials could change the answer, and
 * 403 otherwise. Clients (oras, containerd, docker) only send credentials after a 401: a 403
 * makes them stop, so a refusal a pusher would not get must be a 401 to an anonymous caller.
 *
 * Permission refusals to anonymous callers are already 401 (`Access.authorize`). What else
 * depends on who asks is listed in CALLER_DEPENDENT: a route that answers a caller holding
 * one more permission differently. A gate deny of a manifest, or of a blob's bytes, is the
 * same for every caller, so it stays 403 with its reason (a 401 would send clients into a
 * login that cannot help and hide why).
 */
const CALLER_DEPENDENT: ReadonlyArray<{ kind: V2Route['kind']; method: string; action: Action; why: string }> = [
  // A pusher's HEAD of a blob answers whether it exists (v2.ts, pushersExistenceCheck).
  { kind: 'blob', method: 'HEAD', action: 'push', why: 'a caller who may push here is told whether the blob exists' },
  // A HEAD of a denied manifest answers 200 (no content, the denial in a header) to a caller with `discover` (v2.ts, discoverDenied).
  { kind: 'manifest', method: 'HEAD', action: 'discover', why: 'a caller with the discover permission learns that a denied manifest exists, and why it is denied' },
];

export function answerRefusal(e: unknown, who: Principal, route: V2Route, req: IncomingMessage, access: Access, request: Parameters<Access['challenge']>[0]): unknown {
  if (!isRegistryError(e) || e.code !== 'DENIED' || who.actor !== 'anonymous' || !('name' in route)) return e;
  const dependent = CALLER_DEPENDENT.find((c) => c.kind === route.kind && c.method === req.method);
  if (!dependent) return e;
  return err('UNAUTHORIZED', `authentication required: refused to an anonymous caller (${e.message}); ${dependent.why}`, {
    challenge: access.challenge(request, route.name, dependent.action),
  });
}
