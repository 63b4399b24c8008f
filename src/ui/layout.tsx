import type { Child } from 'hono/jsx';
import { CSS_URL, JS_URL } from './assets.js';
import { Csrf, Notice, type PageContext } from './components.js';
import { href } from './format.js';

/** Renders a JSX tree to a complete HTML document. Pages are synchronous: view models are built before. */
export const toHtml = (node: unknown): string => `<!DOCTYPE html>${String(node)}`;

const Head = (p: { title: string; script?: boolean }) => (
  <head>
    <meta charset="utf-8" />
    <meta name="viewport" content="width=device-width, initial-scale=1" />
    <title>{`${p.title} · customs`}</title>
    <link rel="stylesheet" href={CSS_URL} />
    {p.script ? <script src={JS_URL} defer></script> : null}
  </head>
);

/** Every signed-in page: navigation, who is signed in, sign-out, the content. */
export function Layout(p: { title: string; ctx: PageContext; children: Child }) {
  const admin = p.ctx.viewer.may(undefined, 'admin');
  return (
    <html lang="en">
      <Head title={p.title} script />
      <body>
        <a class="skip" href="#main">
          Skip to content
        </a>
        <header class="top">
          <a class="brand" href="/ui/">
            customs console
          </a>
          <nav aria-label="main">
            <ul>
              <li>
                <a href={href('')}>Overview</a>
              </li>
              <li>
                <a href={href('repositories')}>Repositories</a>
              </li>
              {admin ? (
                <li>
                  <a href={href('audit')}>Audit log</a>
                </li>
              ) : null}
            </ul>
          </nav>
          <div class="who">
            <span>
              Signed in as <strong>{p.ctx.viewer.actor}</strong>
            </span>
            <form method="post" action="/ui/logout">
              <Csrf token={p.ctx.csrf} />
              <button type="submit">Sign out</button>
            </form>
          </div>
        </header>
        <main id="main">
          <Notice text={p.ctx.notice} />
          {p.children}
        </main>
      </body>
    </html>
  );
}

/** Pages without a session: sign-in, and refusals shown to nobody in particular. */
export function BareLayout(p: { title: string; children: Child }) {
  return (
    <html lang="en">
      <Head title={p.title} />
      <body>
        <header class="top">
          <span class="brand">customs console</span>
        </header>
        <main id="main">{p.children}</main>
      </body>
    </html>
  );
}
