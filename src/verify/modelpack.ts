import { z } from 'zod';
import { globMatchCi } from './glob.js';

/** CNCF ModelPack config (model-spec docs/config.md): only the fields the policy reads. */
export const MODELPACK_CONFIG = 'application/vnd.cncf.model.config.v1+json';

const configSchema = z.looseObject({
  descriptor: z.looseObject({ licenses: z.array(z.string()).optional(), name: z.string().optional() }).optional(),
  config: z.looseObject({ format: z.string().optional() }).optional(),
});

export interface ModelRequirement {
  allowLicenses?: readonly string[] | undefined;
  allowFormats?: readonly string[] | undefined;
}

/** Returns the reasons the config breaks the allowlists (empty = fine). Missing data fails an allowlist. */
export function modelConfigViolations(configBytes: Buffer, req: ModelRequirement): string[] {
  let cfg: z.infer<typeof configSchema>;
  try {
    const r = configSchema.safeParse(JSON.parse(configBytes.toString('utf8')));
    if (!r.success) return [`ModelPack config is invalid: ${r.error.issues[0]?.path.join('.')}: ${r.error.issues[0]?.message}`];
    cfg = r.data;
  } catch {
    return ['ModelPack config is not JSON'];
  }
  const out: string[] = [];
  if (req.allowLicenses) {
    const licenses = cfg.descriptor?.licenses ?? [];
    if (licenses.length === 0) out.push('model declares no license (descriptor.licenses)');
    for (const l of licenses) if (!req.allowLicenses.some((g) => globMatchCi(g, l))) out.push(`model license ${l} is not allowed`);
  }
  if (req.allowFormats) {
    const f = cfg.config?.format;
    if (!f) out.push('model declares no format (config.format)');
    else if (!req.allowFormats.some((g) => globMatchCi(g, f))) out.push(`model format ${f} is not allowed`);
  }
  return out;
}
