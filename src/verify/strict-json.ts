/**
 * JSON.parse that rejects duplicate object keys. JSON.parse keeps the last duplicate,
 * and Go's encoding/json too, while other parsers keep the first: a payload with two
 * `docker-manifest-digest` keys could mean one thing to the signer and another to us
 * (the cosign simple-signing check, containers/image rejects them as well).
 * We scan the text for keys per object, then let JSON.parse build the value.
 */
export function parseJsonNoDuplicates(text: string): unknown {
  const value = JSON.parse(text) as unknown; // syntax errors surface here with a good message
  checkDuplicates(text);
  return value;
}

function checkDuplicates(s: string): void {
  // Stack of key sets, one per open object; null for arrays.
  const stack: (Set<string> | null)[] = [];
  let i = 0;
  const n = s.length;
  while (i < n) {
    const c = s[i]!;
    if (c === '"') {
      const start = i;
      i++;
      while (i < n && s[i] !== '"') i += s[i] === '\\' ? 2 : 1;
      i++;
      const top = stack[stack.length - 1];
      if (top) {
        // A string is a key when the next non-space character is ':'.
        let j = i;
        while (j < n && (s[j] === ' ' || s[j] === '\n' || s[j] === '\r' || s[j] === '\t')) j++;
        if (s[j] === ':') {
          const key = JSON.parse(s.slice(start, i)) as string;
          if (top.has(key)) throw new Error(`duplicate key ${JSON.stringify(key)} in JSON object`);
          top.add(key);
        }
      }
      continue;
    }
    if (c === '{') stack.push(new Set());
    else if (c === '[') stack.push(null);
    else if (c === '}' || c === ']') stack.pop();
    i++;
  }
}
