import { describe, expect, it } from 'vitest';
import { GraphSvg, layout, type Graph } from './graph.js';

const consumers = (n: number): Graph => ({
  title: 'Consumers of sha256:abc',
  nodes: [
    { id: 'd', label: 'datasets/big@sha256:abc', kind: 'dataset', column: 0 },
    ...Array.from({ length: n }, (_, i) => ({ id: `m${i}`, label: `models/consumer-${i}@sha256:${i}`, kind: 'model' as const, column: 1 })),
    ...Array.from({ length: n }, (_, i) => ({ id: `t${i}`, label: `models/consumer-${i}:prod`, kind: 'tag' as const, column: 2 })),
  ],
  edges: Array.from({ length: n }, (_, i) => [{ from: 'd', to: `m${i}` }, { from: `m${i}`, to: `t${i}` }]).flat(),
});

describe('lineage graph', () => {
  it('wraps a column of 50 into sub-columns, with no two nodes overlapping and the image bounded', () => {
    const { placed, width, height } = layout(consumers(50));
    expect(placed.size).toBe(101);
    const boxes = [...placed.values()];
    for (const a of boxes) {
      for (const b of boxes) {
        if (a === b) continue;
        const apart = a.x + 280 <= b.x || b.x + 280 <= a.x || a.y + 26 <= b.y || b.y + 26 <= a.y;
        expect(apart, `${a.id} overlaps ${b.id}`).toBe(true);
      }
      expect(a.x + 280).toBeLessThanOrEqual(width);
      expect(a.y + 26).toBeLessThanOrEqual(height);
    }
    // 25 rows at most: under 1,000 pixels tall however many nodes a column has.
    expect(height).toBeLessThan(1000);
    expect(new Set(boxes.filter((n) => n.column === 1).map((n) => n.x)).size).toBe(2);
  });

  it('renders labels as escaped text, each node with its full label as a tooltip, and one edge per link', () => {
    const g: Graph = { title: 'x', nodes: [{ id: 'a', label: '<script>alert(1)</script> and a label far longer than a box holds', kind: 'model', column: 0 }, { id: 'b', label: 'b', kind: 'tag', column: 1 }], edges: [{ from: 'a', to: 'b' }, { from: 'a', to: 'missing' }] };
    const svg = String(GraphSvg({ graph: g, id: 'g' }));
    expect(svg).not.toContain('<script>');
    expect(svg).toContain('<title>&lt;script&gt;alert(1)&lt;/script&gt; and a label far longer than a box holds</title>');
    expect(svg).toContain('…</text>');
    expect(svg.match(/<path /g)).toHaveLength(1);
    expect(svg).toMatch(/<svg[^>]+role="img"[^>]+aria-labelledby="g-title"/);
  });
});
