/**
 * Columns that fit the terminal: each has a width, one takes what is left (flex, at least its
 * width), and optional ones are dropped, highest `drop` first, until the rest fits. Cells are
 * fitted before they are coloured, so colour never changes a width.
 */
import { fit } from './format';

export interface Column<R> {
  title: string;
  /** columns; for the flex column, its least width */
  width: number;
  align?: 'left' | 'right';
  flex?: boolean;
  /** 0 (default): always shown; otherwise dropped before every column with a lower value */
  drop?: number;
  cell(r: R): string;
  /** an SGR colour for the cell, when colour is on */
  color?(r: R): string | undefined;
}

export type Paint = (text: string, sgr: string | undefined) => string;

export class Table<R> {
  readonly columns: Column<R>[];

  constructor(columns: Column<R>[], width: number) {
    let shown = columns;
    const needed = (cols: Column<R>[]) => cols.reduce((n, c) => n + c.width, 0) + Math.max(0, cols.length - 1);
    while (needed(shown) > width) {
      const most = Math.max(...shown.map((c) => c.drop ?? 0));
      if (most === 0) break;
      const i = shown.findIndex((c) => (c.drop ?? 0) === most);
      shown = shown.filter((_, j) => j !== i);
    }
    const spare = Math.max(0, width - needed(shown));
    this.columns = shown.map((c) => (c.flex ? { ...c, width: c.width + spare } : c));
  }

  header(paint: Paint, sgr: string, titleOf: (c: Column<R>) => string = (c) => c.title): string {
    return this.columns
      .map((c) => paint(fit(titleOf(c), c.width, c.align), sgr))
      .join(' ')
      .trimEnd();
  }

  row(r: R, paint: Paint): string {
    return this.columns
      .map((c) => paint(fit(c.cell(r), c.width, c.align), c.color?.(r)))
      .join(' ')
      .trimEnd();
  }
}
