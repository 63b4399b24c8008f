import { clip } from './format.js';

/**
 * Lineage drawn on the server as SVG: nodes in columns (materials, models by depth, tags),
 * edges as curves between them. A column taller than ROWS wraps into sub-columns, so 50
 * nodes stay readable without scrolling a page 2,000 pixels tall. The table beside each
 * graph carries the same facts with links, for screen readers and for copying.
 */
export type NodeKind = 'model' | 'dataset' | 'code' | 'base-model' | 'other' | 'tag' | 'material';

export interface GraphNode {
  readonly id: string;
  readonly label: string;
  readonly kind: NodeKind;
  readonly column: number;
}

export interface Graph {
  readonly nodes: readonly GraphNode[];
  readonly edges: readonly { readonly from: string; readonly to: string }[];
  readonly title: string;
}

const W = 280;
const H = 26;
const PITCH_Y = 36;
const PITCH_X = 330;
const SUB_X = 300;
const MARGIN = 16;
const ROWS = 25;
const MAX_CHARS = 36;

const FILL: Record<NodeKind, string> = {
  model: '#1f4e8c',
  dataset: '#0a6b2d',
  code: '#3d4650',
  'base-model': '#5b2a86',
  other: '#3d4650',
  tag: '#7a4a00',
  material: '#a31515',
};

interface Placed extends GraphNode {
  readonly x: number;
  readonly y: number;
}

export function layout(g: Graph): { placed: Map<string, Placed>; width: number; height: number } {
  const unique = new Map<string, GraphNode>();
  for (const n of g.nodes) if (!unique.has(n.id)) unique.set(n.id, n);
  const columns = [...new Set([...unique.values()].map((n) => n.column))].sort((a, b) => a - b);
  const placed = new Map<string, Placed>();
  let x = MARGIN;
  let maxRows = 1;
  for (const c of columns) {
    const members = [...unique.values()].filter((n) => n.column === c);
    const subs = Math.ceil(members.length / ROWS);
    members.forEach((n, i) => {
      const sub = Math.floor(i / ROWS);
      placed.set(n.id, { ...n, x: x + sub * SUB_X, y: MARGIN + (i % ROWS) * PITCH_Y });
    });
    maxRows = Math.max(maxRows, Math.min(members.length, ROWS));
    x += (subs - 1) * SUB_X + PITCH_X;
  }
  return { placed, width: x - PITCH_X + W + MARGIN, height: MARGIN * 2 + (maxRows - 1) * PITCH_Y + H };
}

export function GraphSvg(p: { graph: Graph; id: string }) {
  const { placed, width, height } = layout(p.graph);
  const titleId = `${p.id}-title`;
  const kinds = [...new Set([...placed.values()].map((n) => n.kind))];
  return (
    <div class="graph">
      <svg xmlns="http://www.w3.org/2000/svg" width={width} height={height + 30} viewBox={`0 0 ${width} ${height + 30}`} role="img" aria-labelledby={titleId}>
        <title id={titleId}>{`${p.graph.title}: ${placed.size} nodes, ${p.graph.edges.length} edges (the table below lists them)`}</title>
        <g fill="none" stroke="#8a939d" stroke-width="1.5">
          {p.graph.edges.map((e) => {
            const a = placed.get(e.from);
            const b = placed.get(e.to);
            if (!a || !b) return null;
            const x1 = a.x + W;
            const y1 = a.y + H / 2;
            const x2 = b.x;
            const y2 = b.y + H / 2;
            const mid = (x1 + x2) / 2;
            return <path d={`M${x1},${y1} C${mid},${y1} ${mid},${y2} ${x2},${y2}`} />;
          })}
        </g>
        {[...placed.values()].map((n) => (
          <g>
            <title>{n.label}</title>
            <rect x={n.x} y={n.y} width={W} height={H} rx="5" fill={FILL[n.kind]} />
            <text x={n.x + 8} y={n.y + 17} fill="#ffffff">
              {clip(n.label, MAX_CHARS)}
            </text>
          </g>
        ))}
        <g>
          {kinds.map((k, i) => (
            <g>
              <rect x={MARGIN + i * 110} y={height + 8} width="14" height="14" fill={FILL[k]} />
              <text x={MARGIN + i * 110 + 20} y={height + 20} fill="#1b1f24">
                {k}
              </text>
            </g>
          ))}
        </g>
      </svg>
    </div>
  );
}
