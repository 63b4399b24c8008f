import { createHash, createPrivateKey, X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { IncomingMessage } from 'node:http';
import { createServer as createHttpsServer, type Server as HttpsServer } from 'node:https';
import { resolve } from 'node:path';
import type { RequestListener, ServerOptions } from 'node:http';
import type { PeerCertificate, SecureContextOptions, TLSSocket } from 'node:tls';
import { z } from 'zod';
import { permissionSchema } from '../config/auth.js';
import { ConfigError } from '../config/load.js';

/**
 * Serving over TLS (issue 18): HTTP/1.1 over TLS 1.2+, the certificate and key re-read on
 * SIGHUP (`setSecureContext`: new handshakes get the new pair, open connections keep theirs),
 * and optional client certificates verified against `clientCA`, each mapped to a principal.
 */
export const tlsConfigSchema = z
  .object({
    /** PEM certificate chain (leaf first), relative to the config file. */
    cert: z.string().min(1),
    /** PEM private key of the leaf certificate. */
    key: z.string().min(1),
    minVersion: z.enum(['TLSv1.2', 'TLSv1.3']).default('TLSv1.2'),
    /** PEM bundle of CAs whose client certificates authenticate (mTLS for nodes). */
    clientCA: z.string().min(1).optional(),
    /** `optional`: a client without a certificate may still use a token (default); `require`: handshake fails without one. */
    clientAuth: z.enum(['optional', 'require']).default('optional'),
    /** What a verified client certificate may do; its actor is `cert:<subject CN>`. Default: pull everything. */
    clientPermissions: z.array(permissionSchema).default([{ repositories: ['**'], actions: ['pull'] }]),
    /**
     * Also re-read the pair when its files change, checked this often (0: only on SIGHUP). Kubernetes
     * and cert-manager renew a mounted Secret in place and send no signal.
     */
    watchSeconds: z.number().int().min(0).max(86_400).default(60),
  })
  .strict();
export type TlsConfig = z.infer<typeof tlsConfigSchema>;

/** A configuration error (the CLI prints it and exits 2). */
export class TlsSetupError extends ConfigError {}

/** Reads and checks the pair (and the client CA): a missing file or a key that is not the certificate's is refused with the reason. */
export function loadTlsMaterial(cfg: TlsConfig, baseDir: string): SecureContextOptions {
  const read = (what: string, p: string): Buffer => {
    try {
      return readFileSync(resolve(baseDir, p));
    } catch (e) {
      throw new TlsSetupError(`cannot read ${what} ${resolve(baseDir, p)}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
    }
  };
  const cert = read('tls.cert', cfg.cert);
  const key = read('tls.key', cfg.key);
  let leaf: X509Certificate;
  try {
    leaf = new X509Certificate(cert);
  } catch (e) {
    throw new TlsSetupError(`tls.cert ${cfg.cert} is not a PEM certificate: ${(e as Error).message}`);
  }
  let privateKey;
  try {
    privateKey = createPrivateKey(key);
  } catch (e) {
    throw new TlsSetupError(`tls.key ${cfg.key} is not a PEM private key: ${(e as Error).message}`);
  }
  if (!leaf.checkPrivateKey(privateKey)) {
    throw new TlsSetupError(`tls.key ${cfg.key} is not the private key of tls.cert ${cfg.cert} (${leaf.subject.replace(/\n/g, ', ')}): the pair does not match`);
  }
  const ca = cfg.clientCA ? read('tls.clientCA', cfg.clientCA) : undefined;
  if (ca && !/-----BEGIN CERTIFICATE-----/.test(ca.toString())) throw new TlsSetupError(`tls.clientCA ${cfg.clientCA} holds no PEM certificate`);
  return { cert, key, ...(ca ? { ca } : {}) };
}

/** DNS and IP names of the certificate (admission's default self hosts). */
export function certificateNames(material: SecureContextOptions): string[] {
  const leaf = new X509Certificate(material.cert as Buffer);
  return (leaf.subjectAltName ?? '')
    .split(/,\s*/)
    .map((s) => /^(?:DNS|IP Address):(.+)$/.exec(s)?.[1])
    .filter((s): s is string => !!s);
}

export interface TlsServer {
  readonly server: HttpsServer;
  /** Re-reads the pair and the client CA; a bad pair keeps the previous one and throws. */
  reload(): void;
  /** Reloads when the files' bytes changed (a renewed Secret); returns whether it did. A pair caught mid-update waits for the next look. */
  reloadIfChanged(): boolean;
  /** The names of the certificate in use. */
  names(): string[];
}

/** The HTTP server's own options (timeouts), the same as for plain HTTP. */
export type HttpServerOptions = Pick<ServerOptions, 'ServerResponse' | 'keepAliveTimeout' | 'headersTimeout' | 'requestTimeout'>;

export function createTlsServer(cfg: TlsConfig, baseDir: string, listener: RequestListener, http: HttpServerOptions): TlsServer {
  let material = loadTlsMaterial(cfg, baseDir);
  const fingerprint = (m: SecureContextOptions): string => createHash('sha256').update(m.cert as Buffer).update(m.key as Buffer).update((m.ca as Buffer | undefined) ?? '').digest('hex');
  let loaded = fingerprint(material);
  const server = createHttpsServer(
    {
      ...material,
      minVersion: cfg.minVersion,
      ALPNProtocols: ['http/1.1'],
      requestCert: cfg.clientCA !== undefined,
      rejectUnauthorized: cfg.clientCA !== undefined && cfg.clientAuth === 'require',
      ...http,
    },
    listener,
  );
  return {
    server,
    reload() {
      const next = loadTlsMaterial(cfg, baseDir);
      server.setSecureContext({ ...next, minVersion: cfg.minVersion });
      material = next;
      loaded = fingerprint(next);
    },
    reloadIfChanged() {
      let next: SecureContextOptions;
      try {
        next = loadTlsMaterial(cfg, baseDir);
      } catch {
        return false;
      }
      if (fingerprint(next) === loaded) return false;
      server.setSecureContext({ ...next, minVersion: cfg.minVersion });
      material = next;
      loaded = fingerprint(next);
      return true;
    },
    names: () => certificateNames(material),
  };
}

/**
 * The actor of a verified client certificate (`cert:<CN>`, else its first SAN), or undefined when the
 * connection has none or it did not verify against `tls.clientCA`. Node verifies the chain during the
 * handshake; `authorized` says whether it passed, so an unverified certificate never becomes a principal.
 */
export function clientCertActor(req: IncomingMessage): string | undefined {
  const socket = req.socket as Partial<TLSSocket>;
  if (!socket.encrypted || !socket.authorized || typeof socket.getPeerCertificate !== 'function') return undefined;
  const peer: PeerCertificate = socket.getPeerCertificate();
  if (!peer || Object.keys(peer).length === 0) return undefined;
  const cn = typeof peer.subject?.CN === 'string' ? peer.subject.CN : undefined;
  const san = peer.subjectaltname?.split(/,\s*/)[0]?.replace(/^[A-Za-z ]+:/, '');
  const name = cn ?? san;
  return name && /^[\w.@:-]{1,200}$/.test(name) ? `cert:${name}` : undefined;
}
