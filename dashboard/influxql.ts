// A small InfluxQL builder and the Grafana target that carries it. The foundation SDK has no
// InfluxDB query type, so this follows its `custom-query` example: a plain object that declares
// itself a Dataquery variant, and a builder for it. Every identifier is double-quoted (`from` and
// `to` are InfluxQL keywords and also event fields); every string literal is single-quoted.
import type { Builder, Dataquery } from '@grafana/grafana-foundation-sdk/cog';
import type { ColumnOf, FieldOf, Measurement, TagOf } from './schema.ts';

/** The datasource every panel, variable and alert rule names (provisioning/datasources). */
export const DATASOURCE_UID = 'anylat-influxdb';
export const DATASOURCE = { type: 'influxdb', uid: DATASOURCE_UID } as const;

/** `"name"` with embedded quotes and backslashes escaped. */
export function ident(name: string): string {
  return `"${name.replace(/\\/g, '\\\\').replace(/"/g, '\\"')}"`;
}

/** `'value'` with embedded quotes and backslashes escaped. */
export function literal(value: string): string {
  return `'${value.replace(/\\/g, '\\\\').replace(/'/g, "\\'")}'`;
}

function regexBody(value: string): string {
  return value.replace(/[\\^$*+?.()|[\]{}/]/g, '\\$&');
}

/** One select expression; `as()` names its column. */
export class Sel {
  constructor(readonly sql: string) {}
  as(alias: string): Sel {
    return new Sel(`${this.sql} AS ${ident(alias)}`);
  }
}

type Arg<M extends Measurement> = FieldOf<M> | Sel;
function arg<M extends Measurement>(a: Arg<M>): string {
  return a instanceof Sel ? a.sql : ident(a);
}

/** Select expressions over the fields of one measurement (names checked against the model). */
export interface Fns<M extends Measurement> {
  /** `name("field", ...params)`: any InfluxQL function over a field or another expression */
  fn(name: string, of: Arg<M>, ...params: number[]): Sel;
  mean(of: Arg<M>): Sel;
  sum(of: Arg<M>): Sel;
  count(of: Arg<M>): Sel;
  min(of: Arg<M>): Sel;
  max(of: Arg<M>): Sel;
  last(of: Arg<M>): Sel;
  first(of: Arg<M>): Sel;
  percentile(of: Arg<M>, p: number): Sel;
  /** a bare column: a raw field, or a tag listed next to fields */
  col(c: ColumnOf<M>): Sel;
  /** arithmetic over other expressions: expr`100 * (1 - ${a} / ${b})` */
  expr(strings: TemplateStringsArray, ...parts: Sel[]): Sel;
}

function fns<M extends Measurement>(): Fns<M> {
  const fn = (name: string, of: Arg<M>, ...params: number[]) =>
    new Sel(`${name}(${[arg(of), ...params.map(String)].join(', ')})`);
  return {
    fn,
    mean: (of) => fn('mean', of),
    sum: (of) => fn('sum', of),
    count: (of) => fn('count', of),
    min: (of) => fn('min', of),
    max: (of) => fn('max', of),
    last: (of) => fn('last', of),
    first: (of) => fn('first', of),
    percentile: (of, p) => fn('percentile', of, p),
    col: (c) => new Sel(ident(c)),
    expr: (strings, ...parts) =>
      new Sel(strings.reduce((acc, s, i) => acc + s + (i < parts.length ? parts[i]!.sql : ''), '')),
  };
}

/** A WHERE condition. */
export class Cond {
  constructor(readonly sql: string) {}
}

/** Conditions on the tags of one measurement. */
export interface Conds<M extends Measurement> {
  /** `"tag" = 'value'` */
  is(tag: TagOf<M>, value: string): Cond;
  /** `"tag" =~ /^(a|b)$/` for a fixed set of values */
  in(tag: TagOf<M>, values: readonly string[]): Cond;
  /**
   * `"tag" =~ /^$variable$/`: Grafana substitutes a regex-escaped value, or `(a|b)` for a
   * multi-value or "All" selection, so one condition serves every selection.
   */
  v(tag: TagOf<M>, variable: string): Cond;
  /** `"tag" =~ /^(${variable:raw})$/`: a variable whose value is itself a regex alternation */
  vRaw(tag: TagOf<M>, variable: string): Cond;
  /**
   * `"tag" =~ /^prefix${variable:raw}$/`: the variable's value as is, anchored — matches nothing
   * when the value is empty (no prefix) or when a prefix is followed by a non-empty value.
   */
  vRawExact(tag: TagOf<M>, variable: string, prefix?: string): Cond;
  /** `"tag" !~ /^${variable:raw}$/`: every value but the variable's (all of them when it is empty) */
  notVRawExact(tag: TagOf<M>, variable: string): Cond;
  /** `"tag" != 'value'` */
  not(tag: TagOf<M>, value: string): Cond;
  /** a condition on a field, e.g. `"ci_low_ms" > 0` */
  field(sql: string): Cond;
  /** `(a OR b)` */
  any(...conds: Cond[]): Cond;
  /** `(a AND b)` */
  all(...conds: Cond[]): Cond;
}

function conds<M extends Measurement>(): Conds<M> {
  return {
    is: (tag, value) => new Cond(`${ident(tag)} = ${literal(value)}`),
    in: (tag, values) => new Cond(`${ident(tag)} =~ /^(${values.map(regexBody).join('|')})$/`),
    v: (tag, variable) => new Cond(`${ident(tag)} =~ /^$${variable}$/`),
    vRaw: (tag, variable) => new Cond(`${ident(tag)} =~ /^(\${${variable}:raw})$/`),
    vRawExact: (tag, variable, prefix = '') => new Cond(`${ident(tag)} =~ /^${regexBody(prefix)}\${${variable}:raw}$/`),
    notVRawExact: (tag, variable) => new Cond(`${ident(tag)} !~ /^\${${variable}:raw}$/`),
    not: (tag, value) => new Cond(`${ident(tag)} != ${literal(value)}`),
    field: (sql) => new Cond(sql),
    any: (...cs) => new Cond(`(${cs.map((c) => c.sql).join(' OR ')})`),
    all: (...cs) => new Cond(`(${cs.map((c) => c.sql).join(' AND ')})`),
  };
}

export type Fill = 'none' | 'null' | 'previous' | 'linear' | number;

/** Builds one InfluxQL SELECT. `$timeFilter` is always part of WHERE: Grafana fills it in. */
export class SelectBuilder<M extends Measurement> {
  private readonly selects: Sel[] = [];
  private readonly conds: Cond[] = [];
  private timeBucket?: string;
  private readonly tags: TagOf<M>[] = [];
  private fillWith?: Fill;
  private descending = false;
  private limitN?: number;
  private timeCond = '$timeFilter';
  private source?: string;

  constructor(private readonly measurement: M) {}

  /**
   * Replaces `$timeFilter` by another time condition, e.g. the last 15 minutes of the dashboard's
   * range: `time >= ${__to}ms - 15m AND time <= ${__to}ms` (Grafana fills `${__to}` in).
   */
  timeWindow(sql: string): this {
    this.timeCond = sql;
    return this;
  }
  /** Selects from a subquery instead of the measurement: `SELECT ... FROM (inner) WHERE ...`. */
  fromSubquery(inner: SelectBuilder<M>): this {
    this.source = `(${inner.build()})`;
    return this;
  }

  select(pick: (f: Fns<M>) => Sel[]): this {
    this.selects.push(...pick(fns<M>()));
    return this;
  }
  where(pick: (w: Conds<M>) => Cond[]): this {
    this.conds.push(...pick(conds<M>()));
    return this;
  }
  /** GROUP BY time(bucket): `$__interval` for panels, a fixed bucket for alert rules. */
  groupByTime(bucket: string): this {
    this.timeBucket = bucket;
    return this;
  }
  groupBy(...tags: TagOf<M>[]): this {
    this.tags.push(...tags);
    return this;
  }
  fill(fill: Fill): this {
    this.fillWith = fill;
    return this;
  }
  newestFirst(): this {
    this.descending = true;
    return this;
  }
  limit(n: number): this {
    this.limitN = n;
    return this;
  }

  build(): string {
    if (this.selects.length === 0) throw new Error(`InfluxQL query on ${this.measurement} selects nothing`);
    let q = `SELECT ${this.selects.map((s) => s.sql).join(', ')} FROM ${this.source ?? ident(this.measurement)}`;
    q += ` WHERE ${[...this.conds.map((c) => c.sql), this.timeCond].join(' AND ')}`;
    const groups = [...(this.timeBucket ? [`time(${this.timeBucket})`] : []), ...this.tags.map(ident)];
    if (groups.length > 0) q += ` GROUP BY ${groups.join(', ')}`;
    if (this.fillWith !== undefined) {
      if (!this.timeBucket) throw new Error('fill() needs groupByTime()');
      q += ` fill(${this.fillWith})`;
    }
    if (this.descending) q += ' ORDER BY time DESC';
    if (this.limitN !== undefined) q += ` LIMIT ${this.limitN}`;
    return q;
  }
}

export function from<M extends Measurement>(measurement: M): SelectBuilder<M> {
  return new SelectBuilder(measurement);
}

/**
 * `SHOW TAG VALUES FROM "m" WITH KEY = "tag" WHERE ... AND $timeFilter`: the source of a template
 * variable. The time condition makes a tag that has no data in the dashboard's range (a retired
 * region) leave the list: InfluxDB 3 lists what the range holds; 1.x honours it per shard with the
 * tsi1 index (docs/grafana.md, "InfluxDB versions").
 */
export function showTagValues<M extends Measurement>(
  measurement: M,
  tag: TagOf<M>,
  pick?: (w: Conds<M>) => Cond[],
): string {
  const cs = pick ? pick(conds<M>()) : [];
  return `SHOW TAG VALUES FROM ${ident(measurement)} WITH KEY = ${ident(tag)} WHERE ${[...cs.map((c) => c.sql), '$timeFilter'].join(' AND ')}`;
}

/** The InfluxDB datasource's query model for a raw InfluxQL query. */
export interface InfluxQLQuery {
  refId?: string;
  hide?: boolean;
  datasource: { type: string; uid: string };
  query: string;
  rawQuery: true;
  /** `time_series`: one series per tag set; `table`: tags become columns, one row per point */
  resultFormat: 'time_series' | 'table';
  /** series name pattern: `$tag_<name>`, `$col`, `$m` */
  alias?: string;
  _implementsDataqueryVariant(): void;
}

/** Builder for {@link InfluxQLQuery}, usable wherever the SDK takes a `Builder<Dataquery>`. */
export class InfluxQLTargetBuilder implements Builder<Dataquery> {
  private readonly internal: InfluxQLQuery;

  constructor(query: string | { build(): string }) {
    this.internal = {
      datasource: { ...DATASOURCE },
      query: typeof query === 'string' ? query : query.build(),
      rawQuery: true,
      resultFormat: 'time_series',
      _implementsDataqueryVariant() {},
    };
  }
  build(): InfluxQLQuery {
    return this.internal;
  }
  refId(refId: string): this {
    this.internal.refId = refId;
    return this;
  }
  hide(hide: boolean): this {
    this.internal.hide = hide;
    return this;
  }
  table(): this {
    this.internal.resultFormat = 'table';
    return this;
  }
  alias(alias: string): this {
    this.internal.alias = alias;
    return this;
  }
}

/** A raw InfluxQL target: `target(from('benefit').select(...))`. */
export function target(query: string | { build(): string }, refId = 'A'): InfluxQLTargetBuilder {
  return new InfluxQLTargetBuilder(query).refId(refId);
}
