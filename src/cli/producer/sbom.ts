import { writeFile } from 'node:fs/promises';
import { inspectPython } from '../../artifacts/python-env.js';
import { buildPythonSbom } from '../../artifacts/sbom.js';
import { buildPythonSpdx } from '../../artifacts/sbom-spdx.js';
import { stdio, type Output } from './common.js';

export interface SbomPythonCliOptions {
  readonly python?: string;
  readonly output?: string;
  readonly format?: 'cyclonedx' | 'spdx';
}

/** `customs sbom python [--python <path>] [--format cyclonedx|spdx] [-o file]`: CycloneDX 1.6 or SPDX 2.3 of the distributions that interpreter sees. */
export async function sbomPythonCommand(opts: SbomPythonCliOptions, io: Output = stdio): Promise<Record<string, unknown>> {
  const inv = await inspectPython(opts.python ?? 'python3');
  const bom = opts.format === 'spdx' ? buildPythonSpdx(inv) : buildPythonSbom(inv);
  const text = `${JSON.stringify(bom, null, 2)}\n`;
  if (opts.output) {
    await writeFile(opts.output, text);
    io.err(`wrote ${opts.output}: ${inv.distributions.length} distributions, Python ${inv.python.version}`);
  } else io.out(text.trimEnd());
  return bom;
}
