import type { IncomingMessage, ServerResponse } from 'node:http';
import { RESPONSE_ALREADY_SENT as RESPONSE } from '@hono/node-server/utils/response';
import { DENIED_REASON_HEADER, err, isRegistryError, MAX_MANIFEST_BYTES, parseDigest, parseReference, type Digest, type Reference } from '../oci/index.js';
import type { BlobRead, BlobService, ListingService, ManifestRead, ManifestService, ReadDecision, UploadService } from '../registry/index.js';
import type { Access, AccessRequest, Action, Principal } from './access.js';
import { answerRefusal } from './refusal.js';
import { parseContentRange, parseRangeHeader, uploadRange } from './range.js';
import { headerText, sendBytes, sendEmpty, sendJson, type Headers } from './reply.js';
import { letBodyIn, UploadSlots } from './request-body.js';
import { contentLength, contextOf, readSmallBody } from './request-context.js';
import { sendBlobBody } from './send-blob.js';
import { clientCertActor } from './tls.js';
import { parseV2Path, type V2Route } from './v2-path.js';

export interface V2Services {
  readonly blobs: BlobService;
  readonly uploads: UploadService;
  readonly manifests: ManifestService;
  readonly listing: ListingService;
  readonly access: Access;
  /** Namespaces served by an upstream (for `ns` and push rules). */
  readonly isProxied: (repository: string) => boolean;
  /** A request body that delivers no byte for this long is aborted (0: never). */
  readonly bodyIdleMs: number;
  /** Concurrent upload requests per principal. */
  readonly uploadSlots: UploadSlots;
}

type Handler = (s: V2Services, route: V2Route, req: IncomingMessage, res: ServerResponse, query: URLSearchParams, who: Principal) => Promise<unknown>;

const API_VERSION = { 'docker-distribution-api-version': 'registry/2.0' };
const NO_QUERY = new URLSearchParams();

/**
 * The Distribution API (OCI distribution spec 1.1) as a plain Node handler: the
 * pull path is the hot one (thousands of manifest GETs a second), so no framework
 * dispatch, Request object or URL parse sits on it. Errors are thrown as
 * RegistryErrors; the caller maps them (app.ts).
 */
export function v2Handler(s: V2Services): (req: IncomingMessage, res: ServerResponse) => Promise<unknown> {
  return async (req, res) => {
    const rawUrl = req.url ?? '/';
    const q = rawUrl.indexOf('?');
    // The raw path, not URL's: URL resolves `..` segments, which would let /v2/a/../b act on repository b.
    const rawPath = q < 0 ? rawUrl : rawUrl.slice(0, q);
    const query = q < 0 ? NO_QUERY : new URLSearchParams(rawUrl.slice(q + 1));
    const ns = query.get('ns') ?? undefined;
    const route = parseV2Path(rawPath, ns && s.isProxied(`${ns}/x`) ? ns : undefined);
    const ctx = contextOf(req);
    ctx.route = route.kind;
    if (ns && 'name' in route && s.isProxied(route.name)) res.setHeader('oci-namespace', ns);
    const method = req.method === 'HEAD' ? 'GET' : (req.method ?? 'GET');
    const handler = HANDLERS[route.kind]?.[method];
    if (!handler) {
      if (route.kind === 'unknown') throw err('NAME_UNKNOWN', 'no such route', { path: rawPath.slice(0, 200) });
      throw err('METHOD_NOT_ALLOWED', `${req.method} is not supported on this route`);
    }
    if (route.kind === 'base' && !req.headers.authorization) {
      // Clients (containers/image, containerd) decide whether to send credentials from this check alone,
      // so it always challenges; anonymous callers then get an anonymous token from the realm (Docker Hub does the same).
      throw err('UNAUTHORIZED', 'authentication required', { challenge: s.access.challenge(accessRequest(req)) });
    }
    const action = actionOf(route, method);
    const who = await s.access.authorize(accessRequest(req), 'name' in route ? route.name : undefined, action);
    ctx.actor = who.actor;
    return handler(s, route, req, res, query, who).catch((e: unknown) => {
      throw answerRefusal(e, who, route, req, s.access, accessRequest(req));
    });
  };
}

export const accessRequest = (req: IncomingMessage): AccessRequest => ({
  authorization: req.headers.authorization,
  remoteAddress: req.socket.remoteAddress,
  host: req.headers.host,
  ...((req.socket as { encrypted?: boolean }).encrypted ? { scheme: 'https', clientCert: clientCertActor(req) } : {}),
});

function actionOf(route: V2Route, method: string): Action {
  if (method === 'DELETE') return 'delete';
  if (method === 'GET') return route.kind === 'upload' ? 'push' : 'pull';
  return 'push';
}

const name = (r: V2Route): string => (r as { name: string }).name;
const isHead = (req: IncomingMessage): boolean => req.method === 'HEAD';
const auditHeader = (d: ReadDecision): Headers =>
  d.auditFindings && d.auditFindings.length > 0 ? { 'customs-audit-findings': d.auditFindings.join('; ').slice(0, 4000) } : {};

const base: Handler = async (_s, _r, req, res) => sendJson(res, 200, {}, API_VERSION, isHead(req));

const getBlob: Handler = async (s, route, req, res) => {
  const digest = parseDigest((route as { digest: string }).digest).digest;
  const rangeOf = (size: number) => parseRangeHeader(req.headers.range, size);
  const read = await s.blobs.read(name(route), digest, rangeOf).catch((e: unknown) => pushersExistenceCheck(s, name(route), digest, req, rangeOf, e));
  const { info, range } = read;
  const start = range?.start ?? 0;
  const length = range ? range.end - range.start + 1 : info.size;
  const headers: Headers = {
    'content-type': 'application/octet-stream',
    'content-length': length,
    'docker-content-digest': digest,
    'accept-ranges': 'bytes',
    etag: `"${digest}"`,
    ...auditHeader(read.decision),
  };
  if (range) headers['content-range'] = `bytes ${range.start}-${range.end}/${info.size}`;
  if (isHead(req)) {
    res.writeHead(range ? 206 : 200, headers);
    res.end();
    return RESPONSE;
  }
  if (read.redirect) {
    // The client fetches from the store itself (re-sending any Range: presigned S3 URLs honour it).
    const location = await read.redirect();
    return sendEmpty(res, 307, { location, 'docker-content-digest': digest, ...auditHeader(read.decision) });
  }
  const body = await read.open();
  await sendBlobBody(res, body, start, length, () => res.writeHead(range ? 206 : 200, headers));
  return RESPONSE;
};

/**
 * Pushers (docker, skopeo, oras, `customs push`) HEAD every blob before uploading it and stop
 * on anything but 200/404. A blob the gate denies (a layer shared with an unsigned model, the
 * empty config `{}` of a deleted signature) would make pushing into that repository fail, so
 * for a caller who may push there a HEAD still answers whether the blob exists. No content is
 * served: the caller could upload the same bytes anyway; GET stays gated.
 */
async function pushersExistenceCheck(s: V2Services, repo: string, digest: Digest, req: IncomingMessage, rangeOf: (size: number) => ReturnType<typeof parseRangeHeader>, e: unknown): Promise<BlobRead> {
  if (!isHead(req) || !isRegistryError(e) || e.code !== 'DENIED') throw e;
  const mayPush = await s.access.authorize(accessRequest(req), repo, 'push').then(() => true, () => false);
  const info = mayPush ? await s.blobs.linkedInfo(repo, digest) : undefined;
  // A pusher learns that the repository lacks the blob, which an upload would tell it anyway (and a
  // signature pushed into a pull-through repository needs that answer to upload its layers).
  if (!info && mayPush) throw err('BLOB_UNKNOWN', 'blob unknown to registry', { digest });
  if (!info) throw e;
  return { info, range: rangeOf(info.size), decision: {}, open: () => Promise.reject(e) };
}

const deleteBlob: Handler = async (s, route, _req, res) => {
  await s.blobs.delete(name(route), parseDigest((route as { digest: string }).digest).digest);
  return sendEmpty(res, 202);
};

const startUpload: Handler = async (s, route, req, res, query, who) => {
  const repo = name(route);
  const q = {
    digest: query.get('digest') ?? undefined,
    mount: query.get('mount') ?? undefined,
    from: query.get('from') ?? undefined,
  };
  if (q.from !== undefined) parseV2Path(`/v2/${q.from}/tags/list`); // validates the name
  if (q.digest !== undefined && q.mount === undefined) s.uploadSlots.acquire(who.actor, res);
  const result = await s.uploads.start(repo, q, () => letBodyIn(req, res, s.bodyIdleMs), (from) => s.access.mayPull(who, accessRequest(req), from), contentLength(req));
  if (result.kind === 'created') {
    return sendEmpty(res, 201, { location: `/v2/${repo}/blobs/${result.blob.digest}`, 'docker-content-digest': result.blob.digest });
  }
  return sendEmpty(res, 202, uploadHeaders(repo, result.session.id, result.session.size));
};

const uploadHeaders = (repo: string, id: string, size: number): Headers => ({
  location: `/v2/${repo}/blobs/uploads/${id}`,
  range: uploadRange(size),
  'docker-upload-uuid': id,
});

const uploadStatus: Handler = async (s, route, _req, res) => {
  const { id } = route as { id: string };
  const session = await s.uploads.status(name(route), id);
  return sendEmpty(res, 204, uploadHeaders(name(route), id, session.size));
};

const patchUpload: Handler = async (s, route, req, res, _query, who) => {
  const { id } = route as { id: string };
  s.uploadSlots.acquire(who.actor, res);
  const session = await s.uploads.append(name(route), id, () => letBodyIn(req, res, s.bodyIdleMs), parseContentRange(req.headers['content-range']), contentLength(req));
  return sendEmpty(res, 202, uploadHeaders(name(route), id, session.size));
};

const putUpload: Handler = async (s, route, req, res, query, who) => {
  const { id } = route as { id: string };
  const repo = name(route);
  s.uploadSlots.acquire(who.actor, res);
  const blob = await s.uploads.finish(repo, id, query.get('digest') ?? undefined, () => letBodyIn(req, res, s.bodyIdleMs), parseContentRange(req.headers['content-range']), contentLength(req));
  return sendEmpty(res, 201, { location: `/v2/${repo}/blobs/${blob.digest}`, 'docker-content-digest': blob.digest });
};

const cancelUpload: Handler = async (s, route, _req, res) => {
  await s.uploads.cancel(name(route), (route as { id: string }).id);
  return sendEmpty(res, 204);
};

const getManifest: Handler = async (s, route, req, res) => {
  const reference = existingReference(route);
  let read: ManifestRead;
  try {
    read = await s.manifests.get(name(route), reference);
  } catch (e) {
    if (await discoverDenied(s, name(route), reference, req, res, e)) return RESPONSE;
    throw e;
  }
  const { record, decision, stale } = read;
  const headers: Headers = {
    'content-type': record.mediaType,
    'docker-content-digest': record.digest,
    etag: `"${record.digest}"`,
    ...auditHeader(decision),
  };
  if (record.subject) headers['oci-subject'] = record.subject;
  if (stale) headers.warning = '110 customs "served stale: upstream unavailable"';
  return sendBytes(res, 200, record.bytes, headers, isHead(req));
};

/**
 * HEAD of a denied manifest by a caller with `discover` (or `admin`) on the repository: 200 with its
 * descriptor headers and the denial in `customs-denied-reason`, no content (HEAD has none; GET stays
 * refused). Clients resolve a reference with HEAD before they ask the referrers API, so this is what
 * lets an operator find the signatures of something the gate refuses. Everyone else gets the 403.
 */
async function discoverDenied(s: V2Services, repo: string, reference: Reference, req: IncomingMessage, res: ServerResponse, e: unknown): Promise<boolean> {
  if (!isHead(req) || !isRegistryError(e) || e.code !== 'DENIED') return false;
  const may = await s.access.authorize(accessRequest(req), repo, 'discover').then(() => true, () => false);
  const found = may ? await s.manifests.resolve(repo, reference) : undefined;
  if (!found) return false;
  const r = found.record;
  res.writeHead(200, { 'content-type': r.mediaType, 'content-length': r.size, 'docker-content-digest': r.digest, etag: `"${r.digest}"`, 'customs-verdict': 'denied', [DENIED_REASON_HEADER]: headerText(e.message), ...(r.subject ? { 'oci-subject': r.subject } : {}) });
  res.end();
  return true;
}

/**
 * The reference of a manifest GET, HEAD or DELETE. One that cannot name a manifest (`.INVALID`,
 * a malformed digest) names none: 404 MANIFEST_UNKNOWN, the only failure the spec's endpoint
 * table lists for a manifest GET (and what the official conformance suite expects). A PUT
 * with such a reference stays 400: there the client sent something invalid to store.
 */
function existingReference(route: V2Route): Reference {
  const raw = (route as { reference: string }).reference;
  try {
    return parseReference(raw);
  } catch (e) {
    if (!isRegistryError(e)) throw e;
    throw err('MANIFEST_UNKNOWN', `manifest unknown: ${e.message}`, { reference: raw.slice(0, 200) });
  }
}

const putManifest: Handler = async (s, route, req, res, _query, who) => {
  const repo = name(route);
  const reference = parseReference((route as { reference: string }).reference);
  const bytes = await readSmallBody(req, MAX_MANIFEST_BYTES, () => letBodyIn(req, res, s.bodyIdleMs));
  const result = await s.manifests.put(repo, reference, bytes, req.headers['content-type'], { actor: who.actor });
  const headers: Headers = { location: `/v2/${repo}/manifests/${result.digest}`, 'docker-content-digest': result.digest };
  if (result.subject) headers['oci-subject'] = result.subject;
  return sendEmpty(res, 201, headers);
};

const deleteManifest: Handler = async (s, route, _req, res, _query, who) => {
  await s.manifests.delete(name(route), existingReference(route), { actor: who.actor });
  return sendEmpty(res, 202);
};

const listTags: Handler = async (s, route, req, res, query) => {
  const repo = name(route);
  const page = pageOf(query);
  const result = await s.listing.tags(repo, page);
  return sendJson(res, 200, { name: repo, tags: result.items }, linkHeader(`/v2/${repo}/tags/list`, page.n, result.next), isHead(req));
};

const catalog: Handler = async (s, _route, req, res, query, who) => {
  const page = pageOf(query);
  const result = await s.listing.catalog(page);
  // Only the repositories the caller may pull are named; the page boundary (Link) stays that of the whole catalog.
  const visible: string[] = [];
  for (const name of result.items) if (await s.access.mayPull(who, accessRequest(req), name)) visible.push(name);
  return sendJson(res, 200, { repositories: visible }, linkHeader('/v2/_catalog', page.n, result.next), isHead(req));
};

const referrers: Handler = async (s, route, req, res, query) => {
  const subject: Digest = parseDigest((route as { digest: string }).digest).digest;
  const artifactType = query.get('artifactType') ?? undefined;
  const { index, filtered } = await s.listing.referrers(name(route), subject, artifactType);
  const headers: Headers = { 'content-type': index.mediaType };
  if (filtered) headers['oci-filters-applied'] = 'artifactType';
  return sendBytes(res, 200, JSON.stringify(index), headers, isHead(req));
};

function pageOf(query: URLSearchParams): { n?: number; last?: string } {
  const n = query.get('n');
  const last = query.get('last') ?? undefined;
  if (n === null) return { last };
  const parsed = Number(n);
  if (!Number.isSafeInteger(parsed) || parsed < 0) throw err('UNSUPPORTED', `invalid n: ${n.slice(0, 20)}`);
  return { n: parsed, last };
}

const linkHeader = (path: string, n: number | undefined, next: string | undefined): Headers =>
  next === undefined ? {} : { link: `<${path}?n=${n}&last=${encodeURIComponent(next)}>; rel="next"` };

const HANDLERS: Partial<Record<V2Route['kind'], Record<string, Handler>>> = {
  base: { GET: base },
  catalog: { GET: catalog },
  blob: { GET: getBlob, DELETE: deleteBlob },
  uploads: { POST: startUpload },
  upload: { GET: uploadStatus, PATCH: patchUpload, PUT: putUpload, DELETE: cancelUpload },
  manifest: { GET: getManifest, PUT: putManifest, DELETE: deleteManifest },
  tags: { GET: listTags },
  referrers: { GET: referrers },
};
