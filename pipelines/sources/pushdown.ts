// A `where:` parsed by DuckDB (expression.ts) rebuilt as a kysely expression for a warehouse query: column names
// go through sql.id (quoted for the dialect), strings travel as bound parameters, numbers and booleans are
// re-written from their parsed values. Nothing of the user's text reaches the warehouse as SQL. Only a common
// subset translates (comparisons, and/or/not, in, between, like, is null, arithmetic, casts and a few string
// functions); anything else is an error that says so.
import { type RawBuilder, type SqlBool, sql } from 'kysely';
import { child, isNode, type SqlNode } from './expression.js';

export type Dialect = 'postgres' | 'mysql';

/** Thrown with what cannot be translated; the caller adds the entity and the config key. */
export class PushdownError extends Error {
  override readonly name = 'PushdownError';
}

type Expr = RawBuilder<unknown>;

const COMPARISONS: Record<string, string> = {
  COMPARE_EQUAL: '=',
  COMPARE_NOTEQUAL: '<>',
  COMPARE_LESSTHAN: '<',
  COMPARE_GREATERTHAN: '>',
  COMPARE_LESSTHANOREQUALTO: '<=',
  COMPARE_GREATERTHANOREQUALTO: '>=',
};

const ARITHMETIC = new Set(['+', '-', '*', '/', '%']);

/** Functions that mean the same on DuckDB, PostgreSQL and MySQL (length: characters). */
const FUNCTIONS: Record<string, Record<Dialect, string>> = {
  lower: { postgres: 'lower', mysql: 'lower' },
  upper: { postgres: 'upper', mysql: 'upper' },
  trim: { postgres: 'trim', mysql: 'trim' },
  ltrim: { postgres: 'ltrim', mysql: 'ltrim' },
  rtrim: { postgres: 'rtrim', mysql: 'rtrim' },
  length: { postgres: 'char_length', mysql: 'char_length' },
  abs: { postgres: 'abs', mysql: 'abs' },
};

const SUPPORTED =
  'comparisons, and/or/not, in (...), between, like/ilike, is [not] null, arithmetic, casts, coalesce, ' +
  'lower/upper/trim/length/abs';

/** Node types whose value is true/false (or null): what a WHERE needs. */
function isCondition(node: SqlNode): boolean {
  const type = String(node.type);
  if (['COMPARISON', 'CONJUNCTION', 'BETWEEN'].includes(String(node.class))) return true;
  if (
    ['OPERATOR_NOT', 'OPERATOR_IS_NULL', 'OPERATOR_IS_NOT_NULL', 'COMPARE_IN', 'COMPARE_NOT_IN'].includes(
      type,
    )
  ) {
    return true;
  }
  if (node.class === 'FUNCTION' && ['~~', '!~~', '~~*', '!~~*'].includes(String(node.function_name)))
    return true;
  if (node.class === 'CAST') return child(node, 'cast_type')?.id === 'BOOLEAN';
  // A bare column may be a boolean column: the warehouse says otherwise when the query is checked.
  if (node.class === 'COLUMN_REF') return true;
  if (node.class === 'CONSTANT') {
    const value = child(node, 'value');
    return value?.is_null === true || child(value, 'type')?.id === 'BOOLEAN';
  }
  return false;
}

/**
 * The WHERE condition for a warehouse query. `columns` are the source's columns: a reference is resolved against
 * them (exactly, else ignoring case) so that the warehouse gets the column's real name.
 */
export function pushdownWhere(
  ast: SqlNode,
  dialect: Dialect,
  columns: readonly string[],
): RawBuilder<SqlBool> {
  const condition = new Translator(dialect, columns).expr(ast) as RawBuilder<SqlBool>;
  if (!isCondition(ast)) {
    const what =
      ast.class === 'FUNCTION' && ast.is_operator === true
        ? `a value with the operator ${String(ast.function_name)}`
        : `a ${describe(ast)}`;
    throw new PushdownError(
      `it is not a true/false condition (it computes ${what}); compare it with something`,
    );
  }
  return condition;
}

class Translator {
  constructor(
    private readonly dialect: Dialect,
    private readonly columns: readonly string[],
  ) {}

  expr(node: SqlNode): Expr {
    switch (node.class) {
      case 'COLUMN_REF':
        return this.column(node);
      case 'CONSTANT':
        return this.constant(node);
      case 'CAST':
        return this.cast(node);
      case 'COMPARISON':
        return this.comparison(node);
      case 'CONJUNCTION': {
        const op =
          node.type === 'CONJUNCTION_AND' ? ' and ' : node.type === 'CONJUNCTION_OR' ? ' or ' : undefined;
        if (op === undefined) break;
        return sql`(${sql.join(this.children(node), sql.raw(op))})`;
      }
      case 'BETWEEN': {
        const [input, lower, upper] = [child(node, 'input'), child(node, 'lower'), child(node, 'upper')];
        if (!input || !lower || !upper) break;
        return sql`(${this.expr(input)} between ${this.expr(lower)} and ${this.expr(upper)})`;
      }
      case 'OPERATOR':
        return this.operator(node);
      case 'FUNCTION':
        return this.func(node);
    }
    throw this.unsupported(node);
  }

  private children(node: SqlNode): Expr[] {
    const list = node.children;
    if (!Array.isArray(list)) return [];
    return list.filter(isNode).map((c) => this.expr(c));
  }

  private column(node: SqlNode): Expr {
    const names = Array.isArray(node.column_names) ? node.column_names.map(String) : [];
    if (names.length !== 1) {
      throw new PushdownError(`write the column ${names.join('.')} without a table name`);
    }
    const name = names[0]!;
    const found =
      this.columns.find((c) => c === name) ??
      this.columns.find((c) => c.toLowerCase() === name.toLowerCase());
    if (found === undefined) {
      throw new PushdownError(
        `column "${name}" is not in the source; its columns are ${this.columns.map((c) => `"${c}"`).join(', ')}`,
      );
    }
    return sql.id(found);
  }

  private constant(node: SqlNode): Expr {
    const value = child(node, 'value');
    if (!value || value.is_null === true) return sql.raw('null');
    const type = String(child(value, 'type')?.id);
    const raw = value.value;
    switch (type) {
      case 'BOOLEAN':
        return sql.raw(raw === true ? 'true' : 'false');
      case 'TINYINT':
      case 'SMALLINT':
      case 'INTEGER':
      case 'BIGINT':
      case 'HUGEINT':
      case 'UTINYINT':
      case 'USMALLINT':
      case 'UINTEGER':
      case 'UBIGINT':
      case 'UHUGEINT':
        return numeric(String(raw));
      case 'DECIMAL': {
        const scale = Number(child(child(value, 'type'), 'type_info')?.scale ?? 0);
        return numeric(scaledDecimal(String(raw), scale));
      }
      case 'FLOAT':
      case 'DOUBLE':
        if (typeof raw === 'number' && Number.isFinite(raw)) return numeric(String(raw));
        break;
      case 'VARCHAR':
        // A bound parameter: the text never becomes SQL.
        return sql`${String(raw)}`;
    }
    throw new PushdownError(`the constant ${JSON.stringify(raw)} (${type}) cannot be sent to the warehouse`);
  }

  private cast(node: SqlNode): Expr {
    const target = child(node, 'cast_type');
    const inner = child(node, 'child');
    if (!target || !inner) throw this.unsupported(node);
    if (node.try_cast === true) throw new PushdownError('try_cast cannot be sent to the warehouse; use cast');
    const id = String(target.id);
    // DuckDB parses the literals true and false as CAST('t' AS BOOLEAN).
    if (id === 'BOOLEAN' && inner.class === 'CONSTANT') {
      const text = String(child(inner, 'value')?.value ?? '').toLowerCase();
      if (['t', 'true'].includes(text)) return sql.raw('true');
      if (['f', 'false'].includes(text)) return sql.raw('false');
    }
    const type = this.typeName(id, child(target, 'type_info'));
    return sql`cast(${this.expr(inner)} as ${sql.raw(type)})`;
  }

  private typeName(id: string, info: SqlNode | undefined): string {
    const pg = this.dialect === 'postgres';
    switch (id) {
      case 'BOOLEAN':
        if (pg) return 'boolean';
        break;
      case 'TINYINT':
      case 'SMALLINT':
        return pg ? 'smallint' : 'signed';
      case 'INTEGER':
        return pg ? 'integer' : 'signed';
      case 'BIGINT':
      case 'HUGEINT':
        return pg ? 'bigint' : 'signed';
      case 'FLOAT':
      case 'DOUBLE':
        return pg ? 'double precision' : 'double';
      case 'DECIMAL': {
        const width = Number(info?.width ?? 18);
        const scale = Number(info?.scale ?? 3);
        if (Number.isInteger(width) && Number.isInteger(scale)) return `decimal(${width}, ${scale})`;
        break;
      }
      case 'VARCHAR':
        return pg ? 'text' : 'char';
      case 'DATE':
        return 'date';
      case 'TIMESTAMP':
        return pg ? 'timestamp' : 'datetime';
      case 'TIMESTAMP WITH TIME ZONE':
        if (pg) return 'timestamptz';
        break;
    }
    throw new PushdownError(`a cast to ${id} cannot be sent to a ${this.dialect} warehouse`);
  }

  private comparison(node: SqlNode): Expr {
    const left = child(node, 'left');
    const right = child(node, 'right');
    if (!left || !right) throw this.unsupported(node);
    const [a, b] = [this.expr(left), this.expr(right)];
    const type = String(node.type);
    const op = COMPARISONS[type];
    if (op !== undefined) return sql`(${a} ${sql.raw(op)} ${b})`;
    const pg = this.dialect === 'postgres';
    if (type === 'COMPARE_DISTINCT_FROM')
      return pg ? sql`(${a} is distinct from ${b})` : sql`(not (${a} <=> ${b}))`;
    if (type === 'COMPARE_NOT_DISTINCT_FROM') {
      return pg ? sql`(${a} is not distinct from ${b})` : sql`(${a} <=> ${b})`;
    }
    throw this.unsupported(node);
  }

  private operator(node: SqlNode): Expr {
    const args = this.children(node);
    switch (node.type) {
      case 'OPERATOR_NOT':
        if (args.length === 1) return sql`(not ${args[0]})`;
        break;
      case 'OPERATOR_IS_NULL':
        if (args.length === 1) return sql`(${args[0]} is null)`;
        break;
      case 'OPERATOR_IS_NOT_NULL':
        if (args.length === 1) return sql`(${args[0]} is not null)`;
        break;
      case 'COMPARE_IN':
      case 'COMPARE_NOT_IN': {
        const [first, ...list] = args;
        if (!first || list.length === 0) break;
        const op = node.type === 'COMPARE_IN' ? 'in' : 'not in';
        return sql`(${first} ${sql.raw(op)} (${sql.join(list)}))`;
      }
      case 'OPERATOR_COALESCE':
        if (args.length > 0) return sql`coalesce(${sql.join(args)})`;
        break;
    }
    throw this.unsupported(node);
  }

  private func(node: SqlNode): Expr {
    const name = String(node.function_name);
    const args = this.children(node);
    if (node.is_operator === true) {
      const [a, b] = args;
      if (args.length === 2 && a && b) {
        if (ARITHMETIC.has(name)) return sql`(${a} ${sql.raw(name)} ${b})`;
        if (name === '||') return this.dialect === 'postgres' ? sql`(${a} || ${b})` : sql`concat(${a}, ${b})`;
        const like = this.like(name, a, b);
        if (like) return like;
      }
      if (args.length === 1 && a && (name === '-' || name === '+')) return sql`(${sql.raw(name)} ${a})`;
      throw this.unsupported(node);
    }
    const mapped = FUNCTIONS[name.toLowerCase()];
    if (mapped && node.schema === '' && node.distinct !== true && node.filter == null) {
      return sql`${sql.raw(mapped[this.dialect])}(${sql.join(args)})`;
    }
    throw this.unsupported(node);
  }

  private like(name: string, a: Expr, b: Expr): Expr | undefined {
    const pg = this.dialect === 'postgres';
    switch (name) {
      case '~~':
        return sql`(${a} like ${b})`;
      case '!~~':
        return sql`(${a} not like ${b})`;
      case '~~*':
        return pg ? sql`(${a} ilike ${b})` : sql`(lower(${a}) like lower(${b}))`;
      case '!~~*':
        return pg ? sql`(${a} not ilike ${b})` : sql`(lower(${a}) not like lower(${b}))`;
    }
    return undefined;
  }

  private unsupported(node: SqlNode): PushdownError {
    return new PushdownError(
      `${describe(node)} cannot be sent to the warehouse (supported: ${SUPPORTED}); or filter in a \`query:\` instead of \`table:\``,
    );
  }
}

/** How a user would call the node: `function regexp_matches`, `CASE expression`, `subquery`. */
function describe(node: SqlNode): string {
  if (node.class === 'FUNCTION') return `function ${String(node.function_name)}()`;
  if (node.class === 'SUBQUERY') return 'subquery';
  if (node.class === 'CASE') return 'CASE expression';
  if (node.class === 'CONSTANT') return `constant of type ${String(child(child(node, 'value'), 'type')?.id)}`;
  if (node.class === 'COLUMN_REF') return 'column value';
  return String(node.type ?? node.class)
    .toLowerCase()
    .replace(/_/g, ' ');
}

/** A number as SQL text, after checking that it is one (it is inlined). */
function numeric(text: string): Expr {
  if (!/^-?\d+(\.\d+)?(e[+-]?\d+)?$/i.test(text)) throw new PushdownError(`${text} is not a number`);
  return sql.raw(text);
}

/** DuckDB writes a DECIMAL constant as its unscaled integer: 125 with scale 2 is 1.25. */
function scaledDecimal(unscaled: string, scale: number): string {
  if (!/^-?\d+$/.test(unscaled) || !Number.isInteger(scale) || scale < 0) return 'NaN';
  if (scale === 0) return unscaled;
  const negative = unscaled.startsWith('-');
  const digits = (negative ? unscaled.slice(1) : unscaled).padStart(scale + 1, '0');
  return `${negative ? '-' : ''}${digits.slice(0, -scale)}.${digits.slice(-scale)}`;
}
