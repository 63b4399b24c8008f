#!/usr/bin/env node
// The least a registry written on node:http does, as a baseline measured in the
// same run as customs: no auth, no metrics, no logging, no database, no checks
// beyond the digest. How far customs's own work is from node:http's.
//   POST /v2/<repo>/blobs/uploads/            -> 202, Location
//   PUT  <location>?digest=D  (whole body)    -> sha256 while writing a new file
//                                                 (~1 MiB writes), fdatasync, rename: 201
//   PUT  /v2/<repo>/manifests/<ref>           -> kept in memory: 201
//   GET  /v2/<repo>/manifests/<ref>           -> the bytes with the registry's headers
// Usage: node bench/lib/bare-node.mjs PORT DIR
import { createHash, randomUUID } from 'node:crypto';
import { createServer } from 'node:http';
import { open, rename } from 'node:fs/promises';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';

const [port, dir] = [Number(process.argv[2]), process.argv[3]];
const manifests = new Map();
const CHUNK = 1024 * 1024;

async function receiveBlob(req, digest) {
  const tmp = join(dir, `upload-${randomUUID()}`);
  const fh = await open(tmp, 'w');
  const hash = createHash('sha256');
  try {
    // Batches of node:http's chunks, hashed while their write runs on libuv's pool, in writes of about
    // 1 MiB, a socket chunk more at most (larger ones into a new file cost far more kernel time on this VM:
    // see src/storage/file-writes.ts, whose writeAllCapped cuts exactly; this server stays free of customs's code).
    const sink = new Writable({
      highWaterMark: 4 * CHUNK,
      writev(chunks, cb) {
        const bufs = chunks.map((c) => c.chunk);
        const writes = [];
        for (let i = 0, size = 0, start = 0; i < bufs.length; i++) {
          size += bufs[i].length;
          if (size >= CHUNK || i === bufs.length - 1) {
            writes.push(bufs.slice(start, i + 1));
            start = i + 1;
            size = 0;
          }
        }
        const written = writes.reduce((p, batch) => p.then(() => fh.writev(batch)), Promise.resolve());
        for (const b of bufs) hash.update(b);
        written.then(() => cb(), cb);
      },
    });
    await pipeline(req, sink);
    await fh.datasync();
  } finally {
    await fh.close();
  }
  const actual = `sha256:${hash.digest('hex')}`;
  if (actual !== digest) return false;
  await rename(tmp, join(dir, actual.slice(7)));
  return true;
}

createServer((req, res) => {
  const [path, query = ''] = (req.url ?? '/').split('?');
  const m = /^\/v2\/(.+)\/manifests\/([^/]+)$/.exec(path);
  if (m && req.method === 'GET') {
    const found = manifests.get(`${m[1]}:${m[2]}`);
    if (!found) return res.writeHead(404).end();
    res.writeHead(200, { 'content-type': found.type, 'content-length': found.bytes.length, 'docker-content-digest': found.digest, etag: `"${found.digest}"` });
    return res.end(found.bytes);
  }
  if (m && req.method === 'PUT') {
    const parts = [];
    req.on('data', (c) => parts.push(c));
    req.on('end', () => {
      const bytes = Buffer.concat(parts);
      const digest = `sha256:${createHash('sha256').update(bytes).digest('hex')}`;
      manifests.set(`${m[1]}:${m[2]}`, { bytes, digest, type: req.headers['content-type'] });
      res.writeHead(201, { 'docker-content-digest': digest, 'content-length': 0 }).end();
    });
    return;
  }
  if (/\/blobs\/uploads\/?$/.test(path) && req.method === 'POST') {
    return res.writeHead(202, { location: `${path.replace(/\/$/, '')}/${randomUUID()}`, 'content-length': 0 }).end();
  }
  if (/\/blobs\/uploads\/[\w-]+$/.test(path) && req.method === 'PUT') {
    const digest = new URLSearchParams(query).get('digest') ?? '';
    receiveBlob(req, digest).then(
      (ok) => res.writeHead(ok ? 201 : 400, { 'content-length': 0 }).end(),
      () => res.writeHead(500).end(),
    );
    return;
  }
  if (path === '/v2/' || path === '/v2') return res.writeHead(200, { 'content-length': 2 }).end('{}');
  res.writeHead(404, { 'content-length': 0 }).end();
}).listen(port, '127.0.0.1');
