// A Hugging Face Hub for the benches: the API calls huggingface_hub and customs make
// (`/api/models/<id>/revision/<rev>?blobs=true`, `/<id>/resolve/<rev>/<path>`), git files
// answered by itself, LFS files redirected (302) to a CDN: nginx with sendfile over a
// directory of files named by their sha256, as huggingface.co redirects to its CDN.
import { createHash, randomBytes } from 'node:crypto';
import { linkSync, mkdirSync } from 'node:fs';
import { createServer } from 'node:http';
import { join } from 'node:path';
import { startNginx } from './servers.mjs';
import { makeTempDir } from './proc.mjs';

const gitOid = (bytes) => createHash('sha1').update(`blob ${bytes.length}\0`).update(bytes).digest('hex');
const pointer = (sha, size) => Buffer.from(`version https://git-lfs.github.com/spec/v1\noid sha256:${sha}\nsize ${size}\n`);

/** Starts the Hub (in this process: it only answers small JSON and redirects) and its nginx CDN. */
export async function startTestHub() {
  const cdnRoot = makeTempDir('hub-cdn');
  mkdirSync(join(cdnRoot, 'lfs'));
  const cdn = await startNginx(cdnRoot);
  const repos = new Map(); // id -> { sha, files: Map<path, {size, oid, sha256?, bytes?}> }
  const server = createServer((req, res) => {
    const url = new URL(req.url, 'http://x');
    const segs = url.pathname.split('/').slice(1).map(decodeURIComponent);
    const send = (status, body, headers = {}) => {
      const b = Buffer.isBuffer(body) ? body : Buffer.from(body);
      res.writeHead(status, { 'content-length': b.length, ...headers });
      res.end(req.method === 'HEAD' ? undefined : b);
    };
    if (segs[0] === 'api') {
      const i = segs.indexOf('revision');
      const repo = repos.get(segs.slice(2, i > 0 ? i : undefined).join('/'));
      if (!repo) return send(401, '{"error":"Repository not found"}', { 'x-error-code': 'RepoNotFound' });
      const siblings = [...repo.files].map(([path, f]) => ({ rfilename: path, size: f.size, blobId: f.oid, ...(f.sha256 ? { lfs: { sha256: f.sha256, size: f.size, pointerSize: pointer(f.sha256, f.size).length } } : {}) }));
      return send(200, JSON.stringify({ id: segs.slice(2, i > 0 ? i : undefined).join('/'), sha: repo.sha, lastModified: '2026-03-01T00:00:00.000Z', cardData: { license: 'apache-2.0' }, siblings }), { 'content-type': 'application/json' });
    }
    const r = segs.indexOf('resolve');
    const repo = repos.get(segs.slice(0, r).join('/'));
    const f = repo?.files.get(segs.slice(r + 2).join('/'));
    if (!f) return send(404, '{"error":"Entry not found"}', { 'x-error-code': 'EntryNotFound' });
    if (f.sha256) return send(302, '', { location: `${cdn.url}/lfs/${f.sha256}`, 'x-repo-commit': repo.sha, 'x-linked-etag': `"${f.sha256}"`, 'x-linked-size': String(f.size), etag: `"${f.oid}"` });
    return send(200, f.bytes, { 'x-repo-commit': repo.sha, etag: `"${f.oid}"`, 'content-type': 'application/octet-stream' });
  });
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  const url = `http://127.0.0.1:${server.address().port}`;
  return {
    url,
    cdnUrl: cdn.url,
    /** A repo with a small config.json and one LFS file (hard-linked into the CDN's root). */
    addRepo(id, lfs) {
      const config = Buffer.from('{"model_type":"bench"}');
      try {
        linkSync(lfs.path, join(cdnRoot, 'lfs', lfs.sha256));
      } catch (e) {
        if (e.code !== 'EEXIST') throw e;
      }
      repos.set(id, {
        sha: randomBytes(20).toString('hex'),
        files: new Map([
          ['config.json', { size: config.length, oid: gitOid(config), bytes: config }],
          [lfs.name, { size: lfs.size, oid: gitOid(pointer(lfs.sha256, lfs.size)), sha256: lfs.sha256 }],
        ]),
      });
    },
    stop: async () => {
      await new Promise((r) => server.close(r));
      await cdn.stop();
    },
  };
}
