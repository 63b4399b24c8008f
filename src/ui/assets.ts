import { createHash } from 'node:crypto';

/**
 * The console's only stylesheet and script, served as files from /ui/static/ so the
 * Content-Security-Policy can forbid every inline script and style. Their URLs carry a
 * hash of their content, so they can be cached for long and never go stale.
 */
const CSS = `
:root { --fg: #1b1f24; --muted: #4a525c; --line: #c9d0d8; --bg: #ffffff; --panel: #f4f6f8; --link: #0b4fa8; --focus: #b35c00; }
* { box-sizing: border-box; }
body { margin: 0; font: 15px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: var(--fg); background: var(--bg); }
a { color: var(--link); }
a:focus, button:focus, input:focus, select:focus, summary:focus { outline: 3px solid var(--focus); outline-offset: 1px; }
.skip { position: absolute; left: -9999px; }
.skip:focus { left: 8px; top: 8px; background: #fff; padding: 4px 8px; z-index: 10; }
header.top { display: flex; align-items: center; gap: 24px; padding: 10px 20px; background: #14213d; color: #fff; flex-wrap: wrap; }
header.top a { color: #fff; }
header.top .brand { font-weight: 700; font-size: 17px; text-decoration: none; }
header.top nav ul { list-style: none; display: flex; gap: 16px; margin: 0; padding: 0; }
header.top .who { margin-left: auto; display: flex; gap: 10px; align-items: center; }
header.top .who button { background: transparent; color: #fff; border: 1px solid #fff; border-radius: 4px; padding: 3px 10px; cursor: pointer; }
main { padding: 16px 20px 40px; max-width: 1400px; overflow-wrap: break-word; }
h1 { font-size: 22px; margin: 6px 0 14px; word-break: break-all; }
h2 { font-size: 18px; margin: 26px 0 10px; border-bottom: 1px solid var(--line); padding-bottom: 4px; }
h3 { font-size: 16px; margin: 16px 0 8px; }
table { border-collapse: collapse; width: 100%; margin: 8px 0 12px; }
th, td { text-align: left; vertical-align: top; padding: 5px 8px; border-bottom: 1px solid var(--line); overflow-wrap: break-word; }
td.mono, td .mono, td code, td.wrap, summary { overflow-wrap: anywhere; }
td.nowrap { white-space: nowrap; }
td pre { white-space: pre-wrap; overflow-wrap: anywhere; max-height: 320px; }
[data-copy], time { white-space: nowrap; }
details > summary { cursor: pointer; color: var(--link); margin: 4px 0; }
th { background: var(--panel); font-weight: 600; }
td.num, th.num { text-align: right; }
code, .mono { font-family: ui-monospace, "SFMono-Regular", Menlo, Consolas, monospace; font-size: 13px; }
pre { background: var(--panel); padding: 10px; overflow: auto; max-height: 480px; border: 1px solid var(--line); }
.muted { color: var(--muted); }
.badge { display: inline-block; padding: 1px 8px; border-radius: 10px; font-size: 12px; font-weight: 600; color: #fff; white-space: nowrap; }
.b-allowed, .b-passed, .b-ok, .b-served { background: #0a6b2d; }
.b-denied, .b-failed, .b-failing, .b-broken, .b-not-served { background: #a31515; }
.b-audit { background: #7a4a00; }
.b-quarantined { background: #5b2a86; }
.b-pinned { background: #1f4e8c; }
.b-unknown, .b-kind { background: #4a525c; }
.cards { display: flex; flex-wrap: wrap; gap: 12px; margin: 8px 0 16px; padding: 0; list-style: none; }
.cards li { background: var(--panel); border: 1px solid var(--line); border-radius: 6px; padding: 10px 14px; min-width: 150px; }
.cards .n { font-size: 24px; font-weight: 700; display: block; }
form.inline { display: inline-flex; gap: 6px; align-items: center; flex-wrap: wrap; margin: 2px 0; }
form.filters { display: flex; gap: 10px; flex-wrap: wrap; align-items: flex-end; margin: 8px 0 12px; }
form.filters label, form.stack label { display: flex; flex-direction: column; font-size: 13px; color: var(--muted); gap: 2px; }
form.stack { display: flex; flex-direction: column; gap: 10px; max-width: 420px; }
input, select { font: inherit; padding: 4px 6px; border: 1px solid #767f8a; border-radius: 4px; }
button, .button { font: inherit; padding: 4px 12px; border-radius: 4px; border: 1px solid #0b4fa8; background: #0b4fa8; color: #fff; cursor: pointer; text-decoration: none; display: inline-block; }
button.danger, .button.danger { background: #a31515; border-color: #a31515; }
button.secondary { background: #fff; color: #0b4fa8; }
.notice { background: #e7f3ea; border: 1px solid #0a6b2d; padding: 8px 12px; border-radius: 4px; margin: 8px 0; }
.error { background: #fbeaea; border: 1px solid #a31515; padding: 8px 12px; border-radius: 4px; margin: 8px 0; }
.warn { background: #fff4e0; border: 1px solid #7a4a00; padding: 8px 12px; border-radius: 4px; margin: 8px 0; }
.actions { display: flex; flex-direction: column; gap: 6px; background: var(--panel); border: 1px solid var(--line); padding: 10px; border-radius: 6px; }
dl.facts { display: grid; grid-template-columns: max-content 1fr; gap: 4px 16px; margin: 8px 0; }
dl.facts dt { font-weight: 600; color: var(--muted); }
dl.facts dd { margin: 0; word-break: break-all; }
ul.tree, ul.tree ul { list-style: none; padding-left: 18px; border-left: 2px solid var(--line); margin: 6px 0; }
ul.tree > li { margin: 8px 0; }
.node { background: var(--panel); border: 1px solid var(--line); border-radius: 6px; padding: 8px 10px; }
.pager { display: flex; gap: 12px; margin: 8px 0; }
.graph { overflow: auto; border: 1px solid var(--line); background: #fff; margin: 8px 0; }
.graph svg text { font: 12px system-ui, sans-serif; }
.copy { margin-left: 6px; font-size: 11px; padding: 0 6px; }
.layout-2 { display: grid; grid-template-columns: minmax(0, 1fr) 340px; gap: 20px; }
@media (max-width: 900px) { .layout-2 { grid-template-columns: 1fr; } }
`;

/** Progressive enhancement only: every page works without it. Adds "copy" buttons to digests. */
const JS = `
(function () {
  if (!navigator.clipboard) return;
  document.querySelectorAll('[data-copy]').forEach(function (el) {
    var b = document.createElement('button');
    b.type = 'button';
    b.className = 'copy secondary';
    b.textContent = 'copy';
    b.setAttribute('aria-label', 'copy ' + el.getAttribute('data-copy'));
    b.addEventListener('click', function () {
      navigator.clipboard.writeText(el.getAttribute('data-copy')).then(function () { b.textContent = 'copied'; });
    });
    el.after(b);
  });
})();
`;

const version = (s: string): string => createHash('sha256').update(s).digest('hex').slice(0, 12);

export const ASSETS: Readonly<Record<string, { readonly body: string; readonly type: string }>> = {
  [`console.${version(CSS)}.css`]: { body: CSS, type: 'text/css; charset=utf-8' },
  [`console.${version(JS)}.js`]: { body: JS, type: 'text/javascript; charset=utf-8' },
};

export const CSS_URL = `/ui/static/console.${version(CSS)}.css`;
export const JS_URL = `/ui/static/console.${version(JS)}.js`;
