import { err, isRegistryError, type RegistryError } from '../oci/errors.js';
import type { Rule } from './policy.js';
import { MODELPACK_CONFIG, modelConfigViolations } from './modelpack.js';
import { isPickleCandidate, scanModelLayer } from './model-scan.js';
import { layerPath } from './statement.js';
import type { ContentSource } from './types.js';
import type { SubjectContext } from './evidence.js';

const UNREADABLE = new Set(['UPSTREAM_UNAVAILABLE', 'STORAGE_UNAVAILABLE', 'TOOMANYREQUESTS', 'DIGEST_INVALID']);

/** A model layer the scan could not read right now: the gate passes `error` on (502/503/429) instead of judging. */
export class LayerUnreadable extends Error {
  constructor(readonly error: RegistryError) {
    super(error.message);
  }
}

export interface ModelCheckResult {
  readonly problems: string[];
  readonly notes: string[];
  /** A layer or the config was not available: do not cache the verdict. */
  readonly incomplete: boolean;
}

/** The `model` requirement: ModelPack license/format allowlists and the pickle scan of every candidate layer. */
export async function checkModel(source: ContentSource, repository: string, subject: SubjectContext, req: NonNullable<Rule['model']>, maxConfigBytes: number): Promise<ModelCheckResult> {
  const problems: string[] = [];
  const notes: string[] = [];
  let incomplete = false;
  const m = subject.manifest;
  if (!m) {
    problems.push('not an image manifest: the model checks cannot run');
    return { problems, notes, incomplete };
  }
  if (req.allowLicenses || req.allowFormats) {
    if (m.config.mediaType !== MODELPACK_CONFIG) problems.push(`config is ${m.config.mediaType}, not a ModelPack config: license and format unknown`);
    else {
      const cfg = await source.readBlob(repository, m.config.digest, maxConfigBytes);
      if (!cfg) {
        incomplete = true;
        problems.push('ModelPack config blob is not available');
      }
      else problems.push(...modelConfigViolations(cfg, req));
    }
  }
  if (req.pickleScan) {
    let scanned = 0;
    for (const layer of m.layers) {
      if (!isPickleCandidate(layer)) continue;
      const name = layerPath(layer.annotations) ?? layer.digest.slice(0, 19);
      const stream = await source.openBlob(repository, layer.digest).catch((e: unknown) => {
        throw isRegistryError(e) && UNREADABLE.has(e.code) ? new LayerUnreadable(e.code === 'DIGEST_INVALID' ? err('UPSTREAM_UNAVAILABLE', e.message, e.detail) : e) : e;
      });
      if (!stream) {
        incomplete = true;
        problems.push(`layer ${name} is not available for the pickle scan`);
        continue;
      }
      try {
        const r = await scanModelLayer(stream, name, { allow: req.pickleAllow });
        problems.push(...r.problems);
        scanned++;
      } catch (e) {
        // The layer could not be read (scanModelLayer passes the source's failures on). Bytes an upstream sent
        // that do not match their digest, an upstream or store that is away: not a finding about this model.
        if (isRegistryError(e) && UNREADABLE.has(e.code)) throw new LayerUnreadable(e.code === 'DIGEST_INVALID' ? err('UPSTREAM_UNAVAILABLE', e.message, e.detail) : e);
        throw e;
      } finally {
        stream.destroy();
      }
    }
    notes.push(scanned === 0 ? 'no pickle layers' : `${scanned} pickle layer(s) scanned`);
  }
  return { problems, notes, incomplete };
}
