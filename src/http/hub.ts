import type { IncomingMessage, ServerResponse } from 'node:http';
import { Hono } from 'hono';
import type { HttpBindings } from '@hono/node-server';
import { RESPONSE_ALREADY_SENT } from '@hono/node-server/utils/response';
import { err } from '../oci/index.js';
import type { HubService, OpenedRevision } from '../hub/service.js';
import type { ReadDecision } from '../registry/index.js';
import type { Access } from './access.js';
import { toHubError } from './hub-errors.js';
import { parseHubPath, type HubRoute } from './hub-path.js';
import { parseRangeHeader } from './range.js';
import { sendBytes, sendJson, type Headers } from './reply.js';
import { contextOf } from './request-context.js';
import { sendBlobBody } from './send-blob.js';
import { accessRequest } from './v2.js';

/**
 * The Hugging Face Hub download API under the configured prefix (default /hf), thin:
 * parse the path, authorise `pull` on the customs repository, call the hub service,
 * render what huggingface_hub reads. File bodies go out as /v2/ blobs do (send-blob.ts); a
 * read that fails aborts the connection, so a client never keeps a partial file.
 */
type Env = { Bindings: HttpBindings };

export interface HubHttpDeps {
  readonly prefix: string;
  readonly service: HubService;
  readonly access: Access;
  /** Upstream endpoint names (`<prefix>/<name>/...`). */
  readonly upstreams: ReadonlySet<string>;
  /** Called for every 403 (audit log), as for /v2/. */
  readonly onDenied?: (actor: string, target: string, reason: string) => void;
}

const DEFAULT_REVISION = 'main';

export function hubApp(deps: HubHttpDeps): Hono<Env> {
  const app = new Hono<Env>();
  app.all('/*', async (c) => {
    const req = c.env.incoming;
    const res = c.env.outgoing;
    const ctx = contextOf(req);
    const rawUrl = req.url ?? '/';
    const q = rawUrl.indexOf('?');
    // The raw path, not a normalised one: `..` must not move a request to another repository.
    const rawPath = (q < 0 ? rawUrl : rawUrl.slice(0, q)).slice(deps.prefix.length);
    const query = new URLSearchParams(q < 0 ? '' : rawUrl.slice(q + 1));
    const route = parseHubPath(rawPath, deps.upstreams);
    ctx.route = `hub-${route.kind}`;
    if (route.kind === 'unknown') return sendJson(res, 404, { error: 'no such route' }, {}, req.method === 'HEAD');
    if (req.method !== 'GET' && req.method !== 'HEAD') throw err('METHOD_NOT_ALLOWED', `${req.method} is not supported: this Hub API is read-only`);
    const repo = await deps.service.repo(route);
    const who = await deps.access.authorize(accessRequest(req), repo.repository, 'pull');
    ctx.actor = who.actor;
    const rev = await deps.service.open(repo, route.revision ?? DEFAULT_REVISION);
    const head = req.method === 'HEAD';
    if (route.kind === 'info') return sendJson(res, 200, deps.service.info(rev), revisionHeaders(rev), head);
    if (route.kind === 'tree') return sendJson(res, 200, deps.service.tree(rev, route.path, isTrue(query.get('recursive'))), revisionHeaders(rev), head);
    return sendFile(deps, route, rev, req, res);
  });
  app.onError((e, c) => sendHubError(c.env.incoming, c.env.outgoing, e, deps));
  return app;
}

async function sendFile(deps: HubHttpDeps, route: Extract<HubRoute, { kind: 'resolve' }>, rev: OpenedRevision, req: IncomingMessage, res: ServerResponse): Promise<Response> {
  const { file, read } = await deps.service.file(rev, route.path, (size) => parseRangeHeader(req.headers.range, size));
  const { range, info } = read;
  const start = range?.start ?? 0;
  const length = range ? range.end - range.start + 1 : info.size;
  const headers: Headers = {
    ...revisionHeaders(rev, read.decision),
    'content-type': 'application/octet-stream',
    'content-length': length,
    'accept-ranges': 'bytes',
    etag: `"${file.etag}"`,
  };
  // What huggingface_hub prefers to ETag/Content-Length; the Hub sends them for LFS files.
  if (file.lfs) {
    headers['x-linked-etag'] = `"${file.etag}"`;
    headers['x-linked-size'] = file.size;
  }
  if (range) headers['content-range'] = `bytes ${range.start}-${range.end}/${info.size}`;
  if (req.method === 'HEAD') {
    res.writeHead(range ? 206 : 200, headers);
    res.end();
    return RESPONSE_ALREADY_SENT;
  }
  const body = await read.open();
  // Once the file is there (stored, or its upstream answered), the headers go out at once: huggingface_hub
  // resumes a download that breaks off (Range) but gives up on a 5xx, so a later failure must be a cut connection.
  res.writeHead(range ? 206 : 200, headers);
  res.flushHeaders();
  await sendBlobBody(res, body, start, length, () => undefined);
  return RESPONSE_ALREADY_SENT;
}

/** Headers of every answer about a revision; `file` is the file's own read decision, when one is served. */
function revisionHeaders(rev: OpenedRevision, file?: ReadDecision): Headers {
  const h: Headers = { 'x-repo-commit': rev.view.commit };
  const findings = [...(rev.decision.auditFindings ?? []), ...(file?.auditFindings ?? [])];
  if (findings.length > 0) h['customs-audit-findings'] = [...new Set(findings)].join('; ').replace(/[^\x20-\x7e]+/g, ' ').slice(0, 4000);
  // huggingface_hub logs `X-HF-Warning` values as warnings.
  if (rev.stale) h['x-hf-warning'] = 'customs; served from the last resolution of this revision: the upstream Hub is unavailable';
  return h;
}

const isTrue = (v: string | null): boolean => v !== null && /^(true|1|yes)$/i.test(v);

/** The one place a hub request's error becomes a response (or, once a body is streaming, an aborted connection). */
function sendHubError(req: IncomingMessage, res: ServerResponse, e: unknown, deps: Pick<HubHttpDeps, 'onDenied'>): Response {
  const ctx = contextOf(req);
  const h = toHubError(e);
  if (h.internal) ctx.log.error({ err: e }, 'internal error');
  else ctx.log.debug({ code: h.status, err: h.message }, 'request refused');
  if (h.status === 403) deps.onDenied?.(ctx.actor ?? 'anonymous', (req.url ?? '').split('?')[0]!.slice(0, 300), h.message.slice(0, 1000));
  if (res.headersSent) {
    res.destroy();
    return RESPONSE_ALREADY_SENT;
  }
  const challenge = (e as { detail?: { challenge?: string } }).detail?.challenge;
  const headers: Headers = { 'content-type': 'application/json', ...h.headers, ...(h.status === 401 && challenge ? { 'www-authenticate': challenge } : {}) };
  return sendBytes(res, h.status, h.body, headers, req.method === 'HEAD');
}
