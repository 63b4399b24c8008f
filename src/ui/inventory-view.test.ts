import { describe, expect, it } from 'vitest';
import type { Inventory, RepositoryQuery } from '../storage/index.js';
import type { ConsoleDeps } from './deps.js';
import { PAGE_SIZE, repositoryList } from './inventory-view.js';
import { globPrefixes, type Viewer } from './viewer.js';
import { globMatch } from '../verify/glob.js';

/** 10,000 names in byte order, searched the way the stores' SQL does (its contract suite checks that). */
const names = Array.from({ length: 10_000 }, (_, i) => `${['models', 'datasets', 'images', 'models-archive'][i % 4]}/r${String(i).padStart(5, '0')}`).sort();
let queries = 0;
const inventory = {
  async searchRepositories(q: RepositoryQuery) {
    queries++;
    return names
      .filter((n) => n > (q.after ?? '') && (!q.contains || n.includes(q.contains)) && (!q.prefixes || q.prefixes.some((p) => n.startsWith(p)) || (q.names ?? []).includes(n)))
      .slice(0, q.limit)
      .map((name) => ({ name, tags: 1, updatedAt: 0 }));
  },
} as unknown as Inventory;
const d = { inventory } as unknown as ConsoleDeps;
const viewer = (globs: string[]): Viewer => ({ actor: 'token:t', may: (r, a) => a === 'pull' && r !== undefined && globs.some((g) => globMatch(g, r)), pullGlobs: globs });

describe('repository list', () => {
  it('pages through 10,000 repositories, 50 at a time, each once', async () => {
    const seen: string[] = [];
    let after: string | undefined;
    let pages = 0;
    do {
      const v = await repositoryList(d, viewer(['**']), '', after);
      expect(v.rows.length).toBeLessThanOrEqual(PAGE_SIZE);
      seen.push(...v.rows.map((r) => r.name));
      after = v.next;
      pages++;
    } while (after);
    expect(pages).toBe(200);
    expect(seen).toEqual(names);
  });

  it('shows a models/** viewer only models/, narrowed in the query, not after it', async () => {
    queries = 0;
    const v = await repositoryList(d, viewer(['models/**']), '', undefined);
    expect(v.rows).toHaveLength(PAGE_SIZE);
    expect(v.rows.every((r) => r.name.startsWith('models/'))).toBe(true);
    expect(queries).toBe(1); // the database narrowed by prefix: no walk through the other 7,500 names
    const all = [];
    let after: string | undefined;
    do {
      const p = await repositoryList(d, viewer(['models/**']), 'r0', after);
      all.push(...p.rows.map((r) => r.name));
      after = p.next;
    } while (after);
    expect(all).toEqual(names.filter((n) => n.startsWith('models/') && n.includes('r0')));
    expect(globPrefixes(['models/**', 'models/team/*', 'data/x', 'models/y', 'img*/**'])).toEqual({ prefixes: ['models/', 'img'], names: ['models', 'data/x'] });
  });

  it('shows nothing to a viewer without pull', async () => {
    const v = await repositoryList(d, { actor: 'token:push', may: () => false, pullGlobs: [] }, '', undefined);
    expect(v.rows).toEqual([]);
  });
});
