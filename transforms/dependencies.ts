// The tables a model's SQL reads, from DuckDB's own parser (`json_serialize_sql`): every table reference in the
// statement's syntax tree, minus the names its CTEs define where they are in scope. Comments, string literals,
// column names and aliases never count, and an import CTE named like the table it reads (`orders as (select *
// from orders)`) still reads the table.
import { type Db, sqlString } from '../pipelines/base/duckdb.js';

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };
type JsonObject = { [key: string]: Json };

export type TablesRead = { tables: string[] } | { error: string };

function isObject(value: Json | undefined): value is JsonObject {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function text(value: Json | undefined): string {
  return typeof value === 'string' ? value : '';
}

/** The CTEs a query node defines, in order: name, body, and whether the body may read itself (recursive). */
function ctesOf(node: JsonObject): { name: string; body: Json; recursive: boolean }[] {
  const map = isObject(node.cte_map) ? node.cte_map.map : undefined;
  if (!Array.isArray(map)) return [];
  return map.filter(isObject).map((entry) => {
    const value = isObject(entry.value) ? entry.value : {};
    const query = isObject(value.query) ? value.query : {};
    const body = query.node ?? null;
    return {
      name: text(entry.key).toLowerCase(),
      body,
      recursive: isObject(body) && body.type === 'RECURSIVE_CTE_NODE',
    };
  });
}

function walk(node: Json, scope: ReadonlySet<string>, found: Set<string>): void {
  if (Array.isArray(node)) {
    for (const item of node) walk(item, scope, found);
    return;
  }
  if (!isObject(node)) return;
  if (node.type === 'BASE_TABLE') {
    const name = text(node.table_name).toLowerCase();
    const schema = text(node.schema_name).toLowerCase();
    // Only tables of the run's own database; temp. or attached catalogs are not models.
    if (name && (schema === '' || schema === 'main') && text(node.catalog_name) === '' && !scope.has(name)) {
      found.add(name);
    }
    return;
  }
  let inner = scope;
  const ctes = ctesOf(node);
  if (ctes.length > 0) {
    // A CTE sees the ones before it (and itself when recursive); the query sees them all.
    const visible = new Set(scope);
    for (const cte of ctes) {
      walk(cte.body, cte.recursive ? new Set([...visible, cte.name]) : visible, found);
      visible.add(cte.name);
    }
    inner = visible;
  }
  for (const [key, value] of Object.entries(node)) {
    if (key !== 'cte_map') walk(value, inner, found);
  }
}

/** The tables one select statement reads, lower case, in first-seen order; or why DuckDB cannot parse it. */
export async function tablesRead(db: Db, sql: string): Promise<TablesRead> {
  const row = await db.one<{ tree: string }>(`select json_serialize_sql(${sqlString(sql)}) as tree`);
  const tree = JSON.parse(row?.tree ?? '{}') as Json;
  if (!isObject(tree)) return { error: 'DuckDB returned no syntax tree' };
  if (tree.error === true) {
    return { error: `${text(tree.error_type) || 'parser'} error: ${text(tree.error_message)}` };
  }
  const statements = Array.isArray(tree.statements) ? tree.statements : [];
  if (statements.length !== 1) {
    return { error: `a model is one select statement, found ${statements.length}` };
  }
  const found = new Set<string>();
  walk(statements, new Set(), found);
  return { tables: [...found] };
}
