/**
 * A reader for the small YAML subset that deploy/ is written in, so that tests can check the
 * Compose file and the Kubernetes manifests without a YAML dependency: block mappings and block
 * lists (including `- key: value` items), `#` comments, `---` between documents, and scalars
 * that are plain, 'single-' or "double-quoted". Plain scalars follow YAML 1.2's core schema for
 * integers, booleans and null; everything else is a string.
 *
 * Anything outside the subset (anchors, tags, flow collections other than [] and {}, multi-line
 * or block scalars, tabs, odd indentation) throws with the file and line, so a file that grows
 * past what this reader understands fails loudly instead of being half read.
 */

export type Yaml = string | number | boolean | null | Yaml[] | YamlMap;
export interface YamlMap {
  [key: string]: Yaml;
}

interface Line {
  readonly indent: number;
  readonly text: string;
  readonly no: number;
}

const KEY = String.raw`(?:"(?:[^"\\]|\\.)*"|'(?:[^']|'')*'|[^\s"'#\-?:,[\]{}&*!|>%@\x60][^:]*?|-[^\s:][^:]*?)`;
const ENTRY = new RegExp(`^(${KEY}):(?:\\s+(.*))?$`);

/** Reads every document of `text`; `file` names it in errors. */
export function readYaml(text: string, file: string): Yaml[] {
  const docs: Line[][] = [[]];
  text.split('\n').forEach((raw, index) => {
    const no = index + 1;
    if (/^ *\t/.test(raw)) throw new Error(`${file}:${no}: tab in indentation`);
    const line = stripComment(raw).trimEnd();
    if (line.trim() === '') return;
    if (line === '---') {
      docs.push([]);
      return;
    }
    const text = line.trimStart();
    docs.at(-1)!.push({ indent: line.length - text.length, text, no });
  });
  return docs
    .filter((lines) => lines.length > 0)
    .map((lines) => new Reader(lines, file).document());
}

/** Cuts a `#` comment that starts the line or follows a space, outside quotes. */
function stripComment(line: string): string {
  let quote: string | null = null;
  for (let i = 0; i < line.length; i++) {
    const ch = line[i]!;
    if (quote) {
      if (ch === '\\' && quote === '"') i++;
      else if (ch === quote) quote = null;
      continue;
    }
    const before = line.slice(0, i).trimEnd();
    // A quote opens a scalar only where one can start: line start, after "key:", "-", "[" or ",".
    if ((ch === '"' || ch === "'") && (before === '' || /[:\-[,]$/.test(before))) quote = ch;
    else if (ch === '#' && (i === 0 || line[i - 1] === ' ')) return line.slice(0, i);
  }
  return line;
}

function isItem(text: string): boolean {
  return text === '-' || text.startsWith('- ');
}

class Reader {
  private pos = 0;

  constructor(
    private readonly lines: Line[],
    private readonly file: string,
  ) {}

  document(): Yaml {
    const value = this.block(this.lines[0]!.indent);
    const rest = this.lines[this.pos];
    if (rest) this.fail(rest, 'unexpected indentation (or a multi-line scalar)');
    return value;
  }

  private block(indent: number): Yaml {
    return isItem(this.lines[this.pos]!.text) ? this.list(indent) : this.mapping(indent);
  }

  private list(indent: number): Yaml[] {
    const items: Yaml[] = [];
    // A non-item at this indentation ends the list: the next key of a mapping whose list sat
    // at the key's own indentation (anything else fails in the caller).
    for (let line = this.peek(); line?.indent === indent && isItem(line.text); line = this.peek()) {
      const content = line.text.slice(1).trimStart();
      if (content === '') {
        this.pos++;
        items.push(this.nested(indent, false));
      } else if (ENTRY.test(content)) {
        // "- key: value": a mapping whose first entry shares the dash's line.
        const contentIndent = indent + line.text.length - content.length;
        this.lines[this.pos] = { indent: contentIndent, text: content, no: line.no };
        items.push(this.mapping(contentIndent));
      } else {
        this.pos++;
        items.push(this.scalar(content, line));
      }
    }
    return items;
  }

  private mapping(indent: number): YamlMap {
    const map: YamlMap = {};
    for (let line = this.peek(); line?.indent === indent; line = this.peek()) {
      if (isItem(line.text)) this.fail(line, 'a list item where a key was expected');
      const match = ENTRY.exec(line.text);
      if (!match) this.fail(line, 'not a "key: value" line');
      const key = unquote(match[1]!);
      if (Object.hasOwn(map, key)) this.fail(line, `duplicate key "${key}"`);
      this.pos++;
      map[key] = match[2] === undefined ? this.nested(indent, true) : this.scalar(match[2], line);
    }
    return map;
  }

  /** The value of a key (or dash) with nothing after it: a deeper block, or null. */
  private nested(indent: number, listMayShareIndent: boolean): Yaml {
    const next = this.peek();
    if (next && next.indent > indent) return this.block(next.indent);
    // YAML lets a mapping's list sit at the key's own indentation.
    if (listMayShareIndent && next?.indent === indent && isItem(next.text))
      return this.list(indent);
    return null;
  }

  private scalar(raw: string, line: Line): Yaml {
    const text = raw.trim();
    if (text === '[]') return [];
    if (text === '{}') return {};
    if (text.startsWith('"')) {
      if (!/^"(?:[^"\\]|\\.)*"$/.test(text)) this.fail(line, 'unterminated "string"');
      return JSON.parse(text) as string;
    }
    if (text.startsWith("'")) {
      if (!/^'(?:[^']|'')*'$/.test(text)) this.fail(line, "unterminated 'string'");
      return unquote(text);
    }
    if (/^[[{&*!|>%@`]/.test(text)) this.fail(line, `outside the YAML subset: ${text}`);
    if (/:(\s|$)/.test(text)) this.fail(line, `ambiguous plain scalar (quote it): ${text}`);
    if (/^[-+]?\d+$/.test(text)) return Number(text);
    if (text === 'true' || text === 'false') return text === 'true';
    if (text === 'null' || text === '~') return null;
    return text;
  }

  private peek(): Line | undefined {
    return this.lines[this.pos];
  }

  private fail(line: Line, message: string): never {
    throw new Error(`${this.file}:${line.no}: ${message}`);
  }
}

function unquote(text: string): string {
  if (text.startsWith('"')) return JSON.parse(text) as string;
  if (text.startsWith("'")) return text.slice(1, -1).replaceAll("''", "'");
  return text;
}

/**
 * The value at `path` in `root`: dotted keys with `[n]` list indices, e.g.
 * `spec.template.spec.containers[0].ports[0].containerPort`. Throws naming the missing step.
 */
export function at(root: Yaml, path: string): Yaml {
  let value: Yaml = root;
  let walked = '';
  for (const step of path.split('.')) {
    const match = /^([^[\]]+)((?:\[\d+\])*)$/.exec(step);
    if (!match) throw new Error(`bad path step "${step}" in ${path}`);
    const [, key, indices] = match as unknown as [string, string, string];
    walked += walked === '' ? key : `.${key}`;
    if (typeof value !== 'object' || value === null || Array.isArray(value) || !(key in value)) {
      throw new Error(`no ${walked}`);
    }
    value = value[key]!;
    for (const index of indices.matchAll(/\[(\d+)\]/g)) {
      walked += index[0];
      if (!Array.isArray(value) || value.length <= Number(index[1]))
        throw new Error(`no ${walked}`);
      value = value[Number(index[1])]!;
    }
  }
  return value;
}

/** Like `at`, but only a mapping; a list or a scalar there throws. */
export function mapAt(root: Yaml, path: string): YamlMap {
  const value = path === '' ? root : at(root, path);
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new Error(`${path || 'the document'} is not a mapping`);
  }
  return value;
}

/** Like `at`, but only a list. */
export function listAt(root: Yaml, path: string): Yaml[] {
  const value = at(root, path);
  if (!Array.isArray(value)) throw new Error(`${path} is not a list`);
  return value;
}
