// The capability folders DESIGN.md puts on the services floor (src/hub, src/admission, src/ui), which
// ../shared/tools/check-layering.cjs does not list yet (and whose .tsx files it does not read): each may use
// the services and what lies below them, and nothing above; no service may import a capability.
// Run from the project root, after the shared check (npm test runs both).
const fs = require('fs'), path = require('path');
const SERVICES = ['registry', 'proxy', 'verify', 'ops', 'artifacts', 'storage', 'oci', 'config'];
const capabilities = { hub: SERVICES, admission: SERVICES, ui: SERVICES };
const below = new Set([...SERVICES]); // layers that must not import a capability
const files = [];
const walk = (d) => { for (const e of fs.readdirSync(d, { withFileTypes: true })) { const p = path.join(d, e.name); e.isDirectory() ? walk(p) : /\.(ts|mts|tsx)$/.test(e.name) && files.push(p); } };
walk('src');
let bad = 0;
for (const f of files) {
  const layer = path.relative('src', f).split(path.sep)[0];
  const src = fs.readFileSync(f, 'utf8');
  for (const m of src.matchAll(/(?:from|import)\s*\(?\s*['"](\.{1,2}\/[^'"]+)['"]/g)) {
    const target = path.relative('src', path.resolve(path.dirname(f), m[1])).split(path.sep)[0].replace(/\.(js|ts|tsx)$/, '');
    if (target.startsWith('..') || target === layer) continue;
    const cap = capabilities[layer];
    const wrong = (cap && !cap.includes(target) && fs.existsSync(path.join('src', target))) || (below.has(layer) && capabilities[target]);
    if (wrong) { console.log(`wrong way: ${f} -> ${m[1]} (${layer} -> ${target})`); bad++; }
  }
}
console.log(`capability layering: ${bad} wrong-way imports in ${files.length} files`);
process.exit(bad ? 1 : 0);
