import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { jsonValue, multijsonLine } from '../../src/sink/kusto/encode-multijson.js';
import { TABLES, type RowOfTable } from '../../src/schema/index.js';

describe('JSON lines for ADX', () => {
  it('a value is written exactly as JSON.stringify writes it: any string (control characters, quotes, lone or paired surrogates), number, boolean or object', () => {
    // Any UTF-16 code unit (lone surrogate halves and control characters included), whole code points
    // of every plane, and the characters JSON.stringify escapes or that look as if it might.
    const codeUnit = fc.integer({ min: 0, max: 0xffff }).map((c) => String.fromCharCode(c));
    const special = fc.constantFrom(
      '"',
      '\\',
      '\u0000',
      '\b',
      '\t',
      '\n',
      '\u001f',
      '\u007f',
      '\u2028',
      '\u2029',
      '\ud800',
      '\udbff',
      '\udc00',
      '\udfff',
      '\ud83d\ude00',
      '\ufeff',
      '\uffff',
    );
    const anyString = fc.oneof(
      fc.string(),
      fc.string({ unit: 'binary' }),
      fc.string({ unit: 'grapheme' }),
      fc.string({ unit: fc.oneof(codeUnit, special, fc.constant('a')) }),
    );
    fc.assert(
      fc.property(anyString, (s) => {
        expect(jsonValue(s)).toBe(JSON.stringify(s));
      }),
      { numRuns: 3000 },
    );
    const anyNumber = fc.oneof(
      fc.double(),
      fc.integer(),
      fc.constantFrom(
        0,
        -0,
        Number.NaN,
        Number.POSITIVE_INFINITY,
        Number.NEGATIVE_INFINITY,
        1e21,
        -1e21,
        1e-7,
        5e-324,
        2 ** 53,
        Number.MAX_VALUE,
      ),
    );
    fc.assert(
      fc.property(anyNumber, (n) => {
        expect(jsonValue(n)).toBe(JSON.stringify(n));
      }),
      { numRuns: 3000 },
    );
    fc.assert(
      fc.property(fc.oneof(fc.boolean(), fc.jsonValue()), (v) => {
        expect(jsonValue(v)).toBe(JSON.stringify(v));
      }),
      { numRuns: 500 },
    );
    // -0 is written as 0, as JSON.stringify writes it.
    expect(jsonValue(-0)).toBe('0');
  });

  it('a line holds the non-null columns in column order, datetimes cut to 100 ns ticks, and parses back to the row', () => {
    const line = multijsonLine('deadLetters');
    const row: RowOfTable['deadLetters'] = {
      TimeGenerated: '2026-11-20T08:00:00.123456789Z',
      Stage: 'extract',
      Reason: 'invalid_json',
      Message: 'a "quoted" \\ message\n\twith a lone \ud800 surrogate',
      NodeName: null,
      RawData: '{"flow":',
      ReceiverNode: 'n1',
      RunId: null,
      SchemaVersion: 5,
    };
    const text = line(row);
    expect(Object.keys(JSON.parse(text) as object)).toEqual(
      TABLES.deadLetters.columns.map((c) => c.name).filter((n) => (row as Record<string, unknown>)[n] !== null),
    );
    expect(JSON.parse(text)).toEqual({ ...row, TimeGenerated: '2026-11-20T08:00:00.1234567Z', NodeName: undefined, RunId: undefined });
    expect(text).toContain('lone \\ud800 surrogate"');
  });
});
