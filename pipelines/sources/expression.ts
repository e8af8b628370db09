// SQL text from the config (`where:`, `columns.*.expr`, a sql source's `query`) checked with DuckDB's own parser
// (json_serialize_sql) before it goes anywhere near a query: a `where:` is exactly one expression, never a way to
// end the statement and run another one. What is run afterwards is DuckDB's rendering of the parsed expression
// (json_deserialize_sql), not the user's text, so a trailing comment or an unbalanced parenthesis cannot change the
// query it is put into.
import { Db, sqlString } from '../base/duckdb.js';
import { SourceError } from './source.js';

/** A node of DuckDB's serialized parse tree (json_serialize_sql). */
export type SqlNode = { readonly [key: string]: SqlJson };
export type SqlJson = string | number | boolean | null | readonly SqlJson[] | SqlNode;

export interface ParsedExpression {
  /** DuckDB's rendering of the parsed expression: safe to put inside a larger statement, in parentheses. */
  sql: string;
  /** The parse tree of the expression (numbers beyond 2^53 kept as their exact text). */
  ast: SqlNode;
}

/** The table name of the statement an expression is parsed in; it is never run. */
const PROBE_TABLE = '__churn_expression';
const PREFIX = `SELECT * FROM ${PROBE_TABLE} WHERE `;

/**
 * Parses `text` as a single SQL expression with DuckDB's parser. `key` names the config key in messages
 * (`sources.orders.where`). Throws a SourceError unless the text is exactly one expression.
 */
export async function parseExpression(
  db: Db | undefined,
  text: string,
  key: string,
): Promise<ParsedExpression> {
  return withDb(db, async (duck) => {
    const user = await serialize(duck, `${PREFIX}${text}`);
    const shown = quoteForMessage(text);
    if (user.notSelect) {
      throw new SourceError(
        `${key} must be one SQL expression, but ${shown} holds more than one statement; remove the ";" and what follows`,
      );
    }
    if (user.error !== undefined) {
      const at = user.position !== undefined ? ` at character ${user.position - PREFIX.length + 1}` : '';
      throw new SourceError(
        `${key} is not a valid SQL expression: ${shown} (${user.error}${at}); write one condition such as "status <> 'test'"`,
      );
    }
    if (user.statements.length !== 1) {
      throw new SourceError(
        `${key} must be one SQL expression, but ${shown} holds ${user.statements.length} statements; remove the ";" and what follows`,
      );
    }
    const template = await serialize(duck, `${PREFIX}TRUE`);
    const userStatement = user.statements[0]!;
    const where = child(child(userStatement, 'node'), 'where_clause');
    // The parse must be the template's, but for its WHERE: nothing may close the expression and add a UNION,
    // an ORDER BY, a LIMIT or another clause.
    if (
      where === undefined ||
      template.statements.length !== 1 ||
      canonical(withoutWhere(userStatement)) !== canonical(withoutWhere(template.statements[0]!))
    ) {
      throw new SourceError(
        `${key} must be one SQL expression, but ${shown} adds more to the query (a UNION, ORDER BY, LIMIT or another clause); keep only the condition`,
      );
    }
    const rendered = await duck.one<{ sql: string }>(
      `select json_deserialize_sql(${sqlString(user.json)}) as sql`,
    );
    const sql = rendered?.sql ?? '';
    if (!sql.startsWith(PREFIX)) {
      throw new SourceError(`${key}: DuckDB could not render ${shown} back as SQL; simplify the expression`);
    }
    return { sql: sql.slice(PREFIX.length), ast: where };
  });
}

/**
 * Checks that `text` is one SELECT statement (a sql source's query) and returns it without a trailing `;`, ready
 * to be used as a subquery.
 */
export async function parseQuery(db: Db | undefined, text: string, key: string): Promise<string> {
  return withDb(db, async (duck) => {
    const parsed = await serialize(duck, text);
    if (parsed.notSelect) {
      throw new SourceError(
        `${key} must be one SELECT statement, but it holds another kind of statement; keep only the SELECT`,
      );
    }
    if (parsed.error !== undefined) {
      throw new SourceError(
        `${key} is not one valid SELECT statement (${parsed.error}); fix the query (only SELECT queries are accepted)`,
      );
    }
    if (parsed.statements.length !== 1) {
      throw new SourceError(
        `${key} must be one SELECT statement, but it holds ${parsed.statements.length}; remove the extra statements`,
      );
    }
    return text.trim().replace(/;\s*$/, '');
  });
}

async function withDb<T>(db: Db | undefined, work: (db: Db) => Promise<T>): Promise<T> {
  if (db) return work(db);
  const own = await Db.open();
  try {
    return await work(own);
  } finally {
    own.close();
  }
}

interface Serialized {
  json: string;
  statements: SqlNode[];
  error?: string;
  /** Character position (0-based) of a syntax error. */
  position?: number;
  /** The text holds a statement other than SELECT (COPY, INSERT, ...): json_serialize_sql only takes SELECTs. */
  notSelect?: boolean;
}

async function serialize(db: Db, statement: string): Promise<Serialized> {
  const row = await db.one<{ json: string }>(`select json_serialize_sql(${sqlString(statement)}) as json`);
  const json = row?.json ?? '';
  const parsed = parseJsonExact(json);
  if (!isNode(parsed)) return { json, statements: [], error: 'the parser returned nothing' };
  if (parsed.error === true) {
    const message = typeof parsed.error_message === 'string' ? parsed.error_message : 'unparseable';
    const result: Serialized = {
      json,
      statements: [],
      error: oneLine(message.replace(/^Parser Error:\s*/i, '')),
    };
    if (parsed.error_type === 'not implemented') result.notSelect = true;
    const position = Number(parsed.position);
    if (parsed.position !== undefined && Number.isInteger(position)) result.position = position;
    return result;
  }
  const statements = Array.isArray(parsed.statements) ? parsed.statements.filter(isNode) : [];
  return { json, statements };
}

export function isNode(value: SqlJson | undefined): value is SqlNode {
  return value !== null && value !== undefined && typeof value === 'object' && !Array.isArray(value);
}

export function child(node: SqlJson | undefined, key: string): SqlNode | undefined {
  if (!isNode(node)) return undefined;
  const value = node[key];
  return isNode(value) ? value : undefined;
}

function withoutWhere(statement: SqlNode): SqlNode {
  const node = child(statement, 'node') ?? {};
  return { ...statement, node: { ...node, where_clause: null } };
}

/** JSON text with object keys in a fixed order and source positions left out, for comparing parse trees. */
function canonical(value: SqlJson): string {
  if (Array.isArray(value)) return `[${value.map(canonical).join(',')}]`;
  if (isNode(value)) {
    const keys = Object.keys(value)
      .filter((k) => k !== 'query_location')
      .sort();
    return `{${keys.map((k) => `${JSON.stringify(k)}:${canonical(value[k]!)}`).join(',')}}`;
  }
  return JSON.stringify(value);
}

/**
 * JSON.parse, except that integers too large for a double stay exact: they become strings (DuckDB writes BIGINT
 * and DECIMAL constants as JSON numbers).
 */
export function parseJsonExact(text: string): SqlJson {
  let out = '';
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i]!;
    if (inString) {
      out += c;
      if (c === '\\') {
        out += text[i + 1] ?? '';
        i++;
      } else if (c === '"') {
        inString = false;
      }
      continue;
    }
    if (c === '"') {
      inString = true;
      out += c;
      continue;
    }
    if (c === '-' || (c >= '0' && c <= '9')) {
      let j = i + 1;
      while (j < text.length && /[0-9.eE+-]/.test(text[j]!)) j++;
      const number = text.slice(i, j);
      const digits = number.replace(/^-/, '');
      out += /^\d+$/.test(digits) && digits.length > 15 ? `"${number}"` : number;
      i = j - 1;
      continue;
    }
    out += c;
  }
  return JSON.parse(out) as SqlJson;
}

function quoteForMessage(text: string): string {
  const flat = oneLine(text);
  return JSON.stringify(flat.length > 80 ? `${flat.slice(0, 77)}...` : flat);
}

/** A message on one line: newlines and runs of spaces become one space. */
export function oneLine(text: string): string {
  return text.replace(/\s+/g, ' ').trim();
}
