import { celEnv, isCelError, parse, plan, type CelInput } from '@bufbuild/cel';
import type { Statement } from './statement.js';

/**
 * CEL conditions over an in-toto statement. Variables: `_type`, `subject`, `predicateType`,
 * `predicate`. JSON objects become CEL maps, so `has(x.y)` and `x.exists(...)` work.
 * A condition must evaluate to `true`; false, an error or a non-boolean all fail.
 */
type Program = ReturnType<typeof plan>;
const env = celEnv();
const programs = new Map<string, Program>();

export function compileCondition(expr: string): Program {
  let p = programs.get(expr);
  if (!p) {
    p = plan(env, parse(expr));
    programs.set(expr, p);
  }
  return p;
}

export function isValidCel(expr: string): boolean {
  try {
    compileCondition(expr);
    return true;
  } catch {
    return false;
  }
}

const toCel = (v: unknown): CelInput => {
  if (Array.isArray(v)) return v.map(toCel) as CelInput;
  if (v !== null && typeof v === 'object') return new Map(Object.entries(v).map(([k, x]) => [k, toCel(x)])) as CelInput;
  return v as CelInput;
};

/** Returns undefined when the condition holds, else the reason it does not. */
export function conditionFailure(expr: string, st: Statement): string | undefined {
  try {
    const bindings: Record<string, CelInput> = {
      _type: st._type,
      subject: toCel(st.subject),
      predicateType: st.predicateType,
      predicate: toCel(st.predicate ?? {}),
    };
    const r = compileCondition(expr)(bindings);
    if (isCelError(r)) return `condition \`${expr}\` could not be evaluated: ${r.message}`;
    if (r !== true) return `condition \`${expr}\` is ${typeof r === 'boolean' ? 'false' : `not a boolean`}`;
    return undefined;
  } catch (e) {
    return `condition \`${expr}\` failed: ${(e as Error).message}`;
  }
}
