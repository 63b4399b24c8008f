import { BareLayout, toHtml } from '../layout.js';

/** Sign-in: an API token, or a configured user's name and password (the same credentials as the API). */
export function loginPage(p: { csrf: string; next: string | undefined; error?: string | undefined }): string {
  return toHtml(
    <BareLayout title="Sign in">
      <h1>Sign in to customs</h1>
      {p.error ? (
        <p class="error" role="alert">
          {p.error}
        </p>
      ) : null}
      <form method="post" action="/ui/login" class="stack">
        <input type="hidden" name="csrf" value={p.csrf} />
        {p.next ? <input type="hidden" name="next" value={p.next} /> : null}
        <label for="token">
          API token (ctk_...)
          <input id="token" name="token" type="password" autocomplete="off" spellcheck={false} />
        </label>
        <p class="muted">or a user configured under auth.users:</p>
        <label for="username">
          User name
          <input id="username" name="username" autocomplete="username" />
        </label>
        <label for="password">
          Password
          <input id="password" name="password" type="password" autocomplete="current-password" />
        </label>
        <button type="submit">Sign in</button>
      </form>
      <p class="muted">The console can do what your token can, no more. Every action is recorded in the audit log under your name.</p>
    </BareLayout>,
  );
}

/** A refusal or error for someone without a session (or whose request never reached a page). */
export function barePage(title: string, message: string): string {
  return toHtml(
    <BareLayout title={title}>
      <h1>{title}</h1>
      <p class="error" role="alert">
        {message}
      </p>
      <p>
        <a href="/ui/login">Sign in</a>
      </p>
    </BareLayout>,
  );
}
