import { describe, expect, it } from 'vitest';
import { parseImageRef, repositoryFor, SelfHosts } from './references.js';

const D = `sha256:${'a'.repeat(64)}`;

describe('image references as the node reads them', () => {
  it('normalises like distribution/reference: Docker Hub, library/, latest, digest over tag', () => {
    expect(parseImageRef('nginx')).toEqual({ registry: 'docker.io', path: 'library/nginx', tag: 'latest', digest: undefined });
    expect(parseImageRef('acme/app:1')).toEqual({ registry: 'docker.io', path: 'acme/app', tag: '1', digest: undefined });
    expect(parseImageRef('index.docker.io/nginx:1.27')).toMatchObject({ registry: 'docker.io', path: 'library/nginx' });
    expect(parseImageRef(`localhost:5000/models/x:v1@${D}`)).toEqual({ registry: 'localhost:5000', path: 'models/x', tag: 'v1', digest: D });
    expect(parseImageRef(`ghcr.io/org/model@${D}`)).toEqual({ registry: 'ghcr.io', path: 'org/model', tag: undefined, digest: D });
    expect(parseImageRef('customs:5443/models/x')).toMatchObject({ registry: 'customs:5443', path: 'models/x', tag: 'latest' });
  });

  it('refuses what a node could not pull', () => {
    expect(parseImageRef('Models/X:v1')).toMatch(/invalid repository name/);
    expect(parseImageRef('x@sha256:short')).toMatch(/invalid digest/);
    expect(parseImageRef('x:bad tag')).toMatch(/invalid tag/);
    expect(parseImageRef('')).toMatch(/empty/);
  });

  it("maps customs' own hosts to its repositories and mirrored registries to <upstream>/<path>", () => {
    const self = new SelfHosts(['customs.example', '10.0.0.5:5443']);
    const ups = [
      { name: 'docker.io', url: 'https://registry-1.docker.io' },
      { name: 'ghcr', url: 'https://ghcr.io' },
      { name: 'up-a.test', url: 'http://127.0.0.1:5001' },
    ];
    const map = (s: string) => repositoryFor(parseImageRef(s) as never, self, ups);
    expect(map('customs.example:443/models/x:v1')).toBe('models/x');
    expect(map('customs.example/models/x:v1')).toBe('models/x');
    expect(map('10.0.0.5:5443/models/x:v1')).toBe('models/x');
    expect(map('10.0.0.5:6000/models/x:v1')).toBeUndefined();
    expect(map('nginx:1.27')).toBe('docker.io/library/nginx');
    expect(map('ghcr.io/org/model:v1')).toBe('ghcr/org/model');
    expect(map('up-a.test/models/demo:v1')).toBe('up-a.test/models/demo');
    expect(map('quay.io/org/x:v1')).toBeUndefined();
  });
});
