import { execFileSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

/**
 * A private certificate authority made with openssl, as an operator would make one: a CA
 * certificate, and leaf certificates it signs (server names as SANs, or a client CN).
 */
export interface TestCa {
  readonly dir: string;
  readonly caCert: string; // path of the CA certificate (PEM)
  /** Issues a leaf: writes `<name>.pem` and `<name>-key.pem`; returns their paths. */
  issue(name: string, opts: { cn: string; dns?: string[]; ips?: string[]; client?: boolean }): { cert: string; key: string };
}

const openssl = (args: string[], cwd: string): void => void execFileSync('openssl', args, { cwd, stdio: ['ignore', 'ignore', 'pipe'] });

export function makeTestCa(dir: string, name = 'ca'): TestCa {
  const caKey = join(dir, `${name}-key.pem`);
  const caCert = join(dir, `${name}.pem`);
  openssl(['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', caKey, '-out', caCert, '-days', '2', '-subj', `/CN=customs test ${name}`, '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign'], dir);
  return {
    dir,
    caCert,
    issue(leaf, o) {
      const key = join(dir, `${leaf}-key.pem`);
      const csr = join(dir, `${leaf}.csr`);
      const cert = join(dir, `${leaf}.pem`);
      const ext = join(dir, `${leaf}.ext`);
      const sans = [...(o.dns ?? []).map((d) => `DNS:${d}`), ...(o.ips ?? []).map((i) => `IP:${i}`)];
      writeFileSync(
        ext,
        [
          'basicConstraints=CA:FALSE',
          'keyUsage=critical,digitalSignature,keyEncipherment',
          `extendedKeyUsage=${o.client ? 'clientAuth' : 'serverAuth'}`,
          ...(sans.length ? [`subjectAltName=${sans.join(',')}`] : []),
          '',
        ].join('\n'),
      );
      openssl(['req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', key, '-out', csr, '-subj', `/CN=${o.cn}`], dir);
      openssl(['x509', '-req', '-in', csr, '-CA', caCert, '-CAkey', caKey, '-CAcreateserial', '-out', cert, '-days', '1', '-extfile', ext], dir);
      return { cert, key };
    },
  };
}

export const pem = (path: string): string => readFileSync(path, 'utf8');
